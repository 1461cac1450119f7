"""The learners' template repository, made on demand: `kit lesson template --out DEST`.

What each learner starts from is the example workspace as a repository root (`cuda-exercise/`),
with the files `kit generate` writes for it, the workflows, a Codespace and a README. Every one
of those files is derived from the lesson's example and the installed kit, so the template is
made from them when an instructor asks, never kept as a committed copy that could drift from
both. The instructor pushes DEST to a repository of its own and marks it as a template there.

DEST must not exist yet (or be an empty folder). The tree is written into a temporary sibling
folder and renamed into place, so DEST is either the whole template or not there at all.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from importlib import resources
from pathlib import Path

from kit.base.errors import UserError
from kit.base.files import describe_kind, read_text, refuse_links
from kit.decide.options import PIXI_VERSION
from kit.lesson.sync import EXAMPLE, LESSON_OPTIONS, Lesson, load_lesson, refill
from kit.model.deployfiles import STATE_FILE, FileKind
from kit.model.workspace import load_workspace
from kit.output.render import render
from kit.output.write import sha256

DEVCONTAINER_IMAGE = "mcr.microsoft.com/devcontainers/base:ubuntu"
# The template's README, with the lesson's markers (kit.lesson.sync) for the values it quotes.
README = resources.files("kit").joinpath("templates", "learners", "README.md")


def template_files(root: Path, lesson: Lesson | None = None) -> dict[str, str]:
    """The template repository as {path: text}: README, manifest, app, generated files, state."""
    lesson = lesson or load_lesson(root)
    workspace = root / EXAMPLE
    folder = LESSON_OPTIONS.subdir
    readme = refill(README.read_text(encoding="utf-8"), lesson.files, "the template's README", lesson.values)
    tree = {
        "README.md": readme,
        f"{folder}/pixi.toml": read_text(workspace / "pixi.toml", field="manifest"),
    }
    rendered = render(load_workspace(workspace), LESSON_OPTIONS)
    tree.update({path: f.text for path, f in rendered.items()})
    for path in sorted((workspace / "app").rglob("*")):
        if path.is_file():
            tree[f"{folder}/{path.relative_to(workspace).as_posix()}"] = read_text(path, field="app")
    tree[".devcontainer/devcontainer.json"] = devcontainer_json(folder)
    managed = {path: sha256(f.text) for path, f in rendered.items() if f.kind is FileKind.MANAGED}
    tree[STATE_FILE] = json.dumps({"files": dict(sorted(managed.items()))}, indent=2) + "\n"
    return dict(sorted(tree.items()))


def devcontainer_json(folder: str) -> str:
    """A Codespace for the learners' repository: Git, Docker (in Docker) and the pixi that the
    kit's base image carries, so a lock written there is one the image's pixi can read."""
    config = {
        "name": folder,
        "image": DEVCONTAINER_IMAGE,
        "features": {"ghcr.io/devcontainers/features/docker-in-docker:2": {}},
        "containerEnv": {"PIXI_VERSION": f"v{PIXI_VERSION}"},
        "remoteEnv": {"PATH": "${containerEnv:PATH}:/home/vscode/.pixi/bin"},
        "postCreateCommand": "curl -fsSL https://pixi.sh/install.sh | bash && ~/.pixi/bin/pixi --version",
        "hostRequirements": {"storage": "32gb"},
    }
    return json.dumps(config, indent=2) + "\n"


def write_template(root: Path, out: Path) -> list[str]:
    """Make the template repository in `out` (new, or an empty folder); the paths written."""
    out = Path(out)
    _check_destination(out)
    files = template_files(root)
    staging: Path | None = None
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".kit-tmp-{out.name}-", dir=out.parent))
        for rel, text in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "x", encoding="utf-8", newline="") as handle:
                handle.write(text)
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the repository from its group
        os.rename(staging, out)  # replaces an empty folder; refuses anything else
    except OSError as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise UserError(
            f"cannot be made: {exc.strerror or exc}",
            file=out,
            field="out",
            fix="name a new folder (or an empty one) you can write to; nothing was written",
        ) from None
    except BaseException:  # Ctrl-C or SIGTERM (kit.base.interrupts): no partial folder stays
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return list(files)


def _check_destination(out: Path) -> None:
    """`out` is new or an empty real folder, in a folder that exists, and not behind a link."""
    refuse_links(out)
    empty = True
    try:
        info = out.lstat()
        if stat.S_ISDIR(info.st_mode):
            with os.scandir(out) as entries:
                empty = next(entries, None) is None
    except FileNotFoundError:
        info = None
    except OSError as exc:  # a file on the way (`FILE/sub`), no permission, /proc
        raise UserError(
            f"cannot be used: {exc.strerror or exc}",
            file=out,
            field="out",
            fix="name a new folder (or an empty one) in a folder you can write to; nothing was written",
        ) from None
    if info is not None and not stat.S_ISDIR(info.st_mode):
        raise UserError(
            f"is {describe_kind(info.st_mode)}, not a folder the template can go in",
            file=out,
            field="out",
            fix="name a new folder; nothing was written",
        )
    if info is not None and not empty:
        raise UserError(
            "is not empty: the template is made only in a new or an empty folder",
            file=out,
            field="out",
            fix="name a new folder, or empty this one; nothing was written",
        )
    if not out.parent.is_dir():
        raise UserError(
            "has no parent folder",
            file=out,
            field="out",
            fix=f"create {out.parent} first; nothing was written",
        )

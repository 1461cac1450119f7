"""The build context: a private copy of what the build may read, with freshly rendered recipes laid over it.

Builds never read the user's tree directly and never write to it; what is built is exactly what
the preview showed. The copy holds only what the engine would be sent, and the engine says what
that is (`ContainerEngine.context_admits`, the rules in kit.engines.context): for Docker what the
rendered `.dockerignore` admits, for Apptainer, which has no ignore file, the sources of the def
file's host `%files` lines.

Symbolic links stay links, as `docker build` sends them. A link that leaves the context (an
absolute target, or `..` past the top) would copy a file from elsewhere on the machine into the
image, or break inside it; a link that dangles would fail the build later with a confusing
message. Both are refused with one line before anything is built. FIFOs, sockets and devices are
skipped, and the walk is iterative, so no tree is too deep for it.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import stat
from pathlib import Path, PurePosixPath
from typing import Literal

from kit.base.errors import UserError
from kit.base.files import read_text
from kit.engines.engine import Admits
from kit.engines.registry import DEFAULT_ENGINE, get_engine
from kit.model.deployfiles import GITHUB_DIR, STATE_FILE, FileKind
from kit.output.prepared import Prepared
from kit.output.render import RenderedFile
from kit.output.write import TEMP_PREFIX, merge_lines

STAGING_SKIP = (".pixi", ".git", "__pycache__", "*.sif", "*.partial", STATE_FILE, TEMP_PREFIX + "*")


def copy_workspace(source: Path | str, dest: Path | str) -> Path:
    """Copy a workspace folder to `dest` (replaced if present), without `.pixi/`, `.git/` or SIFs.

    This is the notebooks' scratch copy, a learner's own working copy: links are followed, and
    one that cannot be followed is an error."""
    dest = Path(dest)
    try:
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(Path(source), dest, ignore=shutil.ignore_patterns(*STAGING_SKIP))
    except (OSError, shutil.Error) as exc:
        detail = exc.args[0][0][2] if isinstance(exc, shutil.Error) and exc.args and exc.args[0] else str(exc)
        raise UserError(
            f"cannot be copied: {detail}",
            file=source,
            field="dir",
            fix="fix or remove broken links and unreadable files in the workspace",
        ) from None
    return dest


def stage_build_context(prepared: Prepared, dest: Path, engine: str = DEFAULT_ENGINE) -> Path:
    """Copy what the engine may read and lay the rendered recipe files over it, as a folder of its own.

    Builds always use freshly rendered files in a private folder: the user's own tree is never
    written by a build, and what is built is exactly what the preview showed.
    """
    source = Path(prepared.workspace.root)
    overlay = _overlay(prepared)
    admits = get_engine(engine).context_admits({rel: f.text for rel, f in overlay.items()}, source)
    copy_context(source, Path(dest), admits)
    for rel, f in overlay.items():
        target = Path(dest) / rel
        if f.kind is FileKind.SEED and (os.path.lexists(target) or not admits(rel, False)):
            continue
        text = f.text
        if f.kind is FileKind.LINES:  # the workspace's own .gitignore, with the lines it lacks
            own = target.is_file() and not target.is_symlink()
            text = merge_lines(read_text(target, field=rel) if own else "", f.text)
        if os.path.lexists(target) and (target.is_symlink() or not target.is_file()):
            _remove(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return Path(dest)


def _overlay(prepared: Prepared) -> dict[str, RenderedFile]:
    prefix = prepared.location.prefix
    return {
        path[len(prefix) :]: f
        for path, f in prepared.render().items()
        if path.startswith(prefix) and not path.startswith(GITHUB_DIR)
    }


def copy_context(source: Path, dest: Path, admits: Admits) -> None:
    """Copy the admitted part of `source` to `dest` (replaced), links as links, iteratively."""
    if os.path.lexists(dest):
        _remove(dest)
    dest.mkdir(parents=True)
    top = source.resolve()
    pending = [""]
    while pending:
        folder = pending.pop()
        try:
            entries = sorted(os.scandir(top / folder if folder else top), key=lambda e: e.name)
        except OSError as exc:
            raise _uncopiable(top / folder, "read", exc) from None
        for entry in entries:
            rel = f"{folder}/{entry.name}" if folder else entry.name
            if any(fnmatch.fnmatch(entry.name, skip) for skip in STAGING_SKIP):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError as exc:
                raise _uncopiable(top / rel, "read", exc) from None
            is_dir = stat.S_ISDIR(info.st_mode)
            if not admits(rel, is_dir):
                continue
            target = dest / rel
            if stat.S_ISLNK(info.st_mode):
                _copy_link(top, rel, target)
            elif is_dir:
                target.mkdir()
                pending.append(rel)
            elif stat.S_ISREG(info.st_mode):
                try:
                    shutil.copy2(top / rel, target, follow_symlinks=False)
                except OSError as exc:
                    raise _uncopiable(top / rel, "copied", exc) from None
            # FIFOs, sockets and devices never go into a build context


def _uncopiable(path: Path, step: Literal["read", "copied"], exc: OSError) -> UserError:
    """Whatever step of the copy failed on `path` (listing, stat, copying), the way out is the same:
    make it readable or leave it out of the context."""
    return UserError(
        f"cannot be {step}: {exc.strerror}",
        file=path,
        field="context",
        fix="make it readable, or exclude it in .dockerignore",
    )


def _copy_link(top: Path, rel: str, target: Path) -> None:
    """Keep a link a link, if it stays inside the context and points at something."""
    link = top / rel
    pointer = os.readlink(link)
    inside = PurePosixPath(os.path.normpath(PurePosixPath(rel).parent / pointer))
    if os.path.isabs(pointer) or inside.parts[:1] == ("..",):
        raise UserError(
            f"is a link to {pointer!r}, outside the build context",
            file=link,
            field="context",
            fix="copy the file into the workspace instead of linking "
            "to it, or exclude the link in .dockerignore",
        )
    try:
        real = link.resolve(strict=True)
    except (OSError, RuntimeError):
        raise UserError(
            f"is a link to {pointer!r}, which does not exist",
            file=link,
            field="context",
            fix="restore the file it points to, replace the link with the file, or remove it",
        ) from None
    if real != top and top not in real.parents:
        raise UserError(
            f"is a link that leads outside the build context (to {real})",
            file=link,
            field="context",
            fix="copy the file into the workspace instead of linking to it",
        )
    os.symlink(pointer, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()

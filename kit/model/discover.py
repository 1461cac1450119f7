"""Find the Pixi workspaces in a repository, so that each gets workflow files of its own.

One repository often holds several workspaces (a folder per variant). Their recipes live in their
own folders, but GitHub reads every workflow from the one `.github/workflows/` at the root: two
workspaces rendered to the same `docker.yaml` would replace each other's CI without a word. So
the kit looks at the whole repository first and, when it holds more than one workspace, names
each workspace's workflows after its folder (`docker-<slug>.yaml`).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from kit.base.errors import WorkspaceError
from kit.model.workspace import parse_manifest_toml

# Folders never searched: pixi's own environments, VCS data, caches, build outputs.
SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "build", "dist", "venv"})
MAX_DEPTH = 4
# The search is bounded in count too: a cloned repository may hold a million folders, or a
# thousand pyproject.toml files to parse. Past either bound it stops with one line.
MAX_FOLDERS = 20_000
MAX_PYPROJECTS = 200


def is_workspace(folder: Path) -> bool:
    """A folder with a `pixi.toml`, or a `pyproject.toml` that has a `[tool.pixi]` table; not a
    pixi-build source package's folder, whose pixi.toml has a `[package]` table and no
    `[workspace]` (pixi reads it as part of the workspace above it)."""
    if (folder / "pixi.toml").is_file():
        try:
            data = parse_manifest_toml(folder / "pixi.toml")
        except WorkspaceError:  # reading it as a workspace names what is wrong with it
            return True
        return not ("package" in data and "workspace" not in data and "project" not in data)
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file():
        return False
    return _pixi_pyproject(pyproject)


def _pixi_pyproject(pyproject: Path) -> bool:
    try:
        data = parse_manifest_toml(pyproject)
    except WorkspaceError:  # unreadable, huge or not TOML: not a workspace to generate for
        return False
    tool = data.get("tool")
    pixi = tool.get("pixi") if isinstance(tool, dict) else None
    return isinstance(pixi, dict) and not (
        "package" in pixi and "workspace" not in pixi and "project" not in pixi
    )


def find_workspaces(root: Path) -> tuple[str, ...]:
    """Every workspace folder under `root`, as a POSIX path from it ("" for `root` itself),
    sorted. Hidden folders, symlinked folders and build/cache folders are not searched, nor
    anything below a depth of 4 or inside another workspace's `.pixi/`."""
    root = Path(root)
    found: list[str] = []
    if not root.is_dir():
        return ()
    folders = parsed = 0
    for current, dirs, files in os.walk(root, followlinks=False):
        here = Path(current)
        rel = here.relative_to(root)
        depth = len(rel.parts)
        folders += 1
        if folders > MAX_FOLDERS:
            raise _too_many(root, f"more than {MAX_FOLDERS} folders")
        if "pixi.toml" not in files and "pyproject.toml" in files:
            parsed += 1
            if parsed > MAX_PYPROJECTS:
                raise _too_many(root, f"more than {MAX_PYPROJECTS} pyproject.toml files")
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIPPED_DIRS
            and not (here / d).is_symlink()
            and depth < MAX_DEPTH
        )
        if is_workspace(here):
            found.append("" if depth == 0 else rel.as_posix())
    return tuple(sorted(found))


def _too_many(root: Path, what: str) -> WorkspaceError:
    return WorkspaceError(
        f"holds {what} within {MAX_DEPTH} levels: too many to search for Pixi workspaces",
        file=root,
        field="repository",
        fix="keep generated trees and vendored projects out of the repository (or in hidden, "
        "build, dist, venv or node_modules folders, which are not searched)",
    )


def workflow_slug(subdir: str, workspace_name: str) -> str:
    """The suffix a workspace's workflows get when the repository holds several: its folder
    (`variants/gpu` -> `variants-gpu`), or its name for a workspace at the root."""
    source = subdir or workspace_name
    slug = re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")
    return slug or "root"


def slug_in(repository_workspaces: tuple[str, ...], subdir: str, workspace_name: str) -> str:
    """This workspace's workflow slug: "" when it is the repository's only workspace.

    Two folders can make the same slug (`a_b` and `a-b`, `gpu/v1` and `gpu-v1`): then each of
    them gets a suffix from its own folder's path, so that no two workspaces ever share a
    workflow file (one would replace the other's CI)."""
    others = [d for d in repository_workspaces if d != subdir]
    if not others:
        return ""
    slug = workflow_slug(subdir, workspace_name)
    # A workspace at the root is named by its name, which the others' folders cannot be read for.
    if any(workflow_slug(d, "") == slug for d in others if d):
        slug += "-" + hashlib.sha256(subdir.encode("utf-8")).hexdigest()[:6]
    return slug

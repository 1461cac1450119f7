"""The build context: a private copy of the workspace with freshly rendered recipe files laid over it.

Builds never read the user's tree directly and never write to it; what is built is exactly what
the preview showed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from kit.render import FileKind
from kit.write import merge_lines

if TYPE_CHECKING:
    from kit.api import Prepared

STAGING_SKIP = (".pixi", ".git", "__pycache__", "*.sif", "*.partial", ".kit-state.json")


def copy_workspace(source: Path | str, dest: Path | str) -> Path:
    """Copy a workspace folder to `dest` (replaced if present), without `.pixi/`, `.git/` or SIFs."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(Path(source), dest, ignore=shutil.ignore_patterns(*STAGING_SKIP))
    return dest


def stage_build_context(prepared: Prepared, dest: Path) -> Path:
    """Copy the workspace and lay the rendered recipe files over it, as a folder of its own.

    Builds always use freshly rendered files in a private folder: the user's own tree is never
    written by a build, and what is built is exactly what the preview showed.
    """
    copy_workspace(prepared.workspace.root, dest)
    prefix = prepared.location.prefix
    for path, f in prepared.render().items():
        if not path.startswith(prefix) or path.startswith(".github/"):
            continue
        target = dest / path[len(prefix):]
        existing = target.read_text(encoding="utf-8") if target.exists() else None
        if f.kind is FileKind.SEED and existing is not None:
            continue
        text = merge_lines(existing or "", f.text) if f.kind is FileKind.LINES else f.text
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return dest

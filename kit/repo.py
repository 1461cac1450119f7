"""Where a workspace sits in its git repository: the root (workflows live there) and the prefix.

The lesson's workspace is `cuda-exercise/` inside a learner's repository, so build contexts and
workflow path filters need that folder name. We walk up to the nearest `.git` rather than run
git, so this works without git installed and never depends on the current directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    root: Path       # where .github/workflows/ goes
    prefix: str      # the workspace folder from the root: "" or "cuda-exercise/"

    @property
    def subdir(self) -> str:
        return self.prefix.rstrip("/")


def locate(workspace_dir: Path, out: Path | None = None, subdir: str | None = None) -> Location:
    """The repository root and prefix for `workspace_dir`, or for an output folder `out`."""
    if subdir is None:
        subdir = _detected_subdir(workspace_dir)
    prefix = f"{subdir.strip('/')}/" if subdir.strip("/") else ""
    if out is not None:
        return Location(out, prefix)
    root = workspace_dir.resolve()
    for _ in prefix.strip("/").split("/") if prefix else ():
        root = root.parent
    return Location(root, prefix)


def _detected_subdir(workspace_dir: Path) -> str:
    here = workspace_dir.resolve()
    for parent in (here, *here.parents):
        if (parent / ".git").exists():
            rel = here.relative_to(parent).as_posix()
            return "" if rel == "." else rel
    return ""

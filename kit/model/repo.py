"""Where a workspace sits in its git repository: the root (workflows live there) and the prefix.

The lesson's workspace is `cuda-exercise/` inside a learner's repository, so build contexts and
workflow path filters need that folder name. We walk up to the nearest `.git` rather than run
git, so this works without git installed and never depends on the current directory.

A `subdir` the user gives must describe where the workspace really is: the root is found by
walking up from the real (resolved) workspace folder, so `--subdir x/y/z` on a workspace that is
not in `x/y/z`, an absolute path or `..` would put `.github/` and the state file somewhere else,
and is refused. With `--out` the files go into that folder instead, and `subdir` only names the
workspace folder inside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kit.base.errors import OptionsError, UserError
from kit.base.files import refuse_links


@dataclass(frozen=True)
class Location:
    root: Path  # where .github/workflows/ goes
    prefix: str  # the workspace folder from the root: "" or "cuda-exercise/"

    @property
    def subdir(self) -> str:
        return self.prefix.rstrip("/")


def locate(workspace_dir: Path, out: Path | None = None, subdir: str | None = None) -> Location:
    """The repository root and prefix for `workspace_dir`, or for an output folder `out`."""
    here = _real_folder(workspace_dir)
    if subdir is None:
        subdir = _detected_subdir(here)
    parts = _subdir_parts(subdir)
    prefix = "".join(f"{p}/" for p in parts)
    if out is not None:
        return Location(_out_folder(out), prefix)
    root = here
    for _ in parts:
        root = root.parent
    if tuple(here.parts[len(here.parts) - len(parts) :]) != parts or len(parts) >= len(here.parts):
        raise OptionsError(
            f"subdir {subdir!r} does not match where the workspace is ({here})",
            field="subdir",
            fix=f"leave --subdir out (detected: "
            f"{_detected_subdir(here) or 'the repository root'}) or pass the "
            "workspace's real folder path from the repository root",
        )
    git_root = _git_root(here)
    if git_root is not None and git_root != root:
        raise OptionsError(
            f"subdir {subdir!r} does not match the git repository at {git_root}",
            field="subdir",
            fix=f"use --subdir {_detected_subdir(here) or '.'!r}, or leave it out",
        )
    return Location(root, prefix)


def _real_folder(workspace_dir: Path) -> Path:
    try:
        return Path(workspace_dir).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise UserError(
            f"cannot be resolved: {exc}",
            file=workspace_dir,
            field="dir",
            fix="pass an existing folder without link loops",
        ) from None


def _subdir_parts(subdir: str) -> tuple[str, ...]:
    if not isinstance(subdir, str):
        raise OptionsError(
            f"subdir must be text, not {type(subdir).__name__}",
            field="subdir",
            fix="pass a folder path such as 'cuda-exercise'",
        )
    pure = PurePosixPath(subdir)
    if pure.is_absolute() or "\\" in subdir or "\0" in subdir:
        raise OptionsError(
            f"subdir {subdir!r} must be relative to the repository root",
            field="subdir",
            fix="pass a relative folder such as 'cuda-exercise'",
        )
    if subdir.rstrip("/") in ("", "."):  # the root, also as './' (as names.relative_path reads it)
        return ()
    parts = tuple(p for p in subdir.strip("/").split("/") if p not in ("",))
    if any(p in (".", "..") for p in parts):
        raise OptionsError(
            f"subdir {subdir!r} may not contain '.' or '..'",
            field="subdir",
            fix="pass the plain folder path from the repository root",
        )
    return parts


def _out_folder(out: Path) -> Path:
    """`--out` resolved; it must be a folder or not exist yet (made when writing), and neither it
    nor a folder above it a link (kit.base.files.refuse_links: the rule every writer follows)."""
    refuse_links(Path(out))
    try:
        resolved = Path(out).resolve()
    except (OSError, RuntimeError) as exc:
        raise UserError(
            f"cannot be resolved: {exc}", file=out, field="out", fix="pass a folder path without link loops"
        ) from None
    if os.path.lexists(resolved) and not resolved.is_dir():
        raise UserError(
            "is not a folder", file=out, field="out", fix="pass a folder (or a path that does not exist yet)"
        )
    return resolved


def _git_root(here: Path) -> Path | None:
    for parent in (here, *here.parents):
        if os.path.lexists(parent / ".git"):
            return parent
    return None


def _detected_subdir(here: Path) -> str:
    root = _git_root(here)
    if root is None:
        return ""
    rel = here.relative_to(root).as_posix()
    return "" if rel == "." else rel

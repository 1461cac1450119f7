"""Put rendered files on disk safely: preview the diff, refuse to clobber hand edits, write atomically.

The kit remembers the SHA-256 of every file it wrote in `.kit-state.json` at the repository
root. A file on disk that still has that hash is the kit's own and may be replaced; a file that
differs (someone edited it, or the kit never wrote it) is only replaced with `force`. Line files
(.gitignore, .gitattributes) only ever gain the lines they lack; seed files (the probe) are only
created. Either every change is written or none is.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kit.errors import OverwriteRefused
from kit.render import FileKind, RenderedFile

STATE_FILE = ".kit-state.json"
Action = Literal["create", "update", "append", "unchanged", "refused"]


@dataclass(frozen=True)
class Change:
    path: str
    kind: FileKind
    action: Action
    old: str | None
    new: str

    @property
    def writes(self) -> bool:
        return self.action in ("create", "update", "append")

    def diff(self) -> str:
        old_lines = (self.old or "").splitlines(keepends=True)
        new_lines = self.new.splitlines(keepends=True)
        return "".join(difflib.unified_diff(old_lines, new_lines,
                                            "/dev/null" if self.old is None else f"a/{self.path}",
                                            f"b/{self.path}"))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_state(root: Path) -> dict[str, str]:
    try:
        data = json.loads((root / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.get("files", {}).items()} if isinstance(data, dict) else {}


def plan_changes(files: dict[str, RenderedFile], root: Path, force: bool = False) -> list[Change]:
    """What writing `files` under `root` would do, file by file; nothing is touched."""
    state = load_state(root)
    return [_change(f, _read(root / f.path), state.get(f.path), force) for f in files.values()]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _change(f: RenderedFile, old: str | None, recorded: str | None, force: bool) -> Change:
    if old is None:
        return Change(f.path, f.kind, "create", None, f.text)
    if f.kind is FileKind.SEED:
        return Change(f.path, f.kind, "unchanged", old, old)
    if f.kind is FileKind.LINES:
        new = merge_lines(old, f.text)
        return Change(f.path, f.kind, "unchanged" if new == old else "append", old, new)
    if old == f.text:
        return Change(f.path, f.kind, "unchanged", old, old)
    ours = recorded is not None and sha256(old) == recorded
    return Change(f.path, f.kind, "update" if ours or force else "refused", old, f.text)


def merge_lines(existing: str, wanted: str) -> str:
    """`existing` plus the meaningful lines of `wanted` it lacks, under a marker comment."""
    have = {line.strip() for line in existing.splitlines()}
    missing = [line for line in wanted.splitlines()
               if line.strip() and not line.startswith("#") and line.strip() not in have]
    if not missing:
        return existing
    head = existing if existing.endswith("\n") or not existing else existing + "\n"
    return head + "# added by pixi-deploy-kit\n" + "\n".join(missing) + "\n"


def apply_changes(changes: list[Change], root: Path) -> list[Change]:
    """Write every change atomically, or raise OverwriteRefused and write nothing."""
    refused = [c.path for c in changes if c.action == "refused"]
    if refused:
        raise OverwriteRefused(f"{', '.join(refused)} changed since the kit last wrote "
                               f"{'it' if len(refused) == 1 else 'them'}", file=root / refused[0],
                               field="overwrite", fix="review with --diff, then re-run with --force "
                               "to replace, or move your edits into the options")
    written = [c for c in changes if c.writes]
    for change in written:
        atomic_write(root / change.path, change.new)
    if written:
        state = load_state(root)
        state.update({c.path: sha256(c.new) for c in changes if c.kind is FileKind.MANAGED and c.action != "refused"})
        atomic_write(root / STATE_FILE, json.dumps({"files": dict(sorted(state.items()))}, indent=2) + "\n")
    return written


def atomic_write(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder and rename it over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

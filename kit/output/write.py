"""Put rendered files on disk safely: confined, never through a link, all or nothing.

The kit remembers the SHA-256 of every file it wrote in `.kit-state.json` at the repository
root (or `--out`), and which workspace of the repository wrote it. A file on disk that still has
that hash is the kit's own and may be replaced; a file that differs (someone edited it, changed
its line endings, or the kit never wrote it) is only replaced with `force`, and so is a file
another workspace of the same repository wrote (except a shared file such as `dependabot.yml`,
which every workspace renders alike, listing them all). Line files (.gitignore,
.gitattributes) only ever gain the lines they lack; seed files (the probe) are only created.

Where: every target is a plain relative path under the root, inside the workspace's folder or the
root's `.github/`; every folder on the way must be a real folder (no symlink) and every target a
regular file or nothing. Writes go through directory file descriptors opened with `O_NOFOLLOW`, so
a folder swapped for a link after the check is refused too.

How: each new text goes into a temporary file next to its target (`.kit-tmp-*`, a name the kit
recognises, cleans up and never mistakes for a user's file), then all are renamed into place with
SIGINT/SIGTERM held back, the state file last. Any failure renames back what was already moved,
removes the temporary files and raises one `UserError`; nothing is left half written.
"""

from __future__ import annotations

import difflib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from kit.base.errors import OverwriteRefused, UserError, WorkspaceError
from kit.base.files import TEXT_LIMIT, describe_kind, read_bytes, read_text
from kit.base.interrupts import deferred
from kit.model.deployfiles import GITHUB_DIR, SHARED, STATE_FILE, FileKind
from kit.model.discover import is_workspace
from kit.output.render import RenderedFile

STATE_VERSION = 2
TEMP_PREFIX = ".kit-tmp-"
LOCK_WAIT_S = 30.0
Action = Literal["create", "update", "append", "unchanged", "refused"]
_SHA256 = re.compile(r"[0-9a-f]{64}")  # fullmatch
_EDITED_FIX = "review with --diff, then re-run with --force to replace, or move your edits into the options"
_STATE_FIX = (
    f"delete {STATE_FILE} (the kit then treats the files it finds as hand-edited) or "
    "re-run with --force to rebuild it"
)


@dataclass(frozen=True)
class Change:
    path: str
    kind: FileKind
    action: Action
    old: str | None
    new: str
    reason: str = ""  # why a change is refused, in words
    fix: str = ""  # and what to do about it (decided with the reason, in `_change`)

    @property
    def writes(self) -> bool:
        return self.action in ("create", "update", "append")

    def diff(self) -> str:
        old_lines = (self.old or "").splitlines(keepends=True)
        new_lines = self.new.splitlines(keepends=True)
        return "".join(
            difflib.unified_diff(
                old_lines, new_lines, "/dev/null" if self.old is None else f"a/{self.path}", f"b/{self.path}"
            )
        )


@dataclass(frozen=True)
class Recorded:
    """What the state file says about one path: the hash the kit wrote and which workspace wrote it
    (its folder from the root, "" for the root, None in state files from before this was kept)."""

    sha256: str
    workspace: str | None = None


def sha256(text: str | bytes) -> str:
    """The hash of the exact bytes (a CRLF edit changes it)."""
    return hashlib.sha256(text.encode("utf-8") if isinstance(text, str) else text).hexdigest()


# -- the state file --------------------------------------------------------------------------------


def load_state(root: Path, force: bool = False) -> dict[str, Recorded]:
    """The state file's records; a damaged one is an error with a way out (with `force`: ignored)."""
    path = Path(root) / STATE_FILE
    if not os.path.lexists(path):
        return {}
    try:
        text = read_text(path, limit=TEXT_LIMIT, field="state", error=WorkspaceError)
        return parse_state(text, path)
    except WorkspaceError as exc:
        if force:
            return {}
        raise WorkspaceError(exc.detail, file=path, field=exc.field or "state", fix=_STATE_FIX) from None


def parse_state(text: str, path: Path) -> dict[str, Recorded]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise WorkspaceError(
            f"is not valid JSON ({str(exc)[:80]})", file=path, field="state", fix=_STATE_FIX
        ) from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise WorkspaceError(
            'is not a kit state file (expected {"files": {...}})', file=path, field="state", fix=_STATE_FIX
        )
    records: dict[str, Recorded] = {}
    for key, value in files.items():
        if isinstance(value, str) and _SHA256.fullmatch(value):  # state version 1
            records[key] = Recorded(value)
        elif (
            isinstance(value, dict)
            and isinstance(value.get("sha256"), str)
            and _SHA256.fullmatch(value["sha256"])
            and isinstance(value.get("workspace", ""), str)
        ):
            records[key] = Recorded(value["sha256"], value.get("workspace"))
        else:
            raise WorkspaceError(
                f"has an entry for {key!r} that is not a SHA-256 record",
                file=path,
                field=f"state.files.{key}",
                fix=_STATE_FIX,
            )
    return records


def state_text(records: dict[str, Recorded]) -> str:
    files: dict[str, Any] = {}
    for path, rec in sorted(records.items()):
        files[path] = {
            "sha256": rec.sha256,
            **({"workspace": rec.workspace} if rec.workspace is not None else {}),
        }
    return json.dumps({"version": STATE_VERSION, "files": files}, indent=2, sort_keys=True) + "\n"


# -- planning ---------------------------------------------------------------------------------------


def plan_changes(
    files: dict[str, RenderedFile], root: Path, force: bool = False, *, prefix: str | None = None
) -> list[Change]:
    """What writing `files` under `root` would do, file by file; nothing is touched.

    `prefix` is the workspace's folder from the root ("" or "name/"); files may land only there or
    in `.github/`. Without it, it is read from the rendered paths.
    """
    root = Path(root)
    owner = infer_prefix(files) if prefix is None else prefix
    check_root(root)
    state = load_state(root, force)
    changes = []
    for f in files.values():
        check_relative(f.path, owner)
        old = _read_existing(root, f.path, seed=f.kind is FileKind.SEED)
        recorded = state.get(f.path)
        other = recorded.workspace if recorded is not None else None
        shared = f.path in SHARED  # every workspace renders the same file: none takes it from another
        if other is not None and other != owner and not shared and old is not None and old != f.text:
            if _still_there(root, state, other):
                changes.append(_taken(f, old, other, owner))
                continue
        changes.append(_change(f, old, recorded, force, owner))
    return changes


def _still_there(root: Path, state: dict[str, Recorded], workspace: str) -> bool:
    """Whether the workspace in `workspace` ("" or "name/") is still there: its folder holds a
    manifest, or a file the state records for it (under --out, where no manifest is written).
    Then the file another workspace wants is that workspace's."""
    if is_workspace(root / workspace):
        return True
    return any(
        rec.workspace == workspace
        and path.startswith(workspace)
        and not path.startswith(GITHUB_DIR)
        and os.path.lexists(root / path)
        for path, rec in state.items()
    )


def _taken(f: RenderedFile, old: str, other: str, owner: str) -> Change:
    """A file of another workspace of this repository, refused even with --force: each
    workspace would silently replace the other's CI on every generate."""
    return Change(
        f.path,
        f.kind,
        "refused",
        old,
        f.text,
        f"{f.path} is written by the workspace in {other or './'} of this repository, not by the one "
        f"in {owner or './'}; --force does not hand one workspace's files to another",
        "rename one of the two workspace folders so that their workflow names "
        "(docker-<folder>.yaml) differ, or generate this workspace's recipes only, with "
        "--only docker --only apptainer",
    )


def infer_prefix(files: dict[str, RenderedFile]) -> str:
    """The workspace folder the rendered paths share ("" for the root)."""
    inside = [PurePosixPath(p).parent.as_posix() for p in files if not p.startswith(GITHUB_DIR)]
    if not inside:
        return ""
    common = os.path.commonpath(inside)
    return "" if common in ("", ".") else common + "/"


def check_root(root: Path) -> None:
    """The root (repository root or --out) must be a folder, or not exist yet."""
    try:
        info = root.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UserError(
            f"cannot be used: {exc.strerror}",
            file=root,
            field="out",
            fix="pick a folder you can read and write",
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise UserError(
            f"is {describe_kind(info.st_mode)}, not a folder",
            file=root,
            field="out",
            fix="pass a folder (or a path that does not exist yet)",
        )


def check_relative(rel: str, prefix: str) -> PurePosixPath:
    """`rel` must be a plain relative path inside the workspace folder or `.github/`."""
    pure = PurePosixPath(rel)
    bad = (
        not rel
        or pure.is_absolute()
        or "\\" in rel
        or "\0" in rel
        or any(part in ("", ".", "..") for part in rel.split("/"))
    )
    inside = rel.startswith(prefix) or rel.startswith(GITHUB_DIR) or rel == STATE_FILE
    if bad or not inside:
        raise UserError(
            f"the kit will not write {rel!r}: outside the workspace and .github/",
            field="path",
            fix="report this: rendered paths must stay in the workspace",
        )
    return pure


def _walk_folders(root: Path, rel: str) -> Iterator[Path]:
    parts = rel.split("/")
    here = root
    for part in parts[:-1]:
        here = here / part
        yield here


@dataclass(frozen=True)
class _Need:
    """What the kit needs to find at a path it writes to or through, and how it refuses anything
    else: one place for the words, so the plan and the write (which checks again, by descriptor,
    in case the path was swapped meanwhile) refuse alike."""

    accepts: Callable[[int], bool]  # a `stat.S_IS*` test on the mode
    otherwise: str  # what the refusal says after "is <its kind>, "
    link_fix: str


_FOLDER = _Need(
    stat.S_ISDIR,
    "but the kit needs a folder here",
    "replace the link with a real folder, or generate with --out into another folder",
)
_FILE = _Need(
    stat.S_ISREG, "not a file the kit can replace", "replace the link with a regular file (or remove it)"
)


def _link_refused(path: Path, fix: str) -> UserError:
    return UserError(
        "is a symbolic link; the kit never writes through a link", file=path, field="path", fix=fix
    )


def _refuse_unless(need: _Need, path: Path, mode: int) -> None:
    """Raise the refusal for `path` (of `mode`, from lstat or fstat) unless it is what `need` says."""
    if stat.S_ISLNK(mode):
        raise _link_refused(path, need.link_fix)
    if not need.accepts(mode):
        raise UserError(
            f"is {describe_kind(mode)}, {need.otherwise}",
            file=path,
            field="path",
            fix="move it away, or generate with --out",
        )


def _read_existing(root: Path, rel: str, seed: bool) -> str | None:
    """The current text at `rel`, None when nothing is there; refuses links and odd files."""
    for folder in _walk_folders(root, rel):
        try:
            info = folder.lstat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UserError(
                f"cannot be read: {exc.strerror}", file=folder, field="path", fix="check its permissions"
            ) from None
        _refuse_unless(_FOLDER, folder, info.st_mode)
    target = root / rel
    if seed:  # seeds are only created: anything already there (even a link) is left alone
        return "" if os.path.lexists(target) else None
    if not os.path.lexists(target):
        return None
    _refuse_unless(_FILE, target, target.lstat().st_mode)
    return read_text(target, limit=TEXT_LIMIT, field="path")


def _change(f: RenderedFile, old: str | None, recorded: Recorded | None, force: bool, owner: str) -> Change:
    if old is None:
        return Change(f.path, f.kind, "create", None, f.text)
    if f.kind is FileKind.SEED:
        return Change(f.path, f.kind, "unchanged", f.text, f.text)
    if f.kind is FileKind.LINES:
        new = merge_lines(old, f.text)
        return Change(f.path, f.kind, "unchanged" if new == old else "append", old, new)
    if old == f.text:
        return Change(f.path, f.kind, "unchanged", old, old)
    if force:
        return Change(f.path, f.kind, "update", old, f.text)
    fix = _EDITED_FIX
    # A shared file (dependabot.yml) lists every workspace whichever renders it: none owns it.
    if (
        recorded is not None
        and recorded.workspace is not None
        and recorded.workspace != owner
        and f.path not in SHARED
    ):
        # The other workspace is gone (plan_changes refuses otherwise): --force takes the file.
        reason = f"{f.path} was written for the workspace in {recorded.workspace or './'}, which is gone"
        fix = "re-run with --force to take the file over"
    elif recorded is not None and sha256(old) == recorded.sha256:
        return Change(f.path, f.kind, "update", old, f.text)
    elif recorded is not None:
        reason = f"{f.path} changed since the kit last wrote it"
    else:
        reason = f"{f.path} was not written by the kit"
    if f.path in SHARED:  # the repository's own file (dependabot.yml): no option makes its edits
        fix = (
            "review with --diff and add the kit's entries to your file, or re-run with --force to replace it"
        )
    return Change(f.path, f.kind, "refused", old, f.text, reason, fix)


def merge_lines(existing: str, wanted: str) -> str:
    """`existing` plus the meaningful lines of `wanted` it lacks, under a marker comment."""
    have = {line.strip() for line in existing.splitlines()}
    missing = [
        line
        for line in wanted.splitlines()
        if line.strip() and not line.startswith("#") and line.strip() not in have
    ]
    if not missing:
        return existing
    newline = "\r\n" if existing.endswith("\r\n") else "\n"
    head = existing if existing.endswith("\n") or not existing else existing + newline
    return head + "# added by pixi-deploy-kit" + newline + newline.join(missing) + newline


# -- writing ----------------------------------------------------------------------------------------


def apply_changes(changes: list[Change], root: Path, *, prefix: str | None = None) -> list[Change]:
    """Write every change, or raise (OverwriteRefused, UserError) and write nothing."""
    root = Path(root)
    refused = [c for c in changes if c.action == "refused"]
    if refused:
        first = refused[0]
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise OverwriteRefused(
            (first.reason or f"{first.path} changed since the kit last wrote it") + more,
            file=root / first.path,
            field="overwrite",
            fix=first.fix or _EDITED_FIX,
        )
    owner = prefix if prefix is not None else _prefix_of(changes)
    written = [c for c in changes if c.writes]
    with _root_lock(root):
        # A file planned as unchanged is recorded as ours: it must still hold what was planned
        # (a concurrent run with other options may have replaced it since), else the record lies.
        for c in changes:
            if (
                c.kind is FileKind.MANAGED
                and c.action == "unchanged"
                and _read_existing(root, c.path, False) != c.new
            ):
                raise UserError(
                    "changed while the kit was writing",
                    file=root / c.path,
                    field="write",
                    fix="run again; nothing was written",
                )
        state = load_state(root, force=True)  # plan_changes refused a damaged one without force
        new_state = dict(state)
        for c in changes:
            if c.kind is FileKind.MANAGED and c.action in ("create", "update", "unchanged"):
                keep = state.get(c.path)
                who = (
                    keep.workspace
                    if c.action == "unchanged" and keep and keep.workspace is not None
                    else owner
                )
                new_state[c.path] = Recorded(sha256(c.new), who)
        if not written and new_state == state:
            return []
        batch = [(c.path, c.old, c.new) for c in written]
        state_old = _current_state_text(root)
        batch.append((STATE_FILE, state_old, state_text(new_state)))
        _write_all(root, batch, tuple(sorted({c.path.rpartition("/")[0] for c in changes})))
    return written


def _prefix_of(changes: list[Change]) -> str:
    return infer_prefix({c.path: RenderedFile(c.path, "") for c in changes})


def _current_state_text(root: Path) -> str | None:
    """The state file's bytes as they are (damaged or not), None when absent; never a folder or link."""
    path = root / STATE_FILE
    if not os.path.lexists(path):
        return None
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise UserError(
            f"is {describe_kind(info.st_mode)}, not the kit's state file",
            file=path,
            field="state",
            fix=f"remove it ({STATE_FILE} is written by the kit)",
        )
    return read_bytes(path, limit=TEXT_LIMIT, field="state").decode("utf-8", "surrogateescape")


def atomic_write(path: Path, text: str) -> None:
    """Replace (or create) the single file `path` with `text`, through a temporary file."""
    path = Path(path)
    with _root_lock(path.parent):
        old = _read_existing(path.parent, path.name, seed=False) if os.path.lexists(path) else None
        _write_all(path.parent, [(path.name, old, text)])


@contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    """One writer per root at a time (an advisory lock on the folder itself)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise UserError(
            f"cannot be created or opened: {exc.strerror}",
            file=root,
            field="out",
            fix="pick a folder you can write to; nothing was written",
        ) from None
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise UserError(
                        "another kit process is writing here",
                        file=root,
                        field="lock",
                        fix="wait for it to finish, then run again",
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


class _Staged:
    """One file's temporary copy, waiting in its folder (held open by descriptor)."""

    def __init__(self, rel: str, dir_fd: int, name: str, temp: str, old: str | None) -> None:
        self.rel, self.dir_fd, self.name, self.temp, self.old = rel, dir_fd, name, temp, old
        self.renamed = False
        self.backup: str | None = None


def _write_all(root: Path, batch: list[tuple[str, str | None, str]], sweep: tuple[str, ...] = ()) -> None:
    """Stage every (path, expected old text, new text), then rename all; roll back on failure."""
    fds: dict[str, int] = {}
    created: list[tuple[int, str]] = []
    staged: list[_Staged] = []
    swept: set[str] = set()
    current = ""
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fds[""] = root_fd
        for rel, old, new in batch:
            current = rel
            folder, name = rel.rpartition("/")[::2]
            dir_fd = _open_folder(root, folder, fds, created)
            if folder not in swept:
                _sweep_stale(dir_fd)
                swept.add(folder)
            if _expect(dir_fd, name, old, new, root / rel):
                continue  # another run wrote exactly this meanwhile
            _stage(dir_fd, rel, name, new, old, staged)
        for folder in sweep:  # folders of files left as they are: stale temporary files go too
            if folder not in swept and _exists_as_folder(root, folder):
                _sweep_stale(_open_folder(root, folder, fds, created))
                swept.add(folder)
        current = ""
        with deferred():
            try:
                for item in staged:
                    current = item.rel
                    os.replace(item.temp, item.name, src_dir_fd=item.dir_fd, dst_dir_fd=item.dir_fd)
                    item.renamed = True
            except BaseException:
                _roll_back(staged)
                raise
    except UserError:
        _discard(staged, created)
        raise
    except OSError as exc:
        _discard(staged, created)
        where = root / current if current else root
        raise UserError(
            f"cannot be written: {exc.strerror or exc}", file=where, field="write", fix=_write_fix(exc)
        ) from None
    except BaseException:
        _discard(staged, created)
        raise
    else:
        _discard(staged, [])
    finally:
        for fd in fds.values():
            os.close(fd)


def _exists_as_folder(root: Path, folder: str) -> bool:
    here = root
    for part in folder.split("/") if folder else ():
        here = here / part
        try:
            if not stat.S_ISDIR(here.lstat().st_mode):  # a link or a file: never entered
                return False
        except OSError:
            return False
    return True


def _write_fix(exc: OSError) -> str:
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "the folder is read-only or protected: make it writable or use --out; nothing was written"
    if exc.errno == errno.ENOSPC:
        return "free some disk space; nothing was written"
    return "fix the folder and run again; nothing was written"


def _open_folder(root: Path, folder: str, fds: dict[str, int], created: list[tuple[int, str]]) -> int:
    """A descriptor for `folder` under the root, opened one component at a time, never through a
    link; missing folders are made (and remembered, to remove them on failure)."""
    if folder in fds:
        return fds[folder]
    parent_rel, _, name = folder.rpartition("/")
    parent = _open_folder(root, parent_rel, fds, created) if parent_rel else fds[""]
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=parent)
    except FileNotFoundError:
        os.mkdir(name, 0o755, dir_fd=parent)
        created.append((parent, name))
        fd = os.open(name, flags, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UserError(
                "is a symbolic link or not a folder; the kit never writes through a link",
                file=root / folder,
                field="path",
                fix="replace it with a real folder, or generate with --out",
            ) from None
        raise
    fds[folder] = fd
    return fd


def _sweep_stale(dir_fd: int) -> None:
    """Remove temporary files an earlier, killed run left in this folder (we hold the lock)."""
    for entry in os.listdir(dir_fd):
        if entry.startswith(TEMP_PREFIX):
            try:
                info = os.stat(entry, dir_fd=dir_fd, follow_symlinks=False)
                if not stat.S_ISDIR(info.st_mode):
                    os.unlink(entry, dir_fd=dir_fd)
            except OSError:
                pass


def _expect(dir_fd: int, name: str, old: str | None, new: str, shown: Path) -> bool:
    """The file must still hold what was planned (another process may have changed it); True when
    it already holds `new` (a concurrent run of the same command got there first)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        if old is None:
            return False
        raise UserError(
            "disappeared while the kit was writing",
            file=shown,
            field="write",
            fix="run again; nothing was written",
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _link_refused(shown, "replace the link with a regular file") from None
        raise
    try:
        info = os.fstat(fd)
        _refuse_unless(_FILE, shown, info.st_mode)  # never a link: opened with O_NOFOLLOW
        data = b""
        while info.st_size <= TEXT_LIMIT and len(data) <= TEXT_LIMIT:
            chunk = os.read(fd, TEXT_LIMIT + 1 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if data == new.encode("utf-8", "surrogateescape"):
        return True
    if old is None or data != old.encode("utf-8", "surrogateescape"):
        raise UserError(
            "changed while the kit was writing",
            file=shown,
            field="write",
            fix="run again; nothing was written",
        )
    return False


def _stage(dir_fd: int, rel: str, name: str, text: str, old: str | None, staged: list[_Staged]) -> _Staged:
    """Write `text` to a new temporary file next to `name`; it joins `staged` the moment it exists
    (signals held back meanwhile), so any exit from here on removes it."""
    mode = 0o644
    try:
        mode = stat.S_IMODE(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        pass
    item = _Staged(rel, dir_fd, name, f"{TEMP_PREFIX}{name}.{secrets.token_hex(6)}", old)
    with deferred():
        fd = os.open(
            item.temp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dir_fd,
        )
        staged.append(item)
    try:
        data = text.encode("utf-8", "surrogateescape")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    if old is not None:  # the old file, kept under a second name to roll back to
        _keep_old(item, old, staged)
    return item


def _keep_old(item: _Staged, old: str, staged: list[_Staged]) -> None:
    backup = f"{TEMP_PREFIX}old-{item.name}.{secrets.token_hex(6)}"
    with deferred():
        try:
            os.link(item.name, backup, src_dir_fd=item.dir_fd, dst_dir_fd=item.dir_fd, follow_symlinks=False)
            item.backup = backup
            return
        except OSError:
            pass
    # no hard links here: a copy of the text does as well (it is discarded with the others)
    copy = _stage(item.dir_fd, item.rel, item.name, old, None, staged)
    staged.remove(copy)
    item.backup = copy.temp


def _roll_back(staged: list[_Staged]) -> None:
    """Put back what was renamed already: the old file (kept as a hard link) or nothing."""
    for item in reversed(staged):
        if not item.renamed:
            continue
        try:
            if item.backup is not None:
                os.replace(item.backup, item.name, src_dir_fd=item.dir_fd, dst_dir_fd=item.dir_fd)
                item.backup = None
            else:
                os.unlink(item.name, dir_fd=item.dir_fd)
        except OSError:
            pass


def _discard(staged: list[_Staged], created: list[tuple[int, str]]) -> None:
    for item in staged:
        if not item.renamed:
            _unlink(item.dir_fd, item.temp)
        if item.backup is not None:
            _unlink(item.dir_fd, item.backup)
    for parent, name in reversed(created):
        try:
            os.rmdir(name, dir_fd=parent)
        except OSError:
            pass


def _unlink(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass

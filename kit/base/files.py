"""Read files that came with a workspace, which may have been written by anyone.

A repository handed to a learner can hold a FIFO or a link to `/dev/zero` where `pixi.lock`
should be, a manifest of a gigabyte, a folder named `Dockerfile`, or text in Latin-1. A plain
`Path.read_text()` hangs on the first two, exhausts memory on the third and raises a raw
`IsADirectoryError` or `UnicodeDecodeError` on the others. Every read of untrusted input goes
through `read_text()` here instead: it opens without following a final symlink (unless asked),
never blocks on a FIFO, accepts only regular files, stops at a size limit, decodes strict UTF-8,
and turns every failure into a `UserError` (or the subclass the caller names) with file, field and
fix. The limits are generous for real files and small enough to keep the kit responsive.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kit.base.errors import UserError

KiB = 1024
MiB = 1024 * KiB
MANIFEST_LIMIT = 4 * MiB  # pixi.toml / pyproject.toml
LOCK_LIMIT = 256 * MiB  # pixi.lock: real locks of large GPU stacks reach tens of MiB
TEXT_LIMIT = 16 * MiB  # recipes, workflows, episodes, .gitignore, the state file


def describe_kind(mode: int) -> str:
    """A file type in words, for messages ("a folder", "a FIFO", ...)."""
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((words for test, words in kinds if test(mode)), "of an unknown kind")


def _unreadable(path: Path, exc: OSError, field: str | None, error: type[UserError]) -> UserError:
    """An `OSError` on opening or reading, in words (the same whichever step it came from)."""
    return error(
        f"cannot be read: {exc.strerror or exc}",
        file=path,
        field=field,
        fix="check the path and its permissions",
    )


def _refuse_odd(
    path: Path, info: os.stat_result, limit: int, field: str | None, error: type[UserError]
) -> None:
    """Anything but a regular file within `limit`; `info` comes from `fstat` on the open file, so a
    link (refused by `O_NOFOLLOW`, or followed on purpose) never reaches here."""
    if not stat.S_ISREG(info.st_mode):
        raise error(
            f"is {describe_kind(info.st_mode)}, not a regular file",
            file=path,
            field=field,
            fix="replace it with a regular file",
        )
    if info.st_size > limit:
        raise error(
            f"is {info.st_size} bytes, more than the {limit // MiB} MiB the kit reads",
            file=path,
            field=field,
            fix="check that this is the right file",
        )


def _open_flags(follow: bool) -> int:
    """Read-only, never blocking on a FIFO, closed in children, and (unless `follow`) refusing a
    final symlink: how every reader here opens a file that came with a workspace."""
    return os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow else os.O_NOFOLLOW)


def read_bytes(
    path: Path,
    *,
    limit: int,
    field: str | None = None,
    error: type[UserError] = UserError,
    follow: bool = False,
) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them; never blocks, never follows
    a final symlink unless `follow`."""
    try:
        fd = os.open(path, _open_flags(follow))
    except FileNotFoundError:
        raise error(
            "does not exist", file=path, field=field, fix="create it, or pass the right folder"
        ) from None
    except OSError as exc:
        if not follow and os.path.islink(path):
            raise error(
                "is a symbolic link; the kit reads and writes only regular files here",
                file=path,
                field=field,
                fix="replace the link with a regular file",
            ) from None
        raise _unreadable(path, exc, field, error) from None
    try:
        _refuse_odd(path, os.fstat(fd), limit, field, error)
        data = _read_up_to(fd, limit + 1)
        if len(data) > limit:  # it grew while we read it
            raise error(
                f"is more than the {limit // MiB} MiB the kit reads",
                file=path,
                field=field,
                fix="check that this is the right file",
            )
        return data
    except OSError as exc:
        raise _unreadable(path, exc, field, error) from None
    finally:
        os.close(fd)


def read_head(path: Path, *, limit: int) -> bytes:
    """The first `limit` bytes of the regular file `path`: for a header (a SIF's) at the start of
    a file of any size. Opens like `read_bytes`; raises `OSError` for anything else."""
    fd = _open_regular(path)
    try:
        return _read_up_to(fd, limit)
    finally:
        os.close(fd)


def read_tail(path: Path, *, limit: int) -> tuple[bytes, int]:
    """The last `limit` bytes of the regular file `path`, and its whole size: for output that a
    running program writes (a job's stdout), whose size nobody bounds and whose end is what a
    reader wants. Opens like `read_bytes` (no final symlink, never blocks) and raises `OSError`
    for anything but a regular file, so that the caller decides how to say it."""
    fd = _open_regular(path)
    try:
        start = max(0, os.fstat(fd).st_size - limit)
        os.lseek(fd, start, os.SEEK_SET)
        data = _read_up_to(fd, limit)
        return data, max(os.fstat(fd).st_size, start + len(data))
    finally:
        os.close(fd)


def _open_regular(path: Path) -> int:
    """An open descriptor on the regular file `path`, never through a final link, never blocking
    on a FIFO; `OSError` in words otherwise."""
    try:
        fd = os.open(path, _open_flags(follow=False))
    except OSError:
        if os.path.islink(path):
            raise OSError("is a symbolic link") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise OSError(f"is {describe_kind(mode)}, not a regular file")
    return fd


def _read_up_to(fd: int, limit: int) -> bytes:
    """At most `limit` bytes from `fd`, in reads of a MiB at most, until its end."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(MiB, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def decode(data: bytes, path: Path, *, field: str | None = None, error: type[UserError] = UserError) -> str:
    """Strict UTF-8, with the offending byte's position in the message."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})",
            file=path,
            field=field,
            fix="save it as UTF-8",
        ) from None


def read_text(
    path: Path,
    *,
    limit: int = TEXT_LIMIT,
    field: str | None = None,
    error: type[UserError] = UserError,
    follow: bool = False,
) -> str:
    """The text of the regular file `path`: bounded, strict UTF-8, line endings kept as they are."""
    return decode(
        read_bytes(path, limit=limit, field=field, error=error, follow=follow), path, field=field, error=error
    )


def read_optional_text(
    path: Path,
    *,
    limit: int = TEXT_LIMIT,
    field: str | None = None,
    error: type[UserError] = UserError,
    follow: bool = False,
) -> str | None:
    """`read_text`, or None when nothing is at `path` (a dangling link is not nothing)."""
    if not os.path.lexists(path):
        return None
    return read_text(path, limit=limit, field=field, error=error, follow=follow)


def refuse_links(out: Path, field: str = "out") -> None:
    """The one rule for a folder the kit is told to write into (`generate --out`, `lesson
    template --out`, `lesson preview --out`): neither it nor a folder above it (as given) may be
    a symbolic link, since a link there sends the write, with text from the repository, anywhere
    its owner chose. Raises UserError naming the link; nothing has been written yet."""
    given = Path(os.path.abspath(out))
    for part in (given, *given.parents):
        if os.path.islink(part):
            raise UserError(
                f"{part} is a symbolic link; the kit never writes through a link",
                file=out,
                field=field,
                fix="name a real folder (not a link, and not inside one); nothing was written",
            )

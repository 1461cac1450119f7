"""kit.base.files, called directly: the one reader of files that came with a workspace. Only a
regular file within the limit, in strict UTF-8, is read; a link (unless followed on purpose), a
FIFO, a device, a folder, a file too big or not UTF-8 is refused as the caller's error, with the
file, the field and a fix, and nothing blocks."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from kit.base import files
from kit.base.errors import UserError, WorkspaceError


def refused(path: Path, **kwargs: object) -> UserError:
    with pytest.raises(UserError) as caught:
        files.read_text(path, **kwargs)  # type: ignore[arg-type]
    error = caught.value
    assert error.file == str(path) and error.fix, error
    return error


def test_a_regular_file_is_read_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM x\r\nRUN caf\xc3\xa9\n")
    assert files.read_text(path) == "FROM x\r\nRUN café\n"  # line endings kept
    assert files.read_bytes(path, limit=100) == b"FROM x\r\nRUN caf\xc3\xa9\n"


def test_nothing_there(tmp_path: Path) -> None:
    error = refused(tmp_path / "pixi.lock", field="lock")
    assert (error.detail, error.field) == ("does not exist", "lock")
    assert files.read_optional_text(tmp_path / "pixi.lock") is None


def test_a_link_is_refused_unless_followed(tmp_path: Path) -> None:
    (tmp_path / "real.toml").write_text("x = 1\n")
    (tmp_path / "pixi.toml").symlink_to("real.toml")
    error = refused(tmp_path / "pixi.toml")
    assert error.detail == "is a symbolic link; the kit reads and writes only regular files here"
    assert files.read_text(tmp_path / "pixi.toml", follow=True) == "x = 1\n"


def test_a_dangling_link_is_not_nothing(tmp_path: Path) -> None:
    (tmp_path / "pixi.lock").symlink_to(tmp_path / "gone.lock")
    assert "symbolic link" in refused(tmp_path / "pixi.lock").detail
    with pytest.raises(UserError, match="symbolic link"):
        files.read_optional_text(tmp_path / "pixi.lock")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pixi.lock")  # nobody writes: a blocking open would hang here
    assert refused(tmp_path / "pixi.lock").detail == "is a FIFO, not a regular file"


def test_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").mkdir()
    assert refused(tmp_path / "Dockerfile").detail == "is a folder, not a regular file"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_is_refused_even_through_a_followed_link(tmp_path: Path, device: str) -> None:
    (tmp_path / "pixi.lock").symlink_to(device)
    error = refused(tmp_path / "pixi.lock", follow=True)
    assert error.detail == "is a character device, not a regular file"


def test_the_limit_is_inclusive(tmp_path: Path) -> None:
    path = tmp_path / "pixi.toml"
    path.write_bytes(b"x" * files.MiB)
    assert len(files.read_text(path, limit=files.MiB)) == files.MiB
    path.write_bytes(b"x" * (files.MiB + 1))
    error = refused(path, limit=files.MiB, field="toml")
    assert error.detail == f"is {files.MiB + 1} bytes, more than the 1 MiB the kit reads"
    assert error.field == "toml"


def test_a_sparse_file_is_refused_by_its_size_not_read(tmp_path: Path) -> None:
    path = tmp_path / "pixi.lock"
    with path.open("wb") as handle:
        handle.truncate(300 * files.MiB)
    assert refused(path, limit=files.LOCK_LIMIT).detail.endswith("more than the 256 MiB the kit reads")


def test_text_that_is_not_utf8_names_the_byte_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "pixi.toml"
    path.write_bytes(b"[workspace]\nname = 'caf\xe9'\n")
    error = refused(path)
    assert (error.detail, error.fix) == ("is not UTF-8 text (byte 0xe9 on line 2)", "save it as UTF-8")
    assert files.read_bytes(path, limit=100).endswith(b"\xe9'\n")  # the bytes themselves are fine


def test_the_callers_error_class_and_field(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError) as caught:
        files.read_text(tmp_path / "pixi.toml", field="manifest", error=WorkspaceError)
    assert caught.value.field == "manifest"
    (tmp_path / "bad").write_bytes(b"\xff")
    with pytest.raises(WorkspaceError):
        files.decode(b"\xff", tmp_path / "bad", error=WorkspaceError)


def test_an_unreadable_file_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The open fails with EACCES (made so here: root would read a mode-000 file anyway)."""
    path = tmp_path / "pixi.toml"
    path.write_text("x\n")

    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(files.os, "open", denied)
    error = refused(path)
    assert (error.detail, error.fix) == (
        "cannot be read: Permission denied",
        "check the path and its permissions",
    )


@pytest.mark.parametrize(
    "make,words",
    [
        (lambda p: p.write_text("x"), "a regular file"),
        (lambda p: p.mkdir(), "a folder"),
        (lambda p: p.symlink_to("elsewhere"), "a symbolic link"),
        (lambda p: os.mkfifo(p), "a FIFO"),
    ],
    ids=["file", "folder", "link", "fifo"],
)
def test_kinds_in_words(tmp_path: Path, make: object, words: str) -> None:
    path = tmp_path / "entry"
    make(path)  # type: ignore[operator]
    assert files.describe_kind(path.lstat().st_mode) == words


def test_devices_and_sockets_in_words() -> None:
    assert files.describe_kind(os.stat("/dev/null").st_mode) == "a character device"
    assert files.describe_kind(stat.S_IFSOCK) == "a socket"
    assert files.describe_kind(stat.S_IFBLK) == "a block device"
    assert files.describe_kind(0) == "of an unknown kind"


def test_a_tail_is_the_end_of_a_growing_file_and_its_size(tmp_path: Path) -> None:
    path = tmp_path / "job.out"
    path.write_bytes(b"a" * 10 + b"end\n")
    assert files.read_tail(path, limit=4) == (b"end\n", 14)
    assert files.read_tail(path, limit=100) == (b"a" * 10 + b"end\n", 14)


@pytest.mark.parametrize("kind", ["link", "fifo", "folder"])
def test_a_tail_is_read_of_a_regular_file_only(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "job.out"
    {"link": lambda: path.symlink_to("/dev/zero"), "fifo": lambda: os.mkfifo(path), "folder": path.mkdir}[
        kind
    ]()
    with pytest.raises(OSError) as caught:
        files.read_tail(path, limit=4)
    words = {
        "link": "is a symbolic link",
        "fifo": "is a FIFO, not a regular file",
        "folder": "is a folder, not a regular file",
    }
    assert str(caught.value) == words[kind]


def test_a_head_is_the_start_of_a_regular_file_only(tmp_path: Path) -> None:
    path = tmp_path / "image.sif"
    path.write_bytes(b"0123456789")
    assert files.read_head(path, limit=4) == b"0123"
    link = tmp_path / "link.sif"
    link.symlink_to(path)
    with pytest.raises(OSError, match="^is a symbolic link$"):
        files.read_head(link, limit=4)

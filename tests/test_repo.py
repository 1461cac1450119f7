"""kit.model.repo, called directly: where a workspace sits in its git repository. The root is found
by walking up from the real folder to the nearest `.git` (no git needed); a given subdir must say
where the workspace really is; `--out` moves the root, not the prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.base.errors import OptionsError, UserError
from kit.model.repo import Location, locate


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    """tmp/repo (with .git) holding a workspace in lab/ws."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    ws = tmp_path / "repo" / "lab" / "ws"
    ws.mkdir(parents=True)
    return ws


def refused(workspace: Path, subdir: object, words: str) -> OptionsError:
    with pytest.raises(OptionsError) as caught:
        locate(workspace, subdir=subdir)  # type: ignore[arg-type]
    assert caught.value.field == "subdir" and words in caught.value.detail, caught.value
    assert caught.value.fix
    return caught.value


def test_without_git_the_workspace_is_the_root(tmp_path: Path) -> None:
    assert locate(tmp_path) == Location(tmp_path.resolve(), "")
    assert locate(tmp_path, subdir="").subdir == ""


def test_the_nearest_git_is_the_root(nested: Path) -> None:
    location = locate(nested)
    assert location == Location(nested.parent.parent.resolve(), "lab/ws/")
    assert location.subdir == "lab/ws"


def test_a_git_file_counts_too(tmp_path: Path) -> None:
    """A worktree or submodule has a `.git` file, not a folder."""
    (tmp_path / ".git").write_text("gitdir: elsewhere\n")
    (tmp_path / "ws").mkdir()
    assert locate(tmp_path / "ws") == Location(tmp_path.resolve(), "ws/")


def test_the_real_folder_counts_not_a_link_to_it(nested: Path, tmp_path: Path) -> None:
    (tmp_path / "shortcut").symlink_to(nested)
    assert locate(tmp_path / "shortcut") == locate(nested)


@pytest.mark.parametrize("subdir", ["lab/ws", "lab/ws/"])
def test_a_subdir_that_says_where_the_workspace_is(nested: Path, subdir: str) -> None:
    assert locate(nested, subdir=subdir) == Location(nested.parent.parent.resolve(), "lab/ws/")


@pytest.mark.parametrize("subdir", [".", "./", ".//", ""])
def test_the_root_spelled_as_dot(tmp_path: Path, subdir: str) -> None:
    (tmp_path / ".git").mkdir()
    assert locate(tmp_path, subdir=subdir) == Location(tmp_path.resolve(), "")


@pytest.mark.parametrize("subdir", ["other/ws", "x/lab/ws", "lab/ws/deeper"])
def test_a_subdir_that_does_not_match_the_folders(nested: Path, subdir: str) -> None:
    error = refused(nested, subdir, f"subdir {subdir!r} does not match where the workspace is")
    assert "detected: lab/ws" in (error.fix or "")


def test_a_subdir_that_puts_the_root_below_the_git_repository(nested: Path) -> None:
    """`ws` matches the last folder, but the root it gives (repo/lab) is not the repository's."""
    error = refused(nested, "ws", "does not match the git repository at")
    assert error.fix == "use --subdir 'lab/ws', or leave it out"


@pytest.mark.parametrize(
    "subdir,words",
    [
        ("/etc", "must be relative to the repository root"),
        ("//", "must be relative to the repository root"),
        ("a\\b", "must be relative to the repository root"),
        ("a\0b", "must be relative to the repository root"),
        ("..", "may not contain '.' or '..'"),
        ("lab/../lab/ws", "may not contain '.' or '..'"),
        ("./lab/ws", "may not contain '.' or '..'"),
    ],
)
def test_subdirs_that_are_refused_whatever_the_folders(nested: Path, subdir: str, words: str) -> None:
    refused(nested, subdir, words)


def test_a_subdir_must_be_text(nested: Path) -> None:
    refused(nested, 5, "subdir must be text, not int")


def test_a_folder_that_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        locate(tmp_path / "missing")
    assert caught.value.field == "dir" and caught.value.detail.startswith("cannot be resolved")


def test_out_moves_the_root_and_keeps_the_prefix(nested: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "new"
    assert locate(nested, out) == Location(out.resolve(), "lab/ws/")
    assert not out.exists()  # made when writing, not here
    assert locate(nested, out, subdir="") == Location(out.resolve(), "")


def test_out_must_be_a_folder(nested: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x\n")
    with pytest.raises(UserError) as caught:
        locate(nested, tmp_path / "file")
    assert (caught.value.field, caught.value.detail) == ("out", "is not a folder")


@pytest.mark.parametrize("target", ["folder", "file"])
def test_out_through_a_link_is_refused(nested: Path, tmp_path: Path, target: str) -> None:
    """--out follows the kit's one writer rule: never through a link, wherever it points."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x\n")
    (tmp_path / "link").symlink_to(tmp_path / target)
    with pytest.raises(UserError) as caught:
        locate(nested, tmp_path / "link")
    assert caught.value.field == "out"
    assert (
        caught.value.detail == f"{tmp_path / 'link'} is a symbolic link; the kit never writes through a link"
    )
    assert not any((tmp_path / "folder").iterdir())

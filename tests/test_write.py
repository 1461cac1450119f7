"""kit.output.write, called directly: plan what writing rendered files would do, then write all of
them or none. A file is replaced only when it still holds what the kit wrote (or with force),
line files only gain lines, seed files are only created; nothing is written outside the workspace
folder and `.github/`, through a link or over an odd file; a failure part-way leaves every file
as it was and no temporary file behind."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit.base.errors import OverwriteRefused, UserError, WorkspaceError
from kit.output.render import FileKind, RenderedFile
from kit.output.write import (
    STATE_FILE,
    Change,
    Recorded,
    apply_changes,
    atomic_write,
    check_relative,
    infer_prefix,
    load_state,
    merge_lines,
    plan_changes,
    sha256,
    state_text,
)

WORKFLOW = ".github/workflows/docker.yaml"


def files(*items: tuple[str, str] | tuple[str, str, FileKind]) -> dict[str, RenderedFile]:
    return {item[0]: RenderedFile(*item) for item in items}


def write(root: Path, rendered: dict[str, RenderedFile], *, force: bool = False, prefix: str = "") -> None:
    apply_changes(plan_changes(rendered, root, force, prefix=prefix), root, prefix=prefix)


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under `root`: files by bytes, links by target, folders as 'dir'."""
    out: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = (
            f"-> {os.readlink(path)}" if path.is_symlink() else "dir" if path.is_dir() else path.read_bytes()
        )
    return out


def temps(root: Path) -> list[str]:
    return [p for p in tree(root) if Path(p).name.startswith(".kit-tmp-")]


@pytest.fixture
def written(tmp_path: Path) -> Iterator[Path]:
    """A root where the kit already wrote a Dockerfile and a workflow (the state records both)."""
    write(tmp_path, files(("Dockerfile", "FROM a\n"), (WORKFLOW, "name: a\n")))
    yield tmp_path
    assert temps(tmp_path) == []


# -- planning -----------------------------------------------------------------------------------


def test_a_first_plan_creates(tmp_path: Path) -> None:
    changes = plan_changes(files(("Dockerfile", "FROM a\n"), (WORKFLOW, "name: a\n")), tmp_path)
    assert [(c.path, c.action, c.old) for c in changes] == [
        ("Dockerfile", "create", None),
        (WORKFLOW, "create", None),
    ]
    assert changes[0].diff().startswith("--- /dev/null\n+++ b/Dockerfile\n")
    assert tree(tmp_path) == {}  # planning touches nothing


def test_the_kits_own_files_are_updated_and_the_same_text_is_unchanged(written: Path) -> None:
    changes = plan_changes(files(("Dockerfile", "FROM b\n"), (WORKFLOW, "name: a\n")), written)
    assert [(c.action, c.old) for c in changes] == [("update", "FROM a\n"), ("unchanged", "name: a\n")]
    assert "-FROM a\n+FROM b\n" in changes[0].diff()


@pytest.mark.parametrize("edit", [b"FROM a\n# mine\n", b"FROM a\r\n"], ids=["edited", "crlf"])
def test_an_edited_file_is_refused_unless_forced(written: Path, edit: bytes) -> None:
    (written / "Dockerfile").write_bytes(edit)
    (change,) = plan_changes(files(("Dockerfile", "FROM b\n")), written)
    assert (change.action, change.reason) == ("refused", "Dockerfile changed since the kit last wrote it")
    assert "--force" in change.fix
    (forced,) = plan_changes(files(("Dockerfile", "FROM b\n")), written, force=True)
    assert (forced.action, forced.old) == ("update", edit.decode())


def test_a_file_the_kit_never_wrote_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM mine\n")
    (change,) = plan_changes(files(("Dockerfile", "FROM a\n")), tmp_path)
    assert (change.action, change.reason) == ("refused", "Dockerfile was not written by the kit")


def test_a_file_another_workspace_wrote_is_refused(tmp_path: Path) -> None:
    write(tmp_path, files(("a/Dockerfile", "FROM a\n"), (WORKFLOW, "name: a\n")), prefix="a/")
    for force in (False, True):  # --force never hands one workspace's file to another
        (change,) = plan_changes(files((WORKFLOW, "name: b\n")), tmp_path, force, prefix="b/")
        assert change.action == "refused"
        assert change.reason == (
            f"{WORKFLOW} is written by the workspace in a/ of this repository, not by the one in b/; "
            "--force does not hand one workspace's files to another"
        )
        assert "--only docker --only apptainer" in change.fix


def test_a_file_of_a_workspace_that_is_gone_is_taken_with_force(tmp_path: Path) -> None:
    write(tmp_path, files(("a/Dockerfile", "FROM a\n"), (WORKFLOW, "name: a\n")), prefix="a/")
    (tmp_path / "a" / "Dockerfile").unlink()
    (change,) = plan_changes(files((WORKFLOW, "name: b\n")), tmp_path, prefix="b/")
    assert (change.action, change.fix) == ("refused", "re-run with --force to take the file over")
    (forced,) = plan_changes(files((WORKFLOW, "name: b\n")), tmp_path, True, prefix="b/")
    assert forced.action == "update"


def test_line_files_only_gain_lines(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("data/\n.pixi/\n")
    (change,) = plan_changes(files((".gitignore", "# kit\n.pixi/\n*.sif\n", FileKind.LINES)), tmp_path)
    assert (change.action, change.new) == ("append", "data/\n.pixi/\n# added by pixi-deploy-kit\n*.sif\n")
    (same,) = plan_changes(files((".gitignore", ".pixi/\n", FileKind.LINES)), tmp_path)
    assert same.action == "unchanged"


@pytest.mark.parametrize("there", ["file", "link"])
def test_seed_files_are_only_created(tmp_path: Path, there: str) -> None:
    (tmp_path / "app").mkdir()
    probe = tmp_path / "app" / "probe.py"
    probe.write_text("mine\n") if there == "file" else probe.symlink_to("/nowhere")
    (change,) = plan_changes(files(("app/probe.py", "kit's\n", FileKind.SEED)), tmp_path)
    assert change.action == "unchanged" and not change.writes


@pytest.mark.parametrize(
    "rel", ["../x", "/etc/passwd", "a//b", "./Dockerfile", "ws/../x", "a\\b", "a\0b", "", "other/Dockerfile"]
)
def test_paths_outside_the_workspace_and_github_are_refused(tmp_path: Path, rel: str) -> None:
    with pytest.raises(UserError) as caught:
        plan_changes(files((rel, "x\n")), tmp_path, prefix="ws/")
    assert caught.value.field == "path" and f"the kit will not write {rel!r}" in caught.value.detail
    assert tree(tmp_path) == {}


@pytest.mark.parametrize("rel", ["ws/Dockerfile", ".github/workflows/x.yaml", STATE_FILE])
def test_paths_inside(rel: str) -> None:
    assert check_relative(rel, "ws/").as_posix() == rel


@pytest.mark.parametrize(
    "entry,words",
    [
        ("link-to-file", "is a symbolic link; the kit never writes through a link"),
        ("link-to-folder", "is a symbolic link; the kit never writes through a link"),
        ("folder", "is a folder, not a file the kit can replace"),
        ("fifo", "is a FIFO, not a file the kit can replace"),
    ],
)
def test_odd_entries_in_place_of_a_file(tmp_path: Path, entry: str, words: str) -> None:
    (tmp_path / "secret").write_text("key\n")
    target = tmp_path / "Dockerfile"
    if entry == "link-to-file":
        target.symlink_to(tmp_path / "secret")
    elif entry == "link-to-folder":
        target.symlink_to(tmp_path)
    elif entry == "folder":
        target.mkdir()
    else:
        os.mkfifo(target)
    with pytest.raises(UserError) as caught:
        plan_changes(files(("Dockerfile", "FROM a\n")), tmp_path)
    assert (caught.value.file, caught.value.field, caught.value.detail) == (str(target), "path", words)


@pytest.mark.parametrize("entry", ["link", "file"])
def test_odd_entries_in_place_of_a_folder(tmp_path: Path, entry: str) -> None:
    (tmp_path / "elsewhere").mkdir()
    github = tmp_path / ".github"
    github.symlink_to(tmp_path / "elsewhere") if entry == "link" else github.write_text("x\n")
    with pytest.raises(UserError) as caught:
        plan_changes(files((WORKFLOW, "name: a\n")), tmp_path)
    words = "is a symbolic link" if entry == "link" else "is a regular file, but the kit needs a folder here"
    assert caught.value.file == str(github) and caught.value.detail.startswith(words)
    assert tree(tmp_path / "elsewhere") == {}


def test_the_root_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x\n")
    with pytest.raises(UserError) as caught:
        plan_changes(files(("Dockerfile", "x\n")), tmp_path / "out")
    assert (caught.value.field, caught.value.detail) == ("out", "is a regular file, not a folder")


def test_the_prefix_is_read_from_the_paths() -> None:
    assert infer_prefix(files(("ws/Dockerfile", ""), ("ws/app/p.py", ""), (WORKFLOW, ""))) == "ws/"
    assert infer_prefix(files(("Dockerfile", ""), (WORKFLOW, ""))) == ""
    assert infer_prefix(files((WORKFLOW, ""))) == ""


def test_merge_lines() -> None:
    assert merge_lines("", "a\n") == "# added by pixi-deploy-kit\na\n"
    assert merge_lines("x", "a\n# comment\n\nx\n") == "x\n# added by pixi-deploy-kit\na\n"
    assert merge_lines("x\r\n", "a\nb\n") == "x\r\n# added by pixi-deploy-kit\r\na\r\nb\r\n"
    assert merge_lines("  a  \n", "a\n") == "  a  \n"  # the same line, however indented


# -- the state file -----------------------------------------------------------------------------


def test_the_state_records_hashes_and_owners(written: Path) -> None:
    data = json.loads((written / STATE_FILE).read_text())
    assert data == {
        "version": 2,
        "files": {
            WORKFLOW: {"sha256": sha256("name: a\n"), "workspace": ""},
            "Dockerfile": {"sha256": sha256("FROM a\n"), "workspace": ""},
        },
    }
    assert load_state(written) == {
        WORKFLOW: Recorded(sha256("name: a\n"), ""),
        "Dockerfile": Recorded(sha256("FROM a\n"), ""),
    }


def test_state_text_is_sorted_and_omits_an_unknown_owner() -> None:
    text = state_text({"b": Recorded("1" * 64), "a": Recorded("2" * 64, "ws/")})
    assert list(json.loads(text)["files"]) == ["a", "b"]
    assert json.loads(text)["files"]["b"] == {"sha256": "1" * 64}


def test_a_version_1_state_is_read(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps({"files": {"Dockerfile": sha256("FROM a\n")}}))
    assert load_state(tmp_path) == {"Dockerfile": Recorded(sha256("FROM a\n"), None)}


@pytest.mark.parametrize(
    "body,field,words",
    [
        (b"{", "state", "is not valid JSON"),
        (b"[1]", "state", 'is not a kit state file (expected {"files": {...}})'),
        (b'{"files": {"Dockerfile": "abc"}}', "state.files.Dockerfile", "is not a SHA-256 record"),
        (b'{"files": {"Dockerfile": {"sha256": "' + b"A" * 64 + b'"}}}', "state.files.Dockerfile", "SHA-256"),
        (b"\xff", "state", "is not UTF-8 text"),
    ],
)
def test_a_damaged_state_has_a_way_out(tmp_path: Path, body: bytes, field: str, words: str) -> None:
    (tmp_path / STATE_FILE).write_bytes(body)
    with pytest.raises(WorkspaceError) as caught:
        load_state(tmp_path)
    assert caught.value.field == field and words in caught.value.detail, caught.value
    assert "--force" in (caught.value.fix or "") and f"delete {STATE_FILE}" in (caught.value.fix or "")
    assert load_state(tmp_path, force=True) == {}


# -- writing: all or nothing --------------------------------------------------------------------


def test_apply_writes_every_file_and_the_state_last(tmp_path: Path) -> None:
    rendered = files(
        ("ws/Dockerfile", "FROM a\n"), (WORKFLOW, "name: a\n"), ("ws/app/p.py", "p\n", FileKind.SEED)
    )
    written = apply_changes(plan_changes(rendered, tmp_path, prefix="ws/"), tmp_path, prefix="ws/")
    assert [c.path for c in written] == list(rendered)
    assert (tmp_path / "ws/Dockerfile").read_text() == "FROM a\n" and (
        tmp_path / "ws/app/p.py"
    ).read_text() == "p\n"
    recorded = json.loads((tmp_path / STATE_FILE).read_text())["files"]
    assert set(recorded) == {"ws/Dockerfile", WORKFLOW}  # seeds are not recorded: they are the user's
    assert oct((tmp_path / "ws/Dockerfile").stat().st_mode & 0o777) == "0o644" and temps(tmp_path) == []


def test_apply_keeps_a_files_mode(written: Path) -> None:
    (written / "Dockerfile").chmod(0o600)
    write(written, files(("Dockerfile", "FROM b\n")))
    assert oct((written / "Dockerfile").stat().st_mode & 0o777) == "0o600"


def test_nothing_to_write_writes_nothing(written: Path) -> None:
    before = tree(written)
    assert apply_changes(plan_changes(files(("Dockerfile", "FROM a\n")), written), written) == []
    assert tree(written) == before


def test_one_refusal_stops_every_write(written: Path) -> None:
    (written / WORKFLOW).write_text("name: mine\n")
    (written / "README").write_text("not the kit's\n")
    before = tree(written)
    changes = plan_changes(
        files(("Dockerfile", "FROM b\n"), (WORKFLOW, "name: b\n"), ("README", "x\n")), written
    )
    with pytest.raises(OverwriteRefused) as caught:
        apply_changes(changes, written)
    assert caught.value.detail == f"{WORKFLOW} changed since the kit last wrote it (and 1 more)"
    assert (caught.value.file, caught.value.field) == (str(written / WORKFLOW), "overwrite")
    assert tree(written) == before


def test_a_file_changed_between_plan_and_write(written: Path) -> None:
    changes = plan_changes(files(("Dockerfile", "FROM b\n"), (WORKFLOW, "name: b\n")), written)
    (written / WORKFLOW).write_text("name: someone else\n")
    before = tree(written)
    with pytest.raises(UserError) as caught:
        apply_changes(changes, written)
    assert (caught.value.field, caught.value.detail) == ("write", "changed while the kit was writing")
    assert tree(written) == before


def test_a_file_that_already_holds_the_new_text_is_left(written: Path) -> None:
    """Another run of the same command got there first: no refusal, and the record is right."""
    changes = plan_changes(files(("Dockerfile", "FROM b\n")), written)
    (written / "Dockerfile").write_text("FROM b\n")
    apply_changes(changes, written)
    assert load_state(written)["Dockerfile"].sha256 == sha256("FROM b\n")


def test_a_folder_swapped_for_a_file_after_the_plan(tmp_path: Path) -> None:
    """The write opens every folder again, by descriptor: what it meets then is what counts, and
    the folders it made on the way are removed again."""
    changes = plan_changes(
        files(("Dockerfile", "FROM a\n"), ("new/deep/x", "x\n"), ("app/x", "y\n")), tmp_path
    )
    (tmp_path / "app").write_text("a file now\n")
    with pytest.raises(UserError) as caught:
        apply_changes(changes, tmp_path)
    assert caught.value.file == str(tmp_path / "app") and "not a folder" in caught.value.detail
    assert tree(tmp_path) == {"app": b"a file now\n"}


def test_a_failed_rename_puts_back_what_was_renamed(written: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second rename fails: the first file is back to its old text, the state untouched."""
    before = tree(written)
    changes = plan_changes(files(("Dockerfile", "FROM b\n"), (WORKFLOW, "name: b\n")), written)
    real = os.replace
    calls: list[object] = []

    def replace(src: str, dst: str, **kwargs: object) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(src, dst, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(UserError) as caught:
        apply_changes(changes, written)
    monkeypatch.undo()
    assert (
        caught.value.field == "write" and caught.value.detail == "cannot be written: No space left on device"
    )
    assert caught.value.fix == "free some disk space; nothing was written"
    assert tree(written) == before


def test_stale_temporary_files_are_swept(written: Path) -> None:
    """In every folder of a planned file, whether it is written this time or not."""
    for folder in ("", ".github/workflows/"):
        (written / f"{folder}.kit-tmp-Dockerfile.0123456789ab").write_text("half written\n")
    write(written, files(("Dockerfile", "FROM b\n"), (WORKFLOW, "name: a\n")))
    assert temps(written) == []


def test_changes_that_write_nothing_still_record(written: Path) -> None:
    """A managed file planned as unchanged is recorded as the kit's even without a state file."""
    (written / STATE_FILE).unlink()
    write(written, files(("Dockerfile", "FROM a\n")))
    assert set(load_state(written)) == {"Dockerfile"}


def test_atomic_write(tmp_path: Path) -> None:
    atomic_write(tmp_path / "notes.txt", "one\n")
    atomic_write(tmp_path / "notes.txt", "two\n")
    assert tree(tmp_path) == {"notes.txt": b"two\n"}
    (tmp_path / "link").symlink_to(tmp_path / "notes.txt")
    with pytest.raises(UserError, match="symbolic link"):
        atomic_write(tmp_path / "link", "three\n")
    assert (tmp_path / "notes.txt").read_text() == "two\n"


def test_a_change_that_writes(tmp_path: Path) -> None:
    assert Change("x", FileKind.MANAGED, "append", "a\n", "a\nb\n").writes
    assert not Change("x", FileKind.MANAGED, "refused", "a\n", "b\n").writes
    assert sha256("é") == sha256("é".encode())

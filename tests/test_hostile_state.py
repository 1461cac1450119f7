"""The state file (`.kit-state.json`), hand edits and line endings, and two workspaces in one
repository.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile_helpers import (
    changed,
    kit,
    one_line,
    refused_everywhere,
    snapshot,
    two_workspaces,
)

# == the state file =========================================================================================

STATE_CASES: dict[str, bytes] = {
    "not-json": b"{ this is not json",
    "a-list": b"[1, 2, 3]\n",
    "files-integer": b'{"files": 5}\n',
    "files-missing": b'{"version": 2}\n',
    "entry-not-a-hash": b'{"files": {"Dockerfile": "abc"}}\n',
    "entry-integer": b'{"files": {"Dockerfile": 5}}\n',
    "entry-table-without-hash": b'{"files": {"Dockerfile": {"workspace": ""}}}\n',
    "non-utf-8": b'{"files": {"\xff": "x"}}\n',
    "nested-100000-deep": b"[" * 100_000 + b"]" * 100_000,
    "empty": b"",
    "nul-bytes": b"\x00" * 64,
}


@pytest.mark.parametrize("case", sorted(STATE_CASES))
def test_corrupt_state_file_has_a_way_out(capsys: pytest.CaptureFixture[str], tree: Path, case: str) -> None:
    repo = tree / "repo"
    (repo / ".kit-state.json").write_bytes(STATE_CASES[case])
    run = refused_everywhere(capsys, tree, "generate", repo, expect=".kit-state.json")
    assert "--force" in run.err and "delete" in run.err
    one_line(kit(capsys, "generate", repo, "--diff"), 2, ".kit-state.json")
    forced = kit(capsys, "generate", repo, "--force")
    assert forced.code == 0, forced
    assert json.loads((repo / ".kit-state.json").read_text())["files"]


@pytest.mark.parametrize("kind", ["folder", "link-to-key", "dangling-link"])
def test_state_file_that_is_not_a_file(capsys: pytest.CaptureFixture[str], tree: Path, kind: str) -> None:
    state = tree / "repo" / ".kit-state.json"
    if kind == "folder":
        state.mkdir()
    elif kind == "link-to-key":
        state.symlink_to(tree / "outside" / "id_ed25519")
    else:
        state.symlink_to(tree / "outside" / "gone.json")
    run = refused_everywhere(capsys, tree, "generate", tree / "repo", expect=".kit-state.json")
    assert "PRIVATE KEY" not in run.err
    refused_everywhere(capsys, tree, "generate", tree / "repo", "--force", expect=".kit-state.json")


def test_old_state_format_is_still_read(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    data = json.loads((repo / ".kit-state.json").read_text())
    (repo / ".kit-state.json").write_text(
        json.dumps({"files": {k: v["sha256"] for k, v in data["files"].items()}})
    )
    assert kit(capsys, "generate", repo, "--style", "optimized").code == 0


# == edits, line endings, two workspaces ======================================================================


@pytest.mark.parametrize(
    "name", ["Dockerfile", "apptainer.def", ".dockerignore", ".github/workflows/docker.yaml"]
)
def test_crlf_edit_counts_as_an_edit(capsys: pytest.CaptureFixture[str], tree: Path, name: str) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    target = repo / name
    target.write_bytes(target.read_bytes().replace(b"\n", b"\r\n"))
    run = refused_everywhere(capsys, tree, "generate", repo, "--style", "optimized", expect="--force")
    assert "Traceback" not in run.err
    diff = kit(capsys, "generate", repo, "--style", "optimized", "--diff")
    assert diff.code == 2 and "refused" in diff.err


def test_crlf_gitignore_keeps_its_line_endings(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    repo = tree / "repo"
    (repo / ".gitignore").write_bytes(b"data/\r\n")
    assert kit(capsys, "generate", repo).code == 0
    text = (repo / ".gitignore").read_bytes()
    assert text.startswith(b"data/\r\n") and b"\r\n" in text[8:] and b"\n" not in text.replace(b"\r\n", b"")


def test_diff_exits_2_when_it_reports_a_refusal(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    (repo / "Dockerfile").write_text((repo / "Dockerfile").read_text() + "# mine\n")
    before = snapshot(tree)
    run = kit(capsys, "generate", repo, "--style", "optimized", "--diff")
    assert run.code == 2 and "refused" in run.err and "Traceback" not in run.err
    assert changed(before, snapshot(tree)) == set()
    data = kit(capsys, "generate", repo, "--style", "optimized", "--diff", "--json")
    assert data.code == 2 and any(c["action"] == "refused" for c in json.loads(data.out)["result"]["changes"])


def test_unknown_file_in_place_is_not_replaced(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    (tree / "repo" / "Dockerfile").write_text("FROM scratch\n")
    refused_everywhere(capsys, tree, "generate", tree / "repo", expect="not written by the kit")


def test_second_workspace_never_silently_replaces_the_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Two workspaces in one repository each get their own workflow names, so generating the
    second writes its own files (exit 0, nothing on stderr) and leaves every file of the first
    as it was."""
    repo, a, b = two_workspaces(tmp_path)
    assert kit(capsys, "generate", a).code == 0
    mine = ("a/Dockerfile", ".github/workflows/docker-a.yaml", ".github/workflows/apptainer-a.yaml")
    first = {p: (repo / p).read_bytes() for p in mine}
    run = kit(capsys, "generate", b, "--style", "optimized")
    assert (run.code, run.err) == (0, ""), run
    assert {p: (repo / p).read_bytes() for p in mine} == first
    assert (repo / ".github/workflows/docker-b.yaml").is_file() and "AS install" in (
        repo / "b/Dockerfile"
    ).read_text()


def test_second_workspace_takes_over_with_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo, a, b = two_workspaces(tmp_path)
    assert kit(capsys, "generate", a).code == 0
    assert kit(capsys, "generate", b, "--force").code == 0
    owners = {
        v.get("workspace") for v in json.loads((repo / ".kit-state.json").read_text())["files"].values()
    }
    assert "b/" in owners


def test_state_records_the_writing_workspace(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo, a, _ = two_workspaces(tmp_path)
    assert kit(capsys, "generate", a).code == 0
    files = json.loads((repo / ".kit-state.json").read_text())["files"]
    assert files["a/Dockerfile"]["workspace"] == "a/"
    assert all(len(v["sha256"]) == 64 for v in files.values())


def test_a_file_another_workspace_wrote_is_refused_with_its_own_fix(tmp_path: Path) -> None:
    """The state file says workspace `a/` wrote the workflow; `b/` rendering the same path is
    refused, even with --force, and the fix names the ways out that exist (folders whose workflow
    names differ, or recipes only with --only), not the hand-edit one."""
    from kit.base.errors import OverwriteRefused
    from kit.output.render import FileKind, RenderedFile
    from kit.output.write import STATE_FILE, apply_changes, plan_changes, sha256

    workflow = ".github/workflows/docker.yaml"
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "pixi.toml").write_text("[workspace]\n")
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / workflow).write_text("name: a\n")
    record = {"sha256": sha256("name: a\n"), "workspace": "a/"}
    (tmp_path / STATE_FILE).write_text(json.dumps({"version": 2, "files": {workflow: record}}))
    files = {workflow: RenderedFile(workflow, "name: b\n", FileKind.MANAGED)}
    (change,) = plan_changes(files, tmp_path, True, prefix="b/")
    assert change.action == "refused" and "is written by the workspace in a/" in change.reason
    with pytest.raises(OverwriteRefused) as refused:
        apply_changes([change], tmp_path, prefix="b/")
    assert "--only docker --only apptainer" in (refused.value.fix or "")
    assert (tmp_path / workflow).read_text() == "name: a\n"

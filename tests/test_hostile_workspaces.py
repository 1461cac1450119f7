"""Hostile input, round two, class 7: several workspaces in one repository never take over each
other's workflows, and the refusal names options that exist.

Folders such as `a_b` and `a-b` make the same workflow slug; each gets workflow files of its own.
Where the state file says another workspace (still there) wrote a file, `kit generate` refuses,
with --force too, naming that workspace and `--only`, which avoids the file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from hostile_helpers import changed, kit, one_json, one_line, snapshot, workspace
from hypothesis import given, settings
from hypothesis import strategies as st

from kit import cli


def repo_with(tmp_path: Path, *folders: str) -> Path:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    for folder in folders:
        workspace(repo / folder)
    return repo


def workflows(repo: Path) -> list[str]:
    return sorted(p.name for p in (repo / ".github" / "workflows").iterdir())


@pytest.mark.parametrize(
    "pair", [("a_b", "a-b"), ("gpu/v1", "gpu-v1"), ("A", "a")], ids=["dash", "slash", "case"]
)
def test_folders_with_the_same_slug_get_workflows_of_their_own(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pair: tuple[str, str]
) -> None:
    repo = repo_with(tmp_path, *pair)
    for folder in pair:
        run = kit(capsys, "generate", repo / folder)
        assert run.code == 0, run
    names = workflows(repo)
    assert len(names) == 4 and len(set(names)) == 4, names
    state = json.loads((repo / ".kit-state.json").read_text())["files"]
    owners = {state[f".github/workflows/{n}"]["workspace"] for n in names}
    assert owners == {f"{pair[0]}/", f"{pair[1]}/"}
    # A second round changes nothing: neither takes the other's files.
    for folder in pair:
        before = snapshot(repo)
        assert kit(capsys, "generate", repo / folder).code == 0
        assert changed(before, snapshot(repo)) == set()


def test_unique_folders_keep_their_plain_names(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo = repo_with(tmp_path, "cpu", "gpu")
    for folder in ("cpu", "gpu"):
        assert kit(capsys, "generate", repo / folder).code == 0
    assert workflows(repo) == [
        "apptainer-cpu.yaml",
        "apptainer-gpu.yaml",
        "docker-cpu.yaml",
        "docker-gpu.yaml",
    ]


def claim(repo: Path, workflow: str, owner: str) -> None:
    """Record in the state file that the workspace in `owner` wrote `workflow` (as a repository
    generated before slugs were made unique, or by hand, may say), with other text in it."""
    path = repo / ".kit-state.json"
    state = json.loads(path.read_text())
    (repo / ".github" / "workflows" / workflow).write_text("name: theirs\n")
    from kit.output.write import sha256

    state["files"][f".github/workflows/{workflow}"] = {"sha256": sha256("name: theirs\n"), "workspace": owner}
    path.write_text(json.dumps(state))


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_another_workspaces_workflow_is_refused_even_with_force(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, force: list[str]
) -> None:
    repo = repo_with(tmp_path, "a", "b")
    assert kit(capsys, "generate", repo / "a").code == 0
    assert kit(capsys, "generate", repo / "b").code == 0
    claim(repo, "docker-b.yaml", "a/")
    before = snapshot(tmp_path)
    run = kit(capsys, "generate", repo / "b", *force)
    one_line(run, 2, f"{repo / '.github/workflows/docker-b.yaml'} [overwrite]: ")
    assert "is written by the workspace in a/ of this repository, not by the one in b/" in run.err
    assert "--only docker --only apptainer" in run.err
    (error,) = one_json(kit(capsys, "generate", repo / "b", "--json", *force))["errors"]
    assert (error["file"], error["field"]) == (str(repo / ".github/workflows/docker-b.yaml"), "overwrite")
    assert changed(before, snapshot(tmp_path)) == set()


def test_the_option_the_refusal_names_exists_and_avoids_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Every `--flag` the fix names is one `kit generate` takes, and following the fix works."""
    repo = repo_with(tmp_path, "a", "b")
    assert kit(capsys, "generate", repo / "a").code == 0
    assert kit(capsys, "generate", repo / "b").code == 0
    claim(repo, "docker-b.yaml", "a/")
    run = kit(capsys, "generate", repo / "b", "--force")
    fix = run.err.split("(fix: ", 1)[1]
    flags = {word for word in fix.replace(",", " ").split() if word.startswith("--")}
    generate = next(
        a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices["generate"]
    known = {flag for action in generate._actions for flag in action.option_strings}
    assert flags == {"--only"} and flags <= known
    before = (repo / ".github" / "workflows" / "docker-b.yaml").read_text()
    assert kit(capsys, "generate", repo / "b", "--only", "docker", "--only", "apptainer").code == 0
    assert (repo / ".github" / "workflows" / "docker-b.yaml").read_text() == before


def test_a_workflow_of_a_workspace_that_is_gone_is_taken_with_force(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo = repo_with(tmp_path, "a", "b")
    assert kit(capsys, "generate", repo / "b").code == 0
    claim(repo, "docker-b.yaml", "old/")
    run = kit(capsys, "generate", repo / "b")
    one_line(run, 2, "was written for the workspace in old/, which is gone")
    assert kit(capsys, "generate", repo / "b", "--force").code == 0


@settings(max_examples=40, deadline=None)
@given(
    folders=st.lists(
        st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,6}", fullmatch=True), min_size=2, max_size=5, unique=True
    )
)
def test_no_two_workspaces_share_a_workflow_slug(folders: list[str]) -> None:
    """Property: whatever the folders are called, their slugs differ."""
    from kit.model.discover import slug_in

    found = tuple(sorted(folders))
    slugs = [slug_in(found, f, "name") for f in found]
    assert len(set(slugs)) == len(slugs), dict(zip(found, slugs, strict=True))

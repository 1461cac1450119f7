""".github/dependabot.yml: generated beside the workflows, so that a learner's repository keeps
its pins current (issue 19). One file for the whole repository: the github-actions ecosystem for
the workflows, a docker entry for each workspace folder's Dockerfile; every workspace renders it
alike, so generating one workspace never drops another's entry. `kit check` validates it with
check-jsonschema's `vendor.dependabot` schema, offline, and with zizmor."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE, kit_cli, need, run_command

from kit import api
from kit.check.linters import find_tool
from kit.cli import main
from kit.model.deployfiles import DEPENDABOT, FILES

WEEKLY = {"interval": "weekly"}
COOLDOWN = {"default-days": 7}
ACTIONS_ENTRY = {
    "package-ecosystem": "github-actions",
    "directory": "/",
    "schedule": WEEKLY,
    "cooldown": COOLDOWN,
    "groups": {"actions": {"patterns": ["*"]}},
}


def docker_entry(folder: str) -> dict[str, object]:
    return {"package-ecosystem": "docker", "directory": folder, "schedule": WEEKLY, "cooldown": COOLDOWN}


def repository(tmp_path: Path, *folders: str) -> Path:
    """A git repository holding a copy of the example workspace in each of `folders`."""
    repo = tmp_path / "repo"
    for folder in folders:
        shutil.copytree(EXAMPLE, repo / folder, ignore=shutil.ignore_patterns(".pixi", "__pycache__"))
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    return repo


def config(repo: Path) -> object:
    return yaml.safe_load((repo / DEPENDABOT).read_text(encoding="utf-8"))


def test_the_table_has_one_shared_row_in_the_workflows_group() -> None:
    rows = [f for f in FILES if f.path == DEPENDABOT]
    assert [(f.group, f.place, f.shared, f.checked) for f in rows] == [
        ("workflows", "repository", True, True)
    ]


def test_one_workspace_gets_the_actions_and_its_dockerfile_folder(tmp_path: Path) -> None:
    repo = repository(tmp_path, "cuda-exercise")
    assert main(["generate", str(repo / "cuda-exercise")]) == 0
    assert config(repo) == {"version": 2, "updates": [ACTIONS_ENTRY, docker_entry("/cuda-exercise")]}


def test_a_workspace_at_the_root_is_folder_slash(tmp_path: Path) -> None:
    repo = repository(tmp_path, ".")
    assert main(["generate", str(repo)]) == 0
    assert config(repo) == {"version": 2, "updates": [ACTIONS_ENTRY, docker_entry("/")]}


def test_several_workspaces_share_one_file_with_an_entry_each(tmp_path: Path) -> None:
    """Generating each workspace in turn (in either order) leaves one file listing both; a third
    workspace added later joins it without a refusal and without dropping the others."""
    repo = repository(tmp_path, "variants/cpu", "variants/gpu")
    assert main(["generate", str(repo / "variants/gpu")]) == 0
    first = (repo / DEPENDABOT).read_text(encoding="utf-8")
    assert main(["generate", str(repo / "variants/cpu")]) == 0
    assert (repo / DEPENDABOT).read_text(encoding="utf-8") == first
    shutil.copytree(EXAMPLE, repo / "extra", ignore=shutil.ignore_patterns(".pixi", "__pycache__"))
    assert main(["generate", str(repo / "extra")]) == 0
    assert config(repo) == {
        "version": 2,
        "updates": [
            ACTIONS_ENTRY,
            docker_entry("/extra"),
            docker_entry("/variants/cpu"),
            docker_entry("/variants/gpu"),
        ],
    }


def test_a_hand_edited_file_is_refused_like_the_workflows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = repository(tmp_path, "cuda-exercise")
    assert main(["generate", str(repo / "cuda-exercise")]) == 0
    edited = (repo / DEPENDABOT).read_text(encoding="utf-8").replace("weekly", "daily")
    (repo / DEPENDABOT).write_text(edited, encoding="utf-8")
    capsys.readouterr()
    assert main(["generate", str(repo / "cuda-exercise"), "--only", "workflows"]) == 2
    err = capsys.readouterr().err
    assert "dependabot.yml changed since the kit last wrote it" in err
    assert "add the kit's entries to your file, or re-run with --force" in err
    assert (repo / DEPENDABOT).read_text(encoding="utf-8") == edited


def test_generate_out_writes_it_under_the_out_folder(tmp_path: Path) -> None:
    repo = repository(tmp_path, "cuda-exercise")
    out = tmp_path / "out"
    assert main(["generate", str(repo / "cuda-exercise"), "--out", str(out), "--only", "workflows"]) == 0
    assert (out / DEPENDABOT).is_file() and not (repo / ".github").exists()


def test_it_says_that_def_files_are_not_read() -> None:
    text = api.prepare(EXAMPLE).render(("workflows",))[DEPENDABOT].text
    assert "Dependabot reads\n#   Dockerfiles only, never Apptainer .def files" in text


def test_check_jsonschema_and_zizmor_accept_it(tmp_path: Path) -> None:
    """The programs a user would run on it, as they ship (the schema is vendored: offline)."""
    checker, zizmor = find_tool("check-jsonschema"), find_tool("zizmor")
    need(checker is not None and zizmor is not None, "check-jsonschema or zizmor is not installed")
    assert checker is not None and zizmor is not None
    repo = repository(tmp_path, "a", "b")
    assert main(["generate", str(repo / "a")]) == 0
    done = run_command([checker, "--builtin-schema", "vendor.dependabot", DEPENDABOT], cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    done = run_command(
        [zizmor, "--offline", "--persona", "pedantic", "--format", "json", DEPENDABOT], cwd=repo
    )
    assert (json.loads(done.stdout or "null"), done.returncode) == ([], 0), done.stderr


def test_kit_check_reports_an_invalid_file_once(tmp_path: Path) -> None:
    """The schema error as check-jsonschema words it, exit 1; checked from the repository root
    (two workspaces), the shared file's finding appears once, not once per workspace."""
    need(find_tool("zizmor") is not None, "zizmor is not installed")
    repo = repository(tmp_path, "a", "b")
    assert main(["generate", str(repo / "a")]) == 0
    assert main(["generate", str(repo / "b")]) == 0
    text = (repo / DEPENDABOT).read_text(encoding="utf-8")
    (repo / DEPENDABOT).write_text(text.replace("version: 2", "version: 3"), encoding="utf-8")
    done = kit_cli("check", str(repo), "--json")
    findings = json.loads(done.stdout)["result"]["findings"]
    on_it = [
        (f["tool"], f["rule"], f["message"])
        for f in findings
        if f["file"] == DEPENDABOT and f["tool"] == "schema"
    ]
    assert (done.returncode, on_it) == (1, [("schema", "dependabot", "$.version: 2 was expected")])


def test_a_link_in_its_place_is_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Written like the workflows: never through a link, and all or nothing."""
    repo = repository(tmp_path, "cuda-exercise")
    outside = tmp_path / "outside.yml"
    outside.write_text("mine\n", encoding="utf-8")
    (repo / ".github").mkdir()
    (repo / DEPENDABOT).symlink_to(outside)
    assert main(["generate", str(repo / "cuda-exercise")]) == 2
    err = capsys.readouterr().err
    assert "dependabot.yml" in err and "symbolic link" in err
    assert outside.read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in (repo / ".github").iterdir()) == ["dependabot.yml"]
    assert not (repo / "cuda-exercise" / "Dockerfile").exists()

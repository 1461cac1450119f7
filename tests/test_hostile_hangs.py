"""Hostile input, round two, class 4: no input makes the kit hang or do unbounded work.

Each reader of untrusted text meets a 100,000-character line made of what its patterns look for
(the shape that makes a pattern with two unbounded parts quadratic), and must finish within the
pytest-timeout bound on the test: no test here measures time. The bounded readers (config.yaml,
the repository search) meet a FIFO, an alias bomb and more files than they read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile_helpers import changed, kit, kit_process, one_json, one_line, snapshot, workspace

LONG = 100_000
BOUND = 20  # seconds: pytest-timeout fails the test (it never asserts a time)


def long_line(unit: str) -> str:
    return unit * (LONG // len(unit) + 1)


# == the Slurm reader ==============================================================================


@pytest.mark.timeout(BOUND)
@pytest.mark.parametrize(
    "line",
    [
        "#SBATCH " + long_line("--gres="),
        "#SBATCH --gres=" + long_line("x:"),
        long_line("apptainer exec "),
        long_line("apptainer run --n"),
        "SIF=" + long_line("a"),
        long_line('apptainer pull "$SIF" x '),
    ],
    ids=["gres", "gres-colons", "apptainer-exec", "apptainer-run", "sif", "pull"],
)
def test_the_slurm_reader_is_linear(line: str) -> None:
    from kit.schedulers.slurm import SLURM

    reading = SLURM.read_job_file({SLURM.job_file: f"#!/bin/bash\n{line}\n"})
    assert reading.gpu_requests == ()


@pytest.mark.timeout(BOUND)
def test_the_slurm_gpu_requests_are_still_read() -> None:
    from kit.schedulers.slurm import SLURM, asks_for_gpus

    text = "#!/bin/bash\n#SBATCH --gres=gpu:1\napptainer exec --nv x.sif true\n"
    assert SLURM.read_job_file({SLURM.job_file: text}).gpu_requests == (
        ("#SBATCH GPU request", 2),
        ("apptainer --nv", 3),
    )
    said = ["--gres=mps:10,gpu:1", "--gpus=2", "--gpus-per-node=1", "--gpus-per-task=1", "--gpus-per-node"]
    assert [asks_for_gpus(f"#SBATCH {w}") for w in said] == [True] * 5
    assert [asks_for_gpus(f"#SBATCH {w}") for w in ("--gres=mps:10", "--gpus", "--mem=4G")] == [False] * 3


@pytest.mark.timeout(BOUND)
def test_scontrol_fields_are_read_in_linear_time() -> None:
    from kit.schedulers.slurm import SCONTROL_FIELD

    assert SCONTROL_FIELD.findall("a" * LONG) == []
    assert dict(SCONTROL_FIELD.findall("JobId=1 JobState=RUNNING Reason=None")) == {
        "JobId": "1",
        "JobState": "RUNNING",
        "Reason": "None",
    }


# == the HTCondor reader ===========================================================================


@pytest.mark.timeout(BOUND)
@pytest.mark.parametrize(
    "text",
    [
        "executable = x\\\n" * LONG + "queue\n",
        ("a" * 100 + "\\\n") * 20_000 + "queue\n",
        long_line("queue ") + "\n",
        "queue x from \\\n" + (" " * 100 + "\\\n") * 100 + "cmd |\n",
        long_line("include ") + "\n",
    ],
    ids=["continuations", "long-continuations", "queue-words", "queue-from-split", "includes"],
)
def test_the_htcondor_reader_is_linear_and_hands_on_nothing_that_runs(text: str) -> None:
    from kit.schedulers.htcondor import plain_submit_text, submit_commands

    commands, remarks = submit_commands(text)
    handed_on = plain_submit_text(text)
    assert "|" not in handed_on and "include" not in handed_on
    assert all(len(line) <= 8192 for line in handed_on.splitlines())
    assert remarks  # none of these is a submit file the kit writes


# == recipes, tool output, lesson pages ===========================================================


@pytest.mark.timeout(BOUND)
def test_a_long_run_line_is_read_in_linear_time() -> None:
    from kit.base.scan import followed_by
    from kit.check.images import BASH_WORD, PACKAGE_MANAGER
    from kit.model.dockerfile import instructions

    (run,) = instructions("RUN " + long_line("apt ") + "\n")
    assert not followed_by(PACKAGE_MANAGER, BASH_WORD, run.args)
    assert followed_by(PACKAGE_MANAGER, BASH_WORD, "apt-get install -y bash")


@pytest.mark.timeout(BOUND)
def test_zizmor_warnings_are_read_in_linear_time() -> None:
    from kit.check.linters import _not_audited

    assert _not_audited(long_line("WARN "), [".github/workflows/docker.yaml"]) == []
    (finding,) = _not_audited(
        "WARN zizmor: failed to validate input: .github/workflows/docker.yaml: bad\n",
        [".github/workflows/docker.yaml"],
    )
    assert finding.file == ".github/workflows/docker.yaml"


@pytest.mark.timeout(BOUND)
def test_unclosed_inline_markers_are_refused_in_linear_time() -> None:
    from kit.base.errors import UserError
    from kit.lesson.sync import refill_inline

    with pytest.raises(UserError) as refused:
        refill_inline(long_line("<!-- kit: a -->"), {}, "episodes/01.md", 3)
    assert (refused.value.file, refused.value.field) == ("episodes/01.md", "kit")


@pytest.mark.timeout(BOUND)
def test_a_long_job_file_line_through_kit_check(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """As the user types it: `kit check` on a workspace whose Slurm script has a 100k-character
    line; it finishes (the findings are about that line, never a hang)."""
    repo = workspace(tmp_path / "repo")
    (repo / ".git").mkdir()
    made = kit(
        capsys,
        "generate",
        repo,
        "--only",
        "slurm",
        "--job-image-name",
        "ghcr.io/a/b",
        "--job-commit",
        "3f2c1ab",
    )
    assert made.code == 0, made
    script = repo / "jobs" / "slurm.sbatch"
    script.write_text(script.read_text() + long_line("apptainer exec ") + "\n")
    run = kit(capsys, "check", repo, "--json")
    assert run.code in (0, 1) and "Traceback" not in run.err, run


# == config.yaml ====================================================================================


def lesson(tmp_path: Path, config: str | None) -> Path:
    root = tmp_path / "lesson"
    (root / "episodes").mkdir(parents=True)
    (root / "episodes" / "01-one.md").write_text("---\ntitle: One\n---\n\nText.\n")
    if config is not None:
        (root / "config.yaml").write_text(config)
    return root


BOMB = "".join(
    [f"a0: &a0 [{', '.join(['x'] * 10)}]\n"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)]
    + ["title: boom\nepisodes: [01-one.md]\n"]
)


@pytest.mark.timeout(BOUND)
def test_an_alias_bomb_in_config_yaml_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = lesson(tmp_path, BOMB)
    before = snapshot(tmp_path)
    run = kit(capsys, "lesson", "preview", "--root", root, "--out", tmp_path / "site")
    one_line(run, 2, f"{root / 'config.yaml'} [config.yaml]: expands to more than 100000 YAML nodes")
    assert changed(before, snapshot(tmp_path)) == set()


def test_aliases_within_the_budget_are_read(tmp_path: Path) -> None:
    from kit.base.yamlfile import load_yaml

    (tmp_path / "c.yaml").write_text("a: &x [1, 2]\nb: *x\n")
    assert load_yaml(tmp_path / "c.yaml") == {"a": [1, 2], "b": [1, 2]}


@pytest.mark.parametrize("command", ["preview", "check"])
def test_a_fifo_config_yaml_is_refused_not_waited_on(tmp_path: Path, command: str) -> None:
    """A process of its own, with a timeout: the old reader blocked on the FIFO for ever."""
    root = lesson(tmp_path, None)
    os.mkfifo(root / "config.yaml")
    run = kit_process("lesson", command, "--root", root, "--json", timeout=60)
    (error,) = one_json(run, 2)["errors"]
    assert (error["file"], error["field"]) == (str(root / "config.yaml"), "config.yaml"), error
    assert "is a FIFO" in error["message"]


def test_a_huge_config_yaml_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = lesson(tmp_path, "title: x\n" + "#" * (2 * 1024 * 1024) + "\n")
    run = kit(capsys, "lesson", "preview", "--root", root, "--out", tmp_path / "site")
    one_line(run, 2, f"{root / 'config.yaml'} [config.yaml]: is ")
    assert "more than the 1 MiB the kit reads" in run.err


# == the repository search ==========================================================================


def test_a_repository_with_too_many_folders_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kit.model import discover

    monkeypatch.setattr(discover, "MAX_FOLDERS", 30)
    repo = workspace(tmp_path / "repo")
    (repo / ".git").mkdir()
    for i in range(40):
        (repo / "data" / f"d{i}").mkdir(parents=True)
    before = snapshot(tmp_path)
    run = kit(capsys, "generate", repo)
    one_line(run, 2, f"{repo} [repository]: holds more than 30 folders within 4 levels")
    assert changed(before, snapshot(tmp_path)) == set()


def test_only_so_many_neighbouring_pyprojects_are_parsed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kit.model import discover

    monkeypatch.setattr(discover, "MAX_PYPROJECTS", 5)
    parsed: list[Path] = []
    real = discover.parse_manifest_toml
    monkeypatch.setattr(discover, "parse_manifest_toml", lambda p: parsed.append(p) or real(p))
    repo = workspace(tmp_path / "repo")
    (repo / ".git").mkdir()
    for i in range(20):
        (repo / "libs" / f"l{i}").mkdir(parents=True)
        (repo / "libs" / f"l{i}" / "pyproject.toml").write_text('[project]\nname = "x"\n')
    run = kit(capsys, "generate", repo)
    one_line(run, 2, f"{repo} [repository]: holds more than 5 pyproject.toml files")
    assert len([p for p in parsed if p.name == "pyproject.toml"]) <= 5  # (pixi.toml files are read too)


@pytest.mark.timeout(BOUND)
def test_build_argument_defaults_are_read_in_linear_time() -> None:
    from kit.model.dockerfile import resolve

    assert resolve(long_line("${a:-"), {}) == long_line("${a:-")
    assert resolve("${A:-x}/${B}-$C:${D-$E}", {"B": "b", "C": "c"}) == "x/b-c:$E"


def test_a_workspace_folder_of_too_many_entries_is_not_searched_for_packages(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_hostile_copies import pyproject_repo

    from kit.model import sources

    monkeypatch.setattr(sources, "MAX_TOP_LEVEL", 20)
    repo = pyproject_repo(tmp_path, 'name = "demo-pkg"\nversion = "1"')
    for i in range(30):
        (repo / f"data-{i}.csv").write_text("1\n")
    run = kit(capsys, "generate", repo)
    one_line(
        run, 2, f"{repo / 'pyproject.toml'} [project]: the workspace folder {repo} holds more than 20 entries"
    )

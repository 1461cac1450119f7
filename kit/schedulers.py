"""Submit the kit's job files to HTCondor or Slurm, follow them, and read what they printed.

Both schedulers are driven through their command-line clients (`condor_submit`, `condor_q -json`,
`condor_history -json`, `condor_q -better-analyze`, `condor_rm`; `sbatch --parsable`,
`scontrol show job -o`, `scancel`). Why not the `htcondor` Python bindings: a client must run
where the pool's files and user are (the lab's pool lives in its own mount namespace, entered
through tests/lab/bin/htcondor/), the command-line clients are what a cluster's login node always
has, and their JSON output is as exact as the bindings' ads for the few attributes read here.

Client tools are found on PATH, or in the folder `KIT_HTCONDOR_BIN` / `KIT_SLURM_BIN` names.
When none answers, `SchedulerUnavailable` says so and what to run on a cluster instead.

States are the same words for both schedulers: idle, running, held, completed, failed, removed.
`reason` is always the scheduler's own words (a hold reason, a pending reason, the analysis of
why an idle job matches no machine).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from kit.base.errors import SchedulerError, SchedulerUnavailable
from kit.output.jobfiles import HTCONDOR_FILE, SLURM_FILE

Scheduler = Literal["htcondor", "slurm"]
SCHEDULERS: tuple[str, ...] = get_args(Scheduler)
State = Literal["idle", "running", "held", "completed", "failed", "removed", "unknown"]
FINAL_STATES = ("completed", "failed", "removed")
CLIENT_TIMEOUT_S = 60
JOB_FILES = {"htcondor": HTCONDOR_FILE, "slurm": SLURM_FILE}
SUBMIT_COMMANDS = {"htcondor": "condor_submit jobs/htcondor.sub", "slurm": "sbatch jobs/slurm.sbatch"}
BIN_VARIABLES = {"htcondor": "KIT_HTCONDOR_BIN", "slurm": "KIT_SLURM_BIN"}
# HTCondor's JobStatus numbers.
CONDOR_STATES: dict[int, State] = {
    1: "idle",
    2: "running",
    3: "removed",
    4: "completed",
    5: "held",
    6: "running",
    7: "idle",
}
SLURM_STATES: dict[str, State] = {
    "PENDING": "idle",
    "CONFIGURING": "running",
    "RUNNING": "running",
    "COMPLETING": "running",
    "SUSPENDED": "held",
    "REQUEUE_HOLD": "held",
    "COMPLETED": "completed",
    "FAILED": "failed",
    "TIMEOUT": "failed",
    "NODE_FAIL": "failed",
    "OUT_OF_MEMORY": "failed",
    "BOOT_FAIL": "failed",
    "DEADLINE": "failed",
    "PREEMPTED": "removed",
    "CANCELLED": "removed",
}


@dataclass(frozen=True)
class Submitted:
    """A submitted job (an HTCondor cluster of one or more processes, or a Slurm job)."""

    scheduler: Scheduler
    job_id: str
    workdir: Path  # where it was submitted from: relative output paths start here


@dataclass(frozen=True)
class JobStatus:
    scheduler: Scheduler
    job_id: str
    state: State
    reason: str = ""  # the scheduler's own words, when it has any
    exit_code: int | None = None
    output_files: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    def summary(self) -> str:
        text = f"{self.scheduler} job {self.job_id}: {self.state}"
        if self.exit_code is not None and self.done:
            text += f" (exit {self.exit_code})"
        return text + (f": {self.reason}" if self.reason else "")


# -- finding and running the clients -----------------------------------------------------------


def find_client(scheduler: Scheduler, name: str) -> str | None:
    """One client command: in the folder KIT_HTCONDOR_BIN / KIT_SLURM_BIN names, else on PATH."""
    folder = os.environ.get(BIN_VARIABLES[scheduler])
    if folder and (Path(folder) / name).exists():
        return str(Path(folder) / name)
    return shutil.which(name)


def client(scheduler: Scheduler, name: str) -> str:
    """The path of one client command, or SchedulerUnavailable saying how to get one."""
    found = find_client(scheduler, name)
    if found is None:
        raise _unavailable(scheduler, f"{name} is not installed here")
    return found


def _unavailable(scheduler: Scheduler, why: str) -> SchedulerUnavailable:
    title = "an HTCondor" if scheduler == "htcondor" else "a Slurm"
    return SchedulerUnavailable(
        f"no {title.split()[1]} scheduler is reachable from here ({why}).",
        instead=f"copy the workspace with {JOB_FILES[scheduler]} to {title} login node and run "
        f"`{SUBMIT_COMMANDS[scheduler]}` there",
    )


def _run(
    scheduler: Scheduler, argv: list[str], cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    exe = client(scheduler, argv[0])
    try:
        done = subprocess.run(
            [exe, *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise _unavailable(scheduler, f"{argv[0]} did not answer in {CLIENT_TIMEOUT_S} s") from error
    except OSError as error:
        raise _unavailable(scheduler, f"{argv[0]} could not start: {error}") from error
    if check and done.returncode != 0:
        said = _said(done)
        if done.returncode == 125 or re.search(
            r"(?i)cannot connect|unable to contact|failed to "
            r"connect|connection refused|not running",
            said,
        ):
            raise _unavailable(scheduler, said or f"{argv[0]} exited {done.returncode}")
        raise SchedulerError(f"{argv[0]} failed", scheduler=scheduler, said=said)
    return done


def _said(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()]
    return " ".join(lines)[:500]


def available(scheduler: Scheduler) -> str:
    """'' when the scheduler answers here, else why not (never raises)."""
    try:
        if scheduler == "htcondor":
            _run(scheduler, ["condor_q", "-totals"])
        else:
            _run(scheduler, ["sinfo", "-h", "-o", "%P"])
    except (SchedulerUnavailable, SchedulerError) as error:
        return str(error)
    return ""


# -- the four verbs ----------------------------------------------------------------------------


def submit(scheduler: Scheduler, workdir: Path | str, job_file: str | None = None) -> Submitted:
    """Submit `job_file` (default: the kit's file for `scheduler`) from `workdir`."""
    _check_scheduler(scheduler)
    folder = Path(workdir).resolve()
    relative = job_file or JOB_FILES[scheduler]
    if not (folder / relative).is_file():
        raise SchedulerError(
            f"{folder / relative} does not exist",
            scheduler=scheduler,
            said=f"run `kit generate {folder} --only {scheduler}` first",
        )
    if scheduler == "htcondor":
        done = _run(scheduler, ["condor_submit", "-terse", relative], cwd=folder, check=False)
        match = re.search(r"^(\d+)\.\d+\s*-\s*\d+\.\d+", done.stdout, re.MULTILINE)
    else:
        done = _run(scheduler, ["sbatch", "--parsable", relative], cwd=folder, check=False)
        match = re.search(r"^(\d+)(?:;\S+)?\s*$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not match:
        raise SchedulerError(f"{scheduler} refused {relative}", scheduler=scheduler, said=_said(done))
    return Submitted(scheduler, match.group(1), folder)


def status(job: Submitted) -> JobStatus:
    """Where the job is now, in the scheduler's terms mapped to the kit's states."""
    return _condor_status(job) if job.scheduler == "htcondor" else _slurm_status(job)


def wait(
    job: Submitted,
    timeout: float,
    on_status: Callable[[JobStatus], None] | None = None,
    poll: float = 1.0,
    stop_when_unplaceable: bool = False,
) -> JobStatus:
    """Poll until the job ends or `timeout` seconds pass; `on_status` sees every change.

    Returns the last status: done, or not done when the time ran out (the caller decides what
    that means). With `stop_when_unplaceable`, a job the scheduler says it cannot place
    also ends the wait (a GPU no machine has): it would wait forever.
    """
    deadline = time.monotonic() + timeout
    last: JobStatus | None = None
    while True:
        now = status(job)
        if on_status is not None and now != last:
            on_status(now)
        last = now
        if now.done or now.state == "held":
            return now
        if stop_when_unplaceable and now.state == "idle" and _unplaceable(now):
            return now
        if time.monotonic() >= deadline:
            return now
        time.sleep(poll)


def output(job: Submitted) -> str:
    """What the job printed: its output file(s), in process order."""
    files = status(job).output_files
    texts = []
    for name in files:
        path = Path(name) if Path(name).is_absolute() else job.workdir / name
        texts.append(path.read_text(encoding="utf-8", errors="replace") if path.is_file() else "")
    return "".join(texts)


def cancel(job: Submitted) -> None:
    """Remove the job from the queue (a running one is killed)."""
    if job.scheduler == "htcondor":
        _run("htcondor", ["condor_rm", job.job_id])
    else:
        _run("slurm", ["scancel", job.job_id])


def why_idle(job: Submitted) -> str:
    """The scheduler's own explanation of why the job has not started."""
    if job.scheduler == "htcondor":
        done = _run("htcondor", ["condor_q", "-better-analyze", job.job_id], check=False)
        return _analysis(done.stdout)
    return status(job).reason


def _check_scheduler(scheduler: str) -> None:
    if scheduler not in SCHEDULERS:
        raise SchedulerError(
            f"scheduler {scheduler!r} is unknown",
            scheduler=scheduler,
            said=f"use one of: {', '.join(SCHEDULERS)}",
        )


def _unplaceable(now: JobStatus) -> bool:
    return bool(
        re.search(
            r"(?i)no successful match|match no|not available|no machine|"
            r"ReqNodeNotAvail|Resources|don't match|do not match|rejected",
            now.reason,
        )
    )


# -- HTCondor ----------------------------------------------------------------------------------

CONDOR_ATTRS = "ClusterId,ProcId,JobStatus,HoldReason,ExitCode,ExitBySignal,ExitSignal,Out,Iwd,RemoveReason,LastRejMatchReason"


def _condor_ads(job: Submitted) -> list[dict[str, Any]]:
    ads: list[dict[str, Any]] = []
    for argv in (
        ["condor_q", job.job_id, "-json", "-attributes", CONDOR_ATTRS],
        ["condor_history", job.job_id, "-json", "-attributes", CONDOR_ATTRS],
    ):
        done = _run("htcondor", argv)
        text = done.stdout.strip()
        ads = json.loads(text) if text.startswith("[") else []
        if ads:
            break
    return sorted(ads, key=lambda ad: int(ad.get("ProcId", 0)))


def _condor_status(job: Submitted) -> JobStatus:
    ads = _condor_ads(job)
    if not ads:
        return JobStatus("htcondor", job.job_id, "unknown", "the schedd knows no such job")
    states = [CONDOR_STATES.get(int(ad.get("JobStatus", 0)), "unknown") for ad in ads]
    outs = tuple(str(Path(ad.get("Iwd", "")) / ad["Out"]) if "Out" in ad else "" for ad in ads)
    codes = [int(ad["ExitCode"]) for ad in ads if isinstance(ad.get("ExitCode"), int)]
    exit_code = max(codes) if codes else None
    reason = ""
    order: tuple[State, ...] = ("held", "running", "idle", "removed", "failed", "completed")
    state: State = next((s for s in order if s in states), "unknown")
    held = [ad for ad in ads if ad.get("HoldReason")]
    if state == "held" and held:
        reason = str(held[0]["HoldReason"])
    elif state == "removed":
        reason = str(next((ad.get("RemoveReason") for ad in ads if ad.get("RemoveReason")), ""))
    elif state == "idle":
        reason = str(next((ad.get("LastRejMatchReason") for ad in ads if ad.get("LastRejMatchReason")), ""))
    if state == "completed":
        if any(ad.get("ExitBySignal") for ad in ads):
            state, reason = "failed", f"killed by signal {ads[0].get('ExitSignal')}"
        elif exit_code:
            state = "failed"
    return JobStatus("htcondor", job.job_id, state, reason, exit_code, tuple(o for o in outs if o))


def _analysis(text: str) -> str:
    """The lines of `condor_q -better-analyze` that say why a job does not run."""
    keep: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if (
            re.search(
                r"(?i)match|reject|requirement|no successful|RequireGPUs|GPUs|slots? |"
                r"has not|cannot|don't|do not|available",
                stripped,
            )
            and len(keep) < 12
        ):
            keep.append(stripped)
    return " ".join(keep)


# -- Slurm -------------------------------------------------------------------------------------


def _slurm_status(job: Submitted) -> JobStatus:
    done = _run("slurm", ["scontrol", "show", "job", "-o", job.job_id], check=False)
    if done.returncode != 0 or "JobState=" not in done.stdout:
        return JobStatus("slurm", job.job_id, "unknown", _said(done))
    fields = dict(re.findall(r"(\w+)=(\S*)", done.stdout))
    raw = fields.get("JobState", "")
    state = SLURM_STATES.get(raw, "unknown")
    reason = fields.get("Reason", "")
    reason = "" if reason in ("None", "(null)") else reason
    code = fields.get("ExitCode", "")
    exit_code = int(code.split(":")[0]) if re.match(r"^\d+:\d+$", code) else None
    signal = int(code.split(":")[1]) if re.match(r"^\d+:\d+$", code) else 0
    if state == "removed" and not reason:
        reason = f"{raw.lower()}"
    if state in FINAL_STATES and signal:
        reason = (reason + " " if reason else "") + f"signal {signal}"
    out = fields.get("StdOut", "")
    return JobStatus("slurm", job.job_id, state, reason, exit_code, (out,) if out else ())

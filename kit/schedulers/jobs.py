"""Submit the kit's job files, follow the jobs, and read what they printed, by scheduler name.

These are the functions `kit.api` offers (`submit_job`, `job_status`, `wait_job`, `job_output`,
`cancel_job`, `why_idle`): each looks the scheduler up in the table and asks it, so nothing
here names one. Client tools are found on PATH, or in the folder the scheduler's variable
names (`KIT_HTCONDOR_BIN`, `KIT_SLURM_BIN`). When none answers, `SchedulerUnavailable` says so
and what to run on a cluster instead.

States are the same words for every scheduler: idle, running, held, completed, failed, removed.
`reason` is always the scheduler's own words (a hold reason, a pending reason, the analysis of
why an idle job matches no machine).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from kit.base.errors import SchedulerError
from kit.base.files import read_tail
from kit.schedulers.base import JobStatus, Submitted
from kit.schedulers.registry import get_scheduler


def find_client(scheduler: str, name: str) -> str | None:
    """One client command of `scheduler`: in the folder its variable names, else on PATH."""
    return get_scheduler(scheduler).find_client(name)


def available(scheduler: str) -> str:
    """'' when the scheduler answers here, else why not (never raises)."""
    try:
        return get_scheduler(scheduler).available()
    except SchedulerError as error:  # a name that is no scheduler's
        return str(error)


def submit(scheduler: str, workdir: Path | str, job_file: str | None = None) -> Submitted:
    """Submit `job_file` (default: the kit's file for `scheduler`) from `workdir`."""
    return get_scheduler(scheduler).submit(workdir, job_file)


def status(job: Submitted) -> JobStatus:
    """Where the job is now, in the scheduler's terms mapped to the kit's states."""
    return get_scheduler(job.scheduler).status(job)


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


# How much of each output file `output` reads: its end, where the probe prints its report. A job
# that prints without end (a loop, a chatty library) must not fill the notebook's memory.
OUTPUT_LIMIT = 1024 * 1024


def output(job: Submitted) -> str:
    """What the job printed: the end of its output file(s), in process order. A file the job
    has not written yet reads as nothing; a longer one starts with a line saying how much of it
    was left out; a link or anything but a regular file is named, not followed or read."""
    texts = []
    for name in status(job).output_files:
        path = Path(name) if Path(name).is_absolute() else job.workdir / name
        try:
            data, size = read_tail(path, limit=OUTPUT_LIMIT)
        except FileNotFoundError:
            continue
        except OSError as exc:
            texts.append(f"[kit: {path} not read: {exc.strerror or exc}]\n")
            continue
        if size > len(data):
            data = data.split(b"\n", 1)[-1]  # start at a whole line
            texts.append(f"[kit: the first {size - len(data)} of {size} bytes of {path} left out]\n")
        texts.append(data.decode("utf-8", errors="replace"))
    return "".join(texts)


def cancel(job: Submitted) -> None:
    """Remove the job from the queue (a running one is killed)."""
    get_scheduler(job.scheduler).cancel(job)


def why_idle(job: Submitted) -> str:
    """The scheduler's own explanation of why the job has not started."""
    return get_scheduler(job.scheduler).why_idle(job)


def _unplaceable(now: JobStatus) -> bool:
    """Whether the reason of an idle job says no machine or node could ever run it."""
    return bool(
        re.search(
            r"(?i)no successful match|match no|not available|no machine|"
            r"ReqNodeNotAvail|Resources|don't match|do not match|rejected",
            now.reason,
        )
    )

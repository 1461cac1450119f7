"""What every scheduler is to the kit: one `Scheduler` object that knows its own tool.

A scheduler owns everything particular to it: its name and title, its job files and the
templates that print them, the command a user submits with, the variable that names its client
folder, and how to submit, follow, cancel and explain a job, and how to read its job file for
the checks. Everything above (render, check, the facade, the widgets, the lesson) asks a
scheduler from the table in `kit.schedulers.registry` instead of naming one, so a new scheduler
is one module here, its templates, and one line in that table.

Nothing here knows of options, plans or findings: `kit.schedulers` sits below them. The checks
get `Remark`s and turn them into findings themselves.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from kit.base.errors import SchedulerError, SchedulerUnavailable

State = Literal["idle", "running", "held", "completed", "failed", "removed", "unknown"]
FINAL_STATES = ("completed", "failed", "removed")
CLIENT_TIMEOUT_S = 60
# A client that exits with one of these words could not reach its pool or controller at all.
UNREACHABLE = re.compile(
    r"(?i)cannot connect|unable to contact|failed to connect|connection refused|not running"
)


@dataclass(frozen=True)
class Submitted:
    """A submitted job (an HTCondor cluster of one or more processes, or a Slurm job)."""

    scheduler: str  # the name of the scheduler in kit.schedulers.registry
    job_id: str
    workdir: Path  # where it was submitted from: relative output paths start here


@dataclass(frozen=True)
class JobStatus:
    scheduler: str
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


@dataclass(frozen=True)
class SchedulerFile:
    """One file `kit generate --only <scheduler>` writes."""

    key: str  # what the job templates call it: `{{ files.<key> }}`
    path: str  # from the workspace folder
    template: str  # under kit/templates/
    language: str = "text"  # for the previews' highlighting


@dataclass(frozen=True)
class Remark:
    """Something the scheduler (or the kit's reading of its language) says about a job file; the
    checks turn it into a `job-parse` finding. Most are errors, so that is the default."""

    line: int | None
    message: str
    fix: str
    severity: Literal["error", "warning", "info"] = "error"


@dataclass(frozen=True)
class JobReading:
    """What the checks need from a job file, in terms every scheduler shares."""

    image: str | None  # oras://..., docker://..., or a SIF path
    image_line: int | None
    gpu_requests: tuple[tuple[str, int], ...]  # (what, line) for each GPU request
    remarks: tuple[Remark, ...]  # in the order the file gave cause for them


def regenerate(*names: str) -> str:
    """The fix that rewrites the named schedulers' job files as the kit means them."""
    return "regenerate with `kit generate " + " ".join(f"--only {n}" for n in names) + "`"


def said(done: subprocess.CompletedProcess[str]) -> str:
    """A client's stderr and stdout as one line of its own words (at most 500 characters)."""
    lines = [line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines() if line.strip()]
    return " ".join(lines)[:500]


@dataclass(frozen=True)
class Scheduler(ABC):
    """One scheduler, driven through the command-line clients a cluster's login node has.

    The fields are data (what the scheduler is called, its files, its commands); the methods
    that differ between schedulers are `status` and `read_job_file`, and `why_idle` where the
    scheduler has more to say than its status's reason. Submitting and cancelling differ only
    in their commands, which are fields.
    """

    name: str  # as `kit generate --only`, `kit.api.submit_job` and `Submitted.scheduler` name it
    title: str  # as people write it: HTCondor, Slurm
    article: str  # "an" HTCondor login node, "a" Slurm login node
    files: tuple[SchedulerFile, ...]  # the first is the job file a user submits
    bin_variable: str  # the environment variable naming a folder of its client commands
    submit_client: str  # the command a user submits the job file with
    submit_flags: tuple[str, ...]  # what makes that command print only the job's id
    job_id_pattern: re.Pattern[str]  # the id in what `submit_client submit_flags FILE` prints (group 1)
    cancel_client: str  # removes a job by id
    answer: tuple[str, ...]  # a cheap question that only a running scheduler answers
    login_followers: tuple[str, ...]  # commands to follow a job by hand; {job}: the job's name
    gpu_request: str  # how its job file asks for one GPU, for a fix's text

    # -- what it is called and what it writes ----------------------------------------------------

    @property
    def job_file(self) -> str:
        """The file a user submits, from the workspace folder."""
        return self.files[0].path

    @property
    def file_names(self) -> tuple[str, ...]:
        """Its files' names without their folder (the group `kit generate --only` selects)."""
        return tuple(PurePosixPath(f.path).name for f in self.files)

    @property
    def submit_command(self) -> str:
        """What a user runs on a login node, from the workspace folder."""
        return f"{self.submit_client} {self.job_file}"

    def login_commands(self, job_name: str) -> tuple[str, ...]:
        """Submit and follow a job named `job_name` by hand, as the episodes show them."""
        return (self.submit_command, *(c.format(job=job_name) for c in self.login_followers))

    # -- its clients -------------------------------------------------------------------------------

    def find_client(self, name: str) -> str | None:
        """One client command: in the folder `bin_variable` names, else on PATH."""
        folder = os.environ.get(self.bin_variable)
        if folder and (Path(folder) / name).exists():
            return str(Path(folder) / name)
        return shutil.which(name)

    def client(self, name: str) -> str:
        """The path of one client command, or SchedulerUnavailable saying how to get one."""
        found = self.find_client(name)
        if found is None:
            raise self.unavailable(f"{name} is not installed here")
        return found

    def unavailable(self, why: str) -> SchedulerUnavailable:
        return SchedulerUnavailable(
            f"no {self.title} scheduler is reachable from here ({why}).",
            instead=f"copy the workspace with {self.job_file} to {self.article} {self.title} login node "
            f"and run `{self.submit_command}` there",
        )

    def run(
        self, argv: list[str], cwd: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run one client (bounded); with `check`, a failure raises in the scheduler's words:
        SchedulerUnavailable when it could not reach its pool, else SchedulerError."""
        exe = self.client(argv[0])
        try:
            done = subprocess.run(
                [exe, *argv[1:]],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=CLIENT_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise self.unavailable(f"{argv[0]} did not answer in {CLIENT_TIMEOUT_S} s") from error
        except OSError as error:
            raise self.unavailable(f"{argv[0]} could not start: {error}") from error
        if check and done.returncode != 0:
            words = said(done)
            if done.returncode == 125 or UNREACHABLE.search(words):
                raise self.unavailable(words or f"{argv[0]} exited {done.returncode}")
            raise SchedulerError(f"{argv[0]} failed", scheduler=self.name, said=words)
        return done

    def available(self) -> str:
        """'' when the scheduler answers here, else why not (never raises)."""
        try:
            self.run(list(self.answer))
        except (SchedulerUnavailable, SchedulerError) as error:
            return str(error)
        return ""

    # -- the verbs ---------------------------------------------------------------------------------

    def submit(self, workdir: Path | str, job_file: str | None = None) -> Submitted:
        """Submit `job_file` (default: this scheduler's own) from `workdir`."""
        folder = Path(workdir).resolve()
        relative = job_file or self.job_file
        if not (folder / relative).is_file():
            raise SchedulerError(
                f"{folder / relative} does not exist",
                scheduler=self.name,
                said=f"run `kit generate {folder} --only {self.name}` first",
            )
        done = self.run([self.submit_client, *self.submit_flags, relative], cwd=folder, check=False)
        match = self.job_id_pattern.search(done.stdout)
        if done.returncode != 0 or not match:
            raise SchedulerError(f"{self.name} refused {relative}", scheduler=self.name, said=said(done))
        return Submitted(self.name, match.group(1), folder)

    @abstractmethod
    def status(self, job: Submitted) -> JobStatus:
        """Where the job is now, in the scheduler's terms mapped to the kit's states."""

    def cancel(self, job: Submitted) -> None:
        """Remove the job from the queue (a running one is killed)."""
        self.run([self.cancel_client, job.job_id])

    def why_idle(self, job: Submitted) -> str:
        """The scheduler's own explanation of why the job has not started."""
        return self.status(job).reason

    # -- its job file, for the checks --------------------------------------------------------------

    @abstractmethod
    def read_job_file(self, files: Mapping[str, str]) -> JobReading:
        """Read `files[self.job_file]` (its other files beside it, where present; paths from the
        workspace folder) as the scheduler would, with the scheduler's own tool where installed."""

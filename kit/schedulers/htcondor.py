"""HTCondor: the submit file (jobs/htcondor.sub) with its list of inputs, and its clients.

Driven through `condor_submit`, `condor_q -json`, `condor_history -json`,
`condor_q -better-analyze` and `condor_rm`. Why not the `htcondor` Python bindings: a client must
run where the pool's files and user are (the lab's pool lives in its own mount namespace, entered
through tests/lab/bin/htcondor/), the command-line clients are what a cluster's login node always
has, and their JSON output is as exact as the bindings' ads for the few attributes read here.

The checks read a submit file with `condor_submit -dry-run`, which needs no running pool, where
the client is installed, and with the kit's own reading of the submit language in any case, so
a laptop without HTCondor still gets the image and GPU checks.

HTCondor's parser runs programs while it reads, dry run or not: `include : CMD |`, `include
command [into FILE] : CMD` and `queue ... from CMD |` run CMD, and a plain `include : FILE` reads
a file from anywhere. A checked repository is untrusted text, so `condor_submit` never sees it:
the dry run gets a submit text the kit rebuilds from what it read itself (one `name = value`
per line, no comments or continuations, and only `queue` statements that read no command),
and every line that would run or read something is an error finding that names it.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.model import deployfiles
from kit.schedulers.base import (
    JobReading,
    JobStatus,
    Remark,
    Scheduler,
    SchedulerFile,
    State,
    Submitted,
    regenerate,
)

SUBMIT_FILE = deployfiles.HTCONDOR_FILE  # the names are the deployment-file table's
INPUTS_FILE = deployfiles.INPUTS_FILE
DRY_RUN_TIMEOUT_S = 30
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
# A machine's `Arch` attribute as HTCondor sets it from the kernel's machine name
# (htcondor/htcondor src/condor_sysapi/arch.cpp, `sysapi_translate_arch`: x86_64 -> X86_64, and a
# name it has no case for, aarch64 among them, as uname gives it).
CONDOR_ARCH = {"x86_64": "X86_64", "aarch64": "aarch64"}


def condor_arches(machines: tuple[str, ...]) -> tuple[str, ...]:
    """The `Arch` values a job that runs on these architectures (`platform.machine()` names) asks
    for. condor_submit adds `Arch == <the submit machine's>` to any requirements that do not name
    Arch, so a job whose image serves several architectures names them all."""
    return tuple(CONDOR_ARCH[m] for m in machines)


CONDOR_ATTRS = "ClusterId,ProcId,JobStatus,HoldReason,ExitCode,ExitBySignal,ExitSignal,Out,Iwd,RemoveReason,LastRejMatchReason"


@dataclass(frozen=True)
class HTCondor(Scheduler):
    """An HTCondor pool: a cluster of one process per line of the inputs file."""

    def status(self, job: Submitted) -> JobStatus:
        ads = self._ads(job)
        if not ads:
            return JobStatus(self.name, job.job_id, "unknown", "the schedd knows no such job")
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
            reason = str(
                next((ad.get("LastRejMatchReason") for ad in ads if ad.get("LastRejMatchReason")), "")
            )
        if state == "completed":
            if any(ad.get("ExitBySignal") for ad in ads):
                state, reason = "failed", f"killed by signal {ads[0].get('ExitSignal')}"
            elif exit_code:
                state = "failed"
        return JobStatus(self.name, job.job_id, state, reason, exit_code, tuple(o for o in outs if o))

    def _ads(self, job: Submitted) -> list[dict[str, Any]]:
        """The job's ads, one per process: from the queue, else from the history."""
        ads: list[dict[str, Any]] = []
        for argv in (
            ["condor_q", job.job_id, "-json", "-attributes", CONDOR_ATTRS],
            ["condor_history", job.job_id, "-json", "-attributes", CONDOR_ATTRS],
        ):
            done = self.run(argv)
            text = done.stdout.strip()
            ads = json.loads(text) if text.startswith("[") else []
            if ads:
                break
        return sorted(ads, key=lambda ad: int(ad.get("ProcId", 0)))

    def why_idle(self, job: Submitted) -> str:
        """The lines of `condor_q -better-analyze` that say why the job matches no machine."""
        done = self.run(["condor_q", "-better-analyze", job.job_id], check=False)
        return analysis(done.stdout)

    def read_job_file(self, files: Mapping[str, str]) -> JobReading:
        """The kit's reading of the submit file, and condor_submit's where it is installed."""
        text = files[self.job_file]
        commands, remarks = submit_commands(text)
        remarks += self._dry_run(files)
        image = commands.get("container_image")
        gpus = [
            ("request_gpus", line)
            for key, (value, line) in commands.items()
            if key == "request_gpus" and value.strip() not in ("", "0")
        ]
        if commands.get("universe", ("", 0))[0].lower() != "container":
            remarks.append(
                Remark(
                    commands.get("universe", ("", None))[1],
                    "the job is not in the container universe, so HTCondor will not start the image",
                    "set `universe = container`",
                )
            )
        if image is None:
            remarks.append(
                Remark(
                    None,
                    "no container_image: the job has nothing to run the environment in",
                    regenerate(self.name),
                )
            )
        return JobReading(
            image[0] if image else None, image[1] if image else None, tuple(gpus), tuple(remarks)
        )

    def _dry_run(self, files: Mapping[str, str]) -> list[Remark]:
        """`condor_submit -dry-run` on a copy of the files, when HTCondor's client is installed.
        The submit file it gets is the kit's rebuilt text (`plain_submit_text`), never the
        repository's own: HTCondor would run the commands some lines name while parsing."""
        tool = self.find_client(self.submit_client)
        if tool is None:
            return [
                Remark(
                    None,
                    "condor_submit is not installed here, so the kit read the submit file itself",
                    "install HTCondor's client tools for the full check",
                    severity="info",
                )
            ]
        with tempfile.TemporaryDirectory(prefix="kit-check-sub-") as tmp:
            root = Path(tmp)
            for f in self.files:
                if f.path in files:
                    text = files[f.path]
                    if f.path == self.job_file:
                        text = plain_submit_text(text)
                    (root / f.path).parent.mkdir(parents=True, exist_ok=True)
                    (root / f.path).write_text(text, encoding="utf-8")
            try:
                done = subprocess.run(
                    [tool, "-dry-run", "-", self.job_file],
                    cwd=root,
                    capture_output=True,
                    text=True,
                    timeout=DRY_RUN_TIMEOUT_S,
                    check=False,
                )
            except (OSError, subprocess.SubprocessError) as error:
                return [
                    Remark(
                        None,
                        f"condor_submit could not run: {error}",
                        "check HTCondor's client installation",
                        severity="warning",
                    )
                ]
        if done.returncode == 0:
            return []
        words = " ".join(
            line.strip()
            for line in (done.stderr or done.stdout).splitlines()
            if line.strip() and not line.startswith("Submitting job")
        )
        return [
            Remark(
                None,
                f"condor_submit -dry-run refused it: {words[:300]}",
                f"fix the command it names, or {regenerate(self.name)}",
            )
        ]


# The forms of the submit language that make condor_submit run or read something while it
# parses (HTCondor's configuration and submit-language manuals): a trailing `|` turns an include
# or a `queue ... from` into a command's output; `include command` always runs one; any
# `include` reads a file the checked copy does not hold.
_INCLUDE = re.compile(r"(?i)include\b")
_QUEUE = re.compile(r"(?i)queue\b")
_COMMAND = re.compile(r"([A-Za-z_+][A-Za-z0-9_.+]*)[ \t]*=(.*)", re.DOTALL)
_QUEUE_FROM = re.compile(r"(?i)queue\b.*?\bfrom\s+(\S+)")
# Words the submit language reads as statements, never handed on as `name = value` lines
# (`error` and `warning` are also commands: `error = FILE` names the job's stderr).
_KEYWORDS = frozenset({"include", "use", "if", "elif", "else", "endif", "queue"})
MAX_LINE = 8192  # longer logical lines are not submit commands the kit writes


@dataclass(frozen=True)
class Statement:
    """One logical line of a submit file: where it starts, its text, and what it is."""

    line: int
    text: str
    kind: str  # "command", "queue", "runs" (runs or reads something while parsed), "other"
    why: str = ""


def statements(text: str) -> list[Statement]:
    """The submit file's logical lines (continuations joined, comments and blanks left out), as
    HTCondor joins them: a comment ends at its line end even when it ends in a backslash, and a
    comment inside a continuation is skipped without ending it.

    Every physical line is also looked at on its own, so that a line that would run something
    is found however the lines around it are read."""
    found: dict[int, Statement] = {}
    # The pieces of the logical line being joined, and their length: joined once, when the line
    # ends, and no further than MAX_LINE + 1 characters (a longer line is "other" whatever the
    # rest says), so 100,000 continuation lines cost linear time, not a copy per line.
    pending: list[str] = []
    size = 0
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        own = raw.strip()
        why = _runs(own)
        if why:
            found[number] = Statement(number, own[:MAX_LINE], "runs", why)
        if own.startswith("#"):
            continue
        if not pending:
            start = number
        continued = own.endswith("\\")
        piece = own[:-1] + " " if continued else own
        if size <= MAX_LINE:
            pending.append(piece[: MAX_LINE + 1 - size])
            size += len(pending[-1])
        if continued:
            continue
        line = "".join(pending)
        pending, size = [], 0
        if line and start not in found:
            found[start] = _statement(start, line)
    rest = "".join(pending).strip()
    if rest and start not in found:
        found[start] = _statement(start, rest)
    return [found[number] for number in sorted(found)]


def _runs(line: str) -> str:
    """Why `line` would make condor_submit run or read something, or ''."""
    if len(line) > MAX_LINE:
        return ""
    if _INCLUDE.match(line):
        rest = line[len("include") :].lstrip()
        if rest[:7].lower() == "command":
            return "`include command` runs a program while HTCondor reads the file"
        if "|" in rest:
            return "`include : ... |` runs a program while HTCondor reads the file"
        if rest.startswith(":") or rest[:7].lower() == "ifexist":
            return "`include` reads another file while HTCondor reads this one"
    if _QUEUE.match(line):
        if "|" in line:
            return "`queue ... from ... |` runs a program while HTCondor reads the file"
        source = _QUEUE_FROM.match(line)
        if source and (source.group(1).startswith(("/", "~", "$")) or ".." in source.group(1).split("/")):
            return "`queue ... from` reads a file outside the repository"
    return ""


def _statement(number: int, line: str) -> Statement:
    if len(line) > MAX_LINE:  # not a line the kit writes, and not one _runs can vouch for
        return Statement(number, line[:MAX_LINE], "other")
    why = _runs(line)
    if why:
        return Statement(number, line[:MAX_LINE], "runs", why)
    if _QUEUE.match(line):
        return Statement(number, line, "queue")
    match = _COMMAND.fullmatch(line) if len(line) <= MAX_LINE else None
    if match and match.group(1).lower() not in _KEYWORDS:
        return Statement(number, line, "command")
    return Statement(number, line[:MAX_LINE], "other")


def plain_submit_text(text: str) -> str:
    """The submit text the kit hands to condor_submit: only what it read as a plain command or a
    queue statement that runs nothing, one per line, in order. Nothing here executes."""
    lines: list[str] = []
    for statement in statements(text):
        if statement.kind == "command":
            match = _COMMAND.fullmatch(statement.text)
            assert match is not None
            value = match.group(2).strip().rstrip("\\")
            lines.append(f"{match.group(1)} = {value}")
        elif statement.kind == "queue":
            lines.append(statement.text.rstrip("\\"))
    return "".join(line + "\n" for line in lines)


def submit_commands(text: str) -> tuple[dict[str, tuple[str, int]], list[Remark]]:
    """`key = value` commands (keys lower case) with their lines, and a remark per bad line.
    Enough of HTCondor's submit language for the kit's files: comments, continuations, one
    `queue` statement at the end. A line that would run or read something while HTCondor parses
    it is an error of its own, and is left out of what condor_submit is given."""
    commands: dict[str, tuple[str, int]] = {}
    remarks: list[Remark] = []
    queued = False
    for statement in statements(text):
        if statement.kind == "runs":
            remarks.append(
                Remark(
                    statement.line,
                    f"{statement.why}: {statement.text[:60]!r}; the kit left this line out of "
                    "condor_submit's dry run and never runs it",
                    "remove the line: write the values into the submit file itself",
                )
            )
        elif statement.kind == "queue":
            queued = True
        elif statement.kind == "command":
            match = _COMMAND.fullmatch(statement.text)
            assert match is not None
            commands[match.group(1).lower()] = (match.group(2).strip(), statement.line)
        else:
            remarks.append(
                Remark(
                    statement.line,
                    f"not a submit command: {statement.text[:60]!r}",
                    "write `name = value`, or a `queue` statement",
                )
            )
    if not queued:
        remarks.append(
            Remark(
                None, "no `queue` statement: condor_submit would submit nothing", "end the file with `queue`"
            )
        )
    return commands, remarks


def analysis(text: str) -> str:
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


HTCONDOR = HTCondor(
    name="htcondor",
    title="HTCondor",
    article="an",
    files=(
        SchedulerFile("htcondor", SUBMIT_FILE, "jobs/htcondor.sub.j2"),
        # The example list of inputs the submit file queues over: one job per line.
        SchedulerFile("inputs", INPUTS_FILE, "jobs/inputs.txt.j2"),
    ),
    bin_variable="KIT_HTCONDOR_BIN",
    submit_client="condor_submit",
    submit_flags=("-terse",),
    job_id_pattern=re.compile(r"^(\d+)\.\d+\s*-\s*\d+\.\d+", re.MULTILINE),
    cancel_client="condor_rm",
    answer=("condor_q", "-totals"),
    # Plain `condor_q` prints one summary line per batch; `-nobatch` gives each job's state. A
    # finished job has left the queue: `condor_history` says how it ended.
    login_followers=(
        "condor_q -nobatch",
        "condor_q -better-analyze <ID>",
        "condor_wait -wait 600 {job}.log",
        "condor_history <ID>",
        "cat {job}-<ID>.0.out",
    ),
    gpu_request="request_gpus = 1",
)

"""Slurm: the batch script (jobs/slurm.sbatch), which runs the image with Apptainer, and its clients.

Driven through `sbatch --parsable`, `scontrol show job -o` and `scancel`. sbatch has no dry run,
so the checks read the script themselves: its `#SBATCH` lines, its GPU requests, its image, and
its shell syntax (`bash -n`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from kit.base.scan import followed_by
from kit.model import deployfiles
from kit.schedulers.base import (
    FINAL_STATES,
    JobReading,
    JobStatus,
    Remark,
    Scheduler,
    SchedulerFile,
    State,
    Submitted,
    regenerate,
    said,
)

BATCH_SCRIPT = deployfiles.SLURM_FILE  # the name is the deployment-file table's
# The patterns below read untrusted lines (a checked repository's script, scontrol's output) and
# are linear in a line's length: no unbounded quantifier is followed by another that can match
# the same text, and `.*` between two halves is asked as two searches (kit.base.scan).
SCONTROL_FIELD = re.compile(r"(?<!\w)(\w+)=(\S*)")  # a key starts a word: one try per word
EXIT_CODE = re.compile(r"\d+:\d+")
APPTAINER_RUN = re.compile(r"\bapptainer\s+(?:exec|run)\b")
NV_FLAG = re.compile(r"\s--nv\b")
GPU_OPTIONS = ("--gpus=", "--gpus-per-node")
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


def asks_for_gpus(line: str) -> bool:
    """Whether an `#SBATCH` line asks for GPUs: `--gres=` naming a `gpu` resource (`gpu:1`,
    `gpu:a100:2`, `mps:10,gpu:1`), `--gpus=`, `--gpus-per-<thing>=` or `--gpus-per-node`, read
    word by word (linear in the line, whatever it holds)."""
    for word in line.split():
        if word.startswith("--gres="):
            if any(part.startswith("gpu") for part in re.split(r"[:,]", word[len("--gres=") :])):
                return True
        elif word.startswith(GPU_OPTIONS) or (word.startswith("--gpus-per-") and "=" in word):
            return True
    return False


@dataclass(frozen=True)
class Slurm(Scheduler):
    """A Slurm cluster: one batch job per submission."""

    def status(self, job: Submitted) -> JobStatus:
        done = self.run(["scontrol", "show", "job", "-o", job.job_id], check=False)
        if done.returncode != 0 or "JobState=" not in done.stdout:
            return JobStatus(self.name, job.job_id, "unknown", said(done))
        fields = dict(SCONTROL_FIELD.findall(done.stdout))
        raw = fields.get("JobState", "")
        state = SLURM_STATES.get(raw, "unknown")
        reason = fields.get("Reason", "")
        reason = "" if reason in ("None", "(null)") else reason
        code = fields.get("ExitCode", "")
        exit_code = int(code.split(":")[0]) if EXIT_CODE.fullmatch(code) else None
        signal = int(code.split(":")[1]) if EXIT_CODE.fullmatch(code) else 0
        if state == "removed" and not reason:
            reason = f"{raw.lower()}"
        if state in FINAL_STATES and signal:
            reason = (reason + " " if reason else "") + f"signal {signal}"
        out = fields.get("StdOut", "")
        return JobStatus(self.name, job.job_id, state, reason, exit_code, (out,) if out else ())

    def read_job_file(self, files: Mapping[str, str]) -> JobReading:
        """The kit's reading of the batch script (sbatch has no dry run to ask)."""
        text = files[self.job_file]
        remarks: list[Remark] = []
        lines = text.splitlines()
        if not lines or not lines[0].startswith("#!"):
            remarks.append(
                Remark(
                    1, "no #! line: sbatch refuses a script without one", "start the script with #!/bin/bash"
                )
            )
        gpus: list[tuple[str, int]] = []
        seen_command = False
        for number, line in enumerate(lines, start=1):
            stripped = line.strip()
            if stripped.startswith("#SBATCH"):
                if seen_command:
                    remarks.append(
                        Remark(
                            number,
                            "an #SBATCH line after the first command: sbatch ignores it",
                            "move every #SBATCH line above the first command",
                            severity="warning",
                        )
                    )
                if asks_for_gpus(stripped):
                    gpus.append(("#SBATCH GPU request", number))
            elif stripped and not stripped.startswith("#"):
                seen_command = True
            if followed_by(APPTAINER_RUN, NV_FLAG, stripped):
                gpus.append(("apptainer --nv", number))
        remarks += self._bash_syntax(text)
        sif = re.search(r"(?m)^SIF=(\S+)$", text)
        pull = re.search(r"(?m)apptainer pull \"\$SIF\" (\S+)$", text)
        named = pull or sif
        image = named.group(1) if named else None
        image_line = text[: named.start()].count("\n") + 1 if named else None
        if image is None:
            remarks.append(
                Remark(None, "no SIF=... line: the script names no image to run", regenerate(self.name))
            )
        return JobReading(image, image_line, tuple(gpus), tuple(remarks))

    def _bash_syntax(self, text: str) -> list[Remark]:
        """`bash -n` (parse, run nothing) on the script, given on standard input. bash gets no
        startup files (`--norc`, `--noprofile`), a bare environment (so no BASH_ENV or ENV it
        would source first) and the file system root as its folder: nothing of the checked
        repository or the caller decides what it does."""
        bash = shutil.which("bash")
        if bash is None:
            return []
        try:
            done = subprocess.run(
                [bash, "--norc", "--noprofile", "-n"],
                input=text,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
                cwd="/",
                env={"PATH": os.defpath, "LC_ALL": "C"},
            )
        except (OSError, subprocess.SubprocessError):
            return []
        if done.returncode == 0:
            return []
        return [
            Remark(
                None,
                f"bash -n: {done.stderr.strip()[:200]}",
                f"fix the shell syntax, or {regenerate(self.name)}",
            )
        ]


SLURM = Slurm(
    name="slurm",
    title="Slurm",
    article="a",
    files=(SchedulerFile("slurm", BATCH_SCRIPT, "jobs/slurm.sbatch.j2", language="bash"),),
    bin_variable="KIT_SLURM_BIN",
    submit_client="sbatch",
    submit_flags=("--parsable",),
    job_id_pattern=re.compile(r"^(\d+)(?:;\S+)?\s*$", re.MULTILINE),
    cancel_client="scancel",
    answer=("sinfo", "-h", "-o", "%P"),
    login_followers=("squeue --me", "scontrol show job <ID>", "cat {job}-<ID>.out"),
    gpu_request="#SBATCH --gres=gpu:1 and --nv",
)

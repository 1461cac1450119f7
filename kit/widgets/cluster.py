"""Notebook helpers for episodes 06 (HTCondor) and 07 (Slurm): write the job files, submit them
when a scheduler answers, show the job's state as it changes, and read its output.

On a machine without a scheduler (Binder, a laptop) every step still shows the files and prints
the commands to run on a cluster's login node, and says that it did not submit. `submit="require"`
turns "no scheduler" into an error, for CI.
"""

from __future__ import annotations

import html as html_lib
import time
from pathlib import Path
from typing import Any

from kit import api
from kit.base.errors import KitError
from kit.engines.gpu import ProbeReport
from kit.output.jobfiles import EXAMPLE_COMMIT, EXAMPLE_IMAGE_NAME
from kit.schedulers import SCHEDULERS, JobStatus, Submitted
from kit.widgets.notebook import HTML, example_probe_report

SUBMIT_MODES = ("auto", "never", "require")
# The name the lesson's example job gets (kit.output.jobfiles.job_name: workspace-environment).
EXAMPLE_JOB = "cuda-exercise-gpu"
# What to run on a login node instead, by scheduler: submit, then follow the job by hand.
COMMANDS = {name: list(s.login_commands(EXAMPLE_JOB)) for name, s in SCHEDULERS.items()}
STATE_COLOURS = {
    "idle": "#8a6d00",
    "running": "#1f5fa8",
    "held": "#a33",
    "completed": "#2a7a2a",
    "failed": "#a33",
    "removed": "#777",
    "unknown": "#777",
}


def job_options(environment: str, sif: str | None, **extra: Any) -> dict[str, Any]:
    """Job options for a scratch copy: a local SIF when there is one, else the lesson's example
    image and commit (a scratch copy has no git history to take them from)."""
    options: dict[str, Any] = {"environment": environment, **extra}
    if sif:
        options.update(job_image_kind="sif", job_sif=str(Path(sif).resolve()))
    else:
        options.update(job_image_name=EXAMPLE_IMAGE_NAME, job_commit=EXAMPLE_COMMIT)
    return options


def decide_submit(mode: str, scheduler: str, sif: str | None) -> bool:
    """Whether to submit here; prints why not (with the commands for a cluster)."""
    if mode not in SUBMIT_MODES:
        raise ValueError(f"submit={mode!r}: use one of {', '.join(SUBMIT_MODES)}")
    why = "submit='never'" if mode == "never" else api.scheduler_available(scheduler)
    if not why and not sif:
        why = "no SIF was built or given here, and the example image is not published"
    if why:
        if mode == "require":
            raise KitError(f"submit='require' but the job cannot run here: {why}")
        print(f"Not submitting here: {why}")
        print(
            "On the cluster's login node, from the workspace folder, run:\n  "
            + "\n  ".join(COMMANDS[scheduler])
        )
        return False
    print(f"{scheduler} answers here: submitting.")
    return True


def timeline(states: list[tuple[JobStatus, float]], started: float) -> HTML:
    """The states a job went through, with the seconds since submission, as a small table."""
    rows = []
    for status, seen in _dedupe(states):
        colour = STATE_COLOURS.get(status.state, "#777")
        reason = html_lib.escape(status.reason[:160])
        rows.append(
            f"<tr><td>{seen - started:5.1f}s</td><td style='color:{colour};"
            f"font-weight:bold'>{status.state}</td><td>{reason}</td></tr>"
        )
    head = html_lib.escape(f"{states[-1][0].scheduler} job {states[-1][0].job_id}") if states else "job"
    return HTML(f"<table class='kit-job-timeline'><caption>{head}</caption>{''.join(rows)}</table>")


def _dedupe(states: list[tuple[JobStatus, float]]) -> list[tuple[JobStatus, float]]:
    """One row per state: a state seen twice in a row (its reason changed) keeps its first time."""
    out: list[tuple[JobStatus, float]] = []
    for status, stamp in states:
        if not out or out[-1][0].state != status.state:
            out.append((status, stamp))
    return out


def watch(job: Submitted, timeout: float = 300, poll: float = 1.0) -> JobStatus:
    """Follow the job to its end, redrawing one display with every change of state."""
    from IPython.display import display

    started = time.monotonic()
    seen: list[tuple[JobStatus, float]] = []
    handle = display(
        HTML("<i>submitted, waiting for the scheduler...</i>"),  # type: ignore[no-untyped-call]
        display_id=True,
    )

    def changed(status: JobStatus) -> None:
        seen.append((status, time.monotonic()))
        print(f"{time.monotonic() - started:5.1f}s  {status.summary()}", flush=True)
        if handle is not None:
            handle.update(timeline(seen, started))

    final = api.wait_job(job, timeout, on_status=changed, poll=poll, stop_when_unplaceable=True)
    if final.state == "idle":
        print("Still idle. The scheduler says:", api.why_idle(job))
    return final


def output_report(job: Submitted | None) -> ProbeReport:
    """The probe report in the job's output, or the episode's example when no job ran here."""
    if job is None:
        print("No job ran here. On a GPU node the output reads like this:")
        return example_probe_report()
    text = api.job_output(job)
    print(text)
    return api.parse_probe_output(text)


__all__ = ["COMMANDS", "decide_submit", "job_options", "output_report", "timeline", "watch"]

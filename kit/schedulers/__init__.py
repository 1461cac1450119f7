"""Schedulers (HTCondor, Slurm): each one owns what is particular to it, behind one interface.

`kit.schedulers.base.Scheduler` is that interface: name and title, job files and their templates,
the submit command shown to users, the variable naming its client folder, submit, status,
cancel, why-idle, how to find its clients, and how to read its job file for the checks. One
module per scheduler (`htcondor`, `slurm`) holds its subclass and its one instance; the plain
table `SCHEDULERS` (`kit.schedulers.registry`) names them. Render, check, the facade, the
widgets and the lesson ask that table instead of naming a scheduler.

Everything is driven through the command-line clients a login node has; nothing runs at import.
"""

from __future__ import annotations

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
)
from kit.schedulers.jobs import available, cancel, find_client, output, status, submit, wait, why_idle
from kit.schedulers.registry import SCHEDULERS, get_scheduler, job_file_keys, scheduler_names

__all__ = [
    "FINAL_STATES",
    "SCHEDULERS",
    "JobReading",
    "JobStatus",
    "Remark",
    "Scheduler",
    "SchedulerFile",
    "State",
    "Submitted",
    "available",
    "cancel",
    "find_client",
    "get_scheduler",
    "job_file_keys",
    "output",
    "regenerate",
    "scheduler_names",
    "status",
    "submit",
    "wait",
    "why_idle",
]

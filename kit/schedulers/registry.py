"""The table of schedulers: a plain, read-only mapping from name to `Scheduler`.

Papermill-style lookup by name, without its mutable registry: the table is built from the
scheduler modules' constants (nothing runs, nothing is read from the environment at import), so
tests need no reset. Its order is the order front ends list them in (`kit generate --only`,
the lesson's job files, the fixes that name both).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from kit.base.errors import SchedulerError
from kit.schedulers.base import Scheduler
from kit.schedulers.htcondor import HTCONDOR
from kit.schedulers.slurm import SLURM

SCHEDULERS: Mapping[str, Scheduler] = MappingProxyType({s.name: s for s in (HTCONDOR, SLURM)})


def get_scheduler(name: str) -> Scheduler:
    """The scheduler called `name`, or SchedulerError naming the ones there are."""
    found = SCHEDULERS.get(name)
    if found is None:
        raise SchedulerError(
            f"scheduler {name!r} is unknown",
            scheduler=name,
            said=f"use one of: {', '.join(SCHEDULERS)}",
        )
    return found


def scheduler_names() -> tuple[str, ...]:
    """Every scheduler's name, in the table's order."""
    return tuple(SCHEDULERS)


def job_file_keys() -> dict[str, str]:
    """Every scheduler's files by the name the job templates give them (`{{ files.<key> }}`)."""
    return {f.key: f.path for s in SCHEDULERS.values() for f in s.files}

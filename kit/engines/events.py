"""What a build reports while it runs (`BuildEvent`) and when it is done (`BuildResult`).

Both engines speak this one vocabulary so the CLI, the notebook widgets and the benchmarks draw
the same progress without knowing whether BuildKit or Apptainer did the work. Events are plain
frozen data handed to a callback; a slow or failing callback is the caller's business, so the
builders never buffer events or retry them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# `notice`: one line for the person waiting (a build through emulation says how much slower it is).
EventKind = Literal["step_started", "step_done", "log", "finished", "notice"]


@dataclass(frozen=True)
class BuildEvent:
    """One progress report.

    ``step``/``total`` are what the engine says: BuildKit numbers steps per stage
    (``[build 3/4]``), so ``stage`` says which one; Apptainer numbers nothing, so its steps are
    counted as they appear and ``total`` is None. ``failed`` is set on the ``step_done`` of the
    step that broke the build and on a ``finished`` event of a failed build.
    """

    kind: EventKind
    step: int | None = None
    total: int | None = None
    stage: str | None = None
    instruction: str = ""
    cached: bool = False
    duration: float | None = None
    line: str = ""
    failed: bool = False


EventCallback = Callable[[BuildEvent], None]


def ignore_event(event: BuildEvent) -> None:
    """The default callback: builds are quiet unless someone listens."""


@dataclass(frozen=True)
class StepTiming:
    """How one step went: the benchmarks compare these between a cold and a warm build."""

    instruction: str
    stage: str | None
    step: int | None
    total: int | None
    cached: bool
    duration: float | None
    failed: bool = False


@dataclass(frozen=True)
class BuildResult:
    """A finished, successful build.

    ``artifact`` is the image id (``sha256:...``) for Docker and the SIF path for Apptainer;
    `image_id` and `sif_path` give the one that applies.
    """

    engine: str
    artifact: str
    tags: tuple[str, ...]
    size_bytes: int
    duration: float
    steps: tuple[StepTiming, ...] = ()
    log: tuple[str, ...] = field(default=(), repr=False)

    @property
    def cache_hits(self) -> int:
        """Steps the engine reused from its cache."""
        return sum(1 for step in self.steps if step.cached)

    @property
    def image_id(self) -> str | None:
        return self.artifact if self.engine == "docker" else None

    @property
    def sif_path(self) -> Path | None:
        return Path(self.artifact) if self.engine == "apptainer" else None


def format_build(result: BuildResult) -> str:
    """One line on a finished build: what, its tags, size, time and how much came from cache."""
    size = result.size_bytes / 1e6
    return (
        f"built {result.artifact} ({', '.join(result.tags) or 'no tags'}) {size:.1f} MB in "
        f"{result.duration:.1f}s, {result.cache_hits}/{len(result.steps)} steps cached"
    )

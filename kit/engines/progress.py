"""Read BuildKit's ``--progress=plain`` output into `BuildEvent`s.

BuildKit prints one block per vertex (``#N``), and blocks of parallel stages interleave; every
line names its vertex, so the parser keeps a small table from vertex number to step. The forms
it understands, all seen in real logs (``tests/data/buildkit/``)::

    #8 [build 4/4] RUN echo hi            a step starts (stage "build", step 4 of 4)
    #4 [1/5] FROM docker.io/library/x      single-stage Dockerfiles have no stage name
    #3 [internal] load build context       BuildKit's own work: logged, not a step
    #8 0.292 hi                            output of the step, with seconds since it started
    #8 CACHED / #8 DONE 1.3s               the step finished, from cache or after 1.3 s
    #8 ERROR: executor failed running ...  the step failed
    #5 CANCELED                            the build was stopped

The parser is pure (no I/O) so it is tested on captured logs without a daemon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kit.engines.events import BuildEvent, EventKind, StepTiming

_VERTEX = re.compile(r"#(\d+) (.*)")  # each fullmatch: `$` passes a final newline
_STEP = re.compile(r"\[(?:(?P<stage>[^\]\s]+) )?(?P<n>\d+)/(?P<m>\d+)\] (?P<instruction>.*)")
_DONE = re.compile(r"DONE (\d+(?:\.\d+)?)s")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_IMAGE_ID = re.compile(r"writing image (sha256:[0-9a-f]{64})")


@dataclass
class _Step:
    stage: str | None
    n: int
    m: int
    instruction: str
    cached: bool = False
    duration: float | None = None
    failed: bool = False
    finished: bool = False

    def event(self, kind: EventKind, **details: Any) -> BuildEvent:
        """An event about this step: every one names the step the same way (number, total,
        stage, instruction), so the widgets can match a step's log lines to its start and end."""
        return BuildEvent(
            kind, step=self.n, total=self.m, stage=self.stage, instruction=self.instruction, **details
        )

    def timing(self) -> StepTiming:
        return StepTiming(
            self.instruction, self.stage, self.n, self.m, self.cached, self.duration, self.failed
        )


class PlainProgressParser:
    """Feed it lines; it returns the events each line means and remembers every step."""

    def __init__(self) -> None:
        self._steps: dict[int, _Step] = {}
        self._order: list[int] = []
        self.failed_step: str | None = None
        self.image_id: str | None = None

    def feed(self, line: str) -> list[BuildEvent]:
        line = line.rstrip("\r\n")
        if not line.strip():
            return []
        match = _VERTEX.fullmatch(line)
        if not match:
            return [BuildEvent("log", line=line)]
        vertex, rest = int(match.group(1)), match.group(2)
        image = _IMAGE_ID.search(rest)
        if image:
            self.image_id = image.group(1)
        if _DIGEST.fullmatch(rest):
            return []
        step_match = _STEP.fullmatch(rest)
        if step_match and vertex not in self._steps:
            return [self._start(vertex, step_match)]
        step = self._steps.get(vertex)
        if step is None:
            return [BuildEvent("log", line=line)]
        return self._update(step, rest, line)

    def _start(self, vertex: int, match: re.Match[str]) -> BuildEvent:
        step = _Step(
            match.group("stage"), int(match.group("n")), int(match.group("m")), match.group("instruction")
        )
        self._steps[vertex] = step
        self._order.append(vertex)
        return step.event("step_started")

    def _update(self, step: _Step, rest: str, line: str) -> list[BuildEvent]:
        done = _DONE.fullmatch(rest)
        if rest == "CACHED":
            step.cached = True
        elif done:
            step.duration = float(done.group(1))
        elif rest.startswith("ERROR") or rest == "CANCELED":
            step.failed = True
            if rest.startswith("ERROR"):
                self.failed_step = step.instruction
        else:
            return [step.event("log", line=line)]
        step.finished = True
        return [
            step.event("step_done", cached=step.cached, duration=step.duration, failed=step.failed, line=line)
        ]

    def timings(self) -> tuple[StepTiming, ...]:
        """Every step seen, in the order BuildKit started them."""
        return tuple(self._steps[vertex].timing() for vertex in self._order)

    def running_step(self) -> str | None:
        """The last step that started and did not finish (what a cancel interrupted)."""
        for vertex in reversed(self._order):
            if not self._steps[vertex].finished:
                return self._steps[vertex].instruction
        return None

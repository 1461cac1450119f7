"""Run a build or a probe in a background thread, so the notebook stays responsive.

A build takes minutes; running it in the kernel's main thread would freeze every widget,
including the Cancel button. The job owns a `threading.Event` that the builders poll, and
reports the outcome through one callback, so the studio never needs to know thread details.
Log lines arrive far faster than a browser wants to redraw, so `LogBuffer` batches them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Job(Generic[T]):
    """One background run of `work(cancel)`; `done(result, error)` is called when it ends."""

    def __init__(
        self,
        work: Callable[[threading.Event], T],
        done: Callable[[T | None, BaseException | None], None],
        name: str = "kit-job",
    ) -> None:
        self.cancel_event = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self._work = work
        self._done = done
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Job[T]:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.cancel_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the job; True when it has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """True until the work has ended (already False while `done` runs, so it can re-enable buttons)."""
        return self._thread.is_alive() and not self._finished.is_set()

    def _run(self) -> None:
        try:
            self.result = self._work(self.cancel_event)
        except BaseException as error:  # reported to the widget, never raised in a thread
            self.error = error
        self._finished.set()
        self._done(self.result, self.error)


class LogBuffer:
    """Keeps the last `limit` lines and pushes them to `sink` at most every `interval` s.

    A line that arrives too soon after a push is not lost: a timer pushes it when the interval
    is over, so a build that goes quiet still shows its last line.
    """

    def __init__(self, sink: Callable[[str], None], limit: int = 400, interval: float = 0.25) -> None:
        self._lines: deque[str] = deque(maxlen=limit)
        self._sink = sink
        self._interval = interval
        self._last = 0.0
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def add(self, line: str) -> None:
        with self._lock:
            self._lines.append(line.rstrip("\n"))
            wait = self._interval - (time.monotonic() - self._last)
            if wait > 0 and self._timer is None:
                self._timer = threading.Timer(wait, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if wait <= 0:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            text = "\n".join(self._lines)
            self._last = time.monotonic()
        self._sink(text)

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()
        self.flush()

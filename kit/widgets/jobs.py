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

    def __init__(self, work: Callable[[threading.Event], T],
                 done: Callable[[T | None, BaseException | None], None], name: str = "kit-job") -> None:
        self.cancel_event = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self._work = work
        self._done = done
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "Job[T]":
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
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self.result = self._work(self.cancel_event)
        except BaseException as error:  # reported to the widget, never raised in a thread
            self.error = error
        self._done(self.result, self.error)


class LogBuffer:
    """Keeps the last `limit` lines and pushes them to `sink` at most every `interval` s."""

    def __init__(self, sink: Callable[[str], None], limit: int = 400, interval: float = 0.25) -> None:
        self._lines: deque[str] = deque(maxlen=limit)
        self._sink = sink
        self._interval = interval
        self._last = 0.0
        self._lock = threading.Lock()

    def add(self, line: str) -> None:
        with self._lock:
            self._lines.append(line.rstrip("\n"))
            due = time.monotonic() - self._last >= self._interval
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            text = "\n".join(self._lines)
            self._last = time.monotonic()
        self._sink(text)

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()
        self.flush()

"""Ctrl-C and `kill`: the kit stops with exit 130 (SIGINT) or 143 (SIGTERM), cleaned up, one line.

Python turns SIGINT into `KeyboardInterrupt`, but SIGTERM kills it outright: no `finally` runs,
so temporary files stay behind and a build's child processes keep running. While `handled()` is
active, SIGTERM raises `Terminated` instead, which unwinds like any exception: the writer's
rollback removes its temporary files, `kit.engines.process` stops the engine's process group, and
the CLI prints one line and exits 143.

Before `main()` runs there is nothing to clean up, but a signal then would print a traceback from
the middle of an import. `quiet_startup()` (called first thing by the `kit` command) makes an early
signal end the process at once with the right code and one line.

`deferred()` holds both signals back for a few system calls that must not be split (renaming a
set of staged files into place), and delivers them right after.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143
_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class Terminated(SystemExit):
    """SIGTERM arrived. A `SystemExit` with code 143, so code that catches `Exception` lets it pass
    and an uncaught one still exits 143."""

    def __init__(self) -> None:
        super().__init__(EXIT_SIGTERM)


def _exit_now(signum: int, frame: FrameType | None) -> None:
    try:
        os.write(2, b"kit: interrupted\n" if signum == signal.SIGINT else b"kit: terminated\n")
    finally:
        os._exit(128 + signum)


def quiet_startup() -> None:
    """Until `handled()` takes over, SIGINT/SIGTERM end the process with one line, no traceback."""
    if threading.current_thread() is threading.main_thread():
        for sig in _SIGNALS:
            signal.signal(sig, _exit_now)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextmanager
def handled() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt and SIGTERM raises `Terminated` inside; the previous
    handlers come back after (so calling the CLI from a test or a notebook changes nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@contextmanager
def deferred() -> Iterator[None]:
    """Block SIGINT and SIGTERM for the body; a signal that came meanwhile is handled on exit."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def exit_code(exc: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM."""
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT


def message(exc: BaseException) -> str:
    return "terminated" if isinstance(exc, Terminated) else "interrupted"


def flush_quietly() -> None:
    """Flush stdout/stderr, ignoring a closed pipe (`kit ... | head`)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass

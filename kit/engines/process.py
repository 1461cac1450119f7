"""Run an engine's CLI, hand each output line to a callback, and stop it cleanly on cancel.

Both builders drive a command-line tool (docker, apptainer) for minutes. Two things matter:
the caller sees output as it comes (progress bars, notebook logs), and a cancel (Ctrl-C, or the
widget's Cancel button setting a `threading.Event`) stops the *whole* tool, which forks helpers
(the docker CLI's BuildKit session, apptainer's starter). So the tool runs in its own process
group, lines are read on a thread, and the waiting thread checks the cancel flag between lines.
A cancel sends SIGINT to the group (both tools then abort the build on their side), escalates
to SIGTERM and SIGKILL if the group lingers, waits, and raises `BuildCancelled`.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kit.base.errors import BuildCancelled

TAIL_LINES = 30
_POLL_S = 0.1
_GRACE_S = (10.0, 5.0)


class LineRun:
    """One CLI run: the exit status and the last lines it printed (stdout and stderr merged)."""

    def __init__(self) -> None:
        self.returncode: int | None = None
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.lines: list[str] = []


def run_lines(
    argv: Sequence[str],
    *,
    on_line: Callable[[str], None],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
    what: str = "build",
    left_behind: str = "nothing was kept",
) -> LineRun:
    """Run ``argv``; call ``on_line`` per output line; raise `BuildCancelled` on cancel.

    ``what`` and ``left_behind`` complete the cancel message ("The Docker build was
    cancelled; nothing was tagged.").
    """
    result = LineRun()
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(process, lines), daemon=True)
    reader.start()
    try:
        _drain(lines, result, on_line, cancel)
    except KeyboardInterrupt:
        _stop_group(process)
        raise BuildCancelled(
            f"The {what} was interrupted (Ctrl-C); {left_behind}.", list(result.tail)
        ) from None
    except BuildCancelled as error:
        _stop_group(process)
        raise BuildCancelled(f"The {what} was cancelled; {left_behind}.", list(result.tail)) from error
    except BaseException:
        _stop_group(process)
        raise
    result.returncode = process.wait()
    reader.join()
    return result


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _drain(
    lines: queue.Queue[str | None],
    result: LineRun,
    on_line: Callable[[str], None],
    cancel: threading.Event | None,
) -> None:
    while True:
        if cancel is not None and cancel.is_set():
            raise BuildCancelled("cancelled")
        try:
            line = lines.get(timeout=_POLL_S)
        except queue.Empty:
            continue
        if line is None:
            return
        result.tail.append(line)
        result.lines.append(line)
        on_line(line)


def _stop_group(process: subprocess.Popen[str]) -> None:
    """SIGINT, then SIGTERM, then SIGKILL to the tool's process group, waiting after each."""
    for sig, grace in ((signal.SIGINT, _GRACE_S[0]), (signal.SIGTERM, _GRACE_S[1]), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait()

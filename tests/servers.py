"""Servers the tests start for real (JupyterLab, JupyterHub, a registry): one way to pick a port,
wait until one answers, and stop its whole process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_until_answers(
    process: subprocess.Popen[bytes],
    url: str,
    limit: float,
    name: str,
    log_tail: Callable[[], str],
    poll: float = 0.5,
) -> None:
    """Fail the test, with the server's log, if it exits or does not answer `url` in `limit` s."""
    deadline = time.monotonic() + limit
    while not answers(url):
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}:\n{log_tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{name} did not answer within {limit} s:\n{log_tail()}")
        time.sleep(poll)


def stop_group(process: subprocess.Popen[bytes], wait: float = 15) -> None:
    """SIGTERM, then SIGKILL, to the process group (servers start their own children)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=wait)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue

"""Shapes of the values that go into job files: checked when `RenderOptions` is made.

Each value lands in one token of an HTCondor submit file or a Slurm batch script (a `#SBATCH`
line, a shell line), so only shapes that need no quoting in either are accepted, and the error
says which shape would do.
"""

from __future__ import annotations

import re

from kit.base.errors import OptionsError

SIZE = re.compile(r"[1-9][0-9]{0,6}(MB|GB|TB)")
TIME = re.compile(r"(?:[0-9]{1,3}-)?[0-9]{1,3}:[0-5][0-9]:[0-5][0-9]")
COUNT = re.compile(r"[1-9][0-9]{0,2}")
WORD = r"[A-Za-z0-9_.+/-]+"
MODULES = re.compile(rf"{WORD}(?: {WORD})*")
COMMAND_WORD = r"[A-Za-z0-9_./=:,@+-]+"
COMMAND = re.compile(rf"{COMMAND_WORD}(?: {COMMAND_WORD})*")
COMMIT = re.compile(r"[0-9a-f]{7,40}")
SIF_PATH = re.compile(r"[A-Za-z0-9_./-]+\.sif")


def _check(pattern: re.Pattern[str], value: str, field: str, what: str, example: str) -> str:
    if not pattern.fullmatch(value):
        raise OptionsError(
            f"{field.replace('_', ' ')} {value!r} is not {what}",
            field=field,
            fix=f"use a value such as {example!r}",
        )
    return value


def size(value: str, field: str) -> str:
    """A memory or disk size as HTCondor writes it: a whole number and MB, GB or TB."""
    return _check(SIZE, value, field, "a whole number with MB, GB or TB", "4GB")


def wall_time(value: str, field: str) -> str:
    """A Slurm time limit: [days-]hours:minutes:seconds."""
    return _check(TIME, value, field, "a time limit [days-]HH:MM:SS", "01:00:00")


def count(value: str, field: str) -> str:
    """A number of CPUs or GPUs, 1 to 999."""
    return _check(COUNT, value, field, "a whole number from 1", "1")


def modules(value: str, field: str) -> str:
    """Environment modules to load, separated by spaces (`apptainer`, `cuda/12.4 apptainer`).
    A word that starts with '-' is an option to `module load` (`--force`, `-f`), not a module."""
    _check(MODULES, value, field, "module names separated by spaces", "apptainer")
    options = [word for word in value.split(" ") if word.startswith("-")]
    if options:
        raise OptionsError(
            f"{field.replace('_', ' ')} {options[0]!r} starts with '-': `module load` would read it "
            "as an option, not a module",
            field=field,
            fix="give module names only, such as 'cuda/12.4 apptainer'",
        )
    return value


def command(value: str, field: str) -> str:
    """The command the job runs in the image: words without quotes, `$` or shell punctuation."""
    return _check(
        COMMAND,
        value,
        field,
        "a command of plain words (no quotes, $ or shell punctuation)",
        "python /app/src/train.py --epochs=3",
    )


def commit(value: str, field: str) -> str:
    """A commit id in hex (7 to 40 digits), as `git rev-parse HEAD` prints it."""
    return _check(COMMIT, value, field, "a hex commit id", "3f2c1ab")


def sif_path(value: str, field: str) -> str:
    """A SIF file's path on the cluster: letters, digits, '.', '_', '-', '/', ending in .sif."""
    if ".." in value.split("/"):
        raise OptionsError(
            f"{field.replace('_', ' ')} {value!r} climbs out with '..'",
            field=field,
            fix="give the SIF's path without '..'",
        )
    if value.startswith("-"):
        raise OptionsError(
            f"{field.replace('_', ' ')} {value!r} starts with '-': apptainer and the job file's "
            "commands would read it as an option",
            field=field,
            fix="give the SIF's path without a leading '-', such as 'images/gpu.sif' or './-gpu.sif'",
        )
    return _check(SIF_PATH, value, field, "a path ending in .sif", "images/gpu.sif")

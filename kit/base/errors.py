"""The kit's exceptions: one root, and a split between "your input is wrong" and "a tool failed".

Front ends (the CLI, the widgets) catch `KitError` and print its message; they never show a
traceback. Every backend converts subprocess, SDK and parser exceptions into one of these, so a
caller needs to know only this module. Exit codes live here too, so the CLI and the tests agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_BROKEN_PIPE = 128 + 13  # the reader of our output went away, as a shell reports SIGPIPE


class KitError(Exception):
    """Root of everything the kit raises on purpose."""

    exit_code = EXIT_FINDINGS


class UserError(KitError):
    """Bad input: the message names the file, the field and the fix."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.field = field
        self.fix = fix
        self.detail = message
        super().__init__(self._one_line())

    def _one_line(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f" [{self.field}]" if self.field else "") + ": "
        elif self.field:
            where = f"[{self.field}]: "
        text = where + self.detail
        if self.fix:
            text += f" (fix: {self.fix})"
        return text.replace("\n", " ")


class UnreadableFile(UserError):
    """A file cannot be read as text at all (missing, not a regular file, too big, not UTF-8):
    bad input wherever it is met, never a finding to list beside others."""


class WorkspaceError(UserError):
    """The Pixi manifest or lock cannot be read or does not say what the kit needs."""


class OptionsError(UserError):
    """A rendering or build option is invalid (unsafe name, unknown environment, ...)."""


class OverwriteRefused(UserError):
    """A file on disk differs from what the kit last wrote there, and --force was not given."""


class BuildNotPossible(KitError):
    """`build="require"` was asked for, but this machine or workspace cannot build."""


class ToolNotFound(KitError):
    """An external program (linter, engine) is not installed; the message says how to get it."""

    def __init__(self, tool: str, hint: str) -> None:
        self.tool = tool
        self.hint = hint
        super().__init__(f"{tool} is not available: {hint}")


class EngineUnavailable(KitError):
    """A container engine cannot be used here (no daemon, no BuildKit, no Apptainer)."""

    def __init__(self, message: str, *, instead: str | None = None) -> None:
        self.instead = instead
        super().__init__(message + (f" Instead: {instead}" if instead else ""))


@dataclass
class LogTail:
    """The last lines of a failing tool's output, kept for the error message."""

    lines: list[str]

    def text(self) -> str:
        return "\n".join(self.lines)


class BuildError(KitError):
    """A build step failed; `log_tail` holds the last lines of its output."""

    def __init__(self, message: str, log_tail: list[str] | None = None, step: str | None = None) -> None:
        self.log_tail = LogTail(list(log_tail or []))
        self.step = step
        super().__init__(message)


class BuildCancelled(BuildError):
    """The user stopped a build (Ctrl-C or the Cancel button); nothing was tagged."""


class ProbeError(KitError):
    """The GPU probe could not run in the image, or its output could not be read."""

    def __init__(self, message: str, output: str = "") -> None:
        self.output = output
        super().__init__(message)


class SchedulerUnavailable(EngineUnavailable):
    """No HTCondor or Slurm answers here (no client tools, or no pool or controller behind them);
    `instead` says what to run on a cluster."""


class SchedulerError(KitError):
    """A scheduler refused a job, or a job failed, was held or removed; the message carries the
    scheduler's own words."""

    def __init__(self, message: str, *, scheduler: str, job_id: str | None = None, said: str = "") -> None:
        self.scheduler = scheduler
        self.job_id = job_id
        self.said = said
        super().__init__(message + (f": {said}" if said else ""))


class RegistryError(KitError):
    """A container registry could not answer a question about an image: not reached in time,
    refused, or answered something that is not what the OCI distribution API says it sends.
    Callers that can do without the answer (job files by digest) turn it into a warning."""

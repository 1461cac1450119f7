"""A finding: one thing a checker has to say about one file, with a hint on how to fix it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning", "info", "skipped"]
# (severity, message, fix): what a rule found wrong, before it is placed at a file and line. Rules
# whose findings all share one place decide a Problem and build the Finding once.
Problem = tuple[Severity, str, str]


@dataclass(frozen=True)
class Finding:
    tool: str  # hadolint, zizmor, schema, apptainer-def, kit
    rule: str  # e.g. DL3006, unpinned-uses, copy-source
    severity: Severity
    file: str  # path from the repository root
    line: int | None
    message: str
    fix: str = ""

    def to_dict(self) -> dict[str, object]:
        """The JSON object of a finding: its fields, plus `field` (the rule) so a finding reads
        like the kit's error objects (file, field, message, fix)."""
        return {**asdict(self), "field": self.rule}

    def one_line(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{self.severity:<7} {self.tool}/{self.rule} {where}: {self.message}"
        return text + (f" (fix: {self.fix})" if self.fix else "")


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def kit_finding(
    rule: str, severity: Severity, file: str, line: int | None, message: str, fix: str
) -> Finding:
    """A finding of the kit's own rules (not a linter's)."""
    return Finding("kit", rule, severity, file, line, message, fix)

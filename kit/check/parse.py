"""The checker's view of the two recipe formats: the neutral parsers, with problems as findings.

The parsers themselves live in `kit.dockerfile` and `kit.deffile` (the build side reads them too);
this module only turns what the def parser could not place into `Finding`s.
"""

from __future__ import annotations

from kit import deffile
from kit.check.findings import Finding
from kit.deffile import DefStage
from kit.dockerfile import Instruction, instructions

__all__ = ["DefStage", "Instruction", "dockerfile_instructions", "parse_def", "def_findings"]


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined, comments dropped, heredocs attached."""
    return instructions(text)


def def_findings(problems: list[deffile.DefProblem], file: str) -> list[Finding]:
    return [Finding("apptainer-def", p.rule, "error", file, p.line, p.message, p.fix) for p in problems]


def parse_def(text: str, file: str) -> tuple[list[DefStage], list[Finding]]:
    """Stages of a def file, and its grammar problems as findings on `file`."""
    parsed = deffile.parse_def(text)
    return parsed.stages, def_findings(parsed.problems, file)

"""Apptainer definition files: stages, headers, sections and build arguments.

A neutral module because two concerns read def files: `kit.check` (to judge them) and
`kit.engines` (to know the stage names and which build args a file takes). Neither should import the
other for it.

Apptainer builds each stage of a multi-stage def on its own, and reads `%arguments` defaults per
stage: a stage that uses `{{ NAME }}` without its own `%arguments` entry for NAME (and without
`--build-arg NAME=...`) fails with "build var NAME is not defined". So arguments are kept per
stage here, never merged across stages.

The parser never raises on text: what it cannot place becomes a `DefProblem`, which the checker
turns into a finding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DEF_SECTIONS = frozenset(
    {
        "arguments",
        "setup",
        "files",
        "environment",
        "post",
        "runscript",
        "startscript",
        "test",
        "labels",
        "help",
        "app",
        "apprun",
        "appinstall",
        "appenv",
        "appfiles",
        "applabels",
        "apphelp",
        "apptest",
        "appstart",
    }
)
DEF_HEADER_KEYS = frozenset(
    {
        "bootstrap",
        "from",
        "stage",
        "registry",
        "namespace",
        "includecmd",
        "mirrorurl",
        "osversion",
        "include",
        "fingerprints",
        "confurl",
        "updateurl",
        "product",
        "user",
        "regcode",
        "productpgp",
        "setopt",
    }
)
BOOTSTRAP_AGENTS = frozenset(
    {
        "docker",
        "docker-daemon",
        "docker-archive",
        "oci",
        "oci-archive",
        "localimage",
        "library",
        "shub",
        "oras",
        "scratch",
        "busybox",
        "debootstrap",
        "yum",
        "zypper",
        "arch",
    }
)
# The agents that start from an image by name (a registry or a daemon), the ones a pin can name.
NAMED_IMAGE_AGENTS = frozenset({"docker", "docker-daemon", "oci"})
# Apptainer's build-argument placeholder: `{{ NAME }}`, spaces optional.
ARGUMENT_USE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_HEADER = re.compile(r"([A-Za-z]+):\s*(.*)")  # fullmatch: `$` passes a final newline
_SECTION = re.compile(r"%([A-Za-z]+)\s*(.*)")


@dataclass(frozen=True)
class DefProblem:
    """Something in a def file that does not fit its grammar (rule, line, message, fix)."""

    rule: str
    line: int
    message: str
    fix: str


@dataclass
class DefSection:
    name: str  # lower-case, without the %
    argument: str  # e.g. "from build" for `%files from build`
    line: int
    body: list[tuple[str, int]] = field(default_factory=list)  # non-blank lines, with numbers


@dataclass
class DefStage:
    header: dict[str, str]  # lower-case keys: bootstrap, from, stage, ...
    header_line: int
    index: int  # 1-based position in the file
    sections: list[DefSection] = field(default_factory=list)
    lines: list[tuple[str, int]] = field(default_factory=list)  # every raw line of the stage

    @property
    def name(self) -> str:
        return self.header.get("stage", "")

    @property
    def key(self) -> str:
        """The stage's name, or `stage N` for an unnamed one (a dict key that is always set)."""
        return self.name or f"stage {self.index}"

    @property
    def image(self) -> str:
        return self.header.get("from", "")

    def sections_named(self, name: str) -> list[DefSection]:
        return [s for s in self.sections if s.name == name]

    @property
    def arguments(self) -> dict[str, str]:
        """This stage's own `%arguments` defaults (KEY=value lines)."""
        out: dict[str, str] = {}
        for section in self.sections_named("arguments"):
            for raw, _ in section.body:
                text = raw.strip()
                if text.startswith("#"):
                    continue
                key, sep, value = text.partition("=")
                if sep and key.strip():
                    out[key.strip()] = value.strip()
        return out

    @property
    def arguments_used(self) -> dict[str, int]:
        """Each `{{ NAME }}` this stage uses, with the first line that uses it."""
        used: dict[str, int] = {}
        for raw, number in self.lines:
            for match in ARGUMENT_USE.finditer(raw):
                used.setdefault(match.group(1), number)
        return used


@dataclass
class DefFile:
    stages: list[DefStage]
    problems: list[DefProblem]


def parse_def(text: str) -> DefFile:
    """Split a def file into stages (header + sections); report what does not fit."""
    stages: list[DefStage] = []
    problems: list[DefProblem] = []
    section: DefSection | None = None
    leading: list[tuple[str, int]] = []  # lines before the first Bootstrap: belong to it
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = _HEADER.fullmatch(line)
        key = header.group(1).lower() if header else ""
        if header and key in DEF_HEADER_KEYS and (section is None or key == "bootstrap"):
            if key == "bootstrap":
                stages.append(DefStage({}, number, len(stages) + 1, lines=leading if not stages else []))
                leading = []
                section = None
            if not stages:
                problems.append(
                    DefProblem(
                        "header-order",
                        number,
                        f"'{header.group(1)}:' comes before any 'Bootstrap:'",
                        "start each stage with a Bootstrap: line",
                    )
                )
                leading.append((raw, number))
                continue
            stages[-1].header[key] = header.group(2).strip()
            stages[-1].lines.append((raw, number))
            continue
        match = _SECTION.fullmatch(line)
        if match:
            name = match.group(1).lower()
            if name not in DEF_SECTIONS:
                problems.append(
                    DefProblem(
                        "unknown-section",
                        number,
                        f"unknown section %{match.group(1)}",
                        f"use one of %{', %'.join(sorted(DEF_SECTIONS))}",
                    )
                )
            if not stages:
                problems.append(
                    DefProblem(
                        "header-order",
                        number,
                        "a section comes before any 'Bootstrap:' header",
                        "start the file with Bootstrap: and From:",
                    )
                )
                stages.append(DefStage({}, number, 1, lines=leading))
                leading = []
            section = DefSection(name, match.group(2).strip(), number)
            stages[-1].sections.append(section)
            stages[-1].lines.append((raw, number))
            continue
        if stages:
            stages[-1].lines.append((raw, number))
        else:
            leading.append((raw, number))
        if section is not None:
            if line:
                section.body.append((raw, number))
        elif line and not line.startswith("#"):
            problems.append(
                DefProblem(
                    "stray-line",
                    number,
                    f"line is neither a header nor inside a section: {line[:60]}",
                    "put it under a %section or remove it",
                )
            )
    problems.extend(_stage_problems(stages))
    return DefFile(stages, problems)


def _stage_problems(stages: list[DefStage]) -> list[DefProblem]:
    if not stages:
        return [DefProblem("no-header", 1, "no 'Bootstrap:' header", "start with Bootstrap: and From:")]
    problems: list[DefProblem] = []
    seen: set[str] = set()
    for stage in stages:
        agent = stage.header.get("bootstrap", "")
        if agent not in BOOTSTRAP_AGENTS:
            problems.append(
                DefProblem(
                    "bootstrap-agent",
                    stage.header_line,
                    f"unknown bootstrap agent {agent!r}",
                    "use docker, docker-daemon, docker-archive, oci-archive or localimage",
                )
            )
        if agent != "scratch" and not stage.image:
            problems.append(
                DefProblem(
                    "missing-from", stage.header_line, "the stage has no 'From:' line", "add From: IMAGE"
                )
            )
        for section in stage.sections_named("files"):
            source = re.fullmatch(r"from\s+(\S+)", section.argument)
            if source and source.group(1) not in seen:
                problems.append(
                    DefProblem(
                        "unknown-stage",
                        section.line,
                        f"%files from {source.group(1)}: no earlier stage has that name",
                        "name the earlier stage with 'Stage: NAME'",
                    )
                )
        if stage.name:
            seen.add(stage.name)
    return problems


def def_arguments_used(def_text: str) -> dict[str, set[str]]:
    """The build arguments (`{{ NAME }}`) each stage uses, by stage (`DefStage.key`).

    Apptainer refuses a `--build-arg` that no stage uses, and a used argument with neither a
    `--build-arg` nor a default in that stage's `%arguments`; callers compare against this.
    """
    return {stage.key: set(stage.arguments_used) for stage in parse_def(def_text).stages}


def undefined_stage_arguments(stages: list[DefStage]) -> list[tuple[DefStage, str, int]]:
    """(stage, NAME, line) for each `{{ NAME }}` a stage uses without its own `%arguments` default."""
    out: list[tuple[DefStage, str, int]] = []
    for stage in stages:
        defined = stage.arguments
        out.extend(
            (stage, name, line)
            for name, line in sorted(stage.arguments_used.items(), key=lambda x: x[1])
            if name not in defined
        )
    return out


def host_file_sources(stages: list[DefStage]) -> list[tuple[str, int]]:
    """Sources of `%files` sections that copy from the host (not `from STAGE`)."""
    out: list[tuple[str, int]] = []
    for stage in stages:
        for section in stage.sections_named("files"):
            if section.argument:
                continue
            for raw, number in section.body:
                words = raw.split()
                if words and not words[0].startswith("#"):
                    out.append((words[0], number))
    return out

"""Small parsers for the two recipe formats: enough structure for the kit's own checks.

They read what the kit renders and what people commonly write; they are not full grammars.
The Apptainer parser doubles as the "parse of the def file" check: anything it cannot place
becomes a finding, not an exception.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from kit.check.findings import Finding

DEF_SECTIONS = frozenset({
    "arguments", "setup", "files", "environment", "post", "runscript", "startscript", "test",
    "labels", "help", "app", "apprun", "appinstall", "appenv", "appfiles", "applabels", "apphelp",
    "apptest", "appstart",
})
DEF_HEADER_KEYS = frozenset({"bootstrap", "from", "stage", "registry", "namespace", "includecmd",
                             "mirrorurl", "osversion", "include", "fingerprints", "confurl",
                             "updateurl", "product", "user", "regcode", "productpgp", "setopt"})
BOOTSTRAP_AGENTS = frozenset({"docker", "docker-daemon", "docker-archive", "oci", "oci-archive",
                              "localimage", "library", "shub", "oras", "scratch", "busybox",
                              "debootstrap", "yum", "zypper", "arch"})


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    @property
    def words(self) -> list[str]:
        try:
            return shlex.split(self.args, comments=False)
        except ValueError:
            return self.args.split()


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined, comments and blank lines dropped."""
    result: list[Instruction] = []
    buffer = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        buffer += stripped
        keyword, _, args = buffer.partition(" ")
        result.append(Instruction(keyword.upper(), args.strip(), start))
        buffer = ""
    return result


def arg_defaults(instructions: list[Instruction]) -> dict[str, str]:
    """Global ARG defaults (those before the first FROM)."""
    out: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            out[name.strip()] = value.strip().strip('"').strip("'")
    return out


def copy_sources(instructions: list[Instruction]) -> list[tuple[str, int]]:
    """Sources of COPY/ADD from the build context (not `--from=` another stage)."""
    out: list[tuple[str, int]] = []
    for ins in instructions:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        words = ins.words
        if any(w.startswith("--from") for w in words):
            continue
        plain = [w for w in words if not w.startswith("--")]
        if plain and plain[0].startswith("["):
            continue
        out.extend((src, ins.line) for src in plain[:-1])
    return out


@dataclass
class DefStage:
    header: dict[str, str]
    header_line: int
    sections: list[tuple[str, str, int, list[tuple[str, int]]]] = field(default_factory=list)
    # (section name, argument such as "from build", line, body lines with numbers)

    @property
    def name(self) -> str:
        return self.header.get("stage", "")


def parse_def(text: str, file: str) -> tuple[list[DefStage], list[Finding]]:
    """Split a def file into stages (header + sections); report what does not fit."""
    stages: list[DefStage] = []
    findings: list[Finding] = []
    section: tuple[str, str, int, list[tuple[str, int]]] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.match(r"^([A-Za-z]+):\s*(.*)$", line)
        if header and header.group(1).lower() in DEF_HEADER_KEYS and (section is None or header.group(1).lower() == "bootstrap"):
            key = header.group(1).lower()
            if key == "bootstrap":
                stages.append(DefStage({}, number))
                section = None
            if not stages:
                findings.append(_def_finding(file, number, "header-order",
                                             f"'{header.group(1)}:' comes before any 'Bootstrap:'",
                                             "start each stage with a Bootstrap: line"))
                continue
            stages[-1].header[key] = header.group(2).strip()
            continue
        match = re.match(r"^%([A-Za-z]+)\s*(.*)$", line)
        if match:
            name = match.group(1).lower()
            if name not in DEF_SECTIONS:
                findings.append(_def_finding(file, number, "unknown-section",
                                             f"unknown section %{match.group(1)}",
                                             f"use one of %{', %'.join(sorted(DEF_SECTIONS))}"))
            if not stages:
                findings.append(_def_finding(file, number, "header-order",
                                             "a section comes before any 'Bootstrap:' header",
                                             "start the file with Bootstrap: and From:"))
                stages.append(DefStage({}, number))
            section = (name, match.group(2).strip(), number, [])
            stages[-1].sections.append(section)
            continue
        if section is not None:
            if line:
                section[3].append((raw, number))
        elif line and not line.startswith("#"):
            findings.append(_def_finding(file, number, "stray-line",
                                         f"line is neither a header nor inside a section: {line[:60]}",
                                         "put it under a %section or remove it"))
    findings.extend(_check_stages(stages, file))
    return stages, findings


def _check_stages(stages: list[DefStage], file: str) -> list[Finding]:
    findings: list[Finding] = []
    if not stages:
        return [_def_finding(file, 1, "no-header", "no 'Bootstrap:' header", "start with Bootstrap: and From:")]
    seen: set[str] = set()
    for stage in stages:
        agent = stage.header.get("bootstrap", "")
        if agent not in BOOTSTRAP_AGENTS:
            findings.append(_def_finding(file, stage.header_line, "bootstrap-agent",
                                         f"unknown bootstrap agent {agent!r}",
                                         "use docker, docker-daemon, docker-archive, oci-archive or localimage"))
        if agent != "scratch" and not stage.header.get("from"):
            findings.append(_def_finding(file, stage.header_line, "missing-from",
                                         "the stage has no 'From:' line", "add From: IMAGE"))
        for name, argument, line, _ in stage.sections:
            source = re.match(r"^from\s+(\S+)$", argument)
            if name == "files" and source and source.group(1) not in seen:
                findings.append(_def_finding(file, line, "unknown-stage",
                                             f"%files from {source.group(1)}: no earlier stage has that name",
                                             "name the earlier stage with 'Stage: NAME'"))
        if stage.name:
            seen.add(stage.name)
    return findings


def _def_finding(file: str, line: int, rule: str, message: str, fix: str) -> Finding:
    return Finding("apptainer-def", rule, "error", file, line, message, fix)


def def_arguments(stages: list[DefStage]) -> dict[str, str]:
    """`%arguments` defaults (KEY=value lines) of all stages."""
    out: dict[str, str] = {}
    for stage in stages:
        for name, _, _, body in stage.sections:
            if name == "arguments":
                for raw, _ in body:
                    key, sep, value = raw.strip().partition("=")
                    if sep:
                        out[key.strip()] = value.strip()
    return out


def def_file_sources(stages: list[DefStage]) -> list[tuple[str, int]]:
    """Sources of `%files` sections that copy from the host (not `from STAGE`)."""
    out: list[tuple[str, int]] = []
    for stage in stages:
        for name, argument, _, body in stage.sections:
            if name != "files" or argument:
                continue
            for raw, number in body:
                words = raw.split()
                if words and not words[0].startswith("#"):
                    out.append((words[0], number))
    return out

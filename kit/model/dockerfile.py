"""Dockerfiles: instructions, stages, build arguments, base images.

A neutral module because both `kit.check` (judging a Dockerfile) and the build side (which build
args a file takes) read Dockerfiles. Parsing is `dockerfile-parse`'s: it joins continuation
lines, keeps comments inside them out of the instruction, and honours the `# escape=` directive.
It does not know BuildKit heredocs (`RUN <<EOF ... EOF`), whose bodies it would read as
instructions; `instructions()` therefore blanks each heredoc body (keeping line numbers) and
parses again, and hands the bodies over on the instruction that owns them.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from dockerfile_parse import DockerfileParser

# A heredoc marker as BuildKit reads it on RUN/COPY/ADD: <<WORD, <<-WORD, <<"WORD", <<'WORD'.
HEREDOC = re.compile(r"(?:^|\s)\d*<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_.-]*)\2")
HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
# $NAME, ${NAME}, ${NAME:-default}, ${NAME-default}: what a FROM line may use from global ARGs.
# A default runs to its `}` but never across another `${`: each try then reads only up to the
# next one, so a line of `${a:-${a:-...` (a recipe from a cloned repository) is read in linear
# time, where `[^}]*` read the rest of the line once for every `${`.
VARIABLE = re.compile(
    r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?-((?:[^}$]|\$(?!\{))*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-case
    args: str  # continuation lines joined, escape characters removed
    line: int  # 1-based first line
    end_line: int
    heredocs: tuple[str, ...] = ()

    @property
    def words(self) -> list[str]:
        try:
            return shlex.split(self.args, comments=False)
        except ValueError:
            return self.args.split()

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form ENTRYPOINT/CMD/RUN, or None for shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return [str(v) for v in value] if isinstance(value, list) else None


@dataclass
class Stage:
    image: str  # as written after FROM (may hold $VARIABLES)
    name: str  # the `AS name`, or ""
    line: int
    instructions: list[Instruction] = field(default_factory=list)


def instructions(text: str) -> list[Instruction]:
    """Every instruction (comments dropped), heredoc bodies attached to their instruction."""
    lines = text.splitlines(keepends=True)
    bodies: dict[int, tuple[str, ...]] = {}
    while True:
        structure = _structure(lines)
        pending = next(
            (
                item
                for item in structure
                if item["instruction"] in HEREDOC_INSTRUCTIONS
                and item["startline"] not in bodies
                and HEREDOC.search(item["value"] or "")
            ),
            None,
        )
        if pending is None:
            break
        bodies[pending["startline"]] = _cut_heredocs(
            lines, pending["endline"] + 1, HEREDOC.findall(pending["value"])
        )
    return [
        Instruction(
            item["instruction"],
            (item["value"] or "").strip(),
            item["startline"] + 1,
            item["endline"] + 1,
            bodies.get(item["startline"], ()),
        )
        for item in structure
        if item["instruction"] != "COMMENT"
    ]


def _structure(lines: list[str]) -> list[dict[str, Any]]:
    parser = DockerfileParser(fileobj=io.BytesIO("".join(lines).encode("utf-8")), env_replace=False)
    return list(parser.structure)


def _cut_heredocs(lines: list[str], start: int, markers: list[tuple[str, str, str]]) -> tuple[str, ...]:
    """Blank the heredoc bodies that begin at `start` (0-based) and return their text."""
    bodies: list[str] = []
    index = start
    for dash, _, word in markers:
        body: list[str] = []
        while index < len(lines):
            raw = lines[index].rstrip("\r\n")
            lines[index] = "\n"
            index += 1
            if (raw.lstrip("\t") if dash else raw) == word:
                break
            body.append(raw)
        bodies.append("\n".join(body))
    return tuple(bodies)


def stages(parsed: list[Instruction]) -> list[Stage]:
    """The build stages, each with the instructions after its FROM."""
    out: list[Stage] = []
    for ins in parsed:
        if ins.keyword == "FROM":
            words = [w for w in ins.words if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else ""
            out.append(Stage(words[0] if words else "", name, ins.line))
        elif out:
            out[-1].instructions.append(ins)
    return out


def _arg_pairs(ins: Instruction) -> list[tuple[str, str | None]]:
    """`ARG A=1 B` -> [("A", "1"), ("B", None)]."""
    pairs: list[tuple[str, str | None]] = []
    for word in ins.words:
        name, sep, value = word.partition("=")
        if name:
            pairs.append((name, value if sep else None))
    return pairs


def arg_defaults(parsed: list[Instruction]) -> dict[str, str]:
    """Global ARG defaults (those before the first FROM)."""
    out: dict[str, str] = {}
    for ins in parsed:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            out.update((name, value) for name, value in _arg_pairs(ins) if value is not None)
    return out


def dockerfile_args_used(text: str) -> set[str]:
    """The build arguments a Dockerfile takes: every name an ARG instruction declares.

    A `--build-arg` only reaches a build through an ARG, so this is the set a caller should pass
    from (BuildKit warns about the others: "build-args were not consumed").
    """
    return {name for ins in instructions(text) if ins.keyword == "ARG" for name, _ in _arg_pairs(ins)}


def resolve(value: str, args: dict[str, str]) -> str:
    """Expand `$NAME`/`${NAME}`/`${NAME:-default}` from global ARG defaults (unknown: default or "")."""

    def expand(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        return args.get(name) or (match.group(2) or "")

    return VARIABLE.sub(expand, value)


def copy_sources(parsed: list[Instruction]) -> list[tuple[str, int]]:
    """Sources of COPY/ADD from the build context (not `--from=` another stage, not heredocs)."""
    out: list[tuple[str, int]] = []
    for ins in parsed:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        words = ins.words
        if any(w.startswith("--from") for w in words):
            continue
        form = ins.exec_form
        plain = form if form is not None else [w for w in words if not w.startswith("--")]
        out.extend((src, ins.line) for src in plain[:-1] if not HEREDOC.match(src))
    return out

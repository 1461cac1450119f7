"""What a build context admits: which files of a workspace an engine would be sent.

Two rules, one per kind of recipe, each an `Admits` that staging (kit.output.staging) walks the
workspace with, so a build copies only what the engine would read:

- an ignore file (`.dockerignore`), matched by the Docker SDK's own matcher (docker-py's port
  of moby's), so a `data/` folder of gigabytes is not copied on every build; a pattern Docker
  would refuse is refused here with one line, and the kit's checks (kit.check.patterns) judge
  patterns with the same matcher;
- a def file, which has no ignore file: the sources of its host `%files` lines.

Which rule an engine's context follows is the engine's own answer
(`ContainerEngine.context_admits`); this module only knows the rules.
"""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from kit.base.errors import UserError
from kit.base.files import TEXT_LIMIT, read_optional_text
from kit.engines.engine import Admits
from kit.model import deployfiles
from kit.model.deffile import host_file_sources, parse_def

if TYPE_CHECKING:
    from docker.utils.build import PatternMatcher

IGNORE_FILE = deployfiles.DOCKERIGNORE


def ignore_file_admits(rendered: Mapping[str, str], source: Path) -> Admits:
    """What the ignore file admits: the freshly rendered one, else the workspace's own, else all."""
    text = rendered.get(IGNORE_FILE)
    if text is None:
        text = read_optional_text(source / IGNORE_FILE, limit=TEXT_LIMIT, field="dockerignore") or ""
    return docker_admits(dockerignore_matcher(text, str(source / IGNORE_FILE)))


def dockerignore_matcher(text: str, where: str = ".dockerignore") -> PatternMatcher:
    """Docker's matcher for an ignore file; a pattern Docker would reject is an error here too."""
    # The Docker SDK (about 0.2 s to import: requests, urllib3) only when a context is matched,
    # so that `import kit.cli` stays quick; no cycle is hidden here.
    from docker.utils.build import PatternMatcher

    patterns = [
        line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    for line in patterns:
        _check_pattern(line, where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            matcher = PatternMatcher([_docker_py_form(p) for p in patterns])
            for compiled in matcher.patterns:  # compile each now, so a bad class fails here
                compiled.match("probe")
    except (re.error, ValueError, RecursionError) as exc:
        raise UserError(
            f"has a pattern Docker cannot read: {exc}",
            file=where,
            field="pattern",
            fix="close or correct the [...] class",
        ) from None
    return matcher


def _docker_py_form(pattern: str) -> str:
    """The SDK's matcher knows no `\\` escapes and reads `[^...]` literally, where Go's filepath.Match
    (Docker's) escapes and negates: rewrite `\\c` as the class `[c]` and `[^` as `[!`."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(f"[{pattern[i + 1]}]")
            i += 2
            continue
        if c == "[" and pattern[i + 1 : i + 2] == "^":
            out.append("[!")
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _check_pattern(pattern: str, where: str) -> None:
    """Go's filepath.Match (what Docker uses) rejects an unclosed `[` and a reversed range."""
    body = pattern[1:] if pattern.startswith("!") else pattern
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if body[i] == "[":
            end = body.find("]", i + 2 if body[i + 1 : i + 2] in ("^", "!") else i + 1)
            if end == -1:
                raise UserError(
                    f"pattern {pattern!r} has an unclosed '['",
                    file=where,
                    field="pattern",
                    fix="close the [...] class or escape the bracket",
                )
            inner = body[i + 1 : end].lstrip("^!")
            for lo, hi in re.findall(r"(.)-(.)", inner):
                if lo > hi:
                    raise UserError(
                        f"pattern {pattern!r} has the reversed range {lo}-{hi}",
                        file=where,
                        field="pattern",
                        fix=f"write {hi}-{lo}",
                    )
            i = end
        i += 1


def docker_admits(matcher: PatternMatcher) -> Admits:
    negations = [p.cleaned_pattern for p in matcher.patterns if p.exclusion]

    def admits(rel: str, is_dir: bool) -> bool:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not matcher.matches(rel):  # type: ignore[arg-type]  # the stubs say PathLike; str is what it splits
                return True
        # An excluded folder is still entered when a `!pattern` may let something inside back in.
        return is_dir and any(n.startswith(rel) for n in negations)

    return admits


def def_admits(def_text: str) -> Admits:
    """The host sources of the def file's `%files` sections, and the folders on their way."""
    stages = parse_def(def_text).stages
    sources = [PurePosixPath(s).as_posix().removeprefix("./") for s, _ in host_file_sources(stages)]
    sources = [s for s in sources if s and not s.startswith("/")]

    def admits(rel: str, is_dir: bool) -> bool:
        return any(
            rel == s
            or rel.startswith(s + "/")
            or fnmatch.fnmatch(rel, s)
            or (is_dir and s.startswith(rel + "/"))
            for s in sources
        )

    return admits

"""Path patterns, each judged by the rules of the tool that reads it.

- `.dockerignore`: Docker's rules, through the same matcher `kit build` stages the context with
  (`kit.engines.context.dockerignore_matcher`, on docker-py's port of moby's matcher), so the
  check and the build agree on what reaches the context.
- `.gitignore`: git's rules, through `pathspec`'s `GitIgnoreSpec`.
- Workflow `paths:` filters: GitHub's filter pattern syntax. No kept library implements it, so
  it is translated here (`*`, `**`, `?` and `+` as GitHub documents them, `[...]`, `!`).

A pattern that cannot be compiled (for example the class `[z-a]`) never raises: the `bad_*`
functions name it, and the matchers leave it out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, lru_cache

import pathspec

from kit.base.errors import UserError
from kit.engines.context import docker_admits, dockerignore_matcher


def read_dockerignore(text: str) -> list[str]:
    """The patterns of a `.dockerignore` as docker-py reads them: stripped, no blanks or comments."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


@lru_cache(maxsize=4096)
def _docker_error(pattern: str) -> tuple[str, str] | None:
    """(why, fix) when Docker cannot read `pattern`, judged by the matcher staging uses."""
    try:
        dockerignore_matcher(pattern)
    except UserError as error:
        why = error.detail if repr(pattern) in error.detail else f"{pattern!r}: {error.detail}"
        return why, error.fix or "fix the pattern or remove it"
    return None


def bad_dockerignore_patterns(patterns: list[str]) -> list[tuple[str, str, str]]:
    """(pattern, why, fix) for each pattern Docker cannot compile (it refuses the build context)."""
    return [(p, *problem) for p in patterns if (problem := _docker_error(p)) is not None]


@lru_cache(maxsize=64)
def _docker_matcher(patterns: tuple[str, ...]) -> Callable[[str, bool], bool]:
    """Staging's `.dockerignore` matcher (Docker's semantics: last match wins, `!` re-includes,
    `\\` escapes, `[^...]` negates, a match on a folder covers what is inside) over the patterns
    that compile; what it admits is what `kit build` copies into the context."""
    good = [p for p in patterns if _docker_error(p) is None]
    return docker_admits(dockerignore_matcher("\n".join(good)))


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether Docker leaves the file `path` (relative to the context) out of the build context.
    A pattern Docker cannot compile is left out here (`bad_dockerignore_patterns` reports it)."""
    return not _docker_matcher(tuple(patterns))(path.strip("/"), False)


def _gitignore_error(line: str) -> str | None:
    try:
        pathspec.GitIgnoreSpec.from_lines([line])
    except (re.error, ValueError) as error:
        return str(error)
    return None


def bad_gitignore_patterns(lines: list[str]) -> list[tuple[str, str]]:
    """(line, why) for each `.gitignore` line that is not a valid pattern (git matches nothing)."""
    return [(line, why) for line in lines if (why := _gitignore_error(line)) is not None]


def gitignore_excludes(text: str, path: str) -> bool:
    """Whether git ignores `path` (relative to the folder of this `.gitignore`)."""
    lines = text.splitlines()
    bad = {line for line, _ in bad_gitignore_patterns(lines)}
    return bool(
        pathspec.GitIgnoreSpec.from_lines([line for line in lines if line not in bad]).match_file(path)
    )


@cache
def _filter_regex(pattern: str) -> re.Pattern[str]:
    """GitHub's filter pattern syntax as a regex: `*` any run without `/`, `**` any run, `?` zero
    or one of the preceding character, `+` one or more of it, `[...]` a class."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c in "?+":
            out.append(c)
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                out.append("[" + pattern[i + 1 : end].replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))  # matched with fullmatch: `$` would pass a final newline


def _filter_error(raw: str) -> str | None:
    try:
        _filter_regex(raw[1:] if raw.startswith("!") else raw)
    except re.error as error:
        return str(error)
    return None


def bad_path_filters(filters: list[str]) -> list[tuple[str, str]]:
    """(filter, why) for each `paths:` entry that is not a valid pattern."""
    return [(f, why) for f in filters if (why := _filter_error(f)) is not None]


def path_filter_matches(filters: list[str], path: str) -> bool:
    """Whether a GitHub `paths:` list triggers on a change to `path` (last match wins, `!` negates)."""
    hit = False
    for raw in filters:
        if _filter_error(raw) is not None:
            continue
        negate = raw.startswith("!")
        if _filter_regex(raw[1:] if negate else raw).fullmatch(path):
            hit = not negate
    return hit

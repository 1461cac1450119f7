"""Glob matching as Docker (.dockerignore) and GitHub (workflow path filters) define it.

Both use `*` for any run of characters within one path component and `**` for any number of
components; they differ in what a match on a folder means, which is why there are two entry points.
"""

from __future__ import annotations

import re
from functools import cache


@cache
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a glob with `*`, `**`, `?` and `[...]` into an anchored regex."""
    out = []
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
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i)
            if end == -1:
                out.append(re.escape(c))
            else:
                out.append(pattern[i:end + 1].replace("[!", "[^"))
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether Docker leaves `path` (relative to the context) out of the build context.

    The last pattern that matches the path, or one of its parent folders, decides; `!` negates.
    """
    excluded = False
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip().strip("/")
        if pattern.startswith("./"):
            pattern = pattern[2:]
        if not pattern:
            continue
        regex = glob_regex(pattern)
        if any(regex.match(c) for c in candidates):
            excluded = not negate
    return excluded


def read_dockerignore(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def path_filter_matches(filters: list[str], path: str) -> bool:
    """Whether a GitHub `paths:` list triggers on a change to `path` (last match wins, `!` negates)."""
    hit = False
    for raw in filters:
        negate = raw.startswith("!")
        if glob_regex(raw[1:] if negate else raw).match(path):
            hit = not negate
    return hit

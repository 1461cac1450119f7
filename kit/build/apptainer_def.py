"""Read and rewrite the headers (``Bootstrap:``/``From:``) of an Apptainer definition file.

The rendered ``apptainer.def`` bootstraps from a registry (``Bootstrap: docker``), like the
lesson's. Sites without registry access (air-gapped clusters, this lab) must start from
something local instead: an image in the Docker daemon (``docker-daemon``), a ``docker save``
tarball (``docker-archive``), an OCI archive (``oci-archive``) or an existing SIF
(``localimage``). Rewriting only the header lines keeps every section and comment byte for
byte, so the result still diffs cleanly against what the kit rendered.

A definition file can hold several stages; each starts with a ``Bootstrap:`` line, and its
header runs until the first ``%section`` line.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from kit.errors import OptionsError

OFFLINE_AGENTS = ("docker-daemon", "docker-archive", "oci-archive", "localimage")

_KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z][A-Za-z0-9_-]*)\s*:\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class DefHeader:
    """One stage's header: where its base comes from and what the stage is called."""

    bootstrap: str
    source: str | None
    stage: str | None
    line: int  # index of the Bootstrap: line


def _header_spans(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) line ranges of each header: from a Bootstrap: line to the next %section."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for index, line in enumerate(lines):
        match = _KEY.match(line)
        if match and match.group("key").lower() == "bootstrap":
            if start is not None:
                spans.append((start, index))
            start = index
        elif line.lstrip().startswith("%") and start is not None:
            spans.append((start, index))
            start = None
    if start is not None:
        spans.append((start, len(lines)))
    return spans


def _keys(lines: list[str], span: tuple[int, int]) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    for index in range(*span):
        match = _KEY.match(lines[index])
        if match:
            found.setdefault(match.group("key").lower(), (index, match.group("value")))
    return found


def read_headers(text: str) -> list[DefHeader]:
    """Every stage header in the file, in order."""
    lines = text.splitlines()
    headers = []
    for span in _header_spans(lines):
        keys = _keys(lines, span)
        from_ = keys.get("from")
        stage = keys.get("stage")
        headers.append(DefHeader(keys["bootstrap"][1], from_[1] if from_ else None,
                                 stage[1] if stage else None, span[0]))
    return headers


def rewrite_bootstrap(text: str, agent: str, source: str, *,
                      stages: Collection[str] | None = None) -> str:
    """Point the named stages (all when ``stages`` is None) at a local base.

    ``source`` is what that agent's ``From:`` takes: an image reference held by the Docker
    daemon (``pixi:noble``) for ``docker-daemon``, a tarball path for ``docker-archive`` and
    ``oci-archive``, a SIF path for ``localimage``. Relative paths resolve against the directory
    the build runs in, which for `ApptainerBuilder` is the definition file's own.
    """
    _check(agent, source)
    lines = text.splitlines(keepends=True)
    plain = [line.rstrip("\r\n") for line in lines]
    spans = _header_spans(plain)
    if not spans:
        raise OptionsError("The definition file has no 'Bootstrap:' header to rewrite.")
    matched = 0
    for span in reversed(spans):
        keys = _keys(plain, span)
        stage = keys["stage"][1] if "stage" in keys else None
        if stages is not None and stage not in stages:
            continue
        matched += 1
        _rewrite_span(lines, keys, agent, source)
    if stages is not None and matched < len(set(stages)):
        known = [h.stage for h in read_headers(text)]
        raise OptionsError(f"No stage named {sorted(set(stages))} in the definition file "
                           f"(its stages: {known}).", field="stages")
    return "".join(lines)


def _check(agent: str, source: str) -> None:
    if agent not in OFFLINE_AGENTS:
        raise OptionsError(f"Unknown offline bootstrap agent {agent!r}.", field="agent",
                           fix="use one of " + ", ".join(OFFLINE_AGENTS))
    if not source.strip() or any(char in source for char in "\r\n"):
        raise OptionsError(f"Bad bootstrap source {source!r}: it must be one non-empty line.",
                           field="source")


def _rewrite_span(lines: list[str], keys: dict[str, tuple[int, str]], agent: str,
                  source: str) -> None:
    """Replace the values in place (keeping each line's key spelling and ending)."""
    boot_index = keys["bootstrap"][0]
    lines[boot_index] = _with_value(lines[boot_index], agent)
    if "from" in keys:
        lines[keys["from"][0]] = _with_value(lines[keys["from"][0]], source)
    else:
        ending = _ending(lines[boot_index])
        lines.insert(boot_index + 1, f"From: {source}{ending}")


def _with_value(line: str, value: str) -> str:
    match = _KEY.match(line.rstrip("\r\n"))
    assert match is not None
    return f"{match.group('indent')}{match.group('key')}: {value}{_ending(line)}"


def _ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")):] or "\n"

"""The episodes' deployment-file code blocks are the kit's own output, refilled by `kit lesson sync`.

An episode marks a generated block with a comment on the line before its fence:
`<!-- kit-file: PATH -->` (the whole file) or `<!-- kit-file: PATH from="RE" to="RE" -->` (the
lines from the first match of `from` through the next match of `to`). The files are rendered for
the embedded example in the lesson style, as a learner's repository holds it (`cuda-exercise/`).
"""

from __future__ import annotations

import re
from pathlib import Path

from dataclasses import replace

from kit.errors import UserError
from kit.jobs.files import EXAMPLE_COMMIT, EXAMPLE_IMAGE_NAME
from kit.options import RenderOptions
from kit.render import render
from kit.workspace import load_workspace
from kit.write import atomic_write

# What episode 2's `kit generate cuda-exercise --env gpu --style lesson` renders.
LESSON_OPTIONS = RenderOptions(environment="gpu", style="lesson", subdir="cuda-exercise")
MARKER = re.compile(r'^<!-- kit-file: (?P<path>\S+)(?: from="(?P<start>[^"]*)" to="(?P<end>[^"]*)")? -->$')
FENCE = re.compile(r"^(`{3,}|~{3,})")


# Episodes 06 and 07: the job files, for an example image and commit (a learner's come from git).
LESSON_JOB_OPTIONS = replace(LESSON_OPTIONS, job_commit=EXAMPLE_COMMIT, job_image_name=EXAMPLE_IMAGE_NAME)


def lesson_files(root: Path) -> dict[str, str]:
    workspace = load_workspace(root / "examples" / "cuda-exercise")
    files = {path: f.text for path, f in render(workspace, LESSON_OPTIONS).items()}
    jobs = render(workspace, LESSON_JOB_OPTIONS, only=("htcondor", "slurm"))
    return {**files, **{path: f.text for path, f in jobs.items()}}


def excerpt(text: str, start: str | None, end: str | None, where: str) -> str:
    """The whole text, or the lines from the first `start` match through the next `end` match."""
    if not start:
        return text
    lines = text.splitlines(keepends=True)
    first = next((i for i, line in enumerate(lines) if re.search(start, line)), None)
    if first is None:
        raise UserError(f"no line matches from={start!r}", file=where, field="kit-file",
                        fix="adjust the regex to a line of the rendered file")
    last = next((i for i in range(first, len(lines)) if end and re.search(end, lines[i])), len(lines) - 1)
    return "".join(lines[first:last + 1])


def refill(markdown: str, files: dict[str, str], where: str) -> str:
    """`markdown` with every marked fence body replaced by the rendered text."""
    lines = markdown.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        marker = MARKER.match(lines[i].strip())
        i += 1
        if not marker:
            continue
        if i >= len(lines) or not FENCE.match(lines[i].strip()):
            raise UserError("a kit-file marker must sit right above a code fence", file=where,
                            field="kit-file", fix="put the fence on the next line")
        fence = FENCE.match(lines[i].strip()).group(1)  # type: ignore[union-attr]
        out.append(lines[i])
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            i += 1
        path = marker.group("path")
        if path not in files:
            raise UserError(f"the kit renders no {path}", file=where, field="kit-file",
                            fix=f"use one of: {', '.join(sorted(files))}")
        body = excerpt(files[path], marker.group("start"), marker.group("end"), where)
        out.append(body if body.endswith("\n") else body + "\n")
    return "".join(out)


def sync_episodes(root: Path, write: bool = True) -> list[str]:
    """Refill every episode; return the episodes whose text changed (written when `write`)."""
    files = lesson_files(root)
    changed: list[str] = []
    for episode in sorted((root / "episodes").glob("*.md")):
        text = episode.read_text(encoding="utf-8")
        new = refill(text, files, str(episode))
        if new != text:
            changed.append(str(episode.relative_to(root)))
            if write:
                atomic_write(episode, new)
    return changed

"""Everything the lesson quotes from the kit is the kit's own output, refilled by `kit lesson sync`.

Three markers, all HTML comments, so Workbench (pandoc) and GitHub render them invisibly:

* `<!-- kit-file: PATH -->` on the line before a code fence: the fence body is the whole rendered
  file; `<!-- kit-file: PATH from="RE" to="RE" -->` takes the lines from the first match of
  `from` through the next match of `to` (`before="RE"`: up to the line before the match).
* `<!-- kit-code:` ... `-->` (the comment spans lines) on the lines before a code fence: the
  comment holds a template, and the fence body is that template with its `{key}` placeholders
  filled from `lesson_values()` (commands that name a tag, the image to pull, ...).
* `<!-- kit: TEMPLATE -->TEXT<!-- /kit -->` inside a line of prose: TEXT is the template filled,
  for example `<!-- kit: `{tag.gpu}` -->`gpu-noble-cuda-12`<!-- /kit -->`.

The files and values are rendered for the embedded example in the lesson style, as a learner's
repository holds it (`cuda-exercise/`); `kit.lesson.template` makes the learners' template
repository from the same files. A marker that is not closed, a fence that never ends or an unknown key is
bad input: sync raises `UserError` (exit 2) before it writes anything.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from kit.base.errors import KitError, UnreadableFile, UserError
from kit.base.files import read_text
from kit.base.yamlfile import load_yaml
from kit.decide.options import PIXI_VERSION, RenderOptions
from kit.decide.plan import resolve
from kit.model.deployfiles import APPTAINER_WORKFLOW, DOCKER_WORKFLOW
from kit.model.workspace import load_workspace
from kit.output.jobfiles import EXAMPLE_COMMIT, EXAMPLE_IMAGE_NAME
from kit.output.render import render
from kit.output.write import atomic_write
from kit.schedulers import scheduler_names

# What episode 2's `kit generate cuda-exercise --env gpu --style lesson` renders.
LESSON_OPTIONS = RenderOptions(environment="gpu", style="lesson", subdir="cuda-exercise")
EXAMPLE = Path("examples") / "cuda-exercise"
# The Markdown files whose markers `kit lesson sync` refills (relative to the lesson root).
PROSE_GLOBS = (
    "episodes/*.md",
    "learners/*.md",
    "instructors/*.md",
    "profiles/*.md",
    "index.md",
    "README.md",
)

# What the kit's probe prints on a GPU machine: the lesson shows it where no image could be probed.
EXAMPLE_PROBE_OUTPUT = """\
PyTorch version: 2.7.1
PyTorch build CUDA version: 12.9
PyTorch build cuDNN version: 91002
PyTorch build NCCL version: 2.27.3
CUDA available: True
Number of GPUs found on system: 1
Apple MPS available: False
Active GPU index: 0
Active GPU name: NVIDIA H200
Machine architecture: x86_64
"""

FILE_MARKER = re.compile(
    r"<!-- kit-file: (?P<path>\S+)"
    r'(?: from="(?P<start>[^"]*)" (?P<how>to|before)="(?P<end>[^"]*)")? -->'  # fullmatch
)
CODE_OPEN = re.compile(r"<!-- kit-code:(?P<rest>.*)")  # fullmatch
# Neither part may run past a marker, so a line of a thousand unclosed openings is read once.
INLINE = re.compile(
    r"<!-- kit: (?P<template>(?:(?!-->).)+?) -->(?P<text>(?:(?!<!-- kit:|<!-- /kit -->).)*)<!-- /kit -->"
)
INLINE_OPEN, INLINE_CLOSE = "<!-- kit:", "<!-- /kit -->"
PLACEHOLDER = re.compile(r"\{(?P<key>[a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)+)\}")
FENCE = re.compile(r"^(`{3,}|~{3,})")


@dataclass(frozen=True)
class Lesson:
    """The rendered files and the values the prose may quote."""

    files: dict[str, str]
    values: dict[str, str]


# Episodes 06 and 07: the job files, for an example image and commit (a learner's come from git).
LESSON_JOB_OPTIONS = replace(LESSON_OPTIONS, job_commit=EXAMPLE_COMMIT, job_image_name=EXAMPLE_IMAGE_NAME)


def lesson_files(root: Path) -> dict[str, str]:
    workspace = load_workspace(root / EXAMPLE)
    files = {path: f.text for path, f in render(workspace, LESSON_OPTIONS).items()}
    jobs = render(workspace, LESSON_JOB_OPTIONS, only=scheduler_names())
    return {**files, **{path: f.text for path, f in jobs.items()}}


def lesson_values(root: Path, files: dict[str, str] | None = None) -> dict[str, str]:
    """Every kit-derived value the prose quotes, by key (`tag.gpu`, `image.base`, ...).

    Tags come from the plan, as the workflows' matrix has them; the prefixes of the `sha` and
    ORAS tags are read from the rendered workflows, so a template change shows up as drift.
    """
    workspace = load_workspace(root / EXAMPLE)
    plan = resolve(workspace, LESSON_OPTIONS)
    files = files if files is not None else lesson_files(root)
    docker = files[DOCKER_WORKFLOW]
    apptainer = files[APPTAINER_WORKFLOW]
    sha = re.search(r"type=sha,prefix=\$\{\{ matrix\.environment \}\}(\S+)", docker)
    oras = re.search(r"oras://\$\{IMAGE,,\}:(\S*)\$TAG", apptainer)
    if not sha or not oras:
        raise KitError(
            "the rendered workflows no longer name the sha or ORAS tag prefix where "
            "kit.lesson looks for it: update lesson_values()"
        )
    subdir = LESSON_OPTIONS.subdir
    values = {
        "pixi.version": PIXI_VERSION,
        "image.base": plan.options.base_image,
        "workspace.folder": subdir,
        "env.primary": plan.primary.name,
        "command.generate": (
            f"kit generate {subdir} --env {plan.primary.name} --style {LESSON_OPTIONS.style}"
        ),
    }
    for env in plan.matrix:
        values[f"tag.{env.name}"] = env.tag
        values[f"cuda.{env.name}"] = env.cuda or ""
        values[f"sha.{env.name}"] = f"{env.name}{sha.group(1)}"
        values[f"oras.{env.name}"] = f"{oras.group(1)}{env.tag}"
    values["probe.example"] = EXAMPLE_PROBE_OUTPUT
    return values


def load_lesson(root: Path) -> Lesson:
    """The lesson's rendered files and values; `root` must be the lesson repository."""
    if not (Path(root) / EXAMPLE).is_dir():
        raise UserError(
            f"is not the lesson repository: it has no {EXAMPLE}",
            file=root,
            field="root",
            fix="run in your copy of the lesson, or pass --root with its folder",
        )
    files = lesson_files(root)
    return Lesson(files, lesson_values(root, files))


def excerpt(text: str, start: str | None, end: str | None, where: str, before: bool = False) -> str:
    """The whole text, or the lines from the first `start` match through the next `end` match
    (up to the line before it with `before`, blank lines at the end dropped)."""
    if not start:
        return text
    lines = text.splitlines(keepends=True)
    try:
        re.compile(start), re.compile(end or "")
    except re.error as exc:
        raise UserError(
            f"the marker's regex does not compile: {exc}",
            file=where,
            field="kit-file",
            fix="correct the from= or to= regex",
        ) from None
    first = next((i for i, line in enumerate(lines) if re.search(start, line)), None)
    if first is None:
        raise UserError(
            f"no line matches from={start!r}",
            file=where,
            field="kit-file",
            fix="adjust the regex to a line of the rendered file",
        )
    found = next(
        (i for i in range(first + 1 if before else first, len(lines)) if end and re.search(end, lines[i])),
        None,
    )
    if found is None:
        raise UserError(
            f"no line after from={start!r} matches {end!r}",
            file=where,
            field="kit-file",
            fix="adjust the regex to a line of the rendered file",
        )
    chosen = lines[first:found] if before else lines[first : found + 1]
    while before and chosen and not chosen[-1].strip():
        chosen.pop()
    return "".join(chosen)


def fill(template: str, values: dict[str, str], where: str, line: int) -> str:
    """`template` with every `{key}` replaced; an unknown key is bad input."""

    def one(match: re.Match[str]) -> str:
        key = match.group("key")
        return _known(values, key, where, "kit", f"line {line}: the kit has no value {key!r}")

    return PLACEHOLDER.sub(one, template)


def _known(table: dict[str, str], key: str, where: str, field: str, unknown: str) -> str:
    """`table[key]`; a key the kit does not know is bad input whose fix lists the known ones."""
    if key not in table:
        raise UserError(unknown, file=where, field=field, fix=f"use one of: {', '.join(sorted(table))}")
    return table[key]


def refill_inline(line: str, values: dict[str, str], where: str, number: int) -> str:
    """A prose line with every `<!-- kit: T -->...<!-- /kit -->` span refilled."""
    if INLINE_OPEN not in line and INLINE_CLOSE not in line:
        return line
    spans = list(INLINE.finditer(line))
    if line.count(INLINE_OPEN) != len(spans) or line.count(INLINE_CLOSE) != len(spans):
        raise UserError(
            f"line {number}: a `<!-- kit: ... -->` marker is not closed by `<!-- /kit -->` on the same line",
            file=where,
            field="kit",
            fix="close every inline kit marker on its own line",
        )
    return INLINE.sub(
        lambda m: (
            f"<!-- kit: {m.group('template')} -->"
            f"{fill(m.group('template'), values, where, number)}<!-- /kit -->"
        ),
        line,
    )


def _fence_end(lines: list[str], start: int, fence: str, where: str) -> int:
    """The index of the line that closes the fence opened at `start`."""
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if stripped.startswith(fence) and stripped.rstrip(fence[0]) == "":
            return i
    raise UserError(
        f"line {start + 1}: the code fence {fence} is never closed",
        file=where,
        field="fence",
        fix=f"close it with a line of {fence}",
    )


def _body(text: str) -> str:
    return text if text.endswith("\n") or not text else text + "\n"


def _code_template(lines: list[str], start: int, rest: str, where: str) -> tuple[str, int]:
    """The template of the kit-code comment opened at `start`, and the index after its `-->`."""
    if rest.strip():
        raise UserError(
            f"line {start + 1}: put the kit-code template on the lines after `<!-- kit-code:`",
            file=where,
            field="kit-code",
            fix="end the marker line after the colon",
        )
    close = next((j for j in range(start + 1, len(lines)) if lines[j].strip() == "-->"), None)
    if close is None:
        raise UserError(
            f"line {start + 1}: the kit-code comment is never closed",
            file=where,
            field="kit-code",
            fix="end the template with a line holding only -->",
        )
    return "".join(lines[start + 1 : close]).rstrip("\n"), close + 1


def refill(markdown: str, files: dict[str, str], where: str, values: dict[str, str] | None = None) -> str:
    """`markdown` with every marked fence body, code template and inline value refilled."""
    values = values or {}
    lines = markdown.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        fence = FENCE.match(stripped)
        if fence:  # an unmarked code block: copied as it is, markers inside it included
            end = _fence_end(lines, i, fence.group(1), where)
            out.extend(lines[i : end + 1])
            i = end + 1
            continue
        file_marker = FILE_MARKER.fullmatch(stripped)
        code_marker = CODE_OPEN.fullmatch(stripped)
        if stripped.startswith("<!-- kit-file") and not file_marker:
            raise UserError(
                f"line {i + 1}: malformed kit-file marker",
                file=where,
                field="kit-file",
                fix='write <!-- kit-file: PATH --> or <!-- kit-file: PATH from="RE" to="RE" -->',
            )
        if not file_marker and not code_marker:
            out.append(refill_inline(lines[i], values, where, i + 1))
            i += 1
            continue
        if file_marker:
            out.append(lines[i])
            i += 1
            path = file_marker.group("path")
            body = excerpt(
                _known(files, path, where, "kit-file", f"the kit renders no {path}"),
                file_marker.group("start"),
                file_marker.group("end"),
                where,
                file_marker.group("how") == "before",
            )
            field = "kit-file"
        else:
            template, after = _code_template(lines, i, code_marker.group("rest"), where)  # type: ignore[union-attr]
            out.extend(lines[i:after])
            body = fill(template, values, where, i + 1)
            i = after
            field = "kit-code"
        if i >= len(lines) or not FENCE.match(lines[i].strip()):
            raise UserError(
                f"line {i}: a {field} marker must sit right above a code fence",
                file=where,
                field=field,
                fix="put the fence on the next line",
            )
        fence_text = FENCE.match(lines[i].strip()).group(1)  # type: ignore[union-attr]
        end = _fence_end(lines, i, fence_text, where)
        out.append(lines[i])
        out.append(_body(body))
        out.append(lines[end])
        i = end + 1
    return "".join(out)


def prose_files(root: Path) -> list[Path]:
    # Everything the globs name but folders: a FIFO or a link must reach the bounded reader and be
    # refused there (exit 2), not be skipped in silence.
    found = {
        p for pattern in PROSE_GLOBS for p in _bounded(root, pattern) if not p.is_dir() or p.is_symlink()
    }
    return sorted(found)


def notebook_files(root: Path) -> list[Path]:
    return sorted(p for p in _bounded(root, "notebooks/*.ipynb") if p.is_file() and not p.is_symlink())


MAX_LESSON_FILES = 2000  # per pattern; the lesson has a few dozen


def _bounded(root: Path, pattern: str) -> list[Path]:
    """What `pattern` names under `root`, refused (exit 2) past MAX_LESSON_FILES: a folder of a
    million files is not a lesson, and is not read to the end to find that out."""
    found = list(itertools.islice(root.glob(pattern), MAX_LESSON_FILES + 1))
    if len(found) > MAX_LESSON_FILES:
        folder = root / pattern.split("/")[0]
        raise UserError(
            f"holds more than {MAX_LESSON_FILES} files named {pattern.split('/')[-1]}",
            file=folder,
            field="lesson files",
            fix="keep only the lesson's pages there",
        )
    return found


def refill_notebook(text: str, lesson: Lesson, where: str) -> str:
    """A notebook's JSON with the markers in its Markdown cells refilled (code cells untouched).

    Written back the way Jupyter and nbformat write it (sorted keys, indent 1, source as lines),
    so an unchanged notebook keeps its bytes.
    """
    try:
        nb = json.loads(text)
        cells = nb["cells"]
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(
            f"not a notebook: {error}", file=where, field="cells", fix="restore the notebook from git"
        ) from error
    changed = False
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        old = "".join(source) if isinstance(source, list) else str(source)
        new = refill(old, lesson.files, f"{where} (cell {index})", lesson.values)
        if new != old:
            cell["source"] = new.splitlines(keepends=True)
            changed = True
    if not changed:
        return text
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def sync_lesson_files(root: Path, write: bool = True) -> list[str]:
    """Refill every marked prose file and notebook; return what changed.

    Everything is computed before anything is written, so bad input anywhere changes nothing.
    """
    lesson = load_lesson(root)
    pending: list[tuple[Path, str]] = []
    for path in prose_files(root):
        text = read_text(path, field="lesson page", error=UnreadableFile)
        new = refill(text, lesson.files, str(path), lesson.values)
        if new != text:
            pending.append((path, new))
    for path in notebook_files(root):
        text = read_text(path, field="notebook", error=UnreadableFile)
        new = refill_notebook(text, lesson, str(path))
        if new != text:
            pending.append((path, new))
    changed = [str(p.relative_to(root)) for p, _ in pending]
    if write:
        for path, new in pending:
            atomic_write(path, new)
    return changed


def unmarked_values(markdown: str, values: Iterable[str]) -> list[str]:
    """Kit-derived values that occur in `markdown` outside every marker (drift waiting to happen).

    Marked spans, kit-file and kit-code fences are removed first; what is left must not quote a
    value the kit derives.
    """
    lines = markdown.splitlines(keepends=True)
    kept: list[str] = []
    i = 0
    skip_next_fence = False
    while i < len(lines):
        stripped = lines[i].strip()
        if FILE_MARKER.fullmatch(stripped):
            skip_next_fence = True
            i += 1
            continue
        if CODE_OPEN.fullmatch(stripped):
            while i < len(lines) and lines[i].strip() != "-->":
                i += 1
            skip_next_fence = True
            i += 1
            continue
        fence = FENCE.match(stripped)
        if fence:
            end = i + 1
            while end < len(lines) and not (
                lines[end].strip().startswith(fence.group(1))
                and lines[end].strip().rstrip(fence.group(1)[0]) == ""
            ):
                end += 1
            if not skip_next_fence:
                kept.extend(lines[i : end + 1])
            skip_next_fence = False
            i = end + 1
            continue
        kept.append(INLINE.sub("", lines[i]))
        i += 1
    rest = "".join(kept)
    return sorted({v for v in values if v and v in rest})


PLACEHOLDER_PREFIX = "SET-ME"


def config_placeholders(root: Path) -> list[tuple[str, str]]:
    """`config.yaml` entries an instructor must still set: (key, what to put there).

    The lesson ships placeholders instead of invented values (a fork's URL, a contact address);
    `kit lesson check` lists the ones left. A missing or unreadable config is one entry too.
    """
    path = root / "config.yaml"
    if not os.path.lexists(path):  # a FIFO, a folder or a link there is refused, not skipped
        return []
    try:
        data = load_yaml(path, field="config.yaml")
    except UnreadableFile:
        raise
    except UserError as error:
        return [("config.yaml", f"fix the YAML: {error.detail}")]
    if not isinstance(data, dict):
        return [("config.yaml", "make it a YAML mapping of lesson settings")]
    return [
        (str(key), str(value)[len(PLACEHOLDER_PREFIX) :].lstrip(": ").strip())
        for key, value in data.items()
        if isinstance(value, str) and value.startswith(PLACEHOLDER_PREFIX)
    ]

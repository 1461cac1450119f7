"""A preview of the lesson site that an instructor opens in a browser, made with pandoc.

The Carpentries Workbench (R, sandpaper) is what publishes the lesson; installing it to look at a
change is a lot to ask before a workshop. pandoc reads the same Markdown, including the
Workbench's fenced divs (`::: challenge`, `::: solution`), so `kit lesson preview` renders the
pages listed in `config.yaml` (index, episodes, learner and instructor pages) to flat HTML files
with one small stylesheet that makes callouts, challenges and collapsed solutions visible. It is a
preview: no Workbench theme, no R code, no glossary; what it shows is the text learners read.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from kit.base.errors import KitError, ToolNotFound, UnreadableFile, UserError
from kit.base.files import read_text, refuse_links
from kit.base.yamlfile import load_yaml
from kit.output.write import atomic_write

STYLESHEET = "kit-preview.css"
PAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.md")  # fullmatch
SECTIONS = ("episodes", "learners", "instructors")
PANDOC_TIMEOUT = 120
PANDOC_HINT = "install pandoc (Debian: apt-get install pandoc; elsewhere: https://pandoc.org/installing.html)"


@dataclass(frozen=True)
class Page:
    source: Path | None  # None: the generated contents page (a lesson without index.md)
    output: str  # file name in the preview folder
    label: str  # what the navigation bar calls it


def lesson_pages(root: Path) -> tuple[str, list[Page]]:
    """The site's title and its pages, in the order `config.yaml` lists them."""
    config_path = root / "config.yaml"
    # Bounded: no FIFO, device or link, a size limit, strict UTF-8, aliases expanded within a budget.
    config: Any = load_yaml(config_path, field="config.yaml")
    if not isinstance(config, dict):
        raise UserError("not a mapping", file=config_path, fix="use the Workbench's config.yaml layout")
    pages: list[Page] = []
    pages.append(Page(root / "index.md" if (root / "index.md").is_file() else None, "index.html", "Home"))
    for section in SECTIONS:
        names = config.get(section) or []
        if not isinstance(names, list) or not all(
            isinstance(n, str) and PAGE_NAME.fullmatch(n) for n in names
        ):
            raise UserError(
                f"{section} must list Markdown file names such as 01-intro.md",
                file=config_path,
                field=section,
                fix="list plain file names (no folders) ending in .md",
            )
        for name in names:
            source = root / section / name
            if not source.is_file() or source.is_symlink():
                raise UserError(
                    f"{section}/{name} is listed but is not a file here",
                    file=config_path,
                    field=section,
                    fix=f"create {section}/{name} or remove it from the list",
                )
            pages.append(Page(source, name[:-3] + ".html", _title(source) or name[:-3]))
    title = str(config.get("title") or "Lesson")
    return title, pages


def _title(source: Path) -> str:
    text = read_text(source, field="lesson page", error=UnreadableFile)[:2000]
    match = re.search(r'(?m)^title:\s*["\']?(.*?)["\']?\s*$', text)
    return match.group(1) if match else ""


def _navigation(title: str, pages: list[Page], current: Page) -> str:
    mark = ' class="current"'
    links = "".join(
        f'<a href="{html.escape(p.output)}"{mark if p is current else ""}>{html.escape(p.label)}</a>'
        for p in pages
    )
    return f'<nav class="lesson"><strong>{html.escape(title)}</strong><br>{links}</nav>\n'


def _contents(title: str, pages: list[Page]) -> str:
    """The home page of a lesson that has no index.md yet: its title and its pages."""
    items = "".join(f"* [{p.label}]({p.output})\n" for p in pages if p.source)
    return f"---\ntitle: {json.dumps(title)}\n---\n\nThis lesson has no `index.md` yet. Its pages:\n\n{items}"


def _pandoc() -> str:
    found = shutil.which("pandoc")
    if not found:
        raise ToolNotFound("pandoc", PANDOC_HINT)
    return found


def _safe_output_dir(out: Path) -> Path:
    """The preview folder: made if missing, never a symlink (nor inside one), never a file."""
    refuse_links(out, "--out")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder", field="--out", fix="choose a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file on the way (`FILE/sub`), no permission, /proc
        raise UserError(
            f"cannot be made: {exc.strerror or exc}",
            file=out,
            field="--out",
            fix="choose a folder you can write to; nothing was written",
        ) from None
    return out


def build_preview(root: Path, out: Path) -> list[Path]:
    """Render every page of the lesson into `out`; return the files written (HTML, then CSS)."""
    root = Path(root)
    title, pages = lesson_pages(root)
    pandoc = _pandoc()
    out = _safe_output_dir(Path(out))
    assets = files("kit") / "templates" / "site"
    css = assets / "preview.css"
    links = root / "links.md"
    written: list[Path] = []
    # The helper files pandoc reads (the Lua filter, each page's navigation) go to a private
    # folder of the kit's, never into the output folder, where a planted link could redirect them.
    with (
        tempfile.TemporaryDirectory(prefix="kit-preview-") as private,
        _filter_file(assets / "preview.lua", Path(private)) as lua,
    ):
        for page in pages:
            inputs = [str(page.source)] + ([str(links)] if links.is_file() else []) if page.source else []
            contents = None if page.source else _contents(title, pages)
            nav = Path(private) / "nav.html"
            nav.write_text(_navigation(title, pages, page), encoding="utf-8")
            try:
                done = subprocess.run(
                    [
                        pandoc,
                        "--from",
                        "markdown",
                        "--to",
                        "html5",
                        "--standalone",
                        "--lua-filter",
                        str(lua),
                        "--css",
                        STYLESHEET,
                        "--include-before-body",
                        str(nav),
                        "--metadata",
                        f"pagetitle={page.label} - {title}",
                        *inputs,
                    ],
                    input=contents,
                    capture_output=True,
                    text=True,
                    timeout=PANDOC_TIMEOUT,
                )
            except subprocess.TimeoutExpired as error:
                raise KitError(f"pandoc took over {PANDOC_TIMEOUT} s on {page.source}") from error
            finally:
                nav.unlink(missing_ok=True)
            if done.returncode:
                raise UserError(
                    f"pandoc could not read it: {done.stderr.strip()[-500:]}",
                    file=page.source,
                    fix="fix the Markdown pandoc points at",
                )
            target = out / page.output
            if target.is_symlink():
                raise UserError(
                    f"{target} is a symbolic link", field="--out", fix="remove it or choose another folder"
                )
            atomic_write(target, done.stdout)
            written.append(target)
    atomic_write(out / STYLESHEET, css.read_text(encoding="utf-8"))
    written.append(out / STYLESHEET)
    return written


class _filter_file:
    """pandoc reads the Lua filter from a path; the package's copy may live in a zip, so it is
    written next to the output for the run and removed afterwards."""

    def __init__(self, resource: Any, out: Path) -> None:
        self.resource, self.path = resource, out / ".kit-preview.lua"

    def __enter__(self) -> Path:
        self.path.write_text(self.resource.read_text(encoding="utf-8"), encoding="utf-8")
        return self.path

    def __exit__(self, *_exc: object) -> None:
        self.path.unlink(missing_ok=True)

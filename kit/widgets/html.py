"""HTML for the studio and the notebooks: tables, highlighted files, diffs, status lines.

Pure functions from the kit's data to HTML strings, so they are tested without a browser and
shared by the `Studio` widgets and the notebooks' `display()` calls. Pygments comes with
JupyterLab; where it is missing every file still shows, as escaped `<pre>` text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kit import api
from kit.api import Makeup, Summary
from kit.check.findings import Finding
from kit.engines.gpu import ProbeReport
from kit.output.write import Change

if TYPE_CHECKING:
    from kit.engines.events import BuildResult

# Pygments lexer names for RenderedFile.language; "singularity" has a lexer of its own.
_LEXERS = {
    "dockerfile": "docker",
    "yaml": "yaml",
    "python": "python",
    "singularity": "singularity",
    "diff": "diff",
    "text": "text",
}
_SEVERITY_COLOURS = {"error": "#b00020", "warning": "#b26a00", "info": "#1a5fb4", "skipped": "#666"}
ERROR_COLOUR = "#b00020"


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], css_class: str = "") -> str:
    """A plain HTML table; cells are escaped here, so callers pass data, not markup."""
    head = "".join(f"<th style='text-align:left;padding:2px 10px'>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td style='text-align:left;padding:2px 10px'>{escape(c)}</td>" for c in row)
        + "</tr>"
        for row in rows
    )
    cls = f" class='{escape(css_class)}'" if css_class else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def code(text: str, language: str = "text") -> str:
    """Syntax-highlighted HTML for one file, or escaped `<pre>` without pygments or a lexer."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import get_lexer_by_name
        from pygments.util import ClassNotFound
    except ImportError:
        return pre(text)
    try:
        lexer = get_lexer_by_name(_LEXERS.get(language, language))
    except ClassNotFound:
        return pre(text)
    formatter = HtmlFormatter(noclasses=True, nowrap=False, style="default")
    return "<div class='kit-code'>" + str(highlight(text, lexer, formatter)) + "</div>"


def pre(text: str) -> str:
    return f"<pre class='kit-code'>{escape(text)}</pre>"


def status_line(message: str, *, error: bool = False) -> str:
    """The one-line status under the form; red for errors, never a traceback."""
    colour = ERROR_COLOUR if error else "#333"
    cls = "kit-error" if error else "kit-info"
    return f"<div class='{cls}' style='color:{colour}'>{escape(message)}</div>"


def summary_table(s: Summary) -> str:
    """Environments, platforms, CUDA requirement and lock status of a workspace."""
    head = (
        f"<b>{escape(s.name)}</b> ({escape(s.root)}/{escape(s.manifest)})<br>"
        f"platforms: {escape(', '.join(s.platforms) or '-')}; "
        f"channels: {escape(', '.join(s.channels) or '-')}; "
        f"lock: {escape(f'pixi.lock version {s.lock_version}' if s.lock else 'none')}"
    )
    rows = [
        (
            e.name,
            f"CUDA {e.cuda}" if e.cuda else "CPU",
            _lock_text(e.locked_for_linux, e.locked_platforms),
            ", ".join(e.features),
            ", ".join(f"{k} {v}" for k, v in e.packages.items()) or "-",
        )
        for e in s.environments
    ]
    warnings = "".join(f"<div style='color:#b26a00'>warning: {escape(w)}</div>" for w in s.warnings)
    return (
        head
        + table(("environment", "CUDA", "lock", "features", "packages"), rows, "kit-summary-table")
        + warnings
    )


def _lock_text(linux: bool, platforms: tuple[str, ...]) -> str:
    if linux:
        return "locked for linux-64"
    return "locked: " + ", ".join(platforms) if platforms else "not locked"


def findings_table(findings: Sequence[Finding]) -> str:
    """The Check button's result: one row per finding, worst first (check sorts them)."""
    if not findings:
        return "<div class='kit-findings-none' style='color:#26a269'>No findings.</div>"
    rows = "".join(_finding_row(f) for f in findings)
    counts = ", ".join(f"{n} {sev}" for sev, n in _counts(findings))
    head = "".join(
        f"<th style='text-align:left;padding:2px 10px'>{h}</th>"
        for h in ("severity", "tool", "rule", "file:line", "message", "fix")
    )
    return (
        f"<div>{escape(counts)}</div><table class='kit-findings-table'><thead><tr>{head}"
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def _finding_row(f: Finding) -> str:
    where = f"{f.file}:{f.line}" if f.line else f.file
    colour = _SEVERITY_COLOURS.get(f.severity, "#333")
    cells = [f"<td style='color:{colour};text-align:left;padding:2px 10px'><b>{escape(f.severity)}</b></td>"]
    cells += [
        f"<td style='text-align:left;padding:2px 10px'>{escape(c)}</td>"
        for c in (f.tool, f.rule, where, f.message, f.fix)
    ]
    return f"<tr class='kit-finding kit-severity-{escape(f.severity)}'>{''.join(cells)}</tr>"


def _counts(findings: Sequence[Finding]) -> list[tuple[str, int]]:
    out: dict[str, int] = {}
    for f in findings:
        out[f.severity] = out.get(f.severity, 0) + 1
    return list(out.items())


def diff_view(changes: Sequence[Change]) -> str:
    """What Write would do, file by file, with the unified diff of every file that changes."""
    parts = []
    for change in changes:
        label = _ACTION_TEXT[change.action]
        parts.append(
            f"<div class='kit-change kit-change-{change.action}'><b>{escape(change.path)}</b>: "
            f"{escape(label)}</div>"
        )
        if change.action != "unchanged":
            parts.append(code(change.diff(), "diff"))
    return "".join(parts) or "<div>No files.</div>"


_ACTION_TEXT = {
    "create": "new file",
    "update": "will be replaced (the kit wrote it before)",
    "append": "the kit's lines will be added",
    "unchanged": "unchanged",
    "refused": "edited since the kit wrote it: Write asks before replacing it",
}


def probe_table(report: ProbeReport) -> str:
    """The probe's answers as a two-column table, with its one-line summary on top."""
    rows = [
        ("engine", report.engine or "-"),
        ("image", report.image or "-"),
        ("PyTorch version", report.torch_version),
        ("built for CUDA", report.cuda_build),
        ("cuDNN", report.cudnn),
        ("NCCL", report.nccl),
        ("CUDA available", report.cuda_available),
        ("GPUs found", report.device_count),
        ("active GPU index", report.device_index),
        ("active GPU name", report.device_name),
        ("Apple MPS available", report.mps_available),
        ("GPU requested", report.gpu_requested),
        ("note", report.gpu_note or "-"),
    ]
    shown = [(k, "-" if v is None else v) for k, v in rows]
    return f"<div><b>{escape(report.summary())}</b></div>" + table(("", ""), shown, "kit-probe-table")


def engine_note(reason: str, commands: Sequence[str]) -> str:
    """Why Build/Probe are off here and, when an engine is missing, what to run elsewhere."""
    note = f"<div class='kit-engine-note'><div style='color:#b26a00'>{escape(reason)}</div>"
    if commands:
        cmds = "".join(f"<pre>{escape(c)}</pre>" for c in commands)
        note += (
            f"<div>On a machine that has the engine, run:</div>{cmds}"
            "<div>Without an engine (Binder, most JupyterHubs): commit and push from a "
            "Codespace or your own machine (Binder cannot push); the GitHub workflow builds "
            "the image.</div>"
        )
    return note + "</div>"


# -- an image's make-up as a stacked bar --------------------------------------------------------

# One colour per part, readable on white and on JupyterLab's dark theme.
MAKEUP_COLOURS = {
    "runtime": "#1a5fb4",
    "environment": "#26a269",
    "app": "#9141ac",
    "overhead": "#e5a50a",
    "other": "#9a9996",
}


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def makeup_svg(makeups: Sequence[Makeup], *, width: int = 640, bar_height: int = 26) -> str:
    """Inline SVG: one stacked bar per image, all on one scale (the largest fills the bar area),
    a legend, and each image's total. Segments carry `<title>` tooltips with the part's MB.

    Deterministic (no ids, no timestamps), so tests compare it as text.
    """
    if not makeups:
        return ""
    label_w = min(200, 16 + 7 * max(len(m.label) for m in makeups))
    total_w = 90
    area = max(width - label_w - total_w, 50)
    largest = max(m.total_bytes for m in makeups) or 1
    row_h = bar_height + 10
    legend_y = 16
    top = 30
    height = top + row_h * len(makeups) + 4
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='kit-makeup-svg' width='{width}' "
        f"height='{height}' viewBox='0 0 {width} {height}' font-family='sans-serif' "
        "font-size='12' role='img'>",
        f"<title>{escape('image make-up: ' + ', '.join(m.label for m in makeups))}</title>",
    ]
    x = 0
    for kind in MAKEUP_COLOURS:
        out.append(
            f"<rect x='{x}' y='{legend_y - 10}' width='12' height='12' "
            f"fill='{MAKEUP_COLOURS[kind]}'/>"
            f"<text x='{x + 16}' y='{legend_y}' fill='currentColor'>{kind}</text>"
        )
        x += 24 + 8 * len(kind)
    for row, m in enumerate(makeups):
        y = top + row * row_h
        out.append(f"<text x='0' y='{y + bar_height * 0.7:.1f}' fill='currentColor'>{escape(m.label)}</text>")
        start = 0.0
        for part in m.parts:
            if part.size_bytes <= 0:
                continue
            w = area * part.size_bytes / largest
            tip = escape(f"{m.label}: {part.kind} {_mb(part.size_bytes)}")
            out.append(
                f"<rect class='kit-makeup-{part.kind}' x='{label_w + start:.1f}' y='{y}' "
                f"width='{w:.1f}' height='{bar_height}' "
                f"fill='{MAKEUP_COLOURS[part.kind]}'><title>{tip}</title></rect>"
            )
            start += w
        out.append(
            f"<text x='{label_w + start + 6:.1f}' y='{y + bar_height * 0.7:.1f}' "
            f"fill='currentColor'>{_mb(m.total_bytes)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def makeup_view(makeups: Makeup | Sequence[Makeup]) -> str:
    """The chart, then a table of every part in MB, then how each make-up was measured."""
    shown = [makeups] if isinstance(makeups, Makeup) else list(makeups)
    if not shown:
        return ""
    kinds = [p.kind for p in shown[0].parts]
    rows = [[m.label, *(_mb(p.size_bytes) for p in m.parts), _mb(m.total_bytes)] for m in shown]
    notes = "".join(
        f"<div style='color:#666'>{escape(m.label)}: {escape(m.method)}"
        + (escape(f"; the SIF file is {_mb(m.file_bytes)}") if m.file_bytes is not None else "")
        + "</div>"
        for m in shown
    )
    return (
        f"<div class='kit-makeup'><b>Image make-up</b><br>{makeup_svg(shown)}"
        + table(("image", *kinds, "total"), rows, "kit-makeup-table")
        + notes
        + "</div>"
    )


def makeup_widget(makeups: Makeup | Sequence[Makeup]) -> Any:
    """`makeup_view` in an ipywidgets HTML, for the studio and the notebooks."""
    import ipywidgets as w  # type: ignore[import-untyped]  # ships no type information

    widget = w.HTML(makeup_view(makeups))
    widget.add_class("kit-makeup")
    return widget


def compare_builds(results: Mapping[str, BuildResult]) -> Any:
    """The notebooks' side by side: `{"lesson": result, "optimized": result}` → one chart on
    one scale, each bar labelled with its key."""

    return makeup_widget([api.image_makeup(r, label=label) for label, r in results.items()])

"""HTML for the studio and the notebooks: tables, highlighted files, diffs, status lines.

Pure functions from the kit's data to HTML strings, so they are tested without a browser and
shared by the `Studio` widgets and the notebooks' `display()` calls. Pygments comes with
JupyterLab; where it is missing every file still shows, as escaped `<pre>` text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from kit.api import Summary
from kit.check.findings import Finding
from kit.gpu import ProbeReport
from kit.write import Change

# Pygments lexer names for RenderedFile.language; "singularity" has a lexer of its own.
_LEXERS = {"dockerfile": "docker", "yaml": "yaml", "python": "python", "singularity": "singularity",
           "diff": "diff", "text": "text"}
_SEVERITY_COLOURS = {"error": "#b00020", "warning": "#b26a00", "info": "#1a5fb4", "skipped": "#666"}
ERROR_COLOUR = "#b00020"


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], css_class: str = "") -> str:
    """A plain HTML table; cells are escaped here, so callers pass data, not markup."""
    head = "".join(f"<th style='text-align:left;padding:2px 10px'>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left;padding:2px 10px'>{escape(c)}</td>" for c in row)
                   + "</tr>" for row in rows)
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
    head = (f"<b>{escape(s.name)}</b> ({escape(s.root)}/{escape(s.manifest)})<br>"
            f"platforms: {escape(', '.join(s.platforms) or '-')}; "
            f"channels: {escape(', '.join(s.channels) or '-')}; "
            f"lock: {escape(f'pixi.lock version {s.lock_version}' if s.lock else 'none')}")
    rows = [(e.name, f"CUDA {e.cuda}" if e.cuda else "CPU", _lock_text(e.locked_for_linux, e.locked_platforms),
             ", ".join(e.features), ", ".join(f"{k} {v}" for k, v in e.packages.items()) or "-")
            for e in s.environments]
    warnings = "".join(f"<div style='color:#b26a00'>warning: {escape(w)}</div>" for w in s.warnings)
    return head + table(("environment", "CUDA", "lock", "features", "packages"), rows,
                        "kit-summary-table") + warnings


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
    head = "".join(f"<th style='text-align:left;padding:2px 10px'>{h}</th>"
                   for h in ("severity", "tool", "rule", "file:line", "message", "fix"))
    return (f"<div>{escape(counts)}</div><table class='kit-findings-table'><thead><tr>{head}"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def _finding_row(f: Finding) -> str:
    where = f"{f.file}:{f.line}" if f.line else f.file
    colour = _SEVERITY_COLOURS.get(f.severity, "#333")
    cells = [f"<td style='color:{colour};text-align:left;padding:2px 10px'><b>{escape(f.severity)}</b></td>"]
    cells += [f"<td style='text-align:left;padding:2px 10px'>{escape(c)}</td>"
              for c in (f.tool, f.rule, where, f.message, f.fix)]
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
        parts.append(f"<div class='kit-change kit-change-{change.action}'><b>{escape(change.path)}</b>: "
                     f"{escape(label)}</div>")
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
        ("engine", report.engine or "-"), ("image", report.image or "-"),
        ("PyTorch version", report.torch_version), ("built for CUDA", report.cuda_build),
        ("cuDNN", report.cudnn), ("NCCL", report.nccl),
        ("CUDA available", report.cuda_available), ("GPUs found", report.device_count),
        ("active GPU index", report.device_index), ("active GPU name", report.device_name),
        ("Apple MPS available", report.mps_available), ("GPU requested", report.gpu_requested),
        ("note", report.gpu_note or "-"),
    ]
    shown = [(k, "-" if v is None else v) for k, v in rows]
    return (f"<div><b>{escape(report.summary())}</b></div>"
            + table(("", ""), shown, "kit-probe-table"))


def engine_note(reason: str, commands: Sequence[str]) -> str:
    """Why Build/Probe are off here and, when an engine is missing, what to run elsewhere."""
    note = f"<div class='kit-engine-note'><div style='color:#b26a00'>{escape(reason)}</div>"
    if commands:
        cmds = "".join(f"<pre>{escape(c)}</pre>" for c in commands)
        note += (f"<div>On a machine that has the engine, run:</div>{cmds}"
                 "<div>Without an engine (Binder, most JupyterHubs): commit and push from a "
                 "Codespace or your own machine (Binder cannot push); the GitHub workflow builds "
                 "the image.</div>")
    return note + "</div>"

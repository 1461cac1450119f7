"""Small helpers that keep the lesson notebooks' cells short and their outputs readable.

The notebooks mirror the episodes and are run end to end by papermill, with parameters from
the command line or CI. What they share lives here, not in copy-pasted cells: finding the
workspace from the notebook's folder, a private scratch copy (a notebook never writes into
`examples/`; the copy is removed when its owner goes away, by default when the kernel exits), the
build decision (`build="auto" | "never" | "require"`), one notice when the workspace has no lock
(after which the lock-only findings and build reasons are not repeated), the guard that keeps
"Run All" from running the exercises' solutions, and HTML views that display in JupyterLab and
stay plain text in a terminal.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kit import api
from kit.base.errors import BuildNotPossible, KitError, ProbeError
from kit.check.findings import Finding
from kit.engines import BuildEvent, BuildResult, EngineStatus
from kit.engines.gpu import GpuMode, ProbeReport
from kit.lesson.sync import EXAMPLE_PROBE_OUTPUT
from kit.output.render import RenderedFile
from kit.widgets import html
from kit.widgets.pipeline import (
    NO_LOCK_REASON,
    build_commands,
    decide_build,
    engine_blockers,
    probe_result,
    workspace_blockers,
)

SCRATCH_PREFIX = "kit-notebook-"
# Findings that only repeat what the lock notice said once (the kit's own rules).
_LOCK_RULES = {"env-locked"}
SOLUTION_HINT = (
    "(Solution not run: try the exercise first, then expand this cell to read it, or "
    "set solutions = True in the first cell and run it again.)"
)


class _Kernel:
    """The default owner of temporary folders: alive until the interpreter exits."""


KERNEL = _Kernel()


class HTML(str):
    """A string that JupyterLab shows as HTML (and a terminal as the markup itself)."""

    def _repr_html_(self) -> str:
        return str(self)


def find_workspace(path: str | Path) -> Path:
    """`path` as given, else relative to this repository's `notebooks/` (a kernel started elsewhere)."""
    candidate = Path(path).expanduser()
    if candidate.is_dir() or candidate.is_absolute():
        return candidate.resolve()
    notebooks = Path(__file__).resolve().parents[2] / "notebooks"
    beside = notebooks / candidate
    return beside.resolve() if beside.is_dir() else candidate.resolve()


def temporary_folder(prefix: str = SCRATCH_PREFIX, owner: object = KERNEL) -> Path:
    """A new temporary folder, removed when `owner` is garbage collected or the interpreter exits
    (a kernel shutting down), whichever comes first."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    weakref.finalize(owner, shutil.rmtree, root, ignore_errors=True)
    return root


def scratch_copy(workspace: Path | str, owner: object = KERNEL) -> Path:
    """A private copy of the workspace in a new temporary folder, safe to generate into; it lives
    as long as `owner` (the kernel by default)."""
    source = Path(workspace)
    root = temporary_folder(SCRATCH_PREFIX, owner)
    return api.copy_workspace(source, root / source.resolve().name)


def has_lock(prepared: api.Prepared) -> bool:
    return prepared.workspace.lock is not None


def lock_notice(prepared: api.Prepared) -> HTML | None:
    """Say once, at the top of a notebook, what the missing lock stops and what still works."""
    if has_lock(prepared):
        return None
    return HTML(
        "<div class='kit-lock-notice' style='border-left:4px solid #e5a50a;padding:4px 10px'>"
        "<b>This workspace has no <code>pixi.lock</code>.</b> Locking needs Pixi and a connection "
        "to conda-forge: run <code>pixi lock</code> in the workspace folder in a Codespace or on "
        "your own machine (not on Binder), and commit the lock. Without it nothing can be built, "
        "because every recipe installs with <code>pixi install --locked</code>. This notebook goes "
        "on with everything else: generating, reading and checking the files. Findings and build "
        "steps that would only repeat this are left out below.</div>"
    )


def without_lock_noise(found: Iterable[Finding], prepared: api.Prepared) -> tuple[list[Finding], int]:
    """`found` less the findings that only say the lock is missing (when it is): (kept, dropped)."""
    items = list(found)
    if has_lock(prepared):
        return items, 0
    kept = [f for f in items if not (f.rule in _LOCK_RULES or "pixi.lock" in f.message)]
    return kept, len(items) - len(kept)


def check(prepared: api.Prepared) -> HTML:
    """`kit check` on the files written for `prepared`, without the missing-lock repeats."""
    kept, dropped = without_lock_noise(
        api.check(prepared.workspace.root, subdir=prepared.location.subdir), prepared
    )
    note = (
        f"<div class='kit-findings-dropped'>{dropped} finding(s) left out (see the note at the top).</div>"
        if dropped
        else ""
    )
    return HTML(html.findings_table(kept) + note)


def solution(run: bool) -> bool:
    """The guard at the top of every code solution: "Run All" leaves it alone unless `run`."""
    if not run:
        print(SOLUTION_HINT)
    return run


def render_options(
    environment: str | None = None,
    style: str = "lesson",
    base_image: str | None = None,
    runtime_image: str | None = None,
    **more: Any,
) -> dict[str, Any]:
    """Keyword arguments for `kit.api`: None means "the kit's default", so it is left out."""
    given = {
        "environment": environment,
        "style": style,
        "base_image": base_image,
        "runtime_image": runtime_image,
        **more,
    }
    return {k: v for k, v in given.items() if v is not None}


def summary(s: api.Summary) -> HTML:
    """The workspace summary; without a lock, its lock warning is left to the notice."""
    if s.lock is None:
        s = dataclasses.replace(s, warnings=tuple(w for w in s.warnings if "pixi.lock" not in w))
    return HTML(html.summary_table(s))


def show_file(files: Mapping[str, RenderedFile], suffix: str) -> HTML:
    """One rendered file, highlighted, found by the end of its path (`"Dockerfile"`)."""
    for path, f in files.items():
        if path == suffix or path.endswith("/" + suffix):
            return HTML(f"<div><b>{html.escape(path)}</b></div>" + html.code(f.text, f.language))
    raise KeyError(f"no rendered file ends with {suffix!r}; files: {', '.join(files)}")


def show_text(path: Path | str, language: str = "text") -> HTML:
    """A file on disk, highlighted."""
    p = Path(path)
    return HTML(
        f"<div><b>{html.escape(p.name)}</b></div>" + html.code(p.read_text(encoding="utf-8"), language)
    )


def workflow(path: Path | str) -> dict[str, Any]:
    """A workflow file as data; YAML 1.1 reads the key `on` as True, so it is put back."""
    from kit.base.files import TEXT_LIMIT
    from kit.base.yamlfile import load_yaml

    data = load_yaml(Path(path), field="workflow", limit=TEXT_LIMIT)  # bounded, aliases budgeted
    if not isinstance(data, dict):
        raise KitError(f"{path} is not a YAML mapping")
    if True in data:
        data["on"] = data.pop(True)
    return {str(k): v for k, v in data.items()}


def show_changes(result: api.GenerateResult) -> HTML:
    return HTML(html.diff_view(result.changes))


def findings(found: Iterable[Finding]) -> HTML:
    return HTML(html.findings_table(list(found)))


def example_probe_report() -> ProbeReport:
    """What the kit's probe reports on a GPU machine (the episodes' example), for where no image
    could be probed."""
    return api.parse_probe_output(EXAMPLE_PROBE_OUTPUT)


def probe_report(report: ProbeReport) -> HTML:
    return HTML(html.probe_table(report))


def engines() -> EngineStatus:
    """What can build here (a few seconds: it asks the Docker daemon and Apptainer)."""
    return api.engine_status()


def build_step(
    mode: str,
    engine: str,
    prepared: api.Prepared,
    *,
    status: EngineStatus | None = None,
    workdir: Path | None = None,
    cancel: threading.Event | None = None,
) -> BuildResult | None:
    """Build when `mode` and this machine allow; print why not, or raise for `mode="require"`.

    Returns the build result, or None when the build was skipped (the reason is printed, with
    the commands to run on a machine that has the engine).
    """
    no_engine = [] if mode == "never" else engine_blockers(engine, status or engines())
    blockers = no_engine + workspace_blockers(prepared.workspace, prepared.options.environment)
    decision = decide_build(mode, blockers, engine)
    print(decision.reason.replace(NO_LOCK_REASON, "no pixi.lock (see the note at the top)"))
    if not decision.go:
        if no_engine:
            print("On a machine with the engine, run:\n  " + "\n  ".join(build_commands(prepared, engine)))
            print(
                "Without an engine (Binder, most hubs), push from a Codespace or your own machine: "
                "the GitHub workflow builds the image."
            )
        return None
    result = api.build_prepared(
        prepared, engine, workdir or temporary_folder("kit-build-"), _print_step, cancel
    )
    print(api.format_build(result))
    return result


def _print_step(event: BuildEvent) -> None:
    if event.kind == "step_started" and event.step is not None:
        total = f"/{event.total}" if event.total else ""
        stage = f"[{event.stage}] " if event.stage else ""
        print(f"#{event.step}{total} {stage}{event.instruction}", flush=True)
    elif event.kind == "finished" and event.failed:
        print("build failed", flush=True)


def probe_step(result: BuildResult | None, mode: str = "auto", gpu: GpuMode = "auto") -> ProbeReport | None:
    """Probe what was built; None (with the reason printed) when nothing was built.

    With `mode="require"` a probe that cannot run raises, so CI sees it.
    """
    if result is None:
        print("No image was built here, so there is nothing to probe.")
        return None
    try:
        report = probe_result(result, gpu)
    except (ProbeError, KitError) as error:
        if mode == "require":
            raise
        print(f"The probe could not run: {error}")
        return None
    print(report.summary())
    return report


def remove_scratch(path: Path | str) -> None:
    """Delete a scratch copy made by `scratch_copy` (its temporary parent included)."""
    target = Path(path)
    parent = target.parent
    shutil.rmtree(parent if parent.name.startswith("kit-notebook-") else target, ignore_errors=True)


__all__ = [
    "EXAMPLE_PROBE_OUTPUT",
    "example_probe_report",
    "HTML",
    "KERNEL",
    "BuildNotPossible",
    "build_step",
    "check",
    "engines",
    "find_workspace",
    "findings",
    "has_lock",
    "lock_notice",
    "probe_report",
    "probe_step",
    "remove_scratch",
    "render_options",
    "scratch_copy",
    "show_changes",
    "show_file",
    "show_text",
    "solution",
    "summary",
    "temporary_folder",
    "without_lock_noise",
    "workflow",
]

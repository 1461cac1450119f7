"""The container studio: a panel that renders, diffs, writes, checks, builds and probes.

`Studio(path).widget` works in any notebook. The class keeps the widgets and the kit apart:
every button calls a plain method (`on_write`, `on_check`, `on_build`, `on_probe`, ...) and
every option goes through `set_option`, so tests drive the same code paths a learner's clicks
do, without a browser. Errors the learner can fix (`kit.base.errors.KitError`) become one red line;
they never surface as a traceback in the notebook.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import ipywidgets as w  # type: ignore[import-untyped]  # ships no type information

from kit import api
from kit.base.errors import BuildCancelled, KitError
from kit.check.findings import Finding
from kit.engines import BuildEvent, BuildResult, EngineStatus
from kit.engines.gpu import ProbeReport
from kit.output.render import RenderedFile
from kit.output.write import Change
from kit.widgets import html
from kit.widgets.form import FIELDS, OptionsForm
from kit.widgets.jobs import Job, LogBuffer
from kit.widgets.notebook import temporary_folder
from kit.widgets.pipeline import (
    Builder,
    Prober,
    build_commands,
    engine_blockers,
    probe_result,
    workspace_blockers,
)

T = TypeVar("T")


class Studio:
    """An interactive panel for one Pixi workspace.

    `out` redirects Write (default: the workspace's repository). `engines` replaces the probe
    of Docker/Apptainer (`kit.engines.engine_status()`), `builder` and `prober` replace the real
    build and probe: all three exist so tests and demos can run without an engine.
    """

    def __init__(
        self,
        workspace: Path | str,
        *,
        out: Path | None = None,
        engines: EngineStatus | None = None,
        builder: Builder | None = None,
        prober: Prober | None = None,
        workdir: Path | None = None,
        **options: Any,
    ) -> None:
        self.directory = Path(workspace)
        self.out = out
        # Loaded and located without the options, so invalid ones still open the studio.
        self.workspace, location = api.open_workspace(self.directory, out=out, subdir=options.get("subdir"))
        self.summary_data = api.summarize(self.workspace)
        self.engines = engines if engines is not None else api.engine_status()
        self._builder: Builder = builder or api.build_prepared
        self._prober: Prober = prober or probe_result
        self._workdir = workdir
        self.prepared: api.Prepared | None = None
        self.files: dict[str, RenderedFile] = {}
        self.changes: list[Change] = []
        self.findings: list[Finding] = []
        self.last_build: BuildResult | None = None
        self.last_probe: ProbeReport | None = None
        self.job: Job[Any] | None = None
        self.form = OptionsForm(self.workspace, location.subdir, options)
        self._make_widgets()
        self.form.observe(self.refresh)
        self.refresh()

    # ------------------------------------------------------------------ widgets

    def _make_widgets(self) -> None:
        self.summary = _css(w.HTML(html.summary_table(self.summary_data)), "kit-summary")
        self.status = _css(w.HTML(""), "kit-status")
        self.preview = _css(w.Tab(), "kit-preview")
        self.diff = _css(w.HTML(""), "kit-diff")
        self.jobs = _css(w.HTML(""), "kit-jobs")
        # The job-file settings, folded, beside the job files they shape.
        self.jobs_tab = _css(w.VBox([self.form.job_box, self.jobs]), "kit-jobs-tab")
        self.views = _css(
            w.Tab(
                children=(self.preview, self.diff, self.jobs_tab),
                titles=("Rendered files", "Diff against disk", "Job files"),
            ),
            "kit-views",
        )
        self.write_button = self._button("Write", "kit-write", "pencil", self.on_write)
        self.check_button = self._button("Check", "kit-check", "check", self.on_check)
        self.build_button = self._button("Build", "kit-build", "cogs", self.on_build)
        self.probe_button = self._button("Probe", "kit-probe", "microchip", self.on_probe)
        self.cancel_button = self._button("Cancel", "kit-cancel", "stop", self.on_cancel)
        self.confirm_label = w.Label("")
        self.confirm_yes = self._button(
            "Yes, overwrite", "kit-confirm-yes", "", lambda: self.on_write(confirm=True)
        )
        self.confirm_no = self._button("No", "kit-confirm-no", "", lambda: self.on_write(confirm=False))
        self.confirm_yes.button_style = "danger"
        self.confirm = _css(w.HBox([self.confirm_label, self.confirm_yes, self.confirm_no]), "kit-confirm")
        _show(self.confirm, False)
        self.engine_note = _css(w.HTML(""), "kit-engine-note")
        self.findings_html = _css(w.HTML(""), "kit-findings")
        # The last Check's findings, folded away until a Check opens them.
        self.checks = _css(
            w.Accordion(children=(self.findings_html,), titles=("Checks",), selected_index=None), "kit-checks"
        )
        self.progress = _css(w.IntProgress(value=0, min=0, max=1, description="build"), "kit-progress")
        self.log = _css(
            w.Textarea(value="", disabled=True, rows=12, layout=w.Layout(width="100%")), "kit-log"
        )
        self.probe_report = _css(w.HTML(""), "kit-probe-report")
        self.makeup = _css(w.HTML(""), "kit-makeup")  # the built image's make-up, as a chart
        for widget in (self.progress, self.log):
            _show(widget, False)
        buttons = w.HBox(
            [self.write_button, self.check_button, self.build_button, self.probe_button, self.cancel_button]
        )
        self.widget = _css(
            w.VBox(
                [
                    w.HTML(f"<h3>Container studio: {html.escape(self.workspace.name)}</h3>"),
                    self.summary,
                    self.form.box,
                    self.status,
                    self.views,
                    buttons,
                    self.confirm,
                    self.engine_note,
                    self.checks,
                    self.progress,
                    self.log,
                    self.makeup,
                    self.probe_report,
                ]
            ),
            "kit-studio",
        )

    @staticmethod
    def _button(text: str, css: str, icon: str, action: Callable[[], object]) -> w.Button:
        button = w.Button(description=text, icon=icon)
        button.on_click(lambda _: action())
        return _css(button, css)

    def control(self, name: str) -> w.ValueWidget:
        """The form widget for option `name` (see `kit.widgets.form.FIELDS`)."""
        return self.form.control(name)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ options and preview

    @property
    def engine(self) -> str:
        return str(self.form.engine.value)

    def options(self) -> dict[str, Any]:
        """The current form as `kit.api.prepare` keyword arguments."""
        return self.form.options()

    def set_option(self, name: str, value: Any) -> None:
        """Set one option as if its widget had been changed (the preview follows)."""
        if name not in FIELDS:
            raise KeyError(f"no option {name!r}; options: {', '.join(FIELDS)}")
        self.form.set(name, value)

    def refresh(self) -> bool:
        """Re-render from the form; False (and the red status line) when the options are invalid."""
        try:
            self.prepared = api.prepare(self.directory, out=self.out, **self.options())
            self.files = self.prepared.render()
            self.changes = api.plan_writes(self.prepared)
        except KitError as error:
            self.prepared, self.files, self.changes = None, {}, []
            self._say(str(error), error=True)
            _show(self.views, False)
            self._update_actions()
            return False
        self._show_files()
        self.diff.value = html.diff_view(self.changes)
        self.jobs.value = self._jobs_html()
        _show(self.views, True)
        self._say(self._ready_text())
        self._update_actions()
        return True

    def _jobs_html(self) -> str:
        """The HTCondor and Slurm job files for these options, or why they cannot be made yet
        (they name a published image: a commit and an image name from git, or the job options)."""
        assert self.prepared is not None
        try:
            files = api.job_files(self.prepared)
        except KitError as error:
            return f"<p class='kit-jobs-missing'>{html.escape(str(error))}</p>"
        return "".join(
            f"<div><b>{html.escape(path)}</b></div>" + html.code(f.text, f.language)
            for path, f in files.items()
        )

    def _ready_text(self) -> str:
        pending = [c for c in self.changes if c.writes]
        refused = [c for c in self.changes if c.action == "refused"]
        text = f"{len(self.files)} files rendered; Write would change {len(pending)}"
        return text + (f", and asks before replacing {len(refused)} edited" if refused else "")

    def _show_files(self) -> None:
        paths = tuple(self.files)
        bodies = [html.code(f.text, f.language) for f in self.files.values()]
        if tuple(self.preview.titles) == paths:
            for child, body in zip(self.preview.children, bodies, strict=True):
                child.value = body
            return
        self.preview.children = tuple(_css(w.HTML(body), "kit-file") for body in bodies)
        self.preview.titles = paths

    def preview_html(self, path_suffix: str = "") -> str:
        """The preview HTML of the first file whose path ends with `path_suffix` (all if "")."""
        pairs = zip(self.preview.titles, self.preview.children, strict=True)
        if not _shown(self.views):
            return ""
        return "".join(child.value for title, child in pairs if title.endswith(path_suffix))

    def _say(self, message: str, *, error: bool = False) -> None:
        self.status.value = html.status_line(message, error=error)

    # ------------------------------------------------------------------ buttons

    def _update_actions(self) -> None:
        running = self.job is not None and self.job.running
        valid = self.prepared is not None
        self.write_button.disabled = not valid or running
        self.check_button.disabled = not valid or running
        blockers = self.build_blockers()
        self.build_button.disabled = not valid or bool(blockers) or running
        self.build_button.tooltip = "; ".join(blockers)
        self.probe_button.disabled = bool(self.probe_blockers()) or running
        self.probe_button.tooltip = "; ".join(self.probe_blockers())
        self.cancel_button.disabled = not running
        self.engine_note.value = self._note(blockers)

    def engine_blockers(self) -> list[str]:
        """Why the selected engine cannot run here (empty when it can)."""
        return engine_blockers(self.engine, self.engines)

    def build_blockers(self) -> list[str]:
        """Why Build is off: the engine, then the workspace (no lock)."""
        env = self.prepared.options.environment if self.prepared else None
        return self.engine_blockers() + workspace_blockers(self.workspace, env)

    def probe_blockers(self) -> list[str]:
        if self.engine_blockers():
            return self.engine_blockers()
        if self.last_build is None or self.last_build.engine != self.engine:
            return [f"build a {self.engine} image first"]
        return []

    def _note(self, blockers: list[str]) -> str:
        if not blockers:
            return ""
        commands = build_commands(self.prepared, self.engine) if self.prepared else []
        if not self.engine_blockers():
            commands = []  # the engine is here; the workspace is what needs fixing
        return html.engine_note("Build and Probe are off here: " + "; ".join(blockers), commands)

    def on_write(self, confirm: bool | None = None) -> list[Change]:
        """Write the rendered files; with hand-edited files, ask first (`confirm=True` forces).

        Returns the changes written (empty when it only asked, or was told No).
        """
        if not self.refresh() or self.prepared is None:
            return []
        refused = [c for c in self.changes if c.action == "refused"]
        if refused and confirm is None:
            self.confirm_label.value = (
                f"Overwrite {len(refused)} edited file"
                f"{'s' if len(refused) != 1 else ''}? "
                f"({', '.join(c.path for c in refused)})"
            )
            _show(self.confirm, True)
            self._say(f"{len(refused)} file(s) were edited since the kit wrote them: confirm to replace")
            return []
        _show(self.confirm, False)
        if confirm is False:
            self._say("Nothing written: the edited files were kept.")
            return []
        return self._write(force=bool(confirm))

    def _write(self, force: bool) -> list[Change]:
        assert self.prepared is not None
        root = self.prepared.location.root
        try:
            written = api.write_planned(self.prepared, api.plan_writes(self.prepared, force=force))
        except (KitError, OSError) as error:
            self._say(str(error), error=True)
            return []
        self.refresh()
        self._say(f"Wrote {len(written)} file(s) under {root}" if written else "Everything was up to date.")
        return written

    def on_check(self) -> list[Finding]:
        """Run the linters and the kit's rules on the preview; show a findings table."""
        if self.prepared is None:
            return []
        self._say("Checking…")
        try:
            self.findings = api.check_rendered(self.prepared)
        except KitError as error:
            self._say(str(error), error=True)
            return []
        self.findings_html.value = html.findings_table(self.findings)
        self.checks.selected_index = 0
        errors = sum(1 for f in self.findings if f.severity == "error")
        self._say(f"Check: {len(self.findings)} finding(s), {errors} error(s)", error=bool(errors))
        return self.findings

    def on_build(self, wait: bool = False) -> Job[BuildResult] | None:
        """Start a build in the background (None, with the reason shown, when it cannot)."""
        blockers = self.build_blockers()
        if self.prepared is None or blockers or (self.job is not None and self.job.running):
            self._say(
                "Cannot build: " + ("; ".join(blockers) or "a job is running or the options are invalid"),
                error=True,
            )
            return None
        prepared, engine, workdir = self.prepared, self.engine, self._scratch()
        self._start_progress()
        buffer = LogBuffer(self._set_log)

        def work(cancel: threading.Event) -> BuildResult:
            return self._builder(
                prepared, engine, workdir, lambda event: self._on_event(event, buffer), cancel
            )

        def done(result: BuildResult | None, error: BaseException | None) -> None:
            buffer.flush()
            self._build_done(result, error)

        return self._run(Job(work, done, name="kit-build"), f"Building with {engine}…", wait)

    def on_cancel(self) -> None:
        """Ask the running build (or probe) to stop; the builder removes what it started."""
        if self.job is not None and self.job.running:
            self.job.cancel()
            self._say("Cancelling…")

    def on_probe(self, wait: bool = False) -> Job[ProbeReport] | None:
        """Run the GPU probe in the last built image, in the background."""
        blockers = self.probe_blockers()
        if blockers or self.last_build is None or (self.job is not None and self.job.running):
            self._say("Cannot probe: " + ("; ".join(blockers) or "a job is running"), error=True)
            return None
        built = self.last_build

        def work(cancel: threading.Event) -> ProbeReport:
            return self._prober(built)

        return self._run(
            Job(work, self._probe_done, name="kit-probe"),
            f"Probing {built.tags[0] if built.tags else built.artifact}…",
            wait,
        )

    def _run(self, job: Job[T], message: str, wait: bool) -> Job[T]:
        self.job = job
        self._say(message)
        job.start()
        self._update_actions()
        if wait:
            job.join()
        return job

    # ------------------------------------------------------------------ job callbacks

    def close(self) -> None:
        """Remove the studio's scratch folder now and close its widgets. Widgets stay registered
        with the kernel, so without this the folder goes when the kernel exits."""
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        self.widget.close()

    def _scratch(self) -> Path:
        if self._workdir is None:  # removed with the studio (or when the kernel exits)
            self._workdir = temporary_folder("kit-studio-", owner=self)
        return self._workdir

    def _start_progress(self) -> None:
        self.progress.value, self.progress.max, self.progress.bar_style = 0, 1, ""
        self.log.value = ""
        _show(self.progress, True)
        _show(self.log, True)

    def _set_log(self, text: str) -> None:
        self.log.value = text

    def _on_event(self, event: BuildEvent, buffer: LogBuffer) -> None:
        if event.kind in ("log", "notice") and event.line:
            buffer.add(event.line)
        elif event.kind in ("step_started", "step_done") and event.step is not None:
            total = event.total or max(self.progress.max, event.step + 1)
            self.progress.max = max(total, 1)
            done = event.step if event.kind == "step_done" else event.step - 1
            self.progress.value = min(max(done, 0), self.progress.max)
            stage = f"[{event.stage}] " if event.stage else ""
            buffer.add(f"#{event.step} {stage}{event.instruction}" + (" (cached)" if event.cached else ""))

    def _build_done(self, result: BuildResult | None, error: BaseException | None) -> None:
        if result is not None:
            self.last_build = result
            self.progress.value = self.progress.max
            self.progress.bar_style = "success"
            what = ", ".join(result.tags) or result.artifact
            self._say(f"Built {what} in {result.duration:.0f} s ({result.size_bytes / 1e6:.0f} MB)")
            self.makeup.value = html.makeup_view(api.image_makeup(result))
        else:
            self.progress.bar_style = "warning" if isinstance(error, BuildCancelled) else "danger"
            self._say(_error_text(error, "build"), error=True)
        self._update_actions()

    def _probe_done(self, report: ProbeReport | None, error: BaseException | None) -> None:
        if report is not None:
            self.last_probe = report
            self.probe_report.value = html.probe_table(report)
            self._say(report.summary())
        else:
            self._say(_error_text(error, "probe"), error=True)
        self._update_actions()


def _error_text(error: BaseException | None, what: str) -> str:
    if isinstance(error, BuildCancelled):
        return f"The {what} was cancelled; nothing was tagged."
    if isinstance(error, KitError):
        return str(error)
    return f"The {what} failed unexpectedly: {type(error).__name__}: {error}"


def _css(widget: Any, css_class: str) -> Any:
    widget.add_class(css_class)
    return widget


def _show(widget: w.Widget, visible: bool) -> None:
    widget.layout.display = None if visible else "none"


def _shown(widget: w.Widget) -> bool:
    return bool(widget.layout.display != "none")

"""The container studio, driven the way a learner's clicks drive it, without a browser.

Engines are injected (`engines=`), so these tests say the same thing on a laptop, in CI and on
Binder; the build test injects a builder too and checks progress, the log, cancel and the probe
wiring. A real build through the studio lives in the marked test at the end.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from kit.base.errors import BuildCancelled
from kit.decide.options import PIXI_VERSION
from kit.engines import BuildEvent, BuildResult, Capability, EngineStatus, EventCallback
from kit.engines.gpu import ProbeReport
from kit.widgets import Studio
from kit.widgets.pipeline import NO_LOCK_REASON
from tests.lab.settings import LabSettings


def status(docker: bool = False, apptainer: bool = False) -> EngineStatus:
    """An engine report as `kit.engines.engine_status()` would give it, chosen by the test."""
    return EngineStatus(
        (
            Capability(
                "docker_daemon",
                docker,
                "Docker Engine 99" if docker else "no daemon at unix:///var/run/docker.sock",
                "start dockerd",
            ),
            Capability(
                "buildkit_client", docker, "/usr/bin/docker" if docker else "no docker CLI", "install docker"
            ),
            Capability(
                "apptainer", apptainer, "apptainer 1.4" if apptainer else "not found", "install Apptainer"
            ),
            Capability("nvidia_runtime", False, "no runtime", "install the toolkit"),
            Capability("host_gpu", False, "no driver", "use a GPU host"),
        )
    )


# A minimal lock (no packages) that makes the workspace "locked for linux-64" for the kit,
# so the Build button can be exercised with an injected builder. Tests only: never a real lock.
MINIMAL_LOCK = """version: 6
environments:
  cpu:
    channels:
    - url: https://conda.anaconda.org/conda-forge/
    packages:
      linux-64: []
  gpu:
    channels:
    - url: https://conda.anaconda.org/conda-forge/
    packages:
      linux-64: []
packages: []
"""


@pytest.fixture
def studio(example: Path) -> Studio:
    return Studio(example, engines=status())


def test_studio_shows_summary_form_and_preview(studio: Studio) -> None:
    assert "cuda-exercise" in studio.summary.value and "CUDA 12" in studio.summary.value
    assert studio.control("environment").value == "gpu"
    assert set(studio.control("environment").options) >= {"cpu", "gpu"}
    assert studio.control("cuda").placeholder == "12"
    assert "Dockerfile" in studio.preview.titles and "apptainer.def" in studio.preview.titles
    assert "CONDA_OVERRIDE_CUDA" in studio.preview_html("Dockerfile")
    assert "kit-studio" in studio.widget._dom_classes
    assert "kit-env" in studio.control("environment")._dom_classes
    assert "kit-preview" in studio.preview._dom_classes


def _descriptions(box: object) -> list[str]:
    return [c.description for c in box.children]  # type: ignore[attr-defined]


def test_the_form_shows_three_fields_and_folds_the_rest_by_the_schemas_groups(studio: Studio) -> None:
    """Environment, style and engine in view; every other option in a closed accordion section
    named after its group (the job-file settings in the Job files tab), each option once."""
    from kit.widgets.form import FIELDS, FORM_GROUPS, SCHEMA

    form = studio.form
    assert _descriptions(form.first) == ["environment", "style", "engine"]
    assert (tuple(form.groups.titles), form.groups.selected_index) == (("Images", "Publishing"), None)
    assert (tuple(form.job_box.titles), form.job_box.selected_index) == (("Job file settings",), None)
    assert form.job_box in studio.jobs_tab.children and studio.jobs_tab in studio.views.children
    shown = [*form.first.children, *(c for box in form.groups.children for c in box.children)]
    shown += list(form.job_box.children[0].children)
    assert sorted(id(c) for c in shown) == sorted(id(form.control(n)) for n in FIELDS)
    for name, _default, spec in SCHEMA:  # each in the section of its own group
        section = {"first": form.first, "jobs": form.job_box.children[0]}.get(spec.group)
        section = section or form.groups.children[FORM_GROUPS.index(spec.group)]
        assert form.control(name) in section.children, name


def test_a_value_set_in_a_folded_group_reaches_the_files(studio: Studio) -> None:
    assert studio.form.group_of("base_image") == "images" and studio.form.groups.selected_index is None
    studio.control("base_image").value = f"ghcr.io/prefix-dev/pixi:{PIXI_VERSION}-jammy"  # as typing would
    assert f"{PIXI_VERSION}-jammy" in studio.preview_html("Dockerfile")
    assert studio.form.group_of("job_cpus") == "jobs" and studio.form.job_box.selected_index is None
    studio.set_option("job_commit", "0123456789abcdef0123456789abcdef01234567")
    studio.set_option("job_image_name", "ghcr.io/some-lab/cuda-lesson")
    studio.control("job_cpus").value = "3"
    assert "request_cpus" in studio.jobs.value and "request_cpus = 3" in studio.jobs.value


def test_changing_environment_and_style_rerenders(studio: Studio) -> None:
    before = studio.preview_html("Dockerfile")
    studio.control("environment").value = "cpu"  # as a click in the dropdown would
    assert (
        'ENVIRONMENT</span><span style="color: #666">=</span><span style="color: #BA2121">"cpu"'
        in studio.preview_html("Dockerfile")
    )
    studio.control("environments").value = ("cpu",)  # a CPU-only matrix: no CUDA at all
    cpu = studio.preview_html("Dockerfile")
    assert cpu != before and "CONDA_OVERRIDE_CUDA" not in cpu
    assert studio.control("cuda").placeholder.startswith("(CPU")
    studio.set_option("style", "optimized")
    optimized = studio.preview_html("Dockerfile")
    assert optimized != cpu and "optimized style" in optimized


def test_invalid_cuda_shows_one_red_line_instead_of_the_preview(studio: Studio) -> None:
    studio.set_option("cuda", "11")
    assert "kit-error" in studio.status.value
    assert "older than the environment" in studio.status.value
    assert "Traceback" not in studio.status.value
    assert studio.preview_html() == ""
    assert studio.write_button.disabled and studio.check_button.disabled
    studio.set_option("cuda", "12.4")
    assert "kit-error" not in studio.status.value
    assert "12.4" in studio.preview_html("Dockerfile")


def test_check_produces_a_findings_table(studio: Studio) -> None:
    findings = studio.on_check()
    assert findings, "the example has no pixi.lock, so the kit's own rules have something to say"
    html = studio.findings_html.value
    assert studio.checks.selected_index == 0  # the folded Checks section opens on its results
    assert "kit-findings-table" in html
    for header in ("severity", "tool", "rule", "file:line", "message", "fix"):
        assert header in html
    assert any(f.rule == "env-locked" for f in findings)


def test_write_then_hand_edit_asks_before_overwriting(example: Path) -> None:
    studio = Studio(example, engines=status())
    assert "new file" in studio.diff.value
    written = studio.on_write()
    assert {c.path for c in written} >= {"Dockerfile", ".dockerignore", "apptainer.def"}
    assert (example / "Dockerfile").is_file()
    assert (example / ".github" / "workflows" / "docker.yaml").is_file()

    dockerfile = example / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# my own line\n")
    studio.set_option("style", "optimized")
    assert studio.on_write() == []  # only asks
    assert studio.confirm.layout.display != "none"
    assert "Overwrite 1 edited file" in studio.confirm_label.value
    assert "# my own line" in dockerfile.read_text()

    assert studio.on_write(confirm=False) == []
    assert "# my own line" in dockerfile.read_text()
    assert studio.confirm.layout.display == "none"

    studio.on_write()
    studio.confirm_yes.click()  # the Yes button forces
    assert "# my own line" not in dockerfile.read_text()
    assert "optimized style" in dockerfile.read_text()


def test_without_an_engine_build_and_probe_are_off_with_the_reason(example: Path) -> None:
    (example / "pixi.lock").write_text(MINIMAL_LOCK)
    studio = Studio(example, engines=status())
    assert studio.build_button.disabled and studio.probe_button.disabled
    note = studio.engine_note.value
    assert "no daemon at" in note
    assert "kit build cuda-exercise --engine docker --env gpu" in note
    assert "docker build --tag cuda-exercise:" in note
    assert "commit and push" in note
    assert studio.on_build() is None and "Cannot build" in studio.status.value
    studio.set_option("engine", "apptainer")
    assert "apptainer build" in studio.engine_note.value and studio.build_button.disabled


def test_without_a_lock_build_is_off_even_with_an_engine(studio: Studio) -> None:
    studio.engines = status(docker=True)
    studio.refresh()
    assert studio.build_button.disabled
    assert NO_LOCK_REASON.split(":")[0] in studio.engine_note.value


def _fake_builder(block: threading.Event | None = None):  # type: ignore[no-untyped-def]
    def build(prepared, engine, workdir, on_event: EventCallback, cancel: threading.Event) -> BuildResult:  # type: ignore[no-untyped-def]
        on_event(BuildEvent("step_started", step=1, total=2, stage="build", instruction="COPY . ."))
        on_event(BuildEvent("log", line="#5 copying context"))
        on_event(BuildEvent("step_done", step=1, total=2, stage="build"))
        if block is not None:
            while not cancel.is_set():
                time.sleep(0.01)
            raise BuildCancelled("cancelled by the user")
        on_event(BuildEvent("step_started", step=2, total=2, stage="final", instruction="ENTRYPOINT"))
        on_event(BuildEvent("finished", duration=0.1))
        return BuildResult("docker", "sha256:abc", ("cuda-exercise:test",), 1_000_000, 0.1)

    return build


def _fake_probe(result: BuildResult) -> ProbeReport:
    return ProbeReport(
        torch_version="2.7.1",
        cuda_available=False,
        engine=result.engine,
        image=result.tags[0],
        gpu_note="no NVIDIA runtime in this Docker daemon",
    )


def test_build_runs_in_the_background_then_probe_reports(example: Path) -> None:
    (example / "pixi.lock").write_text(MINIMAL_LOCK)
    studio = Studio(
        example,
        engines=status(docker=True),
        builder=_fake_builder(),
        prober=_fake_probe,
        workdir=example.parent / "scratch",
    )
    assert not studio.build_button.disabled and studio.probe_button.disabled
    job = studio.on_build(wait=True)
    assert job is not None and job.error is None
    assert studio.progress.value == studio.progress.max and studio.progress.bar_style == "success"
    assert "copying context" in studio.log.value and "COPY . ." in studio.log.value
    assert "Built cuda-exercise:test" in studio.status.value
    assert not studio.probe_button.disabled
    probe = studio.on_probe(wait=True)
    assert probe is not None and probe.error is None
    assert "kit-probe-table" in studio.probe_report.value
    assert "PyTorch 2.7.1" in studio.probe_report.value


def test_cancel_stops_a_running_build(example: Path) -> None:
    (example / "pixi.lock").write_text(MINIMAL_LOCK)
    studio = Studio(
        example,
        engines=status(docker=True),
        builder=_fake_builder(threading.Event()),
        workdir=example.parent / "scratch",
    )
    job = studio.on_build()
    assert job is not None
    deadline = time.monotonic() + 5
    while "copying context" not in studio.log.value and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not studio.cancel_button.disabled and studio.build_button.disabled
    studio.cancel_button.click()
    assert job.join(5)
    assert isinstance(job.error, BuildCancelled)
    assert "cancelled" in studio.status.value and studio.progress.bar_style == "warning"
    assert studio.last_build is None and studio.probe_button.disabled


def test_repr_is_the_widget(studio: Studio) -> None:
    bundle = studio._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


@pytest.mark.docker
def test_a_real_build_and_probe_through_the_studio(tmp_path: Path, lab: LabSettings) -> None:
    from tests.lab.settings import copy_workspace

    settings = lab
    workspace = copy_workspace(tmp_path / "cuda-exercise", settings)
    studio = Studio(
        workspace,
        workdir=tmp_path / "scratch",
        base_image=settings.base_image,
        runtime_image=settings.runtime_image,
    )
    assert not studio.build_button.disabled, studio.engine_note.value
    job = studio.on_build(wait=True)
    assert job is not None and job.error is None, studio.status.value
    probe = studio.on_probe(wait=True)
    assert probe is not None and probe.error is None, studio.status.value
    assert studio.last_probe is not None and studio.last_probe.torch_version


# -- the pipeline the studio and the notebooks share ---------------------------------------------


def test_build_modes() -> None:
    from kit.base.errors import BuildNotPossible
    from kit.widgets.pipeline import decide_build

    assert decide_build("auto", [], "docker").go
    skipped = decide_build("auto", [NO_LOCK_REASON], "docker")
    assert not skipped.go and "no pixi.lock: run `pixi lock` on a connected machine" in skipped.reason
    assert not decide_build("never", [], "docker").go
    with pytest.raises(BuildNotPossible, match="no pixi.lock"):
        decide_build("require", [NO_LOCK_REASON], "docker")
    with pytest.raises(BuildNotPossible):
        decide_build("sometimes", [], "docker")


def test_notebook_build_step_says_why_it_skips(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kit import api
    from kit.widgets import notebook as nb

    prepared = api.prepare(example)
    assert nb.build_step("auto", "docker", prepared, status=status()) is None
    printed = capsys.readouterr().out
    assert "no pixi.lock" in printed and "kit build cuda-exercise --engine docker --env gpu" in printed
    assert nb.build_step("auto", "docker", prepared, status=status(docker=True)) is None
    assert "kit build" not in capsys.readouterr().out  # an engine is here: only the lock is missing


def test_staged_copy_leaves_installed_environments_behind(example: Path, tmp_path: Path) -> None:
    from kit import api
    from kit.output import staging

    (example / ".pixi" / "envs" / "gpu").mkdir(parents=True)
    (example / "old.sif").write_text("image")
    root = staging.stage_build_context(api.prepare(example, style="optimized"), tmp_path / "stage")
    assert (root / "Dockerfile").read_text().startswith("# Generated by pixi-deploy-kit (optimized")
    assert (root / "pixi.toml").is_file() and (root / "app" / "torch_detect_GPU.py").is_file()
    assert not (root / ".pixi").exists() and not (root / "old.sif").exists()
    assert not (example / "Dockerfile").exists(), "staging never writes into the workspace"


def test_the_studio_scratch_folder_goes_with_the_studio(example: Path) -> None:
    """No leaks: the folder a studio builds in goes with `close()`, or when the kernel exits."""
    studio = Studio(example, engines=status())
    folder = studio._scratch()  # noqa: SLF001  (the folder builds write SIFs into)
    assert folder.is_dir()
    studio.close()
    assert not folder.exists()

"""The kit's rendered files, built and run with the real engines, in both styles.

What a learner does at the end of the lesson, end to end: `kit.api.build` renders and stages the
lab's locked workspace, BuildKit (or Apptainer) builds it, the entrypoint activates the Pixi
environment, and the GPU probe runs real PyTorch (the lab's CPU build) inside the image.

Cost on CI (2 cores) is what shapes this file: each style is built once per engine in a
module-scoped fixture and every check reads that one image; every image and SIF made here is
removed at the end; builds are bounded by a cancel timer, so a hung engine fails the test
instead of eating the suite's time. Tags carry the process id, so sessions running side by side
on one daemon never touch each other's images.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kit import api
from kit.decide.options import BuildOptions
from kit.engines import BuildEvent, BuildResult
from kit.engines.gpu import docker_has_nvidia_runtime, host_has_nvidia_driver
from tests.lab.settings import LabSettings, copy_workspace

STYLES = ("lesson", "optimized")
RUN_ID = str(os.getpid())
TORCH = "2.13.0"
BUILD_LIMIT_S = 600
# mksquashfs with its default gzip spends 70-100 s of a 2-core CI machine per SIF; lz4 packs the
# same files in about 10 s. The compression is not what these tests check.
SQUASHFS_ARGS = "-comp lz4"


@dataclass(frozen=True)
class Built:
    """One finished build and everything the tests read from it."""

    style: str
    environment: str
    image: str  # the Docker tag, or the SIF path
    result: BuildResult
    events: tuple[BuildEvent, ...]
    build_args: Mapping[str, str]


def lab_options(lab: LabSettings, style: str, environment: str, **extra: Any) -> dict[str, Any]:
    """Render options for the lab: its pixi and runtime images, a per-style image name."""
    return {
        "style": style,
        "environment": environment,
        "base_image": lab.base_image,
        "runtime_image": lab.runtime_image,
        "image_name": f"kit-test-engines/{style}",
        **extra,
    }


@contextmanager
def bounded(seconds: float) -> Iterator[threading.Event]:
    """A cancel flag that sets itself after ``seconds``: a hung build ends as BuildCancelled."""
    cancel = threading.Event()
    timer = threading.Timer(seconds, cancel.set)
    timer.daemon = True
    timer.start()
    try:
        yield cancel
    finally:
        timer.cancel()


def build_in_lab(
    lab: LabSettings,
    workspace: Path,
    *,
    engine: str,
    style: str,
    environment: str,
    sif_dir: Path | None = None,
    **extra: Any,
) -> Built:
    """`kit.api.build` of the lab workspace, collecting the events it reports."""
    options = lab_options(lab, style, environment, **extra)
    tag = f"{environment}-{style}-{RUN_ID}"
    events: list[BuildEvent] = []
    with bounded(BUILD_LIMIT_S) as cancel:
        result = api.build(
            workspace,
            build=BuildOptions(engine=engine, tag=tag),  # type: ignore[arg-type]
            on_event=events.append,
            cancel=cancel,
            sif_dir=sif_dir,
            **options,
        )
    args = api.build_args(api.prepare(workspace, **options))
    image = result.tags[0] if engine == "docker" else result.artifact
    return Built(style, environment, image, result, tuple(events), args)


def build_lab_sif(lab: LabSettings, root: Path, style: str) -> Built:
    """The lab workspace's cpu environment, copied under ``root``, built into a SIF in
    ``root/sif`` (which the builder makes) by the kit: from the lab's pixi image through the
    Docker socket (``Bootstrap: docker-daemon``), so nothing is pulled and nothing is exported,
    and with a fast squashfs compression (the tests time nothing, they wait)."""
    workspace = copy_workspace(root / "workspace", lab)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("APPTAINER_MKSQUASHFS_ARGS", SQUASHFS_ARGS)
        return build_in_lab(
            lab,
            workspace,
            engine="apptainer",
            style=style,
            environment="cpu",
            sif_dir=root / "sif",
            bootstrap="docker-daemon",
        )


def remove_tag(client: Any, tag: str) -> None:
    """Untag (and so remove) an image made here; never by id, which could drop others' tags."""
    from docker.errors import ImageNotFound

    try:
        client.images.remove(tag)
    except ImageNotFound:
        pass


# ---------------------------------------------------------------- engines


@pytest.fixture(scope="module")
def apptainer(docker_client: Any, apptainer_path: str) -> str:
    """The apptainer the kit finds (KIT_APPTAINER, the lab launcher, or PATH), with Docker beside it."""
    return apptainer_path


# ---------------------------------------------------------------- Docker, both styles


@pytest.fixture(scope="module", params=STYLES)
def docker_built(
    request: pytest.FixtureRequest,
    lab: LabSettings,
    docker_client: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Built]:
    """Each style built once (environment cpu) and shared by the Docker tests below."""
    style = str(request.param)
    workspace = copy_workspace(tmp_path_factory.mktemp(f"docker-{style}") / "workspace", lab)
    built = build_in_lab(lab, workspace, engine="docker", style=style, environment="cpu")
    yield built
    remove_tag(docker_client, built.image)


@pytest.fixture(scope="module")
def docker_gpu_built(
    lab: LabSettings, docker_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    """The gpu environment (optimized style): installs without a GPU thanks to
    CONDA_OVERRIDE_CUDA, which the rendered Dockerfile sets from the CUDA_VERSION build arg."""
    workspace = copy_workspace(tmp_path_factory.mktemp("docker-gpu") / "workspace", lab)
    built = build_in_lab(lab, workspace, engine="docker", style="optimized", environment="gpu")
    yield built
    remove_tag(docker_client, built.image)


def run_in(client: Any, image: str, script: str) -> list[str]:
    """Run a bash command through the image's entrypoint; the output's lines."""
    output: bytes = client.containers.run(image, ["bash", "-c", script], remove=True)
    return output.decode().splitlines()


ACTIVE_ENV = 'echo "$CONDA_PREFIX"; command -v python'


@pytest.mark.docker
def test_docker_build_result(docker_built: Built, docker_client: Any) -> None:
    result = docker_built.result
    image = docker_client.images.get(docker_built.image)
    assert result.engine == "docker" and result.image_id == image.id
    assert result.image_id is not None and result.image_id.startswith("sha256:")
    assert result.tags == (f"kit-test-engines/{docker_built.style}:cpu-{docker_built.style}-{RUN_ID}",)
    assert result.size_bytes == image.attrs["Size"] > 100_000_000  # PyTorch is in there
    if docker_built.style == "optimized":  # only the optimized style labels its image
        assert image.labels.get("org.opencontainers.image.title") == "cuda-exercise"
    installs = [s for s in result.steps if "pixi install" in s.instruction]
    assert installs and not any(s.failed for s in result.steps)
    assert "final" in {s.stage for s in result.steps}
    assert docker_built.build_args == {"ENVIRONMENT": "cpu"}


@pytest.mark.docker
def test_docker_build_events(docker_built: Built) -> None:
    events = docker_built.events
    kinds = [e.kind for e in events]
    assert kinds[-1] == "finished" and not events[-1].failed
    assert events[-1].duration == pytest.approx(docker_built.result.duration, abs=1.0)
    done = {e.instruction for e in events if e.kind == "step_done"}
    assert done == {s.instruction for s in docker_built.result.steps}
    assert (
        kinds.count("step_started")
        >= len({s.instruction for s in docker_built.result.steps if not s.cached})
        > 0
    )
    assert any("pixi install" in e.instruction for e in events if e.kind == "step_started")
    assert sum(1 for e in events if e.kind == "log") >= 10


@pytest.mark.docker
def test_docker_entrypoint_activates_the_environment(docker_built: Built, docker_client: Any) -> None:
    assert run_in(docker_client, docker_built.image, ACTIVE_ENV) == [
        "/app/.pixi/envs/cpu",
        "/app/.pixi/envs/cpu/bin/python",
    ]


@pytest.mark.docker
def test_docker_probe_runs_real_pytorch(docker_built: Built, docker_client: Any) -> None:
    report = api.probe(docker_built.image)
    assert report.engine == "docker" and report.image == docker_built.image
    assert report.source_format == "kit-json" and not report.torch_missing
    assert report.torch_version is not None and report.torch_version.split("+")[0] == TORCH
    assert report.cuda_available is False and report.device_count == 0 and not report.has_gpu
    assert report.cuda_build is None  # the lab's CPU build
    if not docker_has_nvidia_runtime(docker_client):
        assert report.gpu_requested is False
        assert report.gpu_note == "no NVIDIA runtime in this Docker daemon"
        assert "no GPU" in report.summary() and report.gpu_note in report.summary()


@pytest.mark.docker
def test_docker_gpu_environment_builds_and_runs_without_a_gpu(
    docker_gpu_built: Built, docker_client: Any
) -> None:
    assert docker_gpu_built.build_args == {"ENVIRONMENT": "gpu", "CUDA_VERSION": "12"}
    image = docker_gpu_built.image
    assert run_in(docker_client, image, ACTIVE_ENV) == [
        "/app/.pixi/envs/gpu",
        "/app/.pixi/envs/gpu/bin/python",
    ]
    installed = run_in(docker_client, image, 'ls "$CONDA_PREFIX/conda-meta"')
    assert any(name.startswith("pytorch-gpu-2.13.0") for name in installed)
    assert any(name.startswith("cuda-version-12.9") for name in installed)
    report = api.probe(image)
    assert report.torch_version is not None and report.torch_version.startswith(TORCH)
    assert report.cuda_available is False and not report.has_gpu
    if not docker_has_nvidia_runtime(docker_client):
        assert not report.gpu_requested and "NVIDIA runtime" in report.gpu_note


# ---------------------------------------------------------------- Apptainer, both styles


@pytest.fixture(scope="module", params=STYLES)
def sif_built(
    request: pytest.FixtureRequest, lab: LabSettings, apptainer: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Built]:
    """Each style's def built once into a SIF, starting from the lab's pixi image through the
    Docker socket (``Bootstrap: docker-daemon``): nothing is pulled, nothing is exported.
    ``sif_dir`` does not exist yet: the builder makes it."""
    style = str(request.param)
    built = build_lab_sif(lab, tmp_path_factory.mktemp(f"apptainer-{style}"), style)
    yield built
    Path(built.image).unlink(missing_ok=True)


@pytest.mark.apptainer
def test_apptainer_build_result(sif_built: Built) -> None:
    result = sif_built.result
    sif = result.sif_path
    assert result.engine == "apptainer" and sif is not None and sif.is_file()
    assert sif.name == f"cpu-{sif_built.style}-{RUN_ID}.sif"
    assert result.size_bytes == sif.stat().st_size > 50_000_000
    assert [p.name for p in sif.parent.iterdir()] == [sif.name]  # no .partial left over
    phases = [(s.stage, s.instruction) for s in result.steps]
    first_stage = "build" if sif_built.style == "lesson" else "install"
    assert phases[0] == (first_stage, "bootstrap") and (first_stage, "%post") in phases
    assert ("final", "bootstrap") in phases and phases[-1] == ("final", "%test")
    assert not any(s.failed for s in result.steps)
    kinds = [e.kind for e in sif_built.events]
    assert kinds[-1] == "finished" and not sif_built.events[-1].failed
    assert kinds.count("step_done") == len(result.steps)


@pytest.mark.apptainer
def test_apptainer_test_section_ran(sif_built: Built) -> None:
    """The builder runs `apptainer test` itself; its output is in the build log."""
    log = sif_built.result.log
    if sif_built.style == "optimized":
        assert "environment active: /app/.pixi/envs/cpu" in log
    else:  # the lesson's %test: `pixi info` and `pixi list` in the activated environment
        assert any("pytorch" in line and TORCH in line for line in log)


@pytest.mark.apptainer
def test_apptainer_runscript_activates_the_environment(sif_built: Built, apptainer: str) -> None:
    done = subprocess.run(
        [apptainer, "run", sif_built.image, "bash", "-c", ACTIVE_ENV],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == ["/app/.pixi/envs/cpu", "/app/.pixi/envs/cpu/bin/python"]


@pytest.mark.apptainer
def test_apptainer_probe_runs_real_pytorch(sif_built: Built) -> None:
    report = api.probe(sif_built.image)  # a .sif path: Apptainer
    assert report.engine == "apptainer" and report.image == sif_built.image
    assert report.torch_version is not None and report.torch_version.split("+")[0] == TORCH
    assert report.cuda_available is False and not report.has_gpu
    if not host_has_nvidia_driver():
        assert report.gpu_requested is False
        assert report.gpu_note == "no NVIDIA driver on this host"


@pytest.mark.docker
def test_cli_build_then_probe(lab_workspace: Any, docker_client: Any) -> None:
    """`kit build` and `kit probe` as a user types them, against the same lab and engine."""
    import json
    import sys

    lab = lab_workspace.settings
    tag = f"cli-{os.getpid()}"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "kit.cli",
            "build",
            str(lab_workspace.root),
            "--engine",
            "docker",
            "--env",
            "cpu",
            "--style",
            "optimized",
            "--base-image",
            lab.base_image,
            "--runtime-image",
            lab.runtime_image,
            "--tag",
            tag,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    image = f"{api.prepare(lab_workspace.root).workspace.name}:{tag}"
    try:
        assert build.returncode == 0, build.stderr
        assert "#" in build.stderr and "built sha256:" in build.stdout and image in build.stdout
        probe = subprocess.run(
            [sys.executable, "-m", "kit.cli", "probe", image, "--json"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr
        report = json.loads(probe.stdout)["result"]
        assert report["torch_version"].startswith("2.13.0") and report["cuda_available"] is False
        torch = next(f for f in report["frameworks"] if f["name"] == "torch")
        assert torch["version"].startswith("2.13.0") and torch["gpu_count"] == 0
        # A CI step that needs a GPU fails on this lab's CPU build, with one line saying why.
        require = subprocess.run(
            [sys.executable, "-m", "kit.cli", "probe", image, "--gpu", "require"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert require.returncode == 1 and require.stderr.count("\n") == 1, require.stderr
        assert (
            "no NVIDIA runtime" in require.stderr
            if not docker_has_nvidia_runtime(docker_client)
            else "a GPU was required" in require.stderr
        )
    finally:
        remove_tag(docker_client, image)

"""The GPU probe: its script run for real, the parser on every output form, the engine runners.

Runner tests use a real Docker daemon and a real Apptainer with a base image made from this
machine's own Python (no registry here); they skip when the engine is missing, and fail instead
when CI=true, so CI cannot pass by skipping them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import need, run_command

from kit.base.errors import EngineUnavailable, OptionsError, ProbeError
from kit.cli import main
from kit.engines import gpu
from kit.engines.gpu import (
    EXIT_NO_FRAMEWORK,
    FrameworkReport,
    ProbeReport,
    packaged_probe,
    parse_probe_output,
)

DATA = Path(__file__).parent / "data" / "probe"
SCRIPT = Path(__file__).parents[1] / "kit" / "probe" / "torch_detect_GPU.py"
EXAMPLE_PROBE = Path(__file__).parents[1] / "examples" / "cuda-exercise" / "app" / "torch_detect_GPU.py"
# A host Python with torch: KIT_TEST_TORCH_PYTHON, else the one tests/lab/provision.sh makes in
# the lab cache, else a throwaway /tmp/torchvenv.
_LAB_TORCH = Path(os.environ.get("KIT_LAB_CACHE") or "/var/cache/kit-lab") / "torchvenv" / "bin" / "python"
TORCH_PYTHON = os.environ.get("KIT_TEST_TORCH_PYTHON") or (
    str(_LAB_TORCH) if _LAB_TORCH.exists() else "/tmp/torchvenv/bin/python"
)


# ---------------------------------------------------------------- parser, on every fixture form

# The same two machines reported in both of the kit's forms: what the text and the JSON agree
# on is written once (the JSON form also reports nccl, and cupy's absence).
TORCH_CPU: dict[str, object] = dict(
    torch_version="2.13.0+cpu", cuda_available=False, device_count=0, mps_available=False
)
JAX_CPU: dict[str, object] = dict(torch_missing=True, framework_missing=False, has_gpu=False)
JAX_CPU_SEEN = (
    FrameworkReport("torch", error="No module named 'torch'"),
    FrameworkReport("jax", "0.10.2", 0, ("cpu:0 cpu",)),
)

EXPECTED: dict[str, dict[str, object]] = {
    "kit_text_torch2.13.0_cpu.txt": dict(TORCH_CPU, source_format="kit-text"),
    "kit_json_torch2.13.0_cpu.json": dict(TORCH_CPU, nccl=None, source_format="kit-json"),
    "kit_text_torch_missing.txt": dict(torch_missing=True, error="No module named 'torch'"),
    "kit_json_torch_missing.json": dict(torch_missing=True, error="No module named 'torch'"),
    "lesson_850cc8c_cuda_gpu.txt": dict(
        cuda_build="12.9",
        cudnn="91002",
        nccl="2.27.3",
        device_count=1,
        cuda_available=True,
        device_index=0,
        device_name="NVIDIA H200",
        mps_available=None,
        source_format="lesson-text",
    ),
    "lesson_850cc8c_cuda_no_gpu.txt": dict(
        cuda_build="12.9", device_count=0, cuda_available=False, device_name=None
    ),
    "lesson_850cc8c_cpu.txt": dict(cuda_available=False, cuda_build=None, device_count=None),
    "lesson_850cc8c_mps.txt": dict(cuda_available=False, mps_available=True),
    "lesson_48b58d2_cuda_gpu.txt": dict(
        device_count=2, cuda_available=True, device_index=0, device_name="NVIDIA A100-SXM4-40GB"
    ),
    "lesson_48b58d2_cuda_no_gpu.txt": dict(device_count=0, cuda_available=False),
    "kit_text_jax0.10.2_cpu_no_torch.txt": dict(JAX_CPU, source_format="kit-text", frameworks=JAX_CPU_SEEN),
    "kit_json_jax0.10.2_cpu_no_torch.json": dict(
        JAX_CPU,
        source_format="kit-json",
        frameworks=(*JAX_CPU_SEEN, FrameworkReport("cupy", error="No module named 'cupy'")),
    ),
    "kit_json_no_framework.json": dict(
        torch_missing=True, framework_missing=True, error="No module named 'torch'"
    ),
}


def test_every_fixture_has_an_expectation() -> None:
    fixtures = {p.name for p in DATA.iterdir() if p.suffix in (".txt", ".json")}
    assert fixtures == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parser_reads_fixture(name: str) -> None:
    text = (DATA / name).read_text()
    report = parse_probe_output(text)
    for field, value in EXPECTED[name].items():
        assert getattr(report, field) == value, field
    assert report.raw == text
    assert report.summary()


def test_json_wins_over_entrypoint_chatter() -> None:
    text = (
        "activating environment gpu\nwarning: something\n"
        + (DATA / "kit_json_torch2.13.0_cpu.json").read_text()
    )
    assert parse_probe_output(text).torch_version == "2.13.0+cpu"


def test_text_form_reports_a_gpu_as_the_json_form_does() -> None:
    facts = {
        "probe": 1,
        "torch": "2.7.1",
        "cuda_build": "12.9",
        "cudnn": "91002",
        "nccl": "2.27.3",
        "cuda_available": True,
        "device_count": 1,
        "device_index": 0,
        "device_name": "NVIDIA H200",
        "mps_available": False,
    }
    spec = importlib.util.spec_from_file_location("torch_detect_GPU", SCRIPT)
    assert spec is not None and spec.loader is not None
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    from_text = parse_probe_output("\n".join(probe.text_lines(facts)))
    from_json = parse_probe_output(json.dumps(facts))
    fields = (
        "torch_version",
        "cuda_build",
        "cudnn",
        "nccl",
        "cuda_available",
        "device_count",
        "device_index",
        "device_name",
        "mps_available",
    )
    assert [getattr(from_text, f) for f in fields] == [getattr(from_json, f) for f in fields]
    assert from_text.has_gpu and "NVIDIA H200" in from_text.summary()


@pytest.mark.parametrize("text", ["", "Traceback (most recent call last):\n  boom", "{not json"])
def test_parser_refuses_what_is_not_a_report(text: str) -> None:
    with pytest.raises(ProbeError) as caught:
        parse_probe_output(text)
    assert caught.value.output == text


# ---------------------------------------------------------------- the script, run for real


def _run_script(
    python: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The probe script as a job runs it (``env``: e.g. a PYTHONPATH with stand-in frameworks)."""
    return run_command([python, str(SCRIPT), *args], env=env)


@pytest.mark.parametrize("args", [(), ("--json",)])
def test_script_without_torch_says_so_and_exits_3(args: tuple[str, ...]) -> None:
    done = _run_script(sys.executable, *args)
    assert done.returncode == EXIT_NO_FRAMEWORK
    report = parse_probe_output(done.stdout)
    assert report.torch_missing and "torch" in (report.error or "")


def test_packaged_probe_is_the_script() -> None:
    with packaged_probe() as path:
        assert path.read_text() == SCRIPT.read_text()


def test_example_carries_the_probe_itself() -> None:
    """`cp -r examples/cuda-exercise` must take the probe along: a file, not a link. The kit's
    package data is that same file (a link in the checkout, a copy in a built wheel)."""
    assert not EXAMPLE_PROBE.is_symlink() and EXAMPLE_PROBE.is_file()
    assert SCRIPT.resolve() == EXAMPLE_PROBE.resolve()


# Stand-ins for JAX and CuPy on a machine with GPUs: only the calls the probe makes, answered as
# the real libraries answer them (jax.Device has .platform/.id/.device_kind; CuPy's runtime
# returns the device name as bytes). Real JAX on CPU is the kit_*_jax0.10.2_* fixtures.
FAKE_JAX = """__version__ = "0.10.2"
class Device:
    platform, device_kind = "gpu", "NVIDIA H200"
    def __init__(self, id): self.id = id
def devices(): return [Device(0), Device(1)]
def default_backend(): return "gpu"
"""
FAKE_CUPY = """__version__ = "14.2.0"
class runtime:
    getDeviceCount = staticmethod(lambda: 1)
    runtimeGetVersion = staticmethod(lambda: 12080)
    getDeviceProperties = staticmethod(lambda i: {"name": b"NVIDIA H200"})
class cuda:
    runtime = runtime
"""
BROKEN_CUPY = "raise RuntimeError('CUDA driver library not found')\n"


def _site(tmp_path: Path, **modules: str) -> dict[str, str]:
    for name, source in modules.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(source)
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


def test_script_reports_jax_and_cupy_gpus_without_torch(tmp_path: Path) -> None:
    env = _site(tmp_path, jax=FAKE_JAX, cupy=FAKE_CUPY)
    as_text = _run_script(sys.executable, env=env)
    as_json = _run_script(sys.executable, "--json", env=env)
    assert as_text.returncode == as_json.returncode == 0, as_text.stderr + as_json.stderr
    assert "JAX devices: gpu:0 NVIDIA H200, gpu:1 NVIDIA H200" in as_text.stdout
    from_text, from_json = parse_probe_output(as_text.stdout), parse_probe_output(as_json.stdout)
    jax = FrameworkReport("jax", "0.10.2", 2, ("gpu:0 NVIDIA H200", "gpu:1 NVIDIA H200"))
    cupy = FrameworkReport("cupy", "14.2.0", 1, ("cuda:0 NVIDIA H200",))
    assert from_text.others == from_json.others == (jax, cupy)
    assert from_json.torch_missing and from_json.has_gpu and from_json.problem(require_gpu=True) is None
    assert json.loads(as_json.stdout)["frameworks"]["cupy"]["cuda_runtime"] == "12080"
    assert "JAX 0.10.2: 2 GPU(s)" in from_json.summary()


def test_a_framework_that_fails_to_import_is_not_installed(tmp_path: Path) -> None:
    env = _site(tmp_path, cupy=BROKEN_CUPY)
    done = _run_script(sys.executable, "--json", env=env)
    assert done.returncode == EXIT_NO_FRAMEWORK
    entry = json.loads(done.stdout)["frameworks"]["cupy"]
    assert entry == {"installed": False, "error": "RuntimeError: CUDA driver library not found"}


# ---------------------------------------------------------------- when a run should fail a CI step

CPU_TORCH = parse_probe_output((DATA / "kit_json_torch2.13.0_cpu.json").read_text())
NO_FRAMEWORK = parse_probe_output((DATA / "kit_json_no_framework.json").read_text())
JAX_ONLY = parse_probe_output((DATA / "kit_json_jax0.10.2_cpu_no_torch.json").read_text())
GPU_TORCH = parse_probe_output((DATA / "lesson_850cc8c_cuda_gpu.txt").read_text())


@pytest.mark.parametrize(
    "report,require_gpu,fails",
    [
        (CPU_TORCH, False, None),
        (CPU_TORCH, True, "a GPU was required"),
        (NO_FRAMEWORK, False, "no GPU framework"),
        (NO_FRAMEWORK, True, "no GPU framework"),
        (JAX_ONLY, False, None),
        (JAX_ONLY, True, "a GPU was required"),
        (GPU_TORCH, True, None),
    ],
)
def test_problem_says_when_the_run_fails(report: ProbeReport, require_gpu: bool, fails: str | None) -> None:
    problem = report.problem(require_gpu=require_gpu)
    if fails is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(fails) and "\n" not in problem


def test_unknown_gpu_mode_is_bad_input() -> None:
    from kit.engines.gpu import probe_docker

    with pytest.raises(OptionsError) as caught:
        probe_docker("any", gpu="sometimes")  # type: ignore[arg-type]
    assert caught.value.field == "gpu" and caught.value.fix


@pytest.mark.slow
@pytest.mark.parametrize(
    "args,fixture", [((), "kit_text_torch2.13.0_cpu.txt"), (("--json",), "kit_json_torch2.13.0_cpu.json")]
)
def test_script_with_real_cpu_torch(args: tuple[str, ...], fixture: str) -> None:
    need(
        Path(TORCH_PYTHON).exists(),
        f"no Python with torch at {TORCH_PYTHON} (run "
        "tests/lab/provision.sh, or set KIT_TEST_TORCH_PYTHON to a venv with torch==2.13.0)",
    )
    done = _run_script(TORCH_PYTHON, *args)
    assert done.returncode == 0, done.stderr
    report = parse_probe_output(done.stdout)
    assert report.torch_version == "2.13.0+cpu" and report.cuda_available is False  # what need() named
    # The fixtures were captured before the probe reported the architecture: its line comes last.
    if not args:
        assert done.stdout == (DATA / fixture).read_text() + f"Machine architecture: {platform.machine()}\n"
    else:  # the fixture is format 1: the same facts, no frameworks
        facts = json.loads(done.stdout)
        assert facts.pop("machine") == platform.machine()
        assert facts.pop("frameworks")["torch"] == {
            "installed": True,
            "version": "2.13.0+cpu",
            "gpu_devices": 0,
            "devices": [],
        }
        assert {**facts, "probe": 1} == json.loads((DATA / fixture).read_text())


# ---------------------------------------------------------------- Docker runner


@pytest.fixture(scope="module")
def python_image(docker_client: Any) -> Iterator[str]:
    from tests.lab.localbase import host_python_image

    client = docker_client
    tag = "kit-test/probe-python:host"
    host_python_image(client, tag)
    yield tag
    client.images.remove(tag, force=True)


@pytest.mark.docker
def test_probe_docker_mounts_the_script_and_reports_missing_torch(
    python_image: str, docker_client: Any
) -> None:
    from kit.engines.gpu import probe_docker

    client = docker_client
    before = {c.id for c in client.containers.list(all=True)}
    report = probe_docker(python_image, client=client)
    assert report.torch_missing and report.engine == "docker" and report.image == python_image
    nvidia = "nvidia" in (client.info().get("Runtimes") or {})  # the daemon's own answer
    assert report.gpu_requested is nvidia  # auto: all GPUs where the daemon can give them
    if not nvidia:
        assert report.gpu_note == "no NVIDIA runtime in this Docker daemon"
    assert {c.id for c in client.containers.list(all=True)} == before


@pytest.mark.docker
def test_probe_docker_require_without_runtime_is_refused(python_image: str, docker_client: Any) -> None:
    from kit.engines.gpu import docker_has_nvidia_runtime, probe_docker

    client = docker_client
    need(not docker_has_nvidia_runtime(client), "this daemon has the NVIDIA runtime (nothing to refuse)")
    with pytest.raises(EngineUnavailable, match="no NVIDIA runtime"):
        probe_docker(python_image, gpu="require", client=client)


def _image_with_probe(tmp_path: Path, base: str, tag: str, script: str) -> str:
    from kit.engines import DockerBuilder

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "torch_detect_GPU.py").write_text(script)
    (tmp_path / "Dockerfile").write_text(f"FROM {base}\nCOPY ./app /app/src\n")
    DockerBuilder().build(tmp_path, tags=[tag])
    return tag


@pytest.mark.docker
def test_probe_docker_prefers_the_image_copy(python_image: str, tmp_path: Path, docker_client: Any) -> None:
    from kit.engines.gpu import probe_docker

    lesson = (DATA / "lesson_850cc8c_cuda_no_gpu.txt").read_text()
    tag = _image_with_probe(tmp_path, python_image, "kit-test/probe-lesson:1", f"print({lesson!r}, end='')\n")
    client = docker_client
    try:
        report = probe_docker(tag, gpu="never", client=client)
    finally:
        client.images.remove(tag, force=True)
    assert report.source_format == "lesson-text" and report.cuda_build == "12.9"
    assert not report.gpu_requested and "never" in report.gpu_note


@pytest.mark.docker
def test_probe_docker_failure_raises_with_output(
    python_image: str, tmp_path: Path, docker_client: Any
) -> None:
    from kit.engines.gpu import probe_docker

    tag = _image_with_probe(
        tmp_path,
        python_image,
        "kit-test/probe-broken:1",
        "import sys\nprint('probe exploded')\nsys.exit(1)\n",
    )
    client = docker_client
    try:
        with pytest.raises(ProbeError, match="exit status 1") as caught:
            probe_docker(tag, client=client)
    finally:
        client.images.remove(tag, force=True)
    assert "probe exploded" in caught.value.output


@pytest.mark.docker
def test_cli_probe_fails_when_the_image_has_no_framework(
    python_image: str, docker_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kit probe` as a CI step: an image without PyTorch, JAX or CuPy exits 1, saying why."""
    assert main(["probe", python_image, "--json"]) == 1
    out, err = capsys.readouterr()
    body = json.loads(out)
    report = body["result"]
    assert body["ok"] is False and body["command"] == "probe"
    assert [f["name"] for f in report["frameworks"]] == ["torch", "jax", "cupy"]
    assert not any(f["version"] for f in report["frameworks"])
    assert err.count("\n") == 1 and "no GPU framework (PyTorch, JAX or CuPy)" in err


@pytest.mark.docker
def test_cli_probe_passes_with_jax_and_fails_when_a_gpu_is_required(
    python_image: str, tmp_path: Path, docker_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from kit.engines import DockerBuilder
    from kit.engines.gpu import docker_has_nvidia_runtime

    site = tmp_path / "site"
    site.mkdir()
    _site(site, jax=FAKE_JAX.replace('"gpu", "NVIDIA H200"', '"cpu", "cpu"'))
    (tmp_path / "Dockerfile").write_text(
        f"FROM {python_image}\nCOPY site/jax /usr/local/lib/kit-site/jax\n"
        "ENV PYTHONPATH=/usr/local/lib/kit-site\n"
    )
    tag = f"kit-test/probe-jax:{os.getpid()}"
    DockerBuilder().build(tmp_path, tags=[tag])
    try:
        assert main(["probe", tag, "--gpu", "never"]) == 0
        out, err = capsys.readouterr()
        assert "PyTorch is not installed" in out and "JAX 0.10.2: no GPU" in out and err == ""
        assert main(["probe", tag, "--gpu", "require"]) == 1
        out, err = capsys.readouterr()
        assert err.count("\n") == 1
        if not docker_has_nvidia_runtime(docker_client):
            assert "no NVIDIA runtime" in err
        else:
            assert "a GPU was required" in err
    finally:
        docker_client.images.remove(tag, force=True)


# ---------------------------------------------------------------- Apptainer runner


@pytest.mark.apptainer
def test_probe_apptainer_reports_missing_torch(
    python_image: str, tmp_path: Path, docker_client: Any, apptainer_path: str
) -> None:
    from kit.engines import ApptainerBuilder
    from kit.engines.gpu import probe_apptainer

    client = docker_client
    with (tmp_path / "base.tar").open("wb") as tar:
        for chunk in client.images.get(python_image).save(named=True):
            tar.write(chunk)
    (tmp_path / "probe.def").write_text("Bootstrap: docker-archive\nFrom: base.tar\n")
    sif = ApptainerBuilder().build(tmp_path / "probe.def").artifact
    report = probe_apptainer(sif)
    assert isinstance(report, ProbeReport)
    assert report.torch_missing and report.engine == "apptainer"
    assert report.gpu_requested == Path("/proc/driver/nvidia/version").exists()


def sif_header(arch: bytes) -> bytes:
    return b"#!/usr/bin/env run-singularity\n".ljust(32, b"\0") + b"SIF_MAGIC\0" + b"01\0" + arch + b"\0"


@pytest.mark.parametrize(
    ("head", "machine"),
    [
        (sif_header(b"02"), "x86_64"),
        (sif_header(b"04"), "aarch64"),
        (sif_header(b"05"), None),
        (b"FROM x\n", None),
    ],
)
def test_a_sifs_header_names_its_machine(tmp_path: Path, head: bytes, machine: str | None) -> None:
    sif = tmp_path / "image.sif"
    sif.write_bytes(head + b"\0" * 100)
    assert gpu.sif_machine(sif) == machine


def test_a_foreign_sif_gets_the_emulated_probe_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sif = tmp_path / "image.sif"
    sif.write_bytes(sif_header(b"04"))
    monkeypatch.setattr(gpu, "host_machine", lambda: "x86_64")
    assert gpu._apptainer_timeout(sif) == gpu.PROBE_TIMEOUT_S * gpu.EMULATED_TIMEOUT_FACTOR
    monkeypatch.setattr(gpu, "host_machine", lambda: "aarch64")
    assert gpu._apptainer_timeout(sif) == gpu.PROBE_TIMEOUT_S

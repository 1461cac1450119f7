"""The GPU probe: its script run for real, the parser on every output form, the engine runners.

Runner tests use a real Docker daemon and a real Apptainer with a base image made from this
machine's own Python (no registry here); they skip when the engine is missing, and fail instead
when CI=true, so CI cannot pass by skipping them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import need
from kit.errors import EngineUnavailable, ProbeError
from kit.gpu import EXIT_TORCH_MISSING, ProbeReport, packaged_probe, parse_probe_output

DATA = Path(__file__).parent / "data" / "probe"
SCRIPT = Path(__file__).parents[1] / "kit" / "probe" / "torch_detect_GPU.py"
# A host Python with torch: KIT_TEST_TORCH_PYTHON, else the one tests/lab/provision.sh makes in
# the lab cache, else a throwaway /tmp/torchvenv.
_LAB_TORCH = Path(os.environ.get("KIT_LAB_CACHE") or "/var/cache/kit-lab") / "torchvenv" / "bin" / "python"
TORCH_PYTHON = os.environ.get("KIT_TEST_TORCH_PYTHON") or (
    str(_LAB_TORCH) if _LAB_TORCH.exists() else "/tmp/torchvenv/bin/python")


# ---------------------------------------------------------------- parser, on every fixture form

EXPECTED: dict[str, dict[str, object]] = {
    "kit_text_torch2.13.0_cpu.txt": dict(torch_version="2.13.0+cpu", cuda_available=False,
                                         device_count=0, mps_available=False,
                                         source_format="kit-text"),
    "kit_json_torch2.13.0_cpu.json": dict(torch_version="2.13.0+cpu", cuda_available=False,
                                          device_count=0, mps_available=False, nccl=None,
                                          source_format="kit-json"),
    "kit_text_torch_missing.txt": dict(torch_missing=True, error="No module named 'torch'"),
    "kit_json_torch_missing.json": dict(torch_missing=True, error="No module named 'torch'"),
    "lesson_850cc8c_cuda_gpu.txt": dict(cuda_build="12.9", cudnn="91002", nccl="2.27.3",
                                        device_count=1, cuda_available=True, device_index=0,
                                        device_name="NVIDIA H200", mps_available=None,
                                        source_format="lesson-text"),
    "lesson_850cc8c_cuda_no_gpu.txt": dict(cuda_build="12.9", device_count=0,
                                           cuda_available=False, device_name=None),
    "lesson_850cc8c_cpu.txt": dict(cuda_available=False, cuda_build=None, device_count=None),
    "lesson_850cc8c_mps.txt": dict(cuda_available=False, mps_available=True),
    "lesson_48b58d2_cuda_gpu.txt": dict(device_count=2, cuda_available=True, device_index=0,
                                        device_name="NVIDIA A100-SXM4-40GB"),
    "lesson_48b58d2_cuda_no_gpu.txt": dict(device_count=0, cuda_available=False),
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
    text = "activating environment gpu\nwarning: something\n" + \
        (DATA / "kit_json_torch2.13.0_cpu.json").read_text()
    assert parse_probe_output(text).torch_version == "2.13.0+cpu"


def test_text_form_reports_a_gpu_as_the_json_form_does() -> None:
    facts = {"probe": 1, "torch": "2.7.1", "cuda_build": "12.9", "cudnn": "91002",
             "nccl": "2.27.3", "cuda_available": True, "device_count": 1, "device_index": 0,
             "device_name": "NVIDIA H200", "mps_available": False}
    spec = importlib.util.spec_from_file_location("torch_detect_GPU", SCRIPT)
    assert spec is not None and spec.loader is not None
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    from_text = parse_probe_output("\n".join(probe.text_lines(facts)))
    from_json = parse_probe_output(json.dumps(facts))
    fields = ("torch_version", "cuda_build", "cudnn", "nccl", "cuda_available",
              "device_count", "device_index", "device_name", "mps_available")
    assert [getattr(from_text, f) for f in fields] == [getattr(from_json, f) for f in fields]
    assert from_text.has_gpu and "NVIDIA H200" in from_text.summary()


@pytest.mark.parametrize("text", ["", "Traceback (most recent call last):\n  boom", "{not json"])
def test_parser_refuses_what_is_not_a_report(text: str) -> None:
    with pytest.raises(ProbeError) as caught:
        parse_probe_output(text)
    assert caught.value.output == text


# ---------------------------------------------------------------- the script, run for real

def _run_script(python: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize("args", [(), ("--json",)])
def test_script_without_torch_says_so_and_exits_3(args: tuple[str, ...]) -> None:
    done = _run_script(sys.executable, *args)
    assert done.returncode == EXIT_TORCH_MISSING
    report = parse_probe_output(done.stdout)
    assert report.torch_missing and "torch" in (report.error or "")


def test_packaged_probe_is_the_script() -> None:
    with packaged_probe() as path:
        assert path.read_text() == SCRIPT.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("args,fixture", [((), "kit_text_torch2.13.0_cpu.txt"),
                                          (("--json",), "kit_json_torch2.13.0_cpu.json")])
def test_script_with_real_cpu_torch(args: tuple[str, ...], fixture: str) -> None:
    need(Path(TORCH_PYTHON).exists(), f"no Python with torch at {TORCH_PYTHON} (run "
         "tests/lab/provision.sh, or set KIT_TEST_TORCH_PYTHON to a venv with torch==2.13.0)")
    done = _run_script(TORCH_PYTHON, *args)
    assert done.returncode == 0, done.stderr
    report = parse_probe_output(done.stdout)
    assert report.torch_version and report.cuda_available is False
    if report.torch_version == "2.13.0+cpu":
        assert done.stdout == (DATA / fixture).read_text()


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
def test_probe_docker_mounts_the_script_and_reports_missing_torch(python_image: str, docker_client: Any) -> None:
    from kit.gpu import docker_has_nvidia_runtime, probe_docker

    client = docker_client
    before = {c.id for c in client.containers.list(all=True)}
    report = probe_docker(python_image, client=client)
    assert report.torch_missing and report.engine == "docker" and report.image == python_image
    if not docker_has_nvidia_runtime(client):
        assert not report.gpu_requested
        assert report.gpu_note == "no NVIDIA runtime in this Docker daemon"
    assert {c.id for c in client.containers.list(all=True)} == before


@pytest.mark.docker
def test_probe_docker_require_without_runtime_is_refused(python_image: str, docker_client: Any) -> None:
    from kit.gpu import docker_has_nvidia_runtime, probe_docker

    client = docker_client
    need(not docker_has_nvidia_runtime(client), "this daemon has the NVIDIA runtime (nothing to refuse)")
    with pytest.raises(EngineUnavailable, match="no NVIDIA runtime"):
        probe_docker(python_image, gpu="require", client=client)


def _image_with_probe(tmp_path: Path, base: str, tag: str, script: str) -> str:
    from kit.build import DockerBuilder

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "torch_detect_GPU.py").write_text(script)
    (tmp_path / "Dockerfile").write_text(f"FROM {base}\nCOPY ./app /app/src\n")
    DockerBuilder().build(tmp_path, tags=[tag])
    return tag


@pytest.mark.docker
def test_probe_docker_prefers_the_image_copy(python_image: str, tmp_path: Path, docker_client: Any) -> None:
    from kit.gpu import probe_docker

    lesson = (DATA / "lesson_850cc8c_cuda_no_gpu.txt").read_text()
    tag = _image_with_probe(tmp_path, python_image, "kit-test/probe-lesson:1",
                            f"print({lesson!r}, end='')\n")
    client = docker_client
    try:
        report = probe_docker(tag, gpu="never", client=client)
    finally:
        client.images.remove(tag, force=True)
    assert report.source_format == "lesson-text" and report.cuda_build == "12.9"
    assert not report.gpu_requested and "never" in report.gpu_note


@pytest.mark.docker
def test_probe_docker_failure_raises_with_output(python_image: str, tmp_path: Path, docker_client: Any) -> None:
    from kit.gpu import probe_docker

    tag = _image_with_probe(tmp_path, python_image, "kit-test/probe-broken:1",
                            "import sys\nprint('probe exploded')\nsys.exit(1)\n")
    client = docker_client
    try:
        with pytest.raises(ProbeError, match="exit status 1") as caught:
            probe_docker(tag, client=client)
    finally:
        client.images.remove(tag, force=True)
    assert "probe exploded" in caught.value.output


# ---------------------------------------------------------------- Apptainer runner

@pytest.mark.apptainer
def test_probe_apptainer_reports_missing_torch(python_image: str, tmp_path: Path, docker_client: Any,
                                              apptainer_path: str) -> None:
    from kit.build import ApptainerBuilder
    from kit.gpu import probe_apptainer

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

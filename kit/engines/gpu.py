"""Run the GPU probe in a built image and read what it says.

The last step of the lesson is "does the container see the GPU?". Answering it takes three
parts, kept apart here so each can be tested on its own: the probe script that runs inside the
image (``kit/probe/torch_detect_GPU.py``, package data), a parser that turns its output (and the
output of the lesson's own script, which learners paste) into a `ProbeReport`, and one runner per
engine that decides whether to ask for a GPU, runs the script and always cleans up. The script
reports PyTorch and, when they are installed, JAX and CuPy; the report keeps one
`FrameworkReport` per framework, and `ProbeReport.problem` says when a run should fail a CI step
(no framework at all, or no GPU when one was required).

Whether a GPU is *requested* is decided from the host and the engine, not assumed: a GPU request
on a Docker daemon without the NVIDIA runtime fails outright, so ``gpu="auto"`` runs without one
and records why in `ProbeReport.gpu_note`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from kit.base.errors import EngineUnavailable, OptionsError, ProbeError
from kit.base.files import read_head
from kit.engines.apptainer import find_apptainer
from kit.engines.docker import connect_docker
from kit.engines.emulation import host_machine, run_notice
from kit.model.deployfiles import PROBE_SCRIPT
from kit.model.platforms import host_platform

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

GpuMode = Literal["auto", "require", "never"]
GPU_MODES: tuple[str, ...] = get_args(GpuMode)

PROBE_NAME = PROBE_SCRIPT
IMAGE_PROBE_PATH = "/app/src/" + PROBE_NAME
MOUNTED_PROBE_DIR = "/opt/kit-probe"
EXIT_NO_FRAMEWORK = 3  # the script's status when none of PyTorch, JAX, CuPy imports
FRAMEWORK_LABELS = {"torch": "PyTorch", "jax": "JAX", "cupy": "CuPy"}
PROBE_TIMEOUT_S = 300
# An image for another architecture runs through emulation, many times slower (kit.engines.emulation).
EMULATED_TIMEOUT_FACTOR = 5


@dataclass(frozen=True)
class FrameworkReport:
    """What one framework (``torch``, ``jax`` or ``cupy``) saw; ``version`` None: not importable."""

    name: str
    version: str | None = None
    gpu_count: int | None = None
    devices: tuple[str, ...] = ()
    error: str | None = None

    @property
    def installed(self) -> bool:
        return self.version is not None

    def summary(self) -> str:
        label = FRAMEWORK_LABELS.get(self.name, self.name)
        if not self.installed:
            return f"{label} is not installed"
        if not self.gpu_count:
            return f"{label} {self.version}: no GPU"
        gpus = [d for d in self.devices if not d.startswith("cpu")]
        return f"{label} {self.version}: {self.gpu_count} GPU(s)" + (f" ({', '.join(gpus)})" if gpus else "")


@dataclass(frozen=True)
class ProbeReport:
    """What PyTorch saw inside the image; ``None`` means "the output did not say"."""

    torch_version: str | None = None
    cuda_build: str | None = None
    cudnn: str | None = None
    nccl: str | None = None
    cuda_available: bool | None = None
    device_count: int | None = None
    device_index: int | None = None
    device_name: str | None = None
    mps_available: bool | None = None
    gpu_requested: bool = False
    gpu_note: str = ""
    torch_missing: bool = False
    error: str | None = None
    raw: str = ""
    engine: str = ""
    image: str = ""
    source_format: str = ""
    frameworks: tuple[FrameworkReport, ...] = ()  # every framework the output spoke of
    machine: str | None = None  # the architecture the probe ran on (`aarch64`); older probes: None

    @property
    def has_gpu(self) -> bool:
        """True when PyTorch can use a GPU (CUDA or Apple MPS), or JAX or CuPy sees one."""
        return (
            bool(self.cuda_available) or bool(self.mps_available) or any(f.gpu_count for f in self.frameworks)
        )

    @property
    def others(self) -> tuple[FrameworkReport, ...]:
        """The frameworks beside PyTorch that are installed (JAX, CuPy)."""
        return tuple(f for f in self.frameworks if f.name != "torch" and f.installed)

    @property
    def framework_missing(self) -> bool:
        """No framework the probe knows could be imported: the image cannot use a GPU at all."""
        return self.torch_missing and not self.others

    def problem(self, *, require_gpu: bool = False) -> str | None:
        """Why this run should fail a CI step, in one line, or None when it should pass."""
        where = f" in {self.image}" if self.image else ""
        if self.framework_missing:
            return (
                f"no GPU framework (PyTorch, JAX or CuPy) can be imported{where}: "
                f"{self.error or 'import failed'}; build an environment that has one"
            )
        if require_gpu and not self.has_gpu:
            return f"a GPU was required, but no framework{where} sees one ({self.summary()})"
        return None

    def summary(self) -> str:
        """One line for a log, a widget or a test failure message."""
        others = "; ".join(f.summary() for f in self.others)
        if self.torch_missing:
            text = f"PyTorch is not installed in the image ({self.error or 'import failed'})"
            return f"{text}; {others}" if others else text
        return f"{self._torch_summary()}; {others}" if others else self._torch_summary()

    def _torch_summary(self) -> str:
        if self.cuda_available:
            what = f"CUDA GPU {self.device_index}: {self.device_name} ({self.device_count} found)"
        elif self.mps_available:
            what = "Apple MPS GPU"
        else:
            what = "no GPU"
        text = f"PyTorch {self.torch_version or '?'}: {what}"
        if self.cuda_build:
            text += f"; built for CUDA {self.cuda_build}"
        if self.gpu_note:
            text += f" ({self.gpu_note})"
        return text


# ---------------------------------------------------------------- parsing


def parse_probe_output(text: str) -> ProbeReport:
    """Read the probe's JSON, its text form, or the lesson script's text form.

    JSON wins when a line holds the probe's object (the image's entrypoint may print other
    lines first). Otherwise the ``Label: value`` lines are read; the labels of the kit's script
    are a superset of the lesson's, so one table serves both. Raises `ProbeError` when the
    text is neither.
    """
    for line in reversed(text.splitlines()):
        data = _json_object(line)
        if data is not None:
            return replace(_from_json(data, text), machine=_opt_str(data.get("machine")))
    report = _from_text(text)
    if report is None:
        raise ProbeError("The GPU probe printed nothing that reads as a probe report.", text)
    return replace(report, machine=_machine_line(text))


def _machine_line(text: str) -> str | None:
    for line in text.splitlines():
        label, sep, value = line.strip().partition(":")
        if sep and label.strip() == "Machine architecture":
            return value.strip() or None
    return None


def _json_object(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "torch" in data else None


def _from_json(data: dict[str, Any], raw: str) -> ProbeReport:
    frameworks = _frameworks_from_json(data.get("frameworks"))
    if data.get("torch") is None:
        return ProbeReport(
            torch_missing=True,
            error=str(data.get("error") or ""),
            raw=raw,
            source_format="kit-json",
            frameworks=frameworks or (FrameworkReport("torch", error=_opt_str(data.get("error"))),),
        )
    report = ProbeReport(
        torch_version=str(data["torch"]),
        cuda_build=_opt_str(data.get("cuda_build")),
        cudnn=_opt_str(data.get("cudnn")),
        nccl=_opt_str(data.get("nccl")),
        cuda_available=_opt_bool(data.get("cuda_available")),
        device_count=_opt_int(data.get("device_count")),
        device_index=_opt_int(data.get("device_index")),
        device_name=_opt_str(data.get("device_name")),
        mps_available=_opt_bool(data.get("mps_available")),
        raw=raw,
        source_format="kit-json",
    )
    return replace(report, frameworks=frameworks or (_torch_framework(report),))


def _frameworks_from_json(value: Any) -> tuple[FrameworkReport, ...]:
    """Format 2's per-framework entries; format 1 (PyTorch only) has none."""
    if not isinstance(value, dict):
        return ()
    found = []
    for name, entry in value.items():
        if not isinstance(entry, dict):
            continue
        installed = bool(entry.get("installed"))
        found.append(
            FrameworkReport(
                name=str(name),
                version=_opt_str(entry.get("version")) if installed else None,
                gpu_count=_opt_int(entry.get("gpu_devices")) if installed else None,
                devices=tuple(str(d) for d in entry.get("devices") or ()) if installed else (),
                error=_opt_str(entry.get("error")),
            )
        )
    return tuple(found)


def _torch_framework(report: ProbeReport) -> FrameworkReport:
    """PyTorch's entry from the report's own fields (the lesson's forms and format 1)."""
    if report.torch_missing:
        return FrameworkReport("torch", error=report.error)
    gpus = (report.device_count or 0) if report.cuda_available else 0
    devices = (f"cuda:{report.device_index} {report.device_name}",) if report.cuda_available else ()
    if report.mps_available:
        gpus, devices = max(gpus, 1), (*devices, "mps")
    return FrameworkReport("torch", version=report.torch_version or "?", gpu_count=gpus, devices=devices)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


_LABELS = {
    "pytorch version": "torch_version",
    "pytorch build cuda version": "cuda_build",
    "pytorch build cudnn version": "cudnn",
    "pytorch build nccl version": "nccl",
    "cuda available": "cuda_available",
    "number of gpus found on system": "device_count",
    "active gpu index": "device_index",
    "active gpu name": "device_name",
    "apple mps available": "mps_available",
    "pytorch has active gpu": "active",
}
_MISSING_PREFIX = "PyTorch is not installed in this environment:"
# JAX and CuPy lines: "<Label> version|default backend|CUDA runtime version|devices|GPUs found".
_EXTRA_LABELS = {"jax": "JAX", "cupy": "CuPy"}
_EXTRA_FIELDS = {"version": "version", "devices": "devices", "gpus found": "gpus"}


def _from_text(text: str) -> ProbeReport | None:
    """Read labelled lines; what the lesson's script leaves unsaid is inferred or left None."""
    values: dict[str, str] = {}
    extras: dict[str, dict[str, str]] = {}
    no_gpu = False
    missing: str | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(_MISSING_PREFIX):
            missing = line[len(_MISSING_PREFIX) :].strip()
            continue
        if line == "PyTorch has no active GPU":
            no_gpu = True
            continue
        label, sep, value = line.partition(":")
        label = label.strip().lower()
        key = _LABELS.get(label)
        if sep and key:
            values[key] = value.strip()
            continue
        framework, _, field_name = label.partition(" ")
        if sep and framework in _EXTRA_LABELS and field_name in _EXTRA_FIELDS:
            extras.setdefault(framework, {})[_EXTRA_FIELDS[field_name]] = value.strip()
    others = tuple(_extra_framework(name, fields) for name, fields in extras.items())
    if missing is not None:
        return ProbeReport(
            torch_missing=True,
            error=missing,
            raw=text,
            source_format="kit-text",
            frameworks=(FrameworkReport("torch", error=missing), *others),
        )
    if not values and not no_gpu:
        return None
    report = _report_from_values(values, no_gpu, text)
    return replace(report, frameworks=(_torch_framework(report), *others))


def _extra_framework(name: str, fields: dict[str, str]) -> FrameworkReport:
    devices = fields.get("devices", "")
    return FrameworkReport(
        name=name,
        version=_text_none(fields.get("version")) or "?",
        gpu_count=_text_int(fields.get("gpus")),
        devices=tuple(d.strip() for d in devices.split(",") if d.strip()) if devices != "None" else (),
    )


def _report_from_values(values: dict[str, str], no_gpu: bool, raw: str) -> ProbeReport:
    active = values.get("active", "").lower()
    cuda = _text_bool(values.get("cuda_available"))
    if cuda is None and ("device_index" in values or active == "true"):
        cuda = True
    elif cuda is None and (no_gpu or active in ("false", "mps")):
        cuda = False
    mps = _text_bool(values.get("mps_available"))
    if mps is None and active == "mps":
        mps = True
    return ProbeReport(
        torch_version=_text_none(values.get("torch_version")),
        cuda_build=_text_none(values.get("cuda_build")),
        cudnn=_text_none(values.get("cudnn")),
        nccl=_nccl_text(values.get("nccl")),
        cuda_available=cuda,
        device_count=_text_int(values.get("device_count")),
        device_index=_text_int(values.get("device_index")),
        device_name=_text_none(values.get("device_name")),
        mps_available=mps,
        raw=raw,
        source_format="kit-text" if "torch_version" in values else "lesson-text",
    )


def _text_none(value: str | None) -> str | None:
    return None if value in (None, "", "None") else value


def _text_bool(value: str | None) -> bool | None:
    return {"true": True, "false": False}.get((value or "").lower())


def _text_int(value: str | None) -> int | None:
    value = _text_none(value)
    return int(value) if value is not None and value.isdigit() else None


def _nccl_text(value: str | None) -> str | None:
    """The lesson prints NCCL as a tuple, ``(2, 27, 3)``; the kit writes ``2.27.3``."""
    value = _text_none(value)
    if value and value.startswith("(") and value.endswith(")"):
        return ".".join(part.strip() for part in value[1:-1].split(",") if part.strip())
    return value


# ---------------------------------------------------------------- the host


def host_has_nvidia_driver() -> bool:
    """The NVIDIA kernel driver is loaded, or its tools are installed, on this machine."""
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def docker_has_nvidia_runtime(client: DockerClient) -> bool:
    """The daemon can honour ``--gpus``: the NVIDIA container runtime is registered with it."""
    runtimes = client.info().get("Runtimes") or {}
    return "nvidia" in runtimes


@contextmanager
def packaged_probe() -> Iterator[Path]:
    """The probe script as a real file (the package may live in a zip).

    In a checkout, kit/probe/ links to the example's copy (one probe, not two to keep equal);
    the link is resolved so that what is copied or mounted into a container is the file itself.
    """
    with resources.as_file(resources.files("kit") / "probe" / PROBE_NAME) as path:
        yield path.resolve()


def _check_mode(gpu: str) -> None:
    if gpu not in ("auto", "require", "never"):
        raise OptionsError(
            f"gpu mode {gpu!r} is unknown", field="gpu", fix="use one of: auto, require, never"
        )


def _finish(output: str, status: int, *, engine: str, image: str, requested: bool, note: str) -> ProbeReport:
    """Turn a finished run into a report; exit 3 is "no framework", other failures are errors."""
    if status not in (0, EXIT_NO_FRAMEWORK):
        raise ProbeError(f"The GPU probe failed in {image} ({engine}, exit status {status}).", output)
    report = parse_probe_output(output)
    if status == EXIT_NO_FRAMEWORK and not report.torch_missing:
        raise ProbeError(f"The GPU probe exited with status 3 in {image} but did not say why.", output)
    return replace(report, engine=engine, image=image, gpu_requested=requested, gpu_note=note)


# ---------------------------------------------------------------- Docker


def probe_docker(image: str, *, gpu: GpuMode = "auto", client: DockerClient | None = None) -> ProbeReport:
    """Run the probe through the image's entrypoint, with all GPUs when the daemon can.

    The image's own copy (``/app/src/torch_detect_GPU.py``, where the lesson's Dockerfile puts
    it) is preferred; an image without it gets the packaged script bind-mounted read-only.
    The container is removed whatever happens.
    """
    _check_mode(gpu)
    client = client or connect_docker()
    requested, note = _docker_gpu_decision(client, gpu)
    with packaged_probe() as script:
        return _run_docker_probe(client, image, script, requested, note)


def _docker_gpu_decision(client: DockerClient, gpu: GpuMode) -> tuple[bool, str]:
    if gpu == "never":
        return False, "GPU not requested (gpu='never')"
    if docker_has_nvidia_runtime(client):
        return True, ""
    if gpu == "require":
        raise EngineUnavailable(
            "A GPU was required, but this Docker daemon has no NVIDIA runtime.",
            instead="install the NVIDIA Container Toolkit and run "
            "'nvidia-ctk runtime configure --runtime=docker', then restart dockerd",
        )
    return False, "no NVIDIA runtime in this Docker daemon"


def _run_docker_probe(
    client: DockerClient, image: str, script: Path, requested: bool, note: str
) -> ProbeReport:
    from docker.errors import APIError, ImageNotFound  # the SDK only when probing: start-up cost

    try:
        container = _create_probe_container(client, image, script, requested)
    except ImageNotFound as error:
        raise ProbeError(f"No image {image} in this Docker daemon; build it first.") from error
    except APIError as error:
        raise _gpu_or_probe_error(error, image) from error
    try:
        output, status = _start_and_wait(container, _docker_timeout(client, image))
    except APIError as error:
        raise ProbeError(
            f"The GPU probe could not start in {image}: {error.explanation}", str(error)
        ) from error
    finally:
        container.remove(force=True)
    return _finish(output, status, engine="docker", image=image, requested=requested, note=note)


def _create_probe_container(client: DockerClient, image: str, script: Path, requested: bool) -> Container:
    """Create (not start) the container; swap in the mounted script when the image lacks one."""
    from docker.errors import NotFound  # the SDK only when probing: start-up cost
    from docker.types import DeviceRequest, Mount

    # The probe needs no network; without one it also cannot trip over a missing bridge.
    gpu_kwargs: dict[str, Any] = {"network_mode": "none"}
    if requested:
        gpu_kwargs["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    container = client.containers.create(image, ["python", IMAGE_PROBE_PATH, "--json"], **gpu_kwargs)
    try:
        container.get_archive(IMAGE_PROBE_PATH)
        return container
    except NotFound:
        container.remove(force=True)
    mount = Mount(MOUNTED_PROBE_DIR, str(script.parent), type="bind", read_only=True)
    command = ["python", f"{MOUNTED_PROBE_DIR}/{PROBE_NAME}", "--json"]
    return client.containers.create(image, command, mounts=[mount], **gpu_kwargs)


def _docker_timeout(client: DockerClient, image: str) -> int:
    """The probe's time limit: longer for an image of another architecture than the host's."""
    try:
        arch = str(client.images.get(image).attrs.get("Architecture") or "")
    except Exception:  # noqa: BLE001 - unreadable: the usual limit
        return PROBE_TIMEOUT_S
    foreign = arch and host_platform(arch) != host_platform(host_machine())
    return PROBE_TIMEOUT_S * EMULATED_TIMEOUT_FACTOR if foreign else PROBE_TIMEOUT_S


def _start_and_wait(container: Container, timeout: int = PROBE_TIMEOUT_S) -> tuple[str, int]:
    container.start()
    status = int(container.wait(timeout=timeout).get("StatusCode", 1))
    output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    return output, status


def _gpu_or_probe_error(error: Any, image: str) -> Exception:
    text = str(getattr(error, "explanation", "") or error)
    if "could not select device driver" in text:
        return EngineUnavailable(
            f"Docker could not give the container a GPU: {text}",
            instead="install the NVIDIA Container Toolkit, or probe with gpu='never'",
        )
    return ProbeError(f"The GPU probe could not be set up in {image}: {text}", str(error))


# ---------------------------------------------------------------- Apptainer

# The image's entrypoint activates its Pixi environment; `apptainer exec` skips the runscript,
# so the probe goes through /app/entrypoint.sh itself when the image has one (the lesson's does).
_APPTAINER_SHELL = (
    f'script={IMAGE_PROBE_PATH}; [ -f "$script" ] || script={MOUNTED_PROBE_DIR}/{PROBE_NAME}; '
    'if [ -x /app/entrypoint.sh ]; then exec /app/entrypoint.sh python "$script" --json; fi; '
    'exec python "$script" --json'
)


def probe_apptainer(sif: Path | str, *, gpu: GpuMode = "auto", apptainer: str | None = None) -> ProbeReport:
    """Run the probe in a SIF with ``apptainer exec``, adding ``--nv`` when the host has a GPU."""
    _check_mode(gpu)
    binary = apptainer or find_apptainer()
    requested, note = _apptainer_gpu_decision(gpu)
    with packaged_probe() as script:
        argv = [
            binary,
            "exec",
            *(["--nv"] if requested else []),
            "--bind",
            f"{script.parent}:{MOUNTED_PROBE_DIR}:ro",
            # A SIF named `-x.sif` is the same file as `./-x.sif`, which apptainer cannot read as
            # an option (`kit probe -- --help.sif`).
            f"./{sif}" if str(sif).startswith("-") else str(sif),
            "/bin/sh",
            "-c",
            _APPTAINER_SHELL,
        ]
        timeout = _apptainer_timeout(Path(sif))
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as error:
            raise ProbeError(
                f"The GPU probe in {sif} did not finish in {timeout}s.", str(error.output or "")
            ) from error
    return _finish(
        done.stdout + done.stderr,
        done.returncode,
        engine="apptainer",
        image=str(sif),
        requested=requested,
        note=note,
    )


# The SIF global header (github.com/sylabs/sif, pkg/sif): a 32-byte launch script, the magic
# `SIF_MAGIC\0`, a 3-byte version, then the primary partition's architecture as a 3-byte code.
_SIF_MAGIC = b"SIF_MAGIC\x00"
_SIF_ARCH_AT = 45
_SIF_MACHINES = {b"02": "x86_64", b"04": "aarch64"}


def sif_machine(sif: Path) -> str | None:
    """The machine (`aarch64`) a SIF's primary partition was built for, from its header; None
    for a file that is not a SIF, cannot be read, or names an architecture the kit does not
    build for. Reads 48 bytes, never follows a final link, never blocks."""
    try:
        head = read_head(sif, limit=_SIF_ARCH_AT + 3)
    except OSError:
        return None
    if head[32:42] != _SIF_MAGIC:
        return None
    return _SIF_MACHINES.get(head[_SIF_ARCH_AT : _SIF_ARCH_AT + 2])


def _apptainer_timeout(sif: Path) -> int:
    """The probe's time limit: longer for a SIF of another architecture than the host's."""
    machine = sif_machine(sif)
    foreign = machine is not None and host_platform(machine) != host_platform(host_machine())
    return PROBE_TIMEOUT_S * EMULATED_TIMEOUT_FACTOR if foreign else PROBE_TIMEOUT_S


def _apptainer_gpu_decision(gpu: GpuMode) -> tuple[bool, str]:
    if gpu == "never":
        return False, "GPU not requested (gpu='never')"
    if host_has_nvidia_driver():
        return True, ""
    if gpu == "require":
        raise EngineUnavailable(
            "A GPU was required, but this host has no NVIDIA driver "
            "(/proc/driver/nvidia/version and nvidia-smi are absent)."
        )
    return False, "no NVIDIA driver on this host"


def format_probe(report: ProbeReport) -> str:
    """The probe's verdict as the CLI prints it: the summary, and the GPU note when there is one."""
    lines = [report.summary()]
    if report.machine:
        lines.append(f"architecture: {report.machine}")
    if report.gpu_note:
        lines.append(f"note: {report.gpu_note}")
    if report.machine and host_platform(report.machine) != host_platform(host_machine()):
        lines.append(f"note: {run_notice(report.machine)}")
    return "\n".join(lines)

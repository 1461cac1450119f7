"""Report what PyTorch, JAX and CuPy see of the GPU: the kit's own take on the lesson's probe script.

The lesson runs Matthew Feickert's ``torch_detect_GPU.py`` inside the image it built to show
that the locked environment can reach the GPU. This script answers the same questions (PyTorch
version, the CUDA/cuDNN/NCCL versions it was built with, whether CUDA is usable, how many
devices, the active one, Apple MPS) but never crashes half-way: every query is guarded, because
a CPU build of PyTorch raises on some of them, and a probe that dies tells a learner nothing.
Many GPU workspaces use JAX or CuPy instead of (or beside) PyTorch, so their devices are
reported too when they are installed; none of the three is required.

Output is plain text by default, one ``Label: value`` line per fact (the lesson's labels where it
has one, so the two read alike; JAX and CuPy lines appear only when they are installed), or one
JSON object with ``--json`` for the kit to parse, with an entry per framework under
``frameworks``. Last comes the machine's architecture (``platform.machine()``: ``x86_64``, or
``aarch64`` on a Grace Hopper, Jetson or other Arm node, and under emulation), since the same
image name can hold builds for both.

Exit status: 0 when at least one of PyTorch, JAX and CuPy was imported (GPU or not), 3 when none
can be imported, so the runner can tell "this image has no GPU framework" from "the probe itself
broke" (any other status).

It needs only the standard library, and it runs on whatever Python the image has.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

PROBE_FORMAT = 2
EXIT_NO_FRAMEWORK = 3
GPU_PLATFORMS = ("gpu", "cuda", "rocm")


def _guarded(query: Callable[[], Any]) -> Any:
    """Run one query; a CPU build raises on GPU-only queries, which means "none"."""
    try:
        return query()
    except Exception:  # noqa: BLE001 - any failure of a query is an answer: not available
        return None


def _version_text(value: Any) -> str | None:
    """NCCL reports a tuple like (2, 27, 3) in recent torch and an int in old ones."""
    if value is None:
        return None
    if isinstance(value, tuple):
        return ".".join(str(part) for part in value)
    return str(value)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return None if value is None else str(value)


# ---------------------------------------------------------------- PyTorch


def collect(torch: ModuleType) -> dict[str, Any]:
    """Ask torch everything the report needs; missing answers are None, never an exception."""
    cuda = torch.cuda
    cuda_available = bool(_guarded(cuda.is_available))
    device_index = _guarded(cuda.current_device) if cuda_available else None
    device_name = _guarded(lambda: cuda.get_device_name(device_index)) if device_index is not None else None
    mps = getattr(torch.backends, "mps", None)
    return {
        "torch": str(torch.__version__),
        "cuda_build": _guarded(lambda: torch.version.cuda),
        "cudnn": _version_text(_guarded(torch.backends.cudnn.version)),
        "nccl": _version_text(_guarded(lambda: cuda.nccl.version())),
        "cuda_available": cuda_available,
        "device_count": _guarded(cuda.device_count) or 0,
        "device_index": device_index,
        "device_name": device_name,
        "mps_available": bool(_guarded(mps.is_available)) if mps is not None else False,
    }


def torch_entry(facts: dict[str, Any]) -> dict[str, Any]:
    """PyTorch's facts in the shape every framework entry has."""
    gpus = facts["device_count"] if facts["cuda_available"] else 0
    devices = [f"cuda:{facts['device_index']} {facts['device_name']}"] if facts["cuda_available"] else []
    if facts["mps_available"]:
        gpus, devices = max(gpus, 1), devices + ["mps"]
    return {"installed": True, "version": facts["torch"], "gpu_devices": gpus, "devices": devices}


def text_lines(facts: dict[str, Any]) -> list[str]:
    """PyTorch's human form: one labelled fact per line, then a verdict line."""
    lines = [
        f"PyTorch version: {facts['torch']}",
        f"PyTorch build CUDA version: {facts['cuda_build']}",
        f"PyTorch build cuDNN version: {facts['cudnn']}",
        f"PyTorch build NCCL version: {facts['nccl']}",
        f"CUDA available: {facts['cuda_available']}",
        f"Number of GPUs found on system: {facts['device_count']}",
        f"Apple MPS available: {facts['mps_available']}",
    ]
    if facts["cuda_available"]:
        lines += [f"Active GPU index: {facts['device_index']}", f"Active GPU name: {facts['device_name']}"]
    elif facts["mps_available"]:
        lines.append("PyTorch has active GPU: mps")
    else:
        lines.append("PyTorch has no active GPU")
    return lines


def missing_torch_lines(message: str) -> list[str]:
    """Say by name that torch is absent (the usual mistake: the wrong environment was built)."""
    return [
        f"PyTorch is not installed in this environment: {message}",
        f"Python: {sys.executable} {sys.version.split()[0]}",
    ]


# ---------------------------------------------------------------- JAX and CuPy


def collect_jax(jax: ModuleType) -> dict[str, Any]:
    devices = _guarded(jax.devices) or []
    gpus = [d for d in devices if str(getattr(d, "platform", "")).lower() in GPU_PLATFORMS]
    return {
        "installed": True,
        "version": _text(getattr(jax, "__version__", None)),
        "backend": _text(_guarded(jax.default_backend)),
        "gpu_devices": len(gpus),
        "devices": [
            f"{getattr(d, 'platform', '?')}:{getattr(d, 'id', '?')} {getattr(d, 'device_kind', '')}".strip()
            for d in devices
        ],
    }


def collect_cupy(cupy: ModuleType) -> dict[str, Any]:
    runtime = cupy.cuda.runtime
    count = _guarded(runtime.getDeviceCount) or 0
    names = [
        _text(_guarded(lambda: runtime.getDeviceProperties(index)["name"]))  # noqa: B023
        for index in range(count)
    ]
    return {
        "installed": True,
        "version": _text(getattr(cupy, "__version__", None)),
        "cuda_runtime": _text(_guarded(runtime.runtimeGetVersion)),
        "gpu_devices": count,
        "devices": [f"cuda:{i} {name}" for i, name in enumerate(names)],
    }


def extra_lines(name: str, entry: dict[str, Any]) -> list[str]:
    """JAX's or CuPy's human form, printed only when it is installed."""
    label = {"jax": "JAX", "cupy": "CuPy"}[name]
    lines = [f"{label} version: {entry['version']}"]
    if name == "jax":
        lines.append(f"JAX default backend: {entry['backend']}")
    else:
        lines.append(f"CuPy CUDA runtime version: {entry['cuda_runtime']}")
    lines += [
        f"{label} devices: {', '.join(entry['devices']) or 'None'}",
        f"{label} GPUs found: {entry['gpu_devices']}",
    ]
    return lines


EXTRAS: dict[str, Callable[[ModuleType], dict[str, Any]]] = {"jax": collect_jax, "cupy": collect_cupy}


def _import(name: str) -> tuple[ModuleType | None, str | None]:
    try:
        return importlib.import_module(name), None
    except ImportError as error:
        return None, str(error) or f"{name} cannot be imported"


def _import_extra(name: str) -> tuple[ModuleType | None, str | None]:
    """JAX and CuPy may fail beyond ImportError (a missing CUDA library); that is "not usable"."""
    try:
        return _import(name)
    except Exception as error:  # noqa: BLE001 - any import failure of an optional framework
        return None, f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------- the report


def report(as_json: bool) -> tuple[list[str], int]:
    """The output lines and the exit status."""
    torch, torch_error = _import("torch")
    facts: dict[str, Any] = {"probe": PROBE_FORMAT}
    frameworks: dict[str, dict[str, Any]] = {}
    if torch is not None:
        facts.update(collect(torch))
        frameworks["torch"] = torch_entry(facts)
        lines = text_lines(facts)
    else:
        facts.update(torch=None, error=torch_error)
        frameworks["torch"] = {"installed": False, "error": torch_error}
        lines = missing_torch_lines(str(torch_error))
    for name, collect_extra in EXTRAS.items():
        module, error = _import_extra(name)
        if module is None:
            frameworks[name] = {"installed": False, "error": error}
            continue
        frameworks[name] = collect_extra(module)
        lines += extra_lines(name, frameworks[name])
    facts["frameworks"] = frameworks
    facts["machine"] = platform.machine()
    lines.append(f"Machine architecture: {facts['machine']}")
    status = 0 if any(entry["installed"] for entry in frameworks.values()) else EXIT_NO_FRAMEWORK
    return ([json.dumps(facts)] if as_json else lines), status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Report the GPUs that PyTorch, JAX and CuPy can use.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    lines, status = report(args.json)
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Report what PyTorch sees of the GPU: the kit's own take on the lesson's probe script.

The lesson runs Matthew Feickert's ``torch_detect_GPU.py`` inside the image it built to show
that the locked environment can reach the GPU. This script answers the same questions (PyTorch
version, the CUDA/cuDNN/NCCL versions it was built with, whether CUDA is usable, how many
devices, the active one, Apple MPS) but never crashes half-way: every query is guarded, because
a CPU build of PyTorch raises on some of them, and a probe that dies tells a learner nothing.

Output is plain text by default, one ``Label: value`` line per fact (the lesson's labels where it
has one, so the two read alike), or one JSON object with ``--json`` for the kit to parse.

Exit status: 0 when PyTorch was imported (GPU or not), 3 when PyTorch cannot be imported, so the
runner can tell "this image has no torch" from "the probe itself broke" (any other status).

It needs only the standard library and torch, and it runs on whatever Python the image has.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

PROBE_FORMAT = 1
EXIT_TORCH_MISSING = 3


def _guarded(query: Callable[[], Any]) -> Any:
    """Run one torch query; a CPU build raises on CUDA-only queries, which means "none"."""
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


def collect(torch: ModuleType) -> dict[str, Any]:
    """Ask torch everything the report needs; missing answers are None, never an exception."""
    cuda = torch.cuda
    cuda_available = bool(_guarded(cuda.is_available))
    device_index = _guarded(cuda.current_device) if cuda_available else None
    device_name = (_guarded(lambda: cuda.get_device_name(device_index))
                   if device_index is not None else None)
    mps = getattr(torch.backends, "mps", None)
    return {
        "probe": PROBE_FORMAT,
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


def text_lines(facts: dict[str, Any]) -> list[str]:
    """The human form: one labelled fact per line, then a verdict line."""
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
        lines += [f"Active GPU index: {facts['device_index']}",
                  f"Active GPU name: {facts['device_name']}"]
    elif facts["mps_available"]:
        lines.append("PyTorch has active GPU: mps")
    else:
        lines.append("PyTorch has no active GPU")
    return lines


def missing_torch(error: ImportError, as_json: bool) -> int:
    """Say by name that torch is absent (the usual mistake: the wrong environment was built)."""
    message = str(error) or "torch cannot be imported"
    if as_json:
        print(json.dumps({"probe": PROBE_FORMAT, "torch": None, "error": message}))
    else:
        print(f"PyTorch is not installed in this environment: {message}")
        print(f"Python: {sys.executable} {sys.version.split()[0]}")
    return EXIT_TORCH_MISSING


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Report the GPU that PyTorch can use.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        torch = importlib.import_module("torch")
    except ImportError as error:
        return missing_torch(error, args.json)
    facts = collect(torch)
    if args.json:
        print(json.dumps(facts))
    else:
        print("\n".join(text_lines(facts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the linux-aarch64 tests (marker ``aarch64``) build on, and what is missing for them.

``tests/lab/aarch64.sh`` provisions it (qemu-aarch64 through binfmt_misc, the channel's
linux-aarch64 packages, a workspace locked for linux-64 and linux-aarch64, arm64 base images,
and a loopback registry holding the base images as manifest lists of both architectures).

The base images are named by the registry (``127.0.0.1:5017/kit-lab/pixi:bookworm``): one name
for both architectures, as ``ghcr.io/prefix-dev/pixi`` is, so one generated Dockerfile or
definition file builds either, and BuildKit or Apptainer picks the architecture from the list.
The local store holds one architecture per name (Docker 20.10 without the containerd store), so
the arm64 images there carry the suffix ``-arm64``.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.lab.settings import DEFAULT_CACHE, DOCKER, OFFLINE_PIXI_REPO, OFFLINE_RUNTIME_IMAGE

DEFAULT_REGISTRY = "127.0.0.1:5017"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_HINT = "run tests/lab/aarch64.sh (as root)"


@dataclass(frozen=True)
class Aarch64Lab:
    registry: str  # host:port of the loopback registry
    base_image: str  # the pixi stand-in image, a manifest list (amd64 + arm64) in the registry
    runtime_image: str  # the runtime image, the same way
    local_base_image: str  # the arm64 pixi image in the local store
    local_runtime_image: str  # the arm64 runtime image in the local store
    workspace: Path  # locked for linux-64 and linux-aarch64: `default` (python, pytorch), `bare`
    channel_dir: Path
    docker: str = DOCKER


def aarch64_lab(environ: Mapping[str, str] | None = None) -> Aarch64Lab:
    env = os.environ if environ is None else environ
    cache = Path(env.get("KIT_LAB_CACHE") or DEFAULT_CACHE)
    registry = env.get("KIT_LAB_REGISTRY") or DEFAULT_REGISTRY
    pixi = f"{env.get('KIT_LAB_PIXI_REPO') or OFFLINE_PIXI_REPO}:bookworm"
    runtime = (
        f"{env['KIT_LAB_RUNTIME_REPO']}:bookworm"
        if env.get("KIT_LAB_RUNTIME_REPO")
        else OFFLINE_RUNTIME_IMAGE
    )
    return Aarch64Lab(
        registry,
        f"{registry}/{pixi}",
        f"{registry}/{runtime}",
        f"{pixi}-arm64",
        f"{runtime}-arm64",
        cache / "workspace-aarch64",
        cache / "channel",
    )


def list_architectures(registry: str, image: str) -> list[str]:
    """The architectures of the manifest list ``image`` (``host:port/path:tag``) in ``registry``;
    empty when it is not there or not a list."""
    path, _, tag = image.removeprefix(registry + "/").rpartition(":")
    request = urllib.request.Request(
        f"http://{registry}/v2/{path}/manifests/{tag}", headers={"Accept": MANIFEST_LIST}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return []
    return sorted(m.get("platform", {}).get("architecture", "") for m in body.get("manifests", []))


def _architecture(docker: str, image: str) -> str | None:
    try:
        done = subprocess.run(
            [docker, "image", "inspect", "--format", "{{.Architecture}}", image],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def missing(lab: Aarch64Lab | None = None) -> list[str]:
    """What the aarch64 tests lack here, one reason each (empty: all there). Never raises."""
    s = lab or aarch64_lab()
    out: list[str] = []
    handler = BINFMT / "qemu-aarch64"
    try:
        lines = handler.read_text().splitlines()
    except OSError:
        lines = []
    if not lines or lines[0] != "enabled":
        out.append(f"qemu-aarch64 is not registered in {BINFMT}: {_HINT}")
    elif not any(line.startswith("flags:") and "F" in line for line in lines):
        out.append(f"qemu-aarch64 is registered without the F flag: {_HINT}")
    for image in (s.local_base_image, s.local_runtime_image):
        arch = _architecture(s.docker, image)
        if arch != "arm64":
            out.append(f"image {image} is {'missing' if arch is None else arch}, not arm64: {_HINT}")
    for image in (s.base_image, s.runtime_image):
        if list_architectures(s.registry, image) != ["amd64", "arm64"]:
            out.append(f"{image} is not a manifest list of amd64 and arm64 in the registry: {_HINT}")
    if not (s.channel_dir / "linux-aarch64" / "repodata.json").exists():
        out.append(f"the lab channel has no linux-aarch64 subdir: {_HINT}")
    if not ((s.workspace / "pixi.toml").exists() and (s.workspace / "pixi.lock").exists()):
        out.append(f"lab workspace {s.workspace} not locked: {_HINT}")
    return out

"""What the tests build on: the offline lab, or the real pixi image and a pixi-locked workspace.

ONE switch, the environment variable ``KIT_LAB_MODE``:

* ``offline`` (default): the lab made by ``tests/lab/provision.sh``: base image
  ``kit-lab/pixi:bookworm`` (Debian bookworm + the py-rattler pixi STAND-IN + the local channel),
  runtime image ``kit-lab/runtime:bookworm`` and the lab-locked copy of ``examples/cuda-exercise``
  under ``$KIT_LAB_CACHE/workspace``.
* ``connected``: the real thing, for a machine that reaches ghcr.io and conda-forge: base image
  the kit's pinned pixi image (``kit.decide.options.DEFAULT_BASE_IMAGE``), runtime image ``ubuntu:24.04`` and
  ``examples/cuda-exercise`` itself (locked there by a real ``pixi lock``).

``KIT_LAB_CACHE`` (default ``/var/cache/kit-lab``) only says where the lab's files live.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kit.decide.options import DEFAULT_BASE_IMAGE, PIXI_VERSION

Mode = Literal["offline", "connected"]
MODES: tuple[Mode, ...] = ("offline", "connected")

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = Path(__file__).resolve().parent
PROVISION = LAB_DIR / "provision.sh"
DEFAULT_CACHE = Path("/var/cache/kit-lab")
DOCKER = "/usr/bin/docker"  # Debian's 20.10 client: BuildKit built in (the 28.x one lacks buildx)

OFFLINE_PIXI_REPO = "kit-lab/pixi"  # KIT_LAB_PIXI_REPO overrides it (base_images.sh too)
OFFLINE_BASE_IMAGE = f"{OFFLINE_PIXI_REPO}:bookworm"
OLD_PIXI_VERSION = "0.55.0"  # the old pin: reads lock format 6 only
OFFLINE_RUNTIME_IMAGE = "kit-lab/runtime:bookworm"
CONNECTED_BASE_IMAGE = DEFAULT_BASE_IMAGE  # the kit's pin: one place (kit/decide/options.py)
CONNECTED_RUNTIME_IMAGE = "ubuntu:24.04"

_HINT = "run tests/lab/provision.sh"


@dataclass(frozen=True)
class LabSettings:
    mode: Mode
    base_image: str  # renderer option `base_image`: an image with pixi on PATH
    runtime_image: str  # renderer option `runtime_image`: a final stage without pixi
    workspace: Path  # a locked pixi workspace (pixi.toml + pixi.lock); copy before installing
    cache_dir: Path  # $KIT_LAB_CACHE
    channel_dir: Path  # the lab's local conda channel (offline mode only is it used)
    hello_workspace: Path | None  # offline only: a locked one-package (kit-hello) workspace
    docker: str = DOCKER  # the docker CLI to drive builds with (DOCKER_BUILDKIT=1)


def standin_images(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The lab's pixi stand-in images by the pixi version each emulates: the kit's pin and
    OLD_PIXI_VERSION (tests/lab/base_images.sh builds both)."""
    env = os.environ if environ is None else environ
    repo = env.get("KIT_LAB_PIXI_REPO") or OFFLINE_PIXI_REPO
    return {PIXI_VERSION: f"{repo}:bookworm", OLD_PIXI_VERSION: f"{repo}:bookworm-{OLD_PIXI_VERSION}"}


def lab_settings(environ: Mapping[str, str] | None = None) -> LabSettings:
    """The settings for ``KIT_LAB_MODE`` (default ``offline``); ValueError for an unknown mode."""
    env = os.environ if environ is None else environ
    mode = env.get("KIT_LAB_MODE", "offline").strip().lower() or "offline"
    if mode not in MODES:
        raise ValueError(f"KIT_LAB_MODE={mode!r}: expected one of {', '.join(MODES)}")
    cache = Path(env.get("KIT_LAB_CACHE") or DEFAULT_CACHE)
    if mode == "offline":
        return LabSettings(
            "offline",
            standin_images(env)[PIXI_VERSION],
            OFFLINE_RUNTIME_IMAGE,
            cache / "workspace",
            cache,
            cache / "channel",
            cache / "workspace-hello",
        )
    return LabSettings(
        "connected",
        CONNECTED_BASE_IMAGE,
        CONNECTED_RUNTIME_IMAGE,
        REPO / "examples" / "cuda-exercise",
        cache,
        cache / "channel",
        None,
    )


def _run(args: list[str], timeout: float = 15) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def missing(settings: LabSettings | None = None) -> list[str]:
    """What the lab lacks, one human-readable reason each; empty when everything is in place.

    Never raises: tests turn the reasons into skips (or failures when CI=true).
    """
    s = settings or lab_settings()
    out: list[str] = []
    if not Path(s.docker).exists() or shutil.which(s.docker) is None:
        out.append(f"docker CLI {s.docker} not installed: {_HINT}")
    else:
        r = _run([s.docker, "info", "--format", "{{.ServerVersion}}"])
        if r is None or r.returncode != 0:
            out.append(f"docker daemon not running: {_HINT}")
        elif s.mode == "offline":
            for image in (s.base_image, s.runtime_image):
                r = _run([s.docker, "image", "inspect", "--format", "{{.Id}}", image])
                if r is None or r.returncode != 0:
                    out.append(f"image {image} missing: {_HINT}")
    if s.mode == "offline":
        for sub in ("noarch", "linux-64"):
            if not (s.channel_dir / sub / "repodata.json").exists():
                out.append(f"lab channel not indexed ({s.channel_dir / sub / 'repodata.json'}): {_HINT}")
        for ws in (s.workspace, s.hello_workspace):
            if ws is not None and not ((ws / "pixi.toml").exists() and (ws / "pixi.lock").exists()):
                out.append(f"lab workspace {ws} not locked: {_HINT}")
    elif not (s.workspace / "pixi.lock").exists():
        out.append(f"{s.workspace / 'pixi.lock'} missing: run `pixi lock` there on a connected machine")
    return out


def ensure_provisioned(
    settings: LabSettings | None = None, *, provision: bool = False, timeout: float = 900
) -> list[str]:
    """Report what is missing (see ``missing``); with ``provision=True`` run provision.sh first
    when something is. Returns the reasons still left, never raises."""
    s = settings or lab_settings()
    gaps = missing(s)
    if gaps and provision and PROVISION.exists():
        env = {**os.environ, "KIT_LAB_MODE": s.mode, "KIT_LAB_CACHE": str(s.cache_dir)}
        try:
            r = subprocess.run(
                ["bash", str(PROVISION)], env=env, timeout=timeout, capture_output=True, text=True
            )
            if r.returncode != 0:
                tail = (r.stderr or r.stdout).strip().splitlines()[-5:]
                return missing(s) + [f"provision.sh failed (exit {r.returncode}): " + " | ".join(tail)]
        except (OSError, subprocess.TimeoutExpired) as e:
            return missing(s) + [f"provision.sh did not finish: {e}"]
        gaps = missing(s)
    return gaps


def copy_workspace(dest: Path, settings: LabSettings | None = None) -> Path:
    """Copy the settings' locked workspace (without any installed ``.pixi/envs``) to ``dest``."""
    s = settings or lab_settings()
    shutil.copytree(
        s.workspace,
        dest,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".pixi", ".kit-lab-inputs", "__pycache__"),
    )
    return Path(dest)

#!/usr/bin/env python3
"""Lab copies of pixi workspaces, locked with py-rattler against the lab's local channel.

``lab_workspace()`` makes ``$KIT_LAB_CACHE/workspace``: a copy of ``examples/cuda-exercise`` whose
manifest's ``channels`` point at the lab channel as the lab's pixi image sees it
(``file:///opt/kit-lab/channel``) and whose ``platforms`` are reduced to ``linux-64`` (the lab
channel has no osx-arm64 packages), plus a genuine ``pixi.lock`` written by rattler (lock format
version 7) with every environment of the manifest (``default``, ``cpu``, ``gpu``) solved for
linux-64. The solve runs against the channel's host path; the records' URLs are then rewritten to
``file:///opt/kit-lab/channel/<subdir>/<file>``, so the lock installs inside the image.

``hello_workspace()`` makes ``$KIT_LAB_CACHE/workspace-hello``: a one-package workspace
(``kit-hello``, no Python) for quick tests.

Both are rebuilt only when their inputs (source manifest, channel index) change; pass ``dest`` to
get a fresh copy somewhere else (tests install into their copy, which writes ``.pixi/``).

Usage: ``python tests/lab/workspace.py [--cache DIR]`` prints the two paths.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rattler import GenericVirtualPackage

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import pixi_standin
else:
    from . import pixi_standin

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "cuda-exercise"
CHANNEL_IN_IMAGE = "file:///opt/kit-lab/channel"
PLATFORM = "linux-64"
STAMP = ".kit-lab-inputs"

HELLO_MANIFEST = f'''\
# kit-lab: a one-package workspace for quick tests (no Python, installs in a second).
[workspace]
name = "kit-hello"
version = "1.0.0"
channels = ["{CHANNEL_IN_IMAGE}"]
platforms = ["{PLATFORM}"]

[dependencies]
kit-hello = ">=1.0"

[tasks]
hello = "kit-hello"
'''


def default_cache() -> Path:
    return Path(os.environ.get("KIT_LAB_CACHE", "/var/cache/kit-lab"))


def lab_manifest(text: str, origin: str = "examples/cuda-exercise/pixi.toml") -> str:
    """Point a pixi.toml at the lab channel and at linux-64 only (first [workspace] table)."""
    out, n1 = re.subn(r"(?m)^channels\s*=\s*\[[^\]]*\]", f'channels = ["{CHANNEL_IN_IMAGE}"]', text, count=1)
    out, n2 = re.subn(r"(?m)^platforms\s*=\s*\[[^\]]*\]", f'platforms = ["{PLATFORM}"]', out, count=1)
    if not (n1 and n2):
        raise ValueError("manifest has no one-line `channels = [...]` and `platforms = [...]`")
    tomllib.loads(out)  # still valid TOML
    header = (f"# kit-lab copy of {origin}: channels point at the lab's local\n"
              "# channel (as the lab pixi image sees it) and platforms are linux-64 only.\n")
    return header + out


def _virtual_packages(sysreq: dict[str, str]) -> list["GenericVirtualPackage"]:
    from rattler import BuildString, GenericVirtualPackage, PackageName, Version

    # pixi's defaults for linux-64 system requirements, plus CUDA when the environment asks for it
    vps = [("__unix", "0", "0"), ("__linux", sysreq.get("linux", "4.18"), "0"),
           ("__glibc", sysreq.get("libc", "2.28"), "0"), ("__archspec", "1", "x86_64")]
    if "cuda" in sysreq:
        vps.append(("__cuda", sysreq["cuda"], "0"))
    return [GenericVirtualPackage(PackageName(n), Version(v), BuildString(b)) for n, v, b in vps]


async def _lock(ws: "pixi_standin.Workspace", channel_dir: Path, out: Path) -> None:
    from rattler import Channel, LockChannel, LockFile, LockPlatform, solve

    host_url = channel_dir.resolve().as_uri()
    plat = LockPlatform(PLATFORM)
    lock = LockFile([plat])
    for env in ws.environments:
        specs = list(ws.dependencies(env, PLATFORM).values())
        records = await solve([Channel(host_url)], specs, platforms=["linux-64", "noarch"],
                              virtual_packages=_virtual_packages(ws.system_requirements(env)),
                              timestamp_policy="allow-missing")
        lock.set_channels(env, [LockChannel(CHANNEL_IN_IMAGE + "/")])
        for r in sorted(records, key=lambda r: r.name.normalized):
            r.url = r.url.replace(host_url.rstrip("/"), CHANNEL_IN_IMAGE, 1)
            r.channel = CHANNEL_IN_IMAGE + "/"
            lock.add_conda_package(env, plat, r)
    lock.to_path(out)


def _inputs_hash(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()


def _channel_index(channel_dir: Path) -> bytes:
    return b"".join((channel_dir / s / "repodata.json").read_bytes() for s in ("noarch", "linux-64"))


def _build(ws_dir: Path, manifest_text: str, channel_dir: Path, extra_src: Path | None) -> Path:
    want = _inputs_hash(manifest_text.encode(), _channel_index(channel_dir),
                        Path(__file__).read_bytes(), Path(pixi_standin.__file__).read_bytes())
    if (ws_dir / STAMP).exists() and (ws_dir / STAMP).read_text() == want \
            and (ws_dir / "pixi.lock").exists():
        return ws_dir
    tmp = ws_dir.with_name(ws_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if extra_src is not None:
        shutil.copytree(extra_src, tmp, ignore=shutil.ignore_patterns(
            ".pixi", "pixi.lock", "__pycache__", "*.pyc"))
    else:
        tmp.mkdir(parents=True)
    (tmp / "pixi.toml").write_text(manifest_text)
    asyncio.run(_lock(pixi_standin.Workspace(tmp / "pixi.toml"), channel_dir, tmp / "pixi.lock"))
    (tmp / STAMP).write_text(want)
    shutil.rmtree(ws_dir, ignore_errors=True)
    tmp.rename(ws_dir)
    print(f"[workspace] locked {ws_dir}", file=sys.stderr)
    return ws_dir


def _copy(src: Path, dest: Path | None) -> Path:
    if dest is None:
        return src
    dest = Path(dest)
    shutil.copytree(src, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(STAMP))
    return dest


def lab_workspace(dest: Path | None = None, *, cache: Path | None = None,
                  source: Path = EXAMPLE) -> Path:
    """The lab-locked copy of ``source`` (default examples/cuda-exercise); copied to ``dest`` if given."""
    cache = cache or default_cache()
    channel_dir = cache / "channel"
    origin = (f"{source.relative_to(REPO)}/pixi.toml" if source.is_relative_to(REPO)
              else str(source / "pixi.toml"))
    text = lab_manifest((source / "pixi.toml").read_text(), origin)
    ws = _build(cache / "workspace", text, channel_dir, source)
    return _copy(ws, dest)


def hello_workspace(dest: Path | None = None, *, cache: Path | None = None) -> Path:
    """A locked one-package (kit-hello) workspace; copied to ``dest`` if given."""
    cache = cache or default_cache()
    ws = _build(cache / "workspace-hello", HELLO_MANIFEST, cache / "channel", None)
    return _copy(ws, dest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="lock the lab workspaces")
    ap.add_argument("--cache", type=Path, default=None)
    a = ap.parse_args(argv)
    print(lab_workspace(cache=a.cache))
    print(hello_workspace(cache=a.cache))
    return 0


if __name__ == "__main__":
    sys.exit(main())

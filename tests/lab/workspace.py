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

``aarch64_workspace()`` makes ``$KIT_LAB_CACHE/workspace-aarch64``: python and pytorch locked for
linux-64 and linux-aarch64 (the lab's stand-in torch there), once ``aarch64_channel.py`` has made
the channel's linux-aarch64 packages (``tests/lab/aarch64.sh``).

Both are rebuilt only when their inputs (source manifest, channel index) change; pass ``dest`` to
get a fresh copy somewhere else (tests install into their copy, which writes ``.pixi/``).

Usage: ``python tests/lab/workspace.py [--cache DIR]`` prints the two paths.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def _toml_value(value: object) -> str:
    """A platform entry as TOML: a quoted string, or an inline table of strings."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def _linux_platforms(text: str) -> str:
    """The `[workspace].platforms` of `text` reduced to its linux-64 entries (bare and rich,
    as written), as one TOML line."""
    found = _workspace_table(tomllib.loads(text)).get("platforms", [PLATFORM])
    kept = [p for p in found if (p if isinstance(p, str) else p.get("platform", p.get("name"))) == PLATFORM]
    return "platforms = [" + ", ".join(_toml_value(p) for p in kept) + "]"


def _workspace_table(manifest: dict[str, Any]) -> dict[str, Any]:
    """`[workspace]` of a pixi.toml, or `[tool.pixi.workspace]` of a pyproject.toml (the older
    `project` spelling of either too)."""
    pixi = manifest.get("tool", {}).get("pixi", manifest)
    table: dict[str, Any] = pixi.get("workspace") or pixi.get("project") or {}
    return table


def lab_manifest(text: str, origin: str = "examples/cuda-exercise/pixi.toml") -> str:
    """Point a pixi.toml at the lab channel and at its linux-64 platforms only (first [workspace]
    table; a rich linux-64 entry such as `{ name = "cuda-linux-64", ... }` is kept)."""
    out, n1 = re.subn(r"(?m)^channels\s*=\s*\[[^\]]*\]", f'channels = ["{CHANNEL_IN_IMAGE}"]', text, count=1)
    out, n2 = re.subn(r"(?m)^platforms\s*=\s*\[[^\]]*\]", lambda _m: _linux_platforms(text), out, count=1)
    if not (n1 and n2):
        raise ValueError("manifest has no one-line `channels = [...]` and `platforms = [...]`")
    loaded = tomllib.loads(out)  # still valid TOML
    names = {p if isinstance(p, str) else p.get("name", "") for p in _workspace_table(loaded)["platforms"]}
    # a feature's `platforms` may name an entry just dropped (osx-arm64): keep those it still has
    for line in re.findall(r"(?m)^platforms\s*=\s*\[[^\]]*\]$", out)[1:]:
        listed = tomllib.loads(line)["platforms"]
        out = out.replace(line, "platforms = " + json.dumps([p for p in listed if p in names]), 1)
    header = (
        f"# kit-lab copy of {origin}: channels point at the lab's local\n"
        "# channel (as the lab pixi image sees it) and platforms are linux-64 only.\n"
    )
    return header + out


def legacy_manifest(text: str) -> str:
    """A lab manifest as a pixi older than 0.71 needs it: `platforms = ["linux-64"]`, and the CUDA
    of a rich platform that a feature is narrowed to as that feature's
    `[system-requirements] cuda` (the form the lesson's callout shows for older pixi). Text
    without rich platforms comes back as it is."""
    data = tomllib.loads(text)
    rich = {p.get("name"): p for p in data.get("workspace", {}).get("platforms", []) if isinstance(p, dict)}
    if not rich:
        return text
    head, sep, rest = re.sub(
        r"(?m)^platforms\s*=\s*\[[^\]]*\]", f'platforms = ["{PLATFORM}"]', text, count=1
    ).partition(f'platforms = ["{PLATFORM}"]')
    rest = re.sub(r"(?m)^platforms\s*=\s*\[[^\]]*\]\n", "", rest)  # features: linux-64 only now
    extra = ""
    for name, feature in data.get("feature", {}).items():
        cudas = [rich[p]["cuda"] for p in feature.get("platforms", []) if "cuda" in rich.get(p, {})]
        if cudas:
            extra += f'\n[feature.{name}.system-requirements]\ncuda = "{cudas[0]}"\n'
    out = head + sep + rest + extra
    tomllib.loads(out)
    return out


# The newest pixi that writes every platform under its subdir: the lab locks format 6 copies as it.
SUBDIR_LAYOUT_PIXI = "0.70.2"


# pixi's defaults for each subdir the lab locks (standin_lock.SUBDIR_DEFAULTS), as the lock lists them.
SUBDIR_DEFAULTS = {
    "linux-64": ("__unix=0=0", "__linux=4.18", "__glibc=2.28", "__archspec=0=x86_64"),
    "linux-aarch64": ("__unix=0=0", "__linux=4.18", "__glibc=2.28", "__archspec=0=aarch64"),
}
LINUX_DEFAULTS = SUBDIR_DEFAULTS[PLATFORM]
# A lock platform's identity: its subdir and the virtual packages it declares beyond the defaults.
Key = tuple[str, tuple[tuple[str, str], ...]]


def _virtual_packages(declared: dict[str, str], subdir: str = PLATFORM) -> list[GenericVirtualPackage]:
    """What the solve assumes: pixi's defaults for the subdir, overridden and extended by what the
    platform declares (`{"__cuda": "12"}`)."""
    from rattler import BuildString, GenericVirtualPackage, PackageName, Version

    vps = {
        "__unix": ("0", "0"),
        "__linux": ("4.18", "0"),
        "__glibc": ("2.28", "0"),
        "__archspec": ("1", SUBDIR_DEFAULTS[subdir][-1].rsplit("=", 1)[1]),
    }
    for name, version in declared.items():
        vps[name] = (version, "0") if name != "__archspec" else ("1", version)
    return [GenericVirtualPackage(PackageName(n), Version(v), BuildString(b)) for n, (v, b) in vps.items()]


def _lock_platforms(ws: pixi_standin.Workspace) -> dict[Key, Any]:
    """The lock's platform entries, by identity (the virtual packages declared beyond the
    subdir's defaults), as the emulated pixi writes them. pixi 0.71+ (`shorten_platform_names`)
    keys a platform that declares virtual packages `p1`, `p2`, ... in the order of the manifest's
    non-subdir platforms (a `[system-requirements]` platform, which pixi synthesises, after
    them) and lists every entry's virtual packages; the lab leaves a plain `linux-64` without
    them, as pixi <= 0.70 wrote it (tests/lab/README.md), so those locks stay byte for byte the
    same. pixi <= 0.70 has one entry per subdir and solves CUDA from the system requirements.
    Each subdir of SUBDIR_DEFAULTS the manifest names is locked (linux-64, linux-aarch64)."""
    from rattler import LockPlatform, Subdir

    wanted: list[Key] = []
    for env in ws.environments:
        for name in ws.env_platforms(env):
            subdir = ws.entry(name).subdir
            if subdir in SUBDIR_DEFAULTS:
                key = (subdir, tuple(sorted(ws.declared_virtual_packages(env, name).items())))
                if key not in wanted:
                    wanted.append(key)
    if not ws.emulated.named_layout:
        return {key: LockPlatform(key[0]) for key in wanted}
    rich = [(p.subdir, tuple(sorted(p.declared.items()))) for p in ws.platform_entries if p.declared]
    ordered = [k for k in rich if k in wanted] + [k for k in wanted if k not in rich and k[1]]
    out: dict[Key, Any] = {key: LockPlatform(key[0]) for key in wanted if not key[1]}
    for i, key in enumerate(dict.fromkeys(ordered), 1):
        declared = [f"{n}={v}" for n, v in key[1]]
        defaults = [d for d in SUBDIR_DEFAULTS[key[0]] if d.split("=")[0] not in dict(key[1])]
        out[key] = LockPlatform(f"p{i}", Subdir(key[0]), declared + defaults)
    return out


async def _lock(ws: pixi_standin.Workspace, channel_dir: Path, out: Path, fmt: int = 7) -> None:
    """Solve every environment of ``ws`` for each of its Linux platforms against the lab
    channel and write ``out`` in lock format ``fmt`` (7: rattler's own writer, in the layout of
    the pixi the stand-in emulates, see `_lock_platforms`; 6: ``to_v6`` of what rattler wrote)."""
    from rattler import Channel, LockChannel, LockFile, solve

    host_url = channel_dir.resolve().as_uri()
    platforms = _lock_platforms(ws)
    lock = LockFile(list({id(p): p for p in platforms.values()}.values()))
    for env in ws.environments:
        lock.set_channels(env, [LockChannel(CHANNEL_IN_IMAGE + "/")])
        for name in ws.env_platforms(env):
            subdir = ws.entry(name).subdir
            if subdir not in SUBDIR_DEFAULTS:
                continue
            declared = ws.declared_virtual_packages(env, name)
            if not ws.emulated.rich:  # pixi <= 0.70 solves with the system requirements
                declared = {
                    pixi_standin.standin_lock.SYSREQ_VIRTUAL[k]: v
                    for k, v in ws.system_requirements(env).items()
                    if k in pixi_standin.standin_lock.SYSREQ_VIRTUAL
                }
            plat = platforms[(subdir, tuple(sorted(ws.declared_virtual_packages(env, name).items())))]
            specs = list(ws.dependencies(env, subdir).values())
            records = await solve(
                [Channel(host_url)],
                specs,
                platforms=[subdir, "noarch"],
                virtual_packages=_virtual_packages(declared, subdir),
                timestamp_policy="allow-missing",
            )
            for r in sorted(records, key=lambda r: r.name.normalized):
                r.url = r.url.replace(host_url.rstrip("/"), CHANNEL_IN_IMAGE, 1)
                r.channel = CHANNEL_IN_IMAGE + "/"
                lock.add_conda_package(env, plat, r)
            for pypi, spec in sorted(ws.pypi_dependencies(env, subdir).items()):
                # the lab locks only editable path dependencies on the project itself
                if not (isinstance(spec, dict) and "path" in spec):
                    raise ValueError(
                        f"the lab cannot lock the PyPI dependency {pypi!r}: only "
                        '`{ path = ".", editable = true }` on the project itself'
                    )
                lock.add_pypi_package(env, plat, ws.name, ws.version or "0.0.0", spec["path"])
    lock.to_path(out)
    if fmt == 6:
        out.write_text(to_v6(out.read_text()))
    elif fmt != 7:
        raise ValueError(f"lock format {fmt}: the lab writes 6 or 7")


# Keys of a v7 conda package entry that format 6 does not have (checked against the real v6
# lock in ../shared/fixtures: its entries carry no `channel` or `indexed_timestamp`, and no
# `subdir` where a URL names it; rattler's v6 reader needs `subdir` beside a bare path).
_V7_ONLY_KEYS = ("channel", "indexed_timestamp")


def to_v6(v7_text: str) -> str:
    """The same lock in format 6, as pixi 0.55 writes it: `version: 6`, no top-level
    `platforms` list (environments key packages by conda subdir), package entries without the
    v7-only keys. Only locks whose platforms are plain subdirs convert (all the lab writes)."""
    import yaml

    v7 = yaml.safe_load(v7_text)
    if v7.get("version") != 7:
        raise ValueError("to_v6 converts a version 7 lock")
    for p in v7.get("platforms", []):
        if p.get("virtual-packages") or p.get("subdir", p["name"]) != p["name"]:
            raise ValueError(f"platform {p['name']!r} has no format 6 equivalent")
    envs = {}
    for name, env in v7["environments"].items():
        envs[name] = {k: env[k] for k in ("channels", "indexes", "packages") if k in env}
    packages = []
    for entry in v7.get("packages", []):
        entry = {k: v for k, v in entry.items() if k not in _V7_ONLY_KEYS}
        url = str(entry.get("conda", ""))
        # format 6 derives the subdir from a URL's path; a bare path must name it
        if "subdir" in entry and "://" in url and url.rsplit("/", 2)[-2:-1] == [entry["subdir"]]:
            del entry["subdir"]
        packages.append(entry)
    v6 = {"version": 6, "environments": envs, "packages": packages}
    return yaml.safe_dump(v6, sort_keys=False, default_flow_style=False, width=1000)


def _inputs_hash(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()


def _channel_index(channel_dir: Path, platforms: tuple[str, ...] = (PLATFORM,)) -> bytes:
    return b"".join((channel_dir / s / "repodata.json").read_bytes() for s in ("noarch", *platforms))


def _build(
    ws_dir: Path,
    manifest_text: str,
    channel_dir: Path,
    extra_src: Path | None,
    *,
    fmt: int = 7,
    manifest_name: str = "pixi.toml",
    files: dict[str, str] | None = None,
    platforms: tuple[str, ...] = (PLATFORM,),
) -> Path:
    files = files or {}
    want = _inputs_hash(
        manifest_text.encode(),
        _channel_index(channel_dir, platforms),
        Path(__file__).read_bytes(),
        Path(pixi_standin.__file__).read_bytes(),
        str(fmt).encode(),
        manifest_name.encode(),
        json.dumps(files, sort_keys=True).encode(),
    )
    if (ws_dir / STAMP).exists() and (ws_dir / STAMP).read_text() == want and (ws_dir / "pixi.lock").exists():
        return ws_dir
    tmp = ws_dir.with_name(ws_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if extra_src is not None:
        shutil.copytree(
            extra_src, tmp, ignore=shutil.ignore_patterns(".pixi", "pixi.lock", "__pycache__", "*.pyc")
        )
    else:
        tmp.mkdir(parents=True)
    (tmp / manifest_name).write_text(manifest_text)
    for rel, text in files.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_text(text)
    emulated = pixi_standin.Emulated(SUBDIR_LAYOUT_PIXI) if fmt == 6 else None
    asyncio.run(
        _lock(pixi_standin.Workspace(tmp / manifest_name, emulated), channel_dir, tmp / "pixi.lock", fmt)
    )
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


def lab_workspace(
    dest: Path | None = None, *, cache: Path | None = None, source: Path = EXAMPLE, lock_format: int = 7
) -> Path:
    """The lab-locked copy of ``source`` (default examples/cuda-exercise); copied to ``dest`` if
    given. ``lock_format=6`` gives the same workspace with a format 6 lock (as pixi <= 0.67
    writes), cached apart in ``$KIT_LAB_CACHE/workspace-v6``."""
    cache = cache or default_cache()
    channel_dir = cache / "channel"
    origin = (
        f"{source.relative_to(REPO)}/pixi.toml" if source.is_relative_to(REPO) else str(source / "pixi.toml")
    )
    text = lab_manifest((source / "pixi.toml").read_text(), origin)
    if lock_format == 6:  # as a pixi of that time wrote it: no rich platforms
        text = legacy_manifest(text)
    where = cache / ("workspace" if lock_format == 7 else f"workspace-v{lock_format}")
    ws = _build(where, text, channel_dir, source, fmt=lock_format)
    return _copy(ws, dest)


PYPROJECT_MANIFEST = f'''\
# kit-lab: a pyproject.toml workspace ([tool.pixi]) that installs the project itself, editable.
[project]
name = "kit-pyproject"
version = "0.3.0"
requires-python = ">=3.11"
dependencies = []

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.pixi.workspace]
channels = ["{CHANNEL_IN_IMAGE}"]
platforms = ["{PLATFORM}"]

[tool.pixi.dependencies]
kit-hello = ">=1.0"

[tool.pixi.pypi-dependencies]
kit-pyproject = {{ path = ".", editable = true }}
'''
PYPROJECT_FILES = {
    "src/kit_pyproject/__init__.py": 'GREETING = "hello from kit-pyproject"\n',
}


def pyproject_workspace(dest: Path | None = None, *, cache: Path | None = None, lock_format: int = 7) -> Path:
    """A locked pyproject.toml workspace (python + kit-hello, and the project itself as an
    editable path dependency, src layout); copied to ``dest`` if given."""
    cache = cache or default_cache()
    ws = _build(
        cache / f"workspace-pyproject-v{lock_format}",
        PYPROJECT_MANIFEST,
        cache / "channel",
        None,
        fmt=lock_format,
        manifest_name="pyproject.toml",
        files=PYPROJECT_FILES,
    )
    return _copy(ws, dest)


def hello_workspace(dest: Path | None = None, *, cache: Path | None = None) -> Path:
    """A locked one-package (kit-hello) workspace; copied to ``dest`` if given."""
    cache = cache or default_cache()
    ws = _build(cache / "workspace-hello", HELLO_MANIFEST, cache / "channel", None)
    return _copy(ws, dest)


AARCH64_PLATFORMS = ("linux-64", "linux-aarch64")
AARCH64_MANIFEST = f'''\
# kit-lab: a small workspace locked for linux-64 and linux-aarch64 (issue 17). pytorch is the lab's
# CPU build on linux-64 and its stand-in on linux-aarch64 (tests/lab/aarch64_channel.py), so an
# arm64 install under emulation takes seconds. `bare` is python alone: something cheap to build
# and run on each architecture.
[workspace]
name = "kit-arm"
version = "1.0.0"
channels = ["{CHANNEL_IN_IMAGE}"]
platforms = [{", ".join(f'"{p}"' for p in AARCH64_PLATFORMS)}]

[dependencies]
python = "3.11.*"
pytorch = "==2.13.0"

[feature.bare.dependencies]
python = "3.11.*"

[environments]
bare = {{ features = ["bare"], no-default-feature = true }}
'''


def aarch64_workspace(dest: Path | None = None, *, cache: Path | None = None) -> Path:
    """The workspace locked for linux-64 and linux-aarch64 (``default``: python + pytorch,
    ``bare``: python); copied to ``dest`` if given. Needs the channel's linux-aarch64 subdir."""
    cache = cache or default_cache()
    ws = _build(
        cache / "workspace-aarch64",
        AARCH64_MANIFEST,
        cache / "channel",
        None,
        platforms=AARCH64_PLATFORMS,
    )
    return _copy(ws, dest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="lock the lab workspaces")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--aarch64", action="store_true", help="lock the linux-aarch64 workspace only")
    a = ap.parse_args(argv)
    if a.aarch64:
        print(aarch64_workspace(cache=a.cache))
        return 0
    print(lab_workspace(cache=a.cache))
    print(lab_workspace(cache=a.cache, lock_format=6))
    print(hello_workspace(cache=a.cache))
    print(pyproject_workspace(cache=a.cache))
    return 0


if __name__ == "__main__":
    # Leave without the interpreter's teardown, where py-rattler's threads can abort it (see
    # pixi_standin.exit_now); everything is written by then.
    pixi_standin.exit_now(main())

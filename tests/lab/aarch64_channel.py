#!/usr/bin/env python3
"""The lab channel's linux-aarch64 packages: what an arm64 image of the lab installs (issue 17).

Made as ``tests/lab/channel.py`` makes the linux-64 ones, from the same sources for the other
architecture, into ``$KIT_LAB_CACHE/channel/linux-aarch64``:

* ``python 3.11`` and the library packages (``openssl``, ``libffi``, ``libgcc``, ...): Debian
  bookworm's **arm64** ``.deb`` files, downloaded with ``apt-get download`` under a private
  ``APT_CONFIG`` (its own package lists and cache under ``$KIT_LAB_CACHE/apt-arm64``, an empty
  dpkg status, ``APT::Architecture "arm64"``, the host's own Debian sources) into
  ``$KIT_LAB_CACHE/debs-arm64``. The host's dpkg never learns about arm64; ``apt-get update``
  runs only when a needed ``.deb`` is not cached yet.
* ``numpy`` and ``markupsafe``: their manylinux2014 aarch64 wheels (``wheels/pypi-linux-aarch64``).
* ``pytorch 2.13.0`` build ``standin_py311_kitlab_0``: a STAND-IN, a few pure-Python files that
  answer what the kit's GPU probe asks (the version, no CUDA build, no device) as a CPU PyTorch on
  a machine without a GPU answers. PyPI's aarch64 torch wheel is the CUDA build (several GB with
  its dependencies), far too big for a lab that runs arm64 under emulation. It says what it is in
  ``torch.__doc__``, ``torch.__version__`` (``2.13.0+kitlab.standin``) and its conda summary.

The ``noarch`` packages are the linux-64 build's own: ``channel.py`` makes them, so run it first
(``tests/lab/aarch64.sh`` does). Indexing touches ``noarch`` and ``linux-aarch64`` only, so the
linux-64 index (and every lock and image made from it) stays as it was. Archives are deterministic
like the others; bumping RECIPE rebuilds this subdir.

Usage: ``python tests/lab/aarch64_channel.py [--cache DIR]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import channel as ch
else:
    from . import channel as ch

RECIPE = "1"
ARCH = ch.LINUX_AARCH64
STAMP = ".kit-lab-recipe"
PY_TAG = "py" + ch.PY_MM.replace(".", "")
STANDIN_BUILD = f"standin_{PY_TAG}_kitlab_0"
STANDIN_VERSION = f"{ch.TORCH_VERSION}+kitlab.standin"
# the binary wheels of channel.py's list, built for this architecture
WHEELS = [(p, v, c, ARCH.subdir, d) for p, v, c, sub, d in ch.WHEELS if sub != "noarch"]

# The stand-in `torch`: module path under site-packages -> text.
STANDIN_DOC = (
    "kit-lab STAND-IN for PyTorch on linux-aarch64: NOT PyTorch.\n\n"
    "The lab's aarch64 channel cannot carry a real PyTorch (PyPI's aarch64 torch is the CUDA\n"
    "build, several GB with its dependencies). This package answers what the kit's GPU probe\n"
    "asks, as a CPU-only PyTorch on a machine without a GPU does, and nothing else.\n"
    "Made by tests/lab/aarch64_channel.py.\n"
)
STANDIN_FILES = {
    "torch/__init__.py": f'"""{STANDIN_DOC}"""\n\n'
    f'__version__ = "{STANDIN_VERSION}"\n\n'
    "from torch import backends, cuda, version  # noqa: E402,F401\n",
    "torch/version.py": f'__version__ = "{STANDIN_VERSION}"\n'
    "cuda = None  # a CPU build: no CUDA\nhip = None\ngit_version = 'kitlab-standin'\n",
    "torch/cuda/__init__.py": '"""No CUDA in a CPU build: as torch.cuda answers there."""\n\n'
    "from torch.cuda import nccl  # noqa: F401\n\n\n"
    "def _lazy_init():\n"
    '    raise AssertionError("Torch not compiled with CUDA enabled")\n\n\n'
    "def is_available():\n    return False\n\n\n"
    "def device_count():\n    return 0\n\n\n"
    "def current_device():\n    _lazy_init()\n\n\n"
    "def get_device_name(device=None):\n    _lazy_init()\n",
    "torch/cuda/nccl.py": "def version():\n"
    '    raise RuntimeError("NCCL is not available in a CPU build (kit-lab stand-in)")\n',
    "torch/backends/__init__.py": "from torch.backends import cudnn, mps  # noqa: F401\n",
    "torch/backends/cudnn/__init__.py": "def version():\n    return None\n\n\n"
    "def is_available():\n    return False\n",
    "torch/backends/mps/__init__.py": "def is_available():\n    return False\n\n\n"
    "def is_built():\n    return False\n",
}


def log(msg: str) -> None:
    print(f"[aarch64_channel] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- arm64 .deb files


def _host_sources() -> list[Path]:
    """The host's active apt source files (one-line and deb822), so the arm64 packages come
    from the same Debian (suites, mirror, security) as the host's own."""
    etc = Path("/etc/apt")
    found = [etc / "sources.list"] if (etc / "sources.list").is_file() else []
    parts = etc / "sources.list.d"
    if parts.is_dir():
        found += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources") and p.is_file())
    return found


def apt_config(cache: Path, update: bool) -> Path:
    """A private apt configuration for ``ARCH.debian`` under ``$KIT_LAB_CACHE/apt-<arch>``
    (lists, cache, an empty dpkg status, a copy of the host's sources), its lists refreshed
    when ``update``. apt verifies the archive's signatures with the host's keyrings."""
    d = cache / f"apt-{ARCH.debian}"
    for sub in ("state/lists/partial", "cache/archives/partial", "sources.list.d"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "state" / "status").touch()
    for old in (d / "sources.list.d").iterdir():
        old.unlink()
    (d / "sources.list").write_text("")
    for src in _host_sources():
        shutil.copyfile(
            src, d / ("sources.list" if src.name == "sources.list" else f"sources.list.d/{src.name}")
        )
    conf = d / "apt.conf"
    conf.write_text(
        "// kit-lab: download arm64 packages without touching the host's dpkg (aarch64_channel.py)\n"
        f'APT::Architecture "{ARCH.debian}";\n'
        f'APT::Architectures {{ "{ARCH.debian}"; }};\n'
        f'Dir::State "{d}/state";\n'
        f'Dir::State::status "{d}/state/status";\n'
        f'Dir::Cache "{d}/cache";\n'
        f'Dir::Etc::SourceList "{d}/sources.list";\n'
        f'Dir::Etc::SourceParts "{d}/sources.list.d";\n'
        f'Dir::Etc::Preferences "{d}/preferences";\n'
        f'Dir::Etc::PreferencesParts "{d}/preferences.d";\n'
    )
    if update:
        log(f"apt-get update ({ARCH.debian} package lists, APT_CONFIG={conf})")
        r = subprocess.run(
            ["apt-get", "update", "-q"],
            env={**os.environ, "APT_CONFIG": str(conf)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        if r.returncode != 0:
            sys.stderr.write(r.stdout + r.stderr)
            raise SystemExit(f"apt-get update ({ARCH.debian}) failed (exit {r.returncode})")
    return conf


def _cached(package: str, debs: Path) -> bool:
    return any(p.name.split("_")[0] == package for p in debs.glob(f"{package}_*_*.deb"))


def prepare_debs(cache: Path) -> tuple[Path, Path]:
    """(the arm64 .deb folder, the APT_CONFIG that fills it); the package lists are refreshed
    only when one of the packages the recipes take is not cached yet."""
    debs = cache / f"debs-{ARCH.debian}"
    debs.mkdir(parents=True, exist_ok=True)
    wanted = list(ch.DEBIAN_PYTHON_PACKAGES) + [p for _, pkgs, _ in ch.DEBIAN_LIBRARIES for p in pkgs]
    missing = [p for p in wanted if not _cached(p, debs)]
    return debs, apt_config(cache, update=bool(missing))


# --------------------------------------------------------------------------- recipes


def python_version(debs: Path, conf: Path) -> tuple[str, str]:
    """(upstream version, Debian revision) of the arm64 python3.11."""
    full = ch._deb_version(ch.debian_deb("python3.11-minimal", debs, conf)).split(":", 1)[-1]
    upstream, _, rev = full.partition("-")
    return upstream, rev


def recipe_python(stage: Path, debs: Path, conf: Path) -> tuple[ch.Meta, set[str]]:
    """Debian's arm64 python3.11: the files of DEBIAN_PYTHON_PACKAGES' .deb files, unpacked."""
    root = stage.parent / "debroot"
    root.mkdir()
    for package in ch.DEBIAN_PYTHON_PACKAGES:
        subprocess.run(["dpkg-deb", "-x", str(ch.debian_deb(package, debs, conf)), str(root)], check=True)
    files = ["/" + rel for rel in ch._walk(root)]
    upstream, rev = python_version(debs, conf)
    return ch.python_package(stage, root, files, upstream, rev, ARCH)


def recipe_torch_standin(stage: Path) -> tuple[ch.Meta, set[str]]:
    site = stage / ch.SITE
    for rel, text in STANDIN_FILES.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    dist = site / f"torch-{STANDIN_VERSION}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: torch\nVersion: {STANDIN_VERSION}\n"
        "Summary: kit-lab stand-in for PyTorch (not PyTorch)\n"
    )
    (dist / "INSTALLER").write_text("conda\n")
    (dist / "top_level.txt").write_text("torch\n")
    return ch.Meta(
        "pytorch",
        ch.TORCH_VERSION,
        STANDIN_BUILD,
        ARCH.subdir,
        depends=[f"python {ch.PY_MM}.*"],
        license="BSD-3-Clause",
        summary="kit-lab STAND-IN for PyTorch on linux-aarch64 (a few pure-Python files answering "
        "the GPU probe as a CPU build does): NOT PyTorch",
    ), set()


def recipes(cache: Path) -> list[tuple[str, str, object]]:
    """(subdir, stem, recipe) of every linux-aarch64 package."""
    debs, conf = prepare_debs(cache)
    wheels = ch.download_wheels(cache / "wheels" / f"pypi-{ARCH.subdir}", WHEELS, ARCH.machine)
    upstream, rev = python_version(debs, conf)
    out: list[tuple[str, str, object]] = [
        (
            ARCH.subdir,
            f"python-{upstream}-debian_{ch._safe(rev)}_0",
            lambda st: recipe_python(st, debs, conf),
        ),
        (ARCH.subdir, f"pytorch-{ch.TORCH_VERSION}-{STANDIN_BUILD}", recipe_torch_standin),
    ]
    for name, packages, deps in ch.DEBIAN_LIBRARIES:
        out.append(
            (
                ARCH.subdir,
                ch.library_stem(name, packages, debs, conf),
                lambda st, n=name, p=packages, d=deps: ch.recipe_library(n, p, d, debs, st, ARCH, conf),
            )
        )
    for pypi, ver, conda_name, subdir, deps in WHEELS:
        out.append(
            (
                subdir,
                f"{conda_name}-{ver}-{PY_TAG}_kitlab_0",
                lambda st, w=wheels[pypi], c=conda_name, v=ver, d=deps: ch.recipe_wheel(
                    st, w, c, v, ARCH.subdir, d
                ),
            )
        )
    return out


def build(cache: Path | None = None) -> Path:
    """Build the missing linux-aarch64 packages and index; returns the channel folder."""
    cache = cache or ch.default_cache()
    channel = cache / "channel"
    if not (channel / "noarch" / "repodata.json").exists():
        raise SystemExit(f"no lab channel at {channel}: run tests/lab/channel.py first")
    sub = channel / ARCH.subdir
    stamp = sub / STAMP
    if sub.exists() and (not stamp.exists() or stamp.read_text() != RECIPE):
        log(f"recipe changed: removing {sub}")
        shutil.rmtree(sub)
    sub.mkdir(exist_ok=True)
    stamp.write_text(RECIPE)
    built = ch.build_packages(cache, channel, recipes(cache), (ARCH.subdir,))
    if built or not (sub / "repodata.json").exists():
        ch.index_channel(channel, ARCH.subdir)
    else:
        log(f"{ARCH.subdir} up to date: {sub}")
    return channel


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None, help="default: $KIT_LAB_CACHE or /var/cache/kit-lab")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    channel = build(a.cache)
    log(f"{ARCH.subdir} ready in {channel} ({time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

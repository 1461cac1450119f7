#!/usr/bin/env python3
"""Build the lab's local conda channel of REAL (hand-made) packages.

No conda channel is reachable on the lab machines, so the tests install from this one instead of
conda-forge. It lives at ``$KIT_LAB_CACHE/channel`` (``noarch/`` and ``linux-64/``) and is indexed
with ``rattler.index.index_fs``. Every package is a genuine ``.conda`` archive (``info/index.json``,
``info/paths.json`` with sha256 and sizes, ``info/files``, ``info/about.json``) that rattler, pixi
and conda can install:

* ``python 3.11.2`` (linux-64): Debian 12's own python3.11 (the binary and ``lib/python3.11``,
  taken file by file from the Debian packages that ship them) relocated into a prefix, plus a
  ``sitecustomize.py`` that puts ``<prefix>/lib/python3.11/site-packages`` on ``sys.path``
  (Debian's ``site.py`` only looks at ``dist-packages``). Its binary and ``lib-dynload`` modules
  get an RPATH into ``<prefix>/lib`` (``patchelf``), as conda-forge's python has, and it depends
  on the library packages below, so that it needs nothing from the system but glibc.
* the shared libraries python, PyTorch and numpy link against (``openssl``, ``libffi``,
  ``libexpat``, ``libsqlite``, ``bzip2``, ``liblzma``, ``ncurses``, ``readline``, ``libuuid``,
  ``libnsl``, ``libzlib``, ``libstdcxx``, ``libgcc``, ...), each made from Debian bookworm's own
  ``.deb`` (``$KIT_LAB_CACHE/debs``, debootstrap's cache, or ``apt-get download`` into it) by
  putting its shared objects under ``<prefix>/lib`` with an RPATH of ``$ORIGIN``: the environment
  is then self-contained except for glibc, as a conda-forge one is.
* ``pytorch 2.13.0`` (linux-64): the CPU PyTorch wheel found on the machine, unpacked into
  ``lib/python3.11/site-packages``, with its pure-Python requirements as ``noarch: python``
  packages built from pinned PyPI wheels (``markupsafe`` and ``numpy`` are linux-64: their
  wheels are binary; numpy is optional for torch, but ``import torch`` warns without it).
* ``pytorch-cpu`` / ``pytorch-gpu`` 2.13.0 metapackages (both select the CPU build here: the lab
  has no CUDA build) and ``cuda-version 12.9`` (empty, with conda-forge's ``__cuda >=12``
  constraint), so that ``examples/cuda-exercise/pixi.toml`` resolves.
* ``kit-hello 1.0`` (noarch generic): ``bin/kit-hello`` and an ``etc/conda/activate.d`` script that
  exports ``KIT_HELLO_ACTIVATED=1``, for quick tests that should not install PyTorch.

``tests/lab/aarch64_channel.py`` adds ``linux-aarch64/`` from the same recipes (``Arch``) and arm64
``.deb`` files, with a stand-in for PyTorch.

Archives are deterministic (sorted entries, fixed mtimes and owners, fixed zip dates), so the
channel is byte-identical between runs on the same inputs. A package is only built when its
archive is missing; bumping RECIPE_VERSION rebuilds everything.

Usage: ``python tests/lab/channel.py [--cache DIR] [--force]``
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

RECIPE_VERSION = "3"
MTIME = 1735689600  # 2025-01-01T00:00:00Z: every archive member gets this mtime
TIMESTAMP_MS = MTIME * 1000
PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"  # conda's classic prefix placeholder
TORCH_WHEEL = Path(
    os.environ.get(
        "KIT_LAB_TORCH_WHEEL", "/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    )
)
TORCH_VERSION = "2.13.0"
PY_MM = "3.11"
SITE = f"lib/python{PY_MM}/site-packages"

# PyPI wheels -> conda packages: (pypi name, version, conda name, subdir, depends)
WHEELS: list[tuple[str, str, str, str, list[str]]] = [
    ("filelock", "4.3.1", "filelock", "noarch", ["python >=3.11"]),
    ("typing-extensions", "4.16.0", "typing_extensions", "noarch", ["python >=3.9"]),
    ("setuptools", "84.2.1", "setuptools", "noarch", ["python >=3.10"]),
    ("mpmath", "1.3.0", "mpmath", "noarch", ["python >=3.8"]),
    ("sympy", "1.14.0", "sympy", "noarch", ["python >=3.9", "mpmath >=1.1.0,<1.4"]),
    ("networkx", "3.6.1", "networkx", "noarch", ["python >=3.11"]),
    ("markupsafe", "3.0.4", "markupsafe", "linux-64", [f"python {PY_MM}.*"]),
    ("jinja2", "3.1.6", "jinja2", "noarch", ["python >=3.7", "markupsafe >=2.0"]),
    ("fsspec", "2026.9.0", "fsspec", "noarch", ["python >=3.10"]),
    # optional for torch, but `import torch` warns "Failed to initialize NumPy" without it
    ("numpy", "2.2.6", "numpy", "linux-64", [f"python {PY_MM}.*"]),
]
TORCH_DEPENDS = [
    f"python {PY_MM}.*",
    "filelock",
    "typing_extensions >=4.10.0",
    "setuptools >=77.0.3",
    "sympy >=1.13.3",
    "networkx >=2.5.1",
    "jinja2",
    "fsspec >=0.8.5",
    "numpy",
]
# The Debian packages whose files make up the python package.
DEBIAN_PYTHON_PACKAGES = [
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "python3-distutils",
    "python3-lib2to3",
]

# Debian libraries -> conda packages, named as conda-forge names them: (conda name, Debian
# packages, conda dependencies). Only the shared objects directly under a package's library
# folder are taken (no plugin folders such as OpenSSL's engines-3 or krb5's plugins).
DEBIAN_LIBRARIES: list[tuple[str, list[str], list[str]]] = [
    ("libgcc", ["libgcc-s1"], []),
    ("libstdcxx", ["libstdc++6"], ["libgcc"]),
    ("libzlib", ["zlib1g"], []),
    ("libexpat", ["libexpat1"], []),
    ("openssl", ["libssl3"], []),
    ("libffi", ["libffi8"], []),
    ("libsqlite", ["libsqlite3-0"], []),
    ("bzip2", ["libbz2-1.0"], []),
    ("liblzma", ["liblzma5"], []),
    ("ncurses", ["libtinfo6", "libncursesw6"], []),
    ("readline", ["libreadline8"], ["ncurses"]),
    ("libuuid", ["libuuid1"], []),
    ("libdb", ["libdb5.3"], []),
    ("libxcrypt", ["libcrypt1"], []),
    ("keyutils", ["libkeyutils1"], []),
    (
        "krb5",
        ["libgssapi-krb5-2", "libkrb5-3", "libk5crypto3", "libkrb5support0", "libcom-err2"],
        ["keyutils"],
    ),
    ("libtirpc", ["libtirpc3"], ["krb5"]),
    ("libnsl", ["libnsl2"], ["libtirpc"]),
]
PYTHON_DEPENDS = [
    "libgcc",
    "libzlib",
    "libexpat",
    "openssl",
    "libffi",
    "libsqlite",
    "bzip2",
    "liblzma",
    "ncurses",
    "readline",
    "libuuid",
    "libdb",
    "libxcrypt",
    "libnsl",
]
# glibc's libraries: the one part of the system a conda environment still takes from the image.
GLIBC_SONAMES = {
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libresolv.so.2",
    "libutil.so.1",
    "libanl.so.1",
    "libmvec.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
}


@dataclass(frozen=True)
class Arch:
    """A Linux architecture as each tool names it: conda's subdir, Debian's architecture and
    ``uname -m`` (which is also conda's ``arch`` and the manylinux wheels' platform suffix)."""

    subdir: str
    debian: str
    machine: str

    @property
    def multiarch(self) -> str:
        """Debian's library folder (``/usr/lib/<multiarch>``)."""
        return f"{self.machine}-linux-gnu"


LINUX_64 = Arch("linux-64", "amd64", "x86_64")
LINUX_AARCH64 = Arch("linux-aarch64", "arm64", "aarch64")  # tests/lab/aarch64_channel.py
ARCHES = {a.subdir: a for a in (LINUX_64, LINUX_AARCH64)}

SITECUSTOMIZE = f"""\
# kit-lab: Debian's python3.11 only searches dist-packages directories. In a conda prefix the
# packages live in <prefix>/{SITE}: add it (and process its .pth files).
import os as _os
import site as _site
import sys as _sys

_sp = _os.path.join(_sys.prefix, "lib", "python%d.%d" % _sys.version_info[:2], "site-packages")
if _os.path.isdir(_sp) and _sp not in _sys.path:
    _site.addsitedir(_sp)
del _os, _site, _sys, _sp
"""


def log(msg: str) -> None:
    print(f"[channel] {msg}", file=sys.stderr, flush=True)


def default_cache() -> Path:
    return Path(os.environ.get("KIT_LAB_CACHE", "/var/cache/kit-lab"))


# --------------------------------------------------------------------------- package writing


@dataclass
class Meta:
    name: str
    version: str
    build: str
    subdir: str  # "noarch" or "linux-64"
    depends: list[str] = field(default_factory=list)
    constrains: list[str] = field(default_factory=list)
    noarch: str | None = None  # "python" | "generic" | None
    license: str = "LicenseRef-unknown"
    summary: str = ""
    entry_points: list[str] = field(default_factory=list)  # noarch: python console scripts
    build_number: int = 0

    @property
    def stem(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"


def _walk(root: Path) -> list[str]:
    """Relative paths of all files and symlinks under root, sorted."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for d in list(dirnames):
            if os.path.islink(os.path.join(dirpath, d)):
                filenames.append(d)
                dirnames.remove(d)
        for f in filenames:
            out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return sorted(out)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dumps(o: object) -> str:
    return json.dumps(o, indent=2, sort_keys=True) + "\n"


def _tar_zst(entries: list[tuple[str, Path]], out: Path) -> None:
    """Deterministic tar of (arcname, path) entries, in the order given, compressed with zstd on
    the fly (no uncompressed tar on disk: PyTorch's would be 700 MB)."""
    with open(out, "wb") as sink:
        zstd = subprocess.Popen(
            ["zstd", "-q", "-T0", "-10", "--no-progress", "-c"], stdin=subprocess.PIPE, stdout=sink
        )
        assert zstd.stdin is not None
        try:
            with tarfile.open(fileobj=zstd.stdin, mode="w|", format=tarfile.PAX_FORMAT) as tf:
                for arc, path in entries:
                    st = os.lstat(path)
                    ti = tarfile.TarInfo(arc)
                    ti.mtime = MTIME
                    ti.uid = ti.gid = 0
                    ti.uname = ti.gname = ""
                    if os.path.islink(path):
                        ti.type = tarfile.SYMTYPE
                        ti.linkname = os.readlink(path)
                        ti.mode = 0o777
                        tf.addfile(ti)
                    else:
                        ti.size = st.st_size
                        ti.mode = 0o755 if st.st_mode & 0o111 else 0o644
                        with open(path, "rb") as f:
                            tf.addfile(ti, f)
        finally:
            zstd.stdin.close()
            if zstd.wait() != 0:
                raise SystemExit(f"zstd failed writing {out}")


def write_package(
    meta: Meta, payload: Path, out_dir: Path, text_prefix_files: set[str] | None = None
) -> Path:
    """Write ``payload`` (a directory laid out as the package's files) as a .conda archive."""
    text_prefix_files = text_prefix_files or set()
    out_dir.mkdir(parents=True, exist_ok=True)
    rels = _walk(payload)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=".pkg-") as tmp_s:
        tmp = Path(tmp_s)
        info = tmp / "info"
        info.mkdir()
        paths = []
        for rel in rels:
            p = payload / rel
            if os.path.islink(p):
                paths.append({"_path": rel, "path_type": "softlink", "size_in_bytes": 0})
            else:
                e: dict[str, object] = {
                    "_path": rel,
                    "path_type": "hardlink",
                    "sha256": _sha256(p),
                    "size_in_bytes": p.stat().st_size,
                }
                if rel in text_prefix_files:
                    e["file_mode"] = "text"
                    e["prefix_placeholder"] = PLACEHOLDER
                paths.append(e)
        index: dict[str, object] = {
            "name": meta.name,
            "version": meta.version,
            "build": meta.build,
            "build_number": meta.build_number,
            "depends": meta.depends,
            "license": meta.license,
            "subdir": meta.subdir,
            "timestamp": TIMESTAMP_MS,
        }
        if meta.constrains:
            index["constrains"] = meta.constrains
        if meta.subdir in ARCHES:
            index["arch"], index["platform"] = ARCHES[meta.subdir].machine, "linux"
        if meta.noarch:
            index["noarch"] = meta.noarch
        (info / "index.json").write_text(_dumps(index))
        (info / "paths.json").write_text(_dumps({"paths": paths, "paths_version": 1}))
        (info / "files").write_text("".join(r + "\n" for r in rels))
        (info / "about.json").write_text(
            _dumps(
                {
                    "summary": meta.summary,
                    "description": "Built by pixi-deploy-kit's offline lab (tests/lab/channel.py); "
                    "not a conda-forge package.",
                    "license": meta.license,
                }
            )
        )
        if text_prefix_files:
            (info / "has_prefix").write_text(
                "".join(f"{PLACEHOLDER} text {r}\n" for r in sorted(text_prefix_files))
            )
        if meta.noarch == "python":
            (info / "link.json").write_text(
                _dumps(
                    {
                        "noarch": {"type": "python", "entry_points": meta.entry_points},
                        "package_metadata_version": 1,
                    }
                )
            )
        info_entries = [(f"info/{r}", info / r) for r in _walk(info)]
        _tar_zst(info_entries, tmp / "info.tar.zst")
        _tar_zst([(r, payload / r) for r in rels], tmp / "pkg.tar.zst")
        final = out_dir / f"{meta.stem}.conda"
        part = out_dir / f".{meta.stem}.conda.part"
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_STORED) as zf:
            for arc, src in [
                ("metadata.json", None),
                (f"pkg-{meta.stem}.tar.zst", tmp / "pkg.tar.zst"),
                (f"info-{meta.stem}.tar.zst", tmp / "info.tar.zst"),
            ]:
                zi = zipfile.ZipInfo(arc, date_time=(1980, 1, 1, 0, 0, 0))
                zi.external_attr = 0o644 << 16
                if src is None:
                    zf.writestr(zi, json.dumps({"conda_pkg_format_version": 2}))
                else:
                    with open(src, "rb") as f, zf.open(zi, "w", force_zip64=True) as w:
                        shutil.copyfileobj(f, w, 1 << 20)
        part.rename(final)
    return final


# --------------------------------------------------------------------------- recipes


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", s)


def _is_elf(path: Path) -> bool:
    if path.is_symlink() or not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def _patchelf(*args: str) -> str:
    return subprocess.run(["patchelf", *args], check=True, capture_output=True, text=True).stdout.strip()


def link_to_prefix_lib(stage: Path, files: list[Path] | None = None) -> int:
    """Append ``$ORIGIN/<path to <prefix>/lib>`` to the RPATH of every ELF file (under ``stage``,
    or ``files``) that needs a library other than glibc's, as conda-build does: the library
    packages' files live in ``<prefix>/lib``, never on the system's search path. Returns how many
    files it changed."""
    changed = 0
    for path in sorted(files if files is not None else (stage / r for r in _walk(stage))):
        if not _is_elf(path):
            continue
        needed = set(_patchelf("--print-needed", str(path)).split())
        if not needed - GLIBC_SONAMES:
            continue
        rel = os.path.relpath(stage / "lib", path.parent)
        ours = "$ORIGIN" if rel == "." else f"$ORIGIN/{rel}"
        current = [p for p in _patchelf("--print-rpath", str(path)).split(":") if p]
        if ours in current:
            continue
        _patchelf("--set-rpath", ":".join([*current, ours]), str(path))
        changed += 1
    return changed


def debian_deb(package: str, debs: Path, apt_config: Path | None = None) -> Path:
    """The newest cached ``.deb`` of a Debian package (debootstrap's cache under the lab cache),
    downloaded there with ``apt-get download`` when none is cached yet (with ``apt_config`` as
    ``APT_CONFIG``: another architecture's packages, without touching the host's dpkg)."""

    def cached() -> list[Path]:
        return [p for p in debs.glob(f"{package}_*_*.deb") if p.name.split("_")[0] == package]

    if not cached():
        debs.mkdir(parents=True, exist_ok=True)
        log(f"apt-get download {package}")
        env = None if apt_config is None else {**os.environ, "APT_CONFIG": str(apt_config)}
        r = subprocess.run(
            ["apt-get", "download", "-q", package],
            cwd=debs,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        if r.returncode != 0 or not cached():
            sys.stderr.write(r.stdout + r.stderr)
            raise SystemExit(f"apt-get download {package} failed (exit {r.returncode})")
    newest = cached()[0]
    for candidate in cached()[1:]:
        if (
            subprocess.run(
                ["dpkg", "--compare-versions", _deb_version(candidate), "gt", _deb_version(newest)]
            ).returncode
            == 0
        ):
            newest = candidate
    return newest


def _deb_version(deb: Path) -> str:
    return deb.name.split("_")[1].replace("%3a", ":")


def library_version(deb: Path) -> tuple[str, str]:
    """(conda version, build string) of a Debian package's .deb: the upstream version without
    epoch and Debian repack suffixes, and the Debian revision in the build string."""
    full = _deb_version(deb).split(":", 1)[-1]
    upstream, _, rev = full.rpartition("-") if "-" in full else (full, "", "0")
    upstream = re.split(r"[+~]|\.dfsg", upstream)[0]
    return upstream, f"debian_{_safe(rev)}_0"


def library_stem(name: str, packages: list[str], debs: Path, apt_config: Path | None = None) -> str:
    version, build = library_version(debian_deb(packages[0], debs, apt_config))
    return f"{name}-{version}-{build}"


def recipe_library(
    name: str,
    packages: list[str],
    depends: list[str],
    debs: Path,
    stage: Path,
    arch: Arch = LINUX_64,
    apt_config: Path | None = None,
) -> tuple[Meta, set[str]]:
    """A conda package of the shared objects of Debian packages, in ``<prefix>/lib``."""
    lib = stage / "lib"
    lib.mkdir()
    for package in packages:
        deb = debian_deb(package, debs, apt_config)
        with tempfile.TemporaryDirectory(dir=stage.parent) as tmp:
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
            for folder in (Path(tmp) / "lib" / arch.multiarch, Path(tmp) / "usr" / "lib" / arch.multiarch):
                if not folder.is_dir():
                    continue
                for entry in sorted(folder.iterdir()):
                    if ".so" not in entry.name or (entry.is_dir() and not entry.is_symlink()):
                        continue
                    dst = lib / entry.name
                    if entry.is_symlink():
                        target = os.readlink(entry)
                        if "/" in target:
                            raise SystemExit(f"{deb.name}: link {entry.name} -> {target} leaves the folder")
                        dst.symlink_to(target)
                    else:
                        shutil.copy2(entry, dst)
    if not any(lib.iterdir()):
        raise SystemExit(f"{name}: no shared objects in {', '.join(packages)}")
    for path in sorted(lib.iterdir()):
        if _is_elf(path):
            _patchelf("--set-rpath", "$ORIGIN", str(path))  # find each other, as conda-forge's do
    version, build = library_version(debian_deb(packages[0], debs, apt_config))
    meta = Meta(
        name,
        version,
        build,
        arch.subdir,
        depends=depends,
        license="LicenseRef-Debian",
        summary=f"the shared libraries of Debian 12's "
        f"{', '.join(packages)} {_deb_version(debian_deb(packages[0], debs))}, in "
        "<prefix>/lib (kit-lab)",
    )
    return meta, set()


def debian_python_version() -> tuple[str, str]:
    """(upstream version, Debian revision) of the host's python3.11, e.g. ('3.11.2', '6+deb12u6')."""
    v = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "python3.11-minimal"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    upstream, _, rev = v.partition("-")
    return upstream, rev


def recipe_python(stage: Path) -> tuple[Meta, set[str]]:
    """The host's own python3.11 (the files dpkg lists for DEBIAN_PYTHON_PACKAGES)."""
    upstream, rev = debian_python_version()
    files: list[str] = []
    for pkg in DEBIAN_PYTHON_PACKAGES:
        r = subprocess.run(["dpkg-query", "-L", pkg], capture_output=True, text=True)
        if r.returncode != 0:
            log(f"  (Debian package {pkg} not installed: skipped)")
            continue
        files += r.stdout.splitlines()
    return python_package(stage, Path("/"), files, upstream, rev, LINUX_64)


def python_package(
    stage: Path, root: Path, files: list[str], upstream: str, rev: str, arch: Arch
) -> tuple[Meta, set[str]]:
    """Debian's python3.11 as a conda package: ``files`` (absolute paths as dpkg lists them)
    read from under ``root`` (``/`` for the host's own, or where another architecture's
    ``.deb`` files were unpacked)."""
    prefix_lib = f"/usr/lib/python{PY_MM}/"
    for f in sorted(set(files)):
        if f == f"/usr/bin/python{PY_MM}":
            dst = stage / "bin" / f"python{PY_MM}"
        elif f.startswith(prefix_lib):
            rel = f[len(prefix_lib) :]
            if (
                rel in ("sitecustomize.py", "EXTERNALLY-MANAGED")
                or "__pycache__" in rel
                or rel.startswith("config-")
                or rel.startswith("test/")
            ):
                continue
            dst = stage / "lib" / f"python{PY_MM}" / rel
        else:
            continue
        src = root / f.lstrip("/")
        if os.path.isdir(src) and not os.path.islink(src):
            continue
        if not os.path.lexists(src):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if os.path.islink(src):
            target = os.readlink(src)
            if target.startswith("/"):
                # absolute links would point outside the prefix: copy what they name (in root)
                shutil.copy2(root / target.lstrip("/"), dst)
            else:
                os.symlink(target, dst)
        else:
            shutil.copy2(src, dst)
    (stage / "bin" / "python3").symlink_to(f"python{PY_MM}")
    (stage / "bin" / "python").symlink_to(f"python{PY_MM}")
    lib = stage / "lib" / f"python{PY_MM}"
    (lib / "sitecustomize.py").write_text(SITECUSTOMIZE)
    (lib / "site-packages").mkdir(exist_ok=True)
    (lib / "site-packages" / "README.txt").write_text(
        "This directory exists so that 3rd party packages can be installed here.\n"
    )
    # conda-forge's python finds its libraries through RPATH $ORIGIN/../lib; Debian's has none
    link_to_prefix_lib(stage, [stage / "bin" / f"python{PY_MM}", *sorted((lib / "lib-dynload").glob("*.so"))])
    meta = Meta(
        "python",
        upstream,
        f"debian_{_safe(rev)}_0",
        arch.subdir,
        license="Python-2.0",
        depends=list(PYTHON_DEPENDS),
        summary=f"Debian 12's python3.11 {upstream}-{rev}, relocated into a conda prefix "
        "(kit-lab); needs glibc from the system and nothing else",
    )
    return meta, set()


def _console_script(entry: str) -> tuple[str, str]:
    name, _, target = (s.strip() for s in entry.partition("="))
    module, _, func = target.partition(":")
    body = (
        f"#!{PLACEHOLDER}/bin/python{PY_MM}\n"
        "# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
        f"from {module} import {func.split('.')[0]}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({func}())\n"
    )
    return name, body


def _entry_points(dist_info: Path) -> list[str]:
    ep = dist_info / "entry_points.txt"
    if not ep.exists():
        return []
    out, section = [], ""
    for line in ep.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#") and section == "console_scripts":
            out.append(re.sub(r"\s*=\s*", " = ", line, count=1))
    return out


def unpack_wheel(wheel: Path, stage: Path, site: str, scripts: str) -> Path:
    """Unpack a wheel as an installer would; returns its .dist-info directory."""
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(stage / site)
    sp = stage / site
    dist_info = next(sp.glob("*.dist-info"))
    for data in sp.glob("*.data"):
        for kind in sorted(os.listdir(data)):
            src = data / kind
            dst = {"purelib": sp, "platlib": sp, "scripts": stage / scripts}.get(kind, stage)
            shutil.copytree(src, dst, dirs_exist_ok=True, symlinks=True)
        shutil.rmtree(data)
    (dist_info / "INSTALLER").write_text("conda\n")
    # wheels from zip have no exec bits: scripts need them
    if (stage / scripts).is_dir():
        for p in (stage / scripts).iterdir():
            p.chmod(0o755)
    return dist_info


def recipe_wheel(
    stage: Path, wheel: Path, conda_name: str, version: str, subdir: str, depends: list[str]
) -> tuple[Meta, set[str]]:
    if subdir == "noarch":
        dist_info = unpack_wheel(wheel, stage, "site-packages", "python-scripts")
        meta = Meta(
            conda_name,
            version,
            "pyhd_kitlab_0",
            "noarch",
            depends=depends,
            noarch="python",
            summary=f"{wheel.name}, repackaged",
            entry_points=_entry_points(dist_info),
        )
        return meta, set()
    dist_info = unpack_wheel(wheel, stage, SITE, "bin")
    text: set[str] = set()
    for entry in _entry_points(dist_info):
        name, body = _console_script(entry)
        p = stage / "bin" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
        p.chmod(0o755)
        text.add(f"bin/{name}")
    link_to_prefix_lib(stage)
    meta = Meta(
        conda_name,
        version,
        f"py{PY_MM.replace('.', '')}_kitlab_0",
        subdir,
        depends=depends + needed_libraries(stage),
        summary=f"{wheel.name}, repackaged",
    )
    return meta, text


def needed_libraries(stage: Path) -> list[str]:
    """The library packages (DEBIAN_LIBRARIES) that the ELF files under ``stage`` need and do
    not bring themselves: a manylinux wheel takes libstdc++ and libgcc_s from the system."""
    provided = {"libstdc++.so.6": "libstdcxx", "libgcc_s.so.1": "libgcc", "libz.so.1": "libzlib"}
    own = {Path(r).name for r in _walk(stage)}
    wanted: set[str] = set()
    for rel in _walk(stage):
        if _is_elf(stage / rel):
            for soname in _patchelf("--print-needed", str(stage / rel)).split():
                if soname not in own and soname not in GLIBC_SONAMES:
                    if soname not in provided:
                        raise SystemExit(f"{rel} needs {soname}, which no lab package provides")
                    wanted.add(provided[soname])
    return sorted(wanted)


def recipe_torch(stage: Path) -> tuple[Meta, set[str]]:
    meta, text = recipe_wheel(stage, TORCH_WHEEL, "pytorch", TORCH_VERSION, "linux-64", TORCH_DEPENDS)
    meta.build = f"cpu_py{PY_MM.replace('.', '')}_kitlab_0"
    meta.license = "BSD-3-Clause"
    meta.summary = f"PyTorch {TORCH_VERSION}, CPU build, from {TORCH_WHEEL.name}"
    return meta, text


def recipe_hello(stage: Path) -> tuple[Meta, set[str]]:
    b = stage / "bin" / "kit-hello"
    b.parent.mkdir(parents=True)
    b.write_text(
        '#!/bin/sh\necho "hello from kit-hello 1.0 (CONDA_PREFIX=${CONDA_PREFIX:-unset}, '
        'KIT_HELLO_ACTIVATED=${KIT_HELLO_ACTIVATED:-unset})"\n'
    )
    b.chmod(0o755)
    a = stage / "etc" / "conda" / "activate.d" / "kit-hello_activate.sh"
    a.parent.mkdir(parents=True)
    a.write_text("export KIT_HELLO_ACTIVATED=1\n")
    d = stage / "etc" / "conda" / "deactivate.d" / "kit-hello_deactivate.sh"
    d.parent.mkdir(parents=True)
    d.write_text("unset KIT_HELLO_ACTIVATED\n")
    (stage / "share" / "kit-hello").mkdir(parents=True)
    (stage / "share" / "kit-hello" / "greeting.txt").write_text("hello\n")
    return Meta(
        "kit-hello",
        "1.0",
        "h_kitlab_0",
        "noarch",
        noarch="generic",
        license="MIT",
        summary="kit-lab test package: a script and an activation script",
    ), set()


def recipe_meta(
    name: str, version: str, depends: list[str], constrains: list[str] | None = None, summary: str = ""
) -> Callable[[Path], tuple[Meta, set[str]]]:
    def r(stage: Path) -> tuple[Meta, set[str]]:
        return Meta(
            name,
            version,
            "h_kitlab_0",
            "noarch",
            depends=depends,
            constrains=constrains or [],
            noarch="generic",
            license="BSD-3-Clause",
            summary=summary,
        ), set()

    return r


# --------------------------------------------------------------------------- channel


def download_wheels(
    dest: Path, wheels: list[tuple[str, str, str, str, list[str]]] = WHEELS, machine: str = "x86_64"
) -> dict[str, Path]:
    """The pinned ``wheels`` (for manylinux2014 on ``machine`` where binary), cached in ``dest``:
    one folder per machine, since a wheel's name and version do not say which it is for."""
    dest.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}
    missing = []
    for pypi, ver, *_ in wheels:
        norm = re.sub(r"[-_.]+", "_", pypi).lower()
        hits = [
            p
            for p in dest.glob("*.whl")
            if re.sub(r"[-_.]+", "_", p.name.split("-")[0]).lower() == norm and p.name.split("-")[1] == ver
        ]
        if hits:
            found[pypi] = hits[0]
        else:
            missing.append(f"{pypi}=={ver}")
    if missing:
        log(f"pip download {' '.join(missing)}")
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--only-binary=:all:",
                "--no-deps",
                "--platform",
                f"manylinux2014_{machine}",
                "--python-version",
                PY_MM,
                "--implementation",
                "cp",
                "-d",
                str(dest),
                *missing,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if r.returncode != 0:
            sys.stderr.write(r.stdout + r.stderr)
            raise SystemExit(f"pip download failed (exit {r.returncode})")
        return download_wheels(dest, wheels, machine)
    return found


def build_channel(cache: Path | None = None, force: bool = False) -> Path:
    cache = cache or default_cache()
    channel = cache / "channel"
    stamp = channel / ".kit-lab-recipe"
    if force or (channel.exists() and (not stamp.exists() or stamp.read_text() != RECIPE_VERSION)):
        log(f"recipe changed or --force: removing {channel}")
        shutil.rmtree(channel, ignore_errors=True)
    for sub in ("noarch", "linux-64"):
        (channel / sub).mkdir(parents=True, exist_ok=True)
    stamp.write_text(RECIPE_VERSION)
    if not TORCH_WHEEL.exists():
        raise SystemExit(f"PyTorch wheel not found: {TORCH_WHEEL}")
    wheels = download_wheels(cache / "wheels" / "pypi")

    upstream, rev = debian_python_version()
    debs = cache / "debs"
    recipes: list[tuple[str, str, object]] = [
        # (subdir, file stem, recipe)
        ("linux-64", f"python-{upstream}-debian_{_safe(rev)}_0", recipe_python),
        ("linux-64", f"pytorch-{TORCH_VERSION}-cpu_py311_kitlab_0", recipe_torch),
        ("noarch", "kit-hello-1.0-h_kitlab_0", recipe_hello),
        (
            "noarch",
            f"pytorch-cpu-{TORCH_VERSION}-h_kitlab_0",
            recipe_meta(
                "pytorch-cpu",
                TORCH_VERSION,
                [f"pytorch =={TORCH_VERSION}"],
                summary="metapackage selecting the CPU build of pytorch",
            ),
        ),
        (
            "noarch",
            f"pytorch-gpu-{TORCH_VERSION}-h_kitlab_0",
            recipe_meta(
                "pytorch-gpu",
                TORCH_VERSION,
                [f"pytorch =={TORCH_VERSION}"],
                summary="metapackage standing in for conda-forge's pytorch-gpu; the lab has no CUDA "
                "build, so it selects the CPU build",
            ),
        ),
        (
            "noarch",
            "cuda-version-12.9-h_kitlab_0",
            recipe_meta(
                "cuda-version",
                "12.9",
                [],
                ["cudatoolkit 12.9|12.9.*", "__cuda >=12"],
                summary="empty package constraining the CUDA version, like conda-forge's",
            ),
        ),
    ]
    for name, packages, deps in DEBIAN_LIBRARIES:
        recipes.append(
            (
                "linux-64",
                library_stem(name, packages, debs),
                lambda st, n=name, p=packages, d=deps: recipe_library(n, p, d, debs, st),
            )
        )
    for pypi, ver, conda_name, subdir, deps in WHEELS:
        build = "pyhd_kitlab_0" if subdir == "noarch" else "py311_kitlab_0"
        w = wheels[pypi]
        recipes.append(
            (
                subdir,
                f"{conda_name}-{ver}-{build}",
                lambda st, w=w, c=conda_name, v=ver, s=subdir, d=deps: recipe_wheel(st, w, c, v, s, d),
            )
        )

    built = build_packages(cache, channel, recipes, ("noarch", "linux-64"))
    if built or not all((channel / s / "repodata.json").exists() for s in ("noarch", "linux-64")):
        index_channel(channel)
    else:
        log(f"channel up to date: {channel}")
    return channel


def build_packages(
    cache: Path, channel: Path, recipes: list[tuple[str, str, object]], subdirs: tuple[str, ...]
) -> int:
    """Build each (subdir, stem, recipe) whose archive is missing, and remove the archives in
    ``subdirs`` that no recipe names. Returns how many archives it wrote or removed."""
    built = 0
    for subdir, stem, recipe in recipes:
        target = channel / subdir / f"{stem}.conda"
        if target.exists():
            continue
        t0 = time.monotonic()
        build_root = cache / "build"
        build_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=build_root, prefix=f"{stem}.") as st:
            stage = Path(st) / "payload"
            stage.mkdir()
            meta, text = recipe(stage)  # type: ignore[operator]
            assert meta.stem == stem and meta.subdir == subdir, (meta.stem, stem)
            out = write_package(meta, stage, channel / subdir, text)
        built += 1
        log(f"built {subdir}/{out.name} ({out.stat().st_size / 1e6:.1f} MB, {time.monotonic() - t0:.1f} s)")
    wanted = {f"{stem}.conda" for _, stem, _ in recipes}
    for sub in subdirs:
        for p in (channel / sub).glob("*.conda"):
            if p.name not in wanted:
                log(f"removing stale {sub}/{p.name}")
                p.unlink()
                built += 1
    return built


def index_channel(channel: Path, subdir: str | None = None) -> None:
    """Index every subdir of the channel, or ``noarch`` and ``subdir`` only (rattler), with
    pinned timestamps."""
    log(f"indexing {subdir or 'every subdir'} with rattler.index.index_fs")
    from rattler.index import index_fs
    from rattler.platform import Subdir

    target = None if subdir is None else Subdir(subdir)  # type: ignore[arg-type]
    asyncio.run(index_fs(channel, target_platform=target, write_zst=False, write_shards=False, force=True))
    for repodata in sorted(channel.glob("*/repodata.json")):
        if subdir is None or repodata.parent.name in ("noarch", subdir):
            _pin_indexed_timestamps(repodata)


def _pin_indexed_timestamps(repodata: Path) -> None:
    """The indexer stamps each record with the time of indexing; pin it so that the channel is
    byte-identical between runs."""
    data = json.loads(repodata.read_text())
    for key in ("packages", "packages.conda"):
        for rec in data.get(key, {}).values():
            if "indexed_timestamp" in rec:
                rec["indexed_timestamp"] = TIMESTAMP_MS
    repodata.write_text(json.dumps(data, separators=(",", ":")))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None, help="default: $KIT_LAB_CACHE or /var/cache/kit-lab")
    ap.add_argument("--force", action="store_true", help="rebuild every package")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    ch = build_channel(a.cache, a.force)
    log(f"channel ready at {ch} ({time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

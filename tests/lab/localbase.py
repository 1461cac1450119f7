"""Test support, not library code: make a small base image from this machine's own files.

Lab machines and air-gapped sites cannot pull ``debian`` or ``pixi`` images. For tests and
demos a base image needs only a shell and perhaps a Python: this copies the named host files,
the shared libraries ``ldd`` says they need, and whole directories (a standard library), into a
tarball and hands it to ``docker import``. The result is a few tens of MB and takes seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from kit.base.errors import BuildError

if TYPE_CHECKING:
    from docker import DockerClient

_LDD_PATH = re.compile(r"(/\S+)")
_SKIP_DIRS = {"__pycache__", "test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip"}


def shared_libraries(binary: Path) -> list[Path]:
    """The libraries (and loader) ``ldd`` lists for a binary; none for a static one."""
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    libs = []
    for line in done.stdout.splitlines():
        match = _LDD_PATH.search(line.split("=>")[-1])
        if match:
            libs.append(Path(match.group(1)))
    return libs


_MERGED_USR = ("bin", "sbin", "lib", "lib64")


def _image_name(path: Path) -> str:
    """Debian 12 merges /usr: /bin is /usr/bin, so every file is stored under usr/."""
    name = os.path.normpath(str(path)).lstrip("/")
    head, _, rest = name.partition("/")
    return f"usr/{head}/{rest}" if head in _MERGED_USR and rest else name


def _add_path(tar: tarfile.TarFile, path: Path, seen: set[str]) -> None:
    """Add a file, following a symlink chain so both link and target end up in the image."""
    name = _image_name(path)
    if name in seen or not path.exists():
        return
    seen.add(name)
    _add_parents(tar, name, seen)
    tar.add(path, arcname=name, recursive=False)
    if path.is_symlink():
        _add_path(tar, path.parent / path.readlink(), seen)


def _add_parents(tar: tarfile.TarFile, name: str, seen: set[str]) -> None:
    for parent in reversed(Path(name).parents[:-1]):
        name = str(parent)
        if name not in seen:
            seen.add(name)
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)


def _add_tree(tar: tarfile.TarFile, root: Path, seen: set[str]) -> None:
    for path in sorted(root.rglob("*")):
        if _SKIP_DIRS.intersection(path.relative_to(root).parts):
            continue
        if path.is_file() or path.is_symlink():
            _add_path(tar, path, seen)


def write_rootfs(
    tar_path: Path, files: Iterable[Path], trees: Iterable[Path] = (), links: dict[str, str] | None = None
) -> None:
    """Write a root file system tarball: files with their libraries, trees, extra symlinks."""
    seen: set[str] = set()
    with tarfile.open(tar_path, "w") as tar:
        for file in files:
            _add_path(tar, file, seen)
            for lib in shared_libraries(file):
                _add_path(tar, lib, seen)
        for tree in trees:
            _add_tree(tar, tree, seen)
        merged = {top: f"usr/{top}" for top in _MERGED_USR}
        for name, target in {**merged, **(links or {})}.items():
            info = tarfile.TarInfo(name.lstrip("/"))
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
        for name in ("tmp", "app"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)


def import_host_image(
    client: DockerClient,
    tag: str,
    files: Iterable[Path],
    trees: Iterable[Path] = (),
    links: dict[str, str] | None = None,
) -> str:
    """``docker import`` a rootfs made of host files; returns the image id."""
    repository, _, version = tag.partition(":")
    with tempfile.TemporaryDirectory(prefix="kit-rootfs-") as tmp:
        tar_path = Path(tmp) / "rootfs.tar"
        write_rootfs(tar_path, files, trees, links)
        output = client.api.import_image_from_file(
            str(tar_path), repository=repository, tag=version or "latest"
        )
    image = client.images.get(tag)
    if not image.id:
        raise BuildError(f"docker import of {tag} gave no image: {output}")
    return str(image.id)


def host_shell_image(client: DockerClient, tag: str = "kit-local/sh:host") -> str:
    """A base image holding only the host's ``/bin/sh`` (dash) and the C library."""
    sh = Path("/bin/sh").resolve()
    extras = [Path(p) for p in ("/bin/cat", "/bin/sleep", "/bin/chmod", "/bin/ls") if Path(p).exists()]
    return import_host_image(client, tag, [sh, *extras], links={"usr/bin/sh": sh.name})


def host_python_image(client: DockerClient, tag: str = "kit-local/python:host") -> str:
    """A base image with the host's Python 3 and its standard library, plus ``/bin/sh``.

    Debian's python3.11 finds its standard library relative to the binary, so copying
    ``/usr/bin/python3.X`` and ``/usr/lib/python3.X`` is enough for a probe to run.
    """
    python = Path("/usr/bin/python3").resolve()
    stdlib = Path("/usr/lib") / python.name
    sh = Path("/bin/sh").resolve()
    return import_host_image(
        client,
        tag,
        [python, sh, Path("/bin/sleep")],
        [stdlib],
        links={"usr/bin/sh": sh.name, "usr/bin/python": python.name, "usr/bin/python3": python.name},
    )

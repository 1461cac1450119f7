"""`[workspace].platforms` entries as pixi reads them: bare subdirs and rich (inline-table) platforms.

pixi 0.71 (PR #6178) lets a platform be a table: `{ name = "cuda-linux-64", platform = "linux-64",
cuda = "12" }`. The keys are the ones pixi's own manifest parser accepts at v0.77.0
(`crates/pixi_manifest/src/toml/platform.rs`): `name`, `platform`, the friendly virtual-package
keys `cuda` (a version, or `{ driver, arch }`), `archspec`, `glibc`, `linux`, `macos` (alias
`osx`), `windows`, and raw `__name = "version[=build]"` keys. An entry without `name` gets the
name pixi derives (subdir, then `key-value` per declared package). Any other key is refused, as
pixi refuses it, so a typo (`cudda`) does not silently build a CPU image.

This module only parses one entry; kit.model.workspace is the reader that calls it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rattler

from kit.base import names
from kit.base.errors import WorkspaceError

# Friendly key -> conda virtual package, in pixi's order (the order derived names use).
FRIENDLY = (
    ("cuda", "__cuda"),
    ("archspec", "__archspec"),
    ("glibc", "__glibc"),
    ("linux", "__linux"),
    ("macos", "__osx"),
    ("windows", "__win"),
)
ALIASES = {"osx": "macos"}
KEYS = ("name", "platform", *(k for k, _ in FRIENDLY), *ALIASES)
# pixi's platform-name rule (PixiPlatformName): a letter first, letters, digits and '-', no
# trailing '-', at most 64 bytes.
PLATFORM_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?\Z")
RAW_KEY = re.compile(r"^__[a-z0-9][a-z0-9_-]{0,62}\Z")
# A virtual package's version (and `=build`): narrowed to what prints safely anywhere.
VP_VALUE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+!*=-]{0,63}\Z")
KEY_LIST = "name, platform, cuda, archspec, glibc, linux, macos (or osx), windows, or a raw __name"


@dataclass(frozen=True)
class Platform:
    """One `[workspace].platforms` entry: the name features and the lock use, its conda subdir,
    and the virtual packages it declares (`{"__cuda": "12"}`); a bare string declares none."""

    name: str
    subdir: str
    virtual_packages: dict[str, str] = field(default_factory=dict)
    rich: bool = False

    @property
    def cuda(self) -> str | None:
        return self.virtual_packages.get("__cuda")


def subdir(value: Any, path: Path, field_name: str) -> str:
    """A conda subdir (`linux-64`), as rattler knows them, or the refusal naming the field."""
    if not isinstance(value, str):
        raise WorkspaceError(
            f"must be a string, not {type(value).__name__}",
            file=path,
            field=field_name,
            fix="quote the value",
        )
    try:
        return str(rattler.Subdir(value))
    except Exception:  # rattler's ParseSubdirError
        raise WorkspaceError(
            f"{value!r} is not a conda platform",
            file=path,
            field=field_name,
            fix='use a platform such as "linux-64" or "osx-arm64"',
        ) from None


def parse_platform(value: Any, path: Path, field_name: str) -> Platform:
    """A bare subdir string or a rich platform table; anything else is refused with the two forms."""
    if isinstance(value, str):
        text = subdir(value, path, field_name)
        return Platform(text, text)
    if not isinstance(value, dict):
        raise WorkspaceError(
            f"must be a platform name or a table, not {type(value).__name__}",
            file=path,
            field=field_name,
            fix='write "linux-64", or { name = "cuda-linux-64", platform = "linux-64", cuda = "12" }',
        )
    for key in value:
        if key not in KEYS and not str(key).startswith("__"):
            raise WorkspaceError(
                f"unknown key {key!r} in a platform entry",
                file=path,
                field=f"{field_name}.{key}",
                fix=f"use {KEY_LIST}",
            )
    declared = _declared(value, path, field_name)
    name = value.get("name")
    platform = value.get("platform")
    if platform is not None:
        sub = subdir(platform, path, f"{field_name}.platform")
    elif name is not None:
        sub = subdir(name, path, f"{field_name}.name")
    else:
        raise WorkspaceError(
            "a platform entry needs `platform` (or a `name` that is a conda platform)",
            file=path,
            field=field_name,
            fix='add platform = "linux-64"',
        )
    if name is None:
        name = _derived_name(sub, declared)
    if not isinstance(name, str) or not PLATFORM_NAME.match(name):
        raise WorkspaceError(
            f"platform name {name!r} is not allowed",
            file=path,
            field=f"{field_name}.name",
            fix="start with a letter; use letters, digits and '-' (at most 64)",
        )
    return Platform(name, sub, dict(sorted(declared.items())), rich=True)


def _declared(table: dict[str, Any], path: Path, field_name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, conda in FRIENDLY:
        spellings = [k for k in (key, *(a for a, t in ALIASES.items() if t == key)) if k in table]
        if len(spellings) > 1:
            raise WorkspaceError(
                f"{' and '.join(spellings)} name the same virtual package",
                file=path,
                field=f"{field_name}.{spellings[1]}",
                fix=f"keep only {key}",
            )
        if not spellings:
            continue
        raw = table[spellings[0]]
        where = f"{field_name}.{spellings[0]}"
        if key == "cuda" and isinstance(raw, dict):
            unknown = [k for k in raw if k not in ("driver", "arch")]
            if unknown or "driver" not in raw:
                raise WorkspaceError(
                    "a cuda table takes `driver` (and optionally `arch`)",
                    file=path,
                    field=where,
                    fix='write cuda = { driver = "12.4", arch = "8.6" } or cuda = "12"',
                )
            out["__cuda"] = _cuda(raw["driver"], path, f"{where}.driver")
            if "arch" in raw:
                out["__cuda_arch"] = _value(raw["arch"], path, f"{where}.arch")
            continue
        out[conda] = _cuda(raw, path, where) if key == "cuda" else _value(raw, path, where)
    for key, raw in table.items():
        if not str(key).startswith("__"):
            continue
        if not RAW_KEY.match(str(key)) or key in out:
            raise WorkspaceError(
                f"{key!r} is not a virtual package this entry can declare (or is declared twice)",
                file=path,
                field=f"{field_name}.{key}",
                fix="use a friendly key (cuda, glibc, ...) or one raw __name, not both",
            )
        out[str(key)] = _value(raw, path, f"{field_name}.{key}")
    return out


def _value(raw: Any, path: Path, where: str) -> str:
    if not isinstance(raw, str) or not VP_VALUE.match(raw):
        raise WorkspaceError(
            f"{raw!r} is not a virtual-package version",
            file=path,
            field=where,
            fix='write a version string such as "2.28"',
        )
    return raw


def _cuda(raw: Any, path: Path, where: str) -> str:
    value = _value(raw, path, where)
    if not names.CUDA_VERSION.match(value):
        raise WorkspaceError(
            f"CUDA version {value!r} is not MAJOR or MAJOR.MINOR",
            file=path,
            field=where,
            fix='write cuda = "12" or "12.4"',
        )
    return value


def _derived_name(sub: str, declared: dict[str, str]) -> str:
    """The name pixi derives for an entry without `name` (`synthesize_name_string`): the subdir,
    then `key-value` for each friendly key in order, then the raw ones by name."""
    parts = [sub]
    friendly = dict(FRIENDLY)
    for key, conda in FRIENDLY:
        if conda in declared:
            parts.append(f"{key}-{_segment(declared[conda])}")
    for conda in sorted(declared):
        if conda not in friendly.values():
            parts.append(f"{_segment(conda.lstrip('_'))}-{_segment(declared[conda])}")
    return "-".join(parts)


def _segment(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


# -- the Linux platforms a container can be built for ---------------------------------------------


@dataclass(frozen=True)
class LinuxPlatform:
    """One Linux platform the kit builds for, under each name the tools give it.

    pixi and conda call it by its subdir (`linux-aarch64`), Docker, BuildKit and OCI image indexes
    by `os/arch` (`linux/arm64`), Apptainer's `--arch` and the tags that name a SIF's architecture
    by the arch alone (`arm64`), and the kernel (`platform.machine()`, `uname -m`, HTCondor's and
    Slurm's node facts) by the machine name (`aarch64`).
    """

    subdir: str
    oci: str
    arch: str
    machine: str


LINUX_PLATFORMS: tuple[LinuxPlatform, ...] = (
    LinuxPlatform("linux-64", "linux/amd64", "amd64", "x86_64"),
    LinuxPlatform("linux-aarch64", "linux/arm64", "arm64", "aarch64"),
)
BY_SUBDIR = {p.subdir: p for p in LINUX_PLATFORMS}
PLATFORM_NAMES = tuple(name for p in LINUX_PLATFORMS for name in (p.subdir, p.oci))


def linux_platform(name: str) -> LinuxPlatform | None:
    """The platform a pixi name (`linux-aarch64`) or an OCI name (`linux/arm64`) stands for."""
    return next((p for p in LINUX_PLATFORMS if name in (p.subdir, p.oci)), None)


def host_platform(machine: str) -> LinuxPlatform | None:
    """The platform of a machine name as `platform.machine()` gives it (`arm64` on some kernels)."""
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine.lower())
    return next((p for p in LINUX_PLATFORMS if p.machine == machine), None)

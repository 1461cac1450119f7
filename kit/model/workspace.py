"""Read a Pixi workspace (manifest and lock) into frozen data the rest of the kit renders from.

Nothing here knows about Jinja, Docker or Apptainer: the manifest and the lock are facts, and the
renderer decides what to do with them. The manifest may be `pixi.toml` or the `[tool.pixi]` table
of `pyproject.toml`; the workspace table may be the current `[workspace]` or the older
`[project]`. A manifest is read as TOML 1.0 (tomllib) and, when that fails, as TOML 1.1 (tomli,
kept from PyPI; pixi 0.73+ accepts 1.1); see `read_manifest_toml`.

The lock is read through py-rattler, pixi's own engine, so any lock pixi writes reads the same
way here. py-rattler 0.28 reads both layouts of the version 7 lock: `platforms:` named by subdir
(pixi <= 0.70) and the entries pixi 0.71+ writes (`{name, subdir, virtual-packages}`, named `p1`,
`p2`, ... whenever the workspace declares virtual packages); its platform objects carry the
subdir and the virtual packages, so an environment's platforms are mapped by what they are, not
by their key, and no YAML is read here. Which layout a lock uses is read from its text
(`lock_layout`), for the check that the pinned pixi can install it.

Everything else in the kit asks this reader (and kit.model.platforms, which parses one platform
entry for it); nothing else parses the manifest or the lock.
"""

from __future__ import annotations

import os
import posixpath
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import rattler
import tomli

from kit.base import names
from kit.base.errors import OptionsError, WorkspaceError
from kit.base.files import LOCK_LIMIT, MANIFEST_LIMIT, read_text
from kit.base.names import ENV_NAME, PATH_COMPONENT, environment_name
from kit.model.pixi_versions import LAYOUT_NAMED, LAYOUT_SUBDIR
from kit.model.platforms import LINUX_PLATFORMS, Platform, parse_platform

LINUX = "linux-64"
DEFAULT_ENV = "default"
# The tables of a feature (or target) that name packages.
DEPENDENCY_KEYS = ("dependencies", "pypi-dependencies", "host-dependencies", "build-dependencies")
# Locked packages whose versions name an image (python 3.13, pytorch's cuda129 build, CUDA 12.9).
IMAGE_NAMING_PACKAGES = ("python", "pytorch", "cuda-version", "jax", "jaxlib")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Environment:
    """A manifest environment: its features (default feature first), merged requirements, the
    platform entries it solves for, and the files and values its features add to the build."""

    name: str
    features: tuple[str, ...]
    system_requirements: dict[str, str] = field(default_factory=dict)
    # Names of the [workspace].platforms entries this environment is solved for (features may
    # narrow them with `platforms = [...]`), and the CUDA those on linux-64 declare (rich form).
    platforms: tuple[str, ...] = ()
    platform_cuda: str | None = None
    # `[activation] scripts` (paths relative to the workspace) and `env`, over its features.
    activation_scripts: tuple[str, ...] = ()
    activation_env: dict[str, str] = field(default_factory=dict)
    # Path dependencies the install builds: conda source packages (`pkg = { path = "src/pkg" }`,
    # pixi-build) and PyPI ones (`pkg = { path = "libs/pkg" }`; "." is the project itself).
    source_paths: tuple[str, ...] = ()
    # Listed under [environments] by this name (an explicit `default = [...]` included).
    declared: bool = False
    # The manifest field that names each of those paths (for errors and findings).
    path_fields: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def cuda(self) -> str | None:
        """The CUDA requirement: from the environment's rich linux-64 platform when it declares
        one (pixi 0.71+; on a machine with a driver that entry wins, so the image is a CUDA one),
        else `[system-requirements] cuda`; None for a CPU environment."""
        return self.platform_cuda or self.system_requirements.get("cuda")


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    build: str


@dataclass(frozen=True)
class LockedPlatform:
    """One platform entry of an environment in the lock: its key (`linux-64`, or `p1` in a lock
    pixi 0.71+ wrote for a workspace with virtual packages), its subdir and virtual packages."""

    name: str
    subdir: str
    virtual_packages: tuple[str, ...] = ()

    @property
    def cuda(self) -> str | None:
        """The `__cuda` version this entry was solved for, None when it declares none."""
        for package in self.virtual_packages:
            parts = package.split("=")
            if parts[0] == "__cuda" and len(parts) > 1:
                return parts[1]
        return None


@dataclass(frozen=True)
class LockedEnvironment:
    """What the lock holds for one environment."""

    name: str
    # The subdirs it is locked for (`linux-64` for an entry keyed `p1` whose subdir is linux-64).
    platforms: tuple[str, ...]
    # Packages per platform entry, keyed by the entry's name as the lock keys it.
    package_count: dict[str, int]
    # Packages that name an image, on linux-64 only (that is what containers run); from the
    # linux-64 entry with the highest `__cuda` when there are several (pixi picks that one on a
    # machine with a driver).
    key_packages: dict[str, LockedPackage]
    # linux-64 packages that need a CUDA driver: cuda-version, a `__cuda` dependency, a cuda build.
    cuda_packages: tuple[str, ...] = ()
    entries: tuple[LockedPlatform, ...] = ()
    # The CUDA those packages ask of the driver (`__cuda >=10.1` -> "10.1"), None when none says.
    cuda_needed: str | None = None


@dataclass(frozen=True)
class Lock:
    path: Path
    version: int
    environments: dict[str, LockedEnvironment]
    layout: str = LAYOUT_SUBDIR


@dataclass(frozen=True)
class Workspace:
    """A Pixi workspace as the kit sees it."""

    root: Path
    manifest_path: Path
    name: str
    channels: tuple[str, ...]
    # The subdirs of [workspace].platforms, in order, each once (a rich entry gives its subdir).
    platforms: tuple[str, ...]
    environments: dict[str, Environment]
    tasks: tuple[str, ...]
    lock: Lock | None
    warnings: tuple[str, ...] = ()
    # [workspace].platforms as written: bare and rich entries, with names and virtual packages.
    platform_entries: tuple[Platform, ...] = ()
    # `requires-pixi` (a version spec such as ">=0.74"), for the check against the pinned pixi.
    requires_pixi: str | None = None
    # A pixi-build `[package]` table: the workspace is itself a source package.
    package: bool = False
    # "1.1" when the manifest needs TOML 1.1 (pixi 0.73+), else "1.0".
    toml_version: str = "1.0"
    # The manifest's tables as read (through the bounded reader), for what the install stage
    # needs beyond environments (kit.model.sources): the pixi table and, in a pyproject, `[project]`.
    pixi_table: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    project_table: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def environment(self, name: str) -> Environment:
        """The named environment, or an error listing the ones that exist."""

        environment_name(name)
        if name not in self.environments:
            known = ", ".join(sorted(self.environments))
            raise OptionsError(
                f"environment {name!r} is not defined (defined: {known})",
                file=self.manifest_path,
                field="environments",
                fix=f"pick one of: {known}, or add it under [environments]",
            )
        return self.environments[name]

    def locked(self, env: str) -> LockedEnvironment | None:
        return self.lock.environments.get(env) if self.lock else None

    def is_locked_for_linux(self, env: str) -> bool:
        """Locked for linux-64, or locked empty: pixi writes no platform entry for an environment
        without packages, and reads a platform the lock lacks as one with no packages (pixi_core
        lock_file/satisfiability/platform.rs), so `pixi install --locked` installs it."""
        locked = self.locked(env)
        if locked is None:
            return False
        empty = not locked.platforms and not self.declares_packages(env)
        return LINUX in locked.platforms or (empty and LINUX in self.platforms)

    def declares_packages(self, env: str) -> bool:
        """Whether any feature of `env` names a package (conda or PyPI, on any target), or, in a
        pyproject.toml, `[project] dependencies` join its default feature."""
        features = self.pixi_table.get("feature")
        features = features if isinstance(features, dict) else {}
        for name in self.environments[env].features:
            table = self.pixi_table if name == DEFAULT_ENV else features.get(name)
            if not isinstance(table, dict):
                continue
            targets = table.get("target")
            blocks = (
                [table, *(t for t in targets.values() if isinstance(t, dict))]
                if isinstance(targets, dict)
                else [table]
            )
            if any(block.get(key) for block in blocks for key in DEPENDENCY_KEYS):
                return True
        return DEFAULT_ENV in self.environments[env].features and bool(self.project_table.get("dependencies"))

    @property
    def container_environments(self) -> tuple[str, ...]:
        """Environments worth a container: every named one (an explicit `default = [...]`
        under [environments] included), or `default` when it stands alone."""
        named = tuple(n for n, e in self.environments.items() if n != DEFAULT_ENV or e.declared)
        return named or (DEFAULT_ENV,)

    @property
    def explicit_default(self) -> bool:
        """[environments] names `default` itself: the user chose what the default installs."""
        env = self.environments.get(DEFAULT_ENV)
        return env is not None and env.declared


def load_workspace(directory: Path | str) -> Workspace:
    """Read the workspace in `directory`; raise WorkspaceError with file, field and fix."""
    root = Path(directory)
    if not root.is_dir() or not os.access(root, os.R_OK | os.X_OK):  # else: "no pixi.toml here"
        raise WorkspaceError(
            "is not a readable directory", file=root, field="dir", fix="pass the folder that holds pixi.toml"
        )
    manifest_path, table, project, toml_version = _read_manifest(root)
    project_name = project.get("name")
    project_name = project_name if isinstance(project_name, str) and project_name else None
    warnings: list[str] = []
    lock = _read_lock(root / "pixi.lock")
    if lock is None:
        warnings.append(
            f"{root / 'pixi.lock'}: no lock file; images cannot be built with "
            "`pixi install --locked` until you run `pixi lock` and commit pixi.lock"
        )
    workspace_table = _workspace_table(table, manifest_path)
    name = _workspace_name(workspace_table.get("name", project_name or root.resolve().name), manifest_path)
    channels = tuple(
        _channel_name(c, manifest_path, f"workspace.channels[{i}]")
        for i, c in enumerate(_list(workspace_table.get("channels", []), manifest_path, "workspace.channels"))
    )
    entries = _platform_entries(workspace_table, manifest_path)
    platforms = tuple(dict.fromkeys(p.subdir for p in entries))
    environments = _environments(table, manifest_path, entries)
    warnings.extend(
        f"{manifest_path}: {message} (fix: {fix})"
        for _, message, fix in cuda_requirement_gaps(manifest_path, environments, lock)
    )
    warnings.extend(
        f"{manifest_path}: [{where}] {message} (fix: {fix})"
        for where, message, fix in system_requirements_deprecations(manifest_path, table)
    )
    tasks = _tasks(table, manifest_path)
    package = table.get("package")
    if package is not None:
        _must_be(
            package, dict, "a table", manifest_path, "package", "write it as [package] with name and version"
        )
    return Workspace(
        root=root,
        manifest_path=manifest_path,
        name=name,
        channels=channels,
        platforms=platforms,
        environments=environments,
        tasks=tasks,
        lock=lock,
        warnings=tuple(warnings),
        pixi_table=table,
        project_table=project,
        platform_entries=entries,
        requires_pixi=_requires_pixi(workspace_table, manifest_path),
        package=package is not None,
        toml_version=toml_version,
    )


# -- manifest -----------------------------------------------------------------------------------


def _read_manifest(root: Path) -> tuple[Path, dict[str, Any], dict[str, Any], str]:
    """The manifest, its pixi table, (pyproject.toml) its `[project]` table: the name pixi
    falls back to when `[tool.pixi.workspace]` has none, and what a build backend reads; and the
    TOML version the manifest needs."""
    pixi_toml = root / "pixi.toml"
    pyproject = root / "pyproject.toml"
    if os.path.lexists(pixi_toml):  # a folder, FIFO or device there is an error, not "no manifest"
        table, toml_version = read_manifest_toml(pixi_toml)
        return pixi_toml, table, {}, toml_version
    if os.path.lexists(pyproject):
        data, toml_version = read_manifest_toml(pyproject)
        tool = data.get("tool")
        pixi = tool.get("pixi") if isinstance(tool, dict) else None
        if isinstance(pixi, dict):
            project = data.get("project")
            return pyproject, pixi, project if isinstance(project, dict) else {}, toml_version
        raise WorkspaceError(
            "has no [tool.pixi] table",
            file=pyproject,
            field="tool.pixi",
            fix="run `pixi init --format pyproject` or add a pixi.toml",
        )
    raise WorkspaceError(
        "no pixi.toml or pyproject.toml here",
        file=root,
        field="manifest",
        fix="run `pixi init` in this folder, or pass the workspace folder",
    )


def parse_manifest_toml(path: Path) -> dict[str, Any]:
    """A manifest's TOML through the bounded reader; too big, not UTF-8, not TOML or nested too
    deeply for the parser is a WorkspaceError naming the file."""
    return read_manifest_toml(path)[0]


def read_manifest_toml(path: Path) -> tuple[dict[str, Any], str]:
    """The manifest's TOML and the TOML version it needs ("1.0" or "1.1").

    The standard library's tomllib reads TOML 1.0 first; only a manifest it refuses goes to tomli,
    which reads TOML 1.1 (pixi 0.73+ accepts it). That order says, at no extra cost for the
    common case, whether the manifest needs 1.1, which a pixi older than 0.73 cannot read (the pin
    check asks `Workspace.toml_version`). Both parsers bound nesting (RecursionError here)."""
    text = read_text(path, limit=MANIFEST_LIMIT, field="toml", error=WorkspaceError, follow=True)
    try:
        try:
            return tomllib.loads(text), "1.0"
        except tomllib.TOMLDecodeError:
            return tomli.loads(text), "1.1"
    except tomli.TOMLDecodeError as exc:
        raise WorkspaceError(
            f"is not valid TOML: {exc}", file=path, field="toml", fix="correct the syntax at the line given"
        ) from None
    except RecursionError:
        raise WorkspaceError(
            "nests arrays or tables too deeply to read",
            file=path,
            field="toml",
            fix="flatten the nesting (a manifest needs a few levels)",
        ) from None


def _workspace_table(table: dict[str, Any], path: Path) -> dict[str, Any]:
    for key in ("workspace", "project"):
        if isinstance(table.get(key), dict):
            return dict(table[key])
    raise WorkspaceError(
        "has no [workspace] table",
        file=path,
        field="workspace",
        fix="add a [workspace] table with name, channels and platforms",
    )


def _must_be(value: Any, kind: type[_T], words: str, path: Path, field_name: str, fix: str) -> _T:
    """`value` when it is a `kind`; else the refusal every manifest field of the wrong TOML type
    gets: "must be <words>, not <the type it has>", with the field and the fix."""
    if not isinstance(value, kind):
        raise WorkspaceError(
            f"must be {words}, not {type(value).__name__}", file=path, field=field_name, fix=fix
        )
    return value


def _string(value: Any, path: Path, field_name: str) -> str:
    return _must_be(value, str, "a string", path, field_name, "quote the value")


def _list(value: Any, path: Path, field_name: str) -> list[Any]:
    return _must_be(value, list, "a list", path, field_name, 'write it as ["a", "b"]')


# Every manifest value the kit prints, renders or names an image after is checked here, where it
# enters, against the shape its owner allows, narrowed to what needs no escaping anywhere the
# kit writes it (a Dockerfile LABEL, a def file, YAML, a shell): a value that passes cannot leave
# its token, and one that fails stops with the file, the field and the fix. (\Z, not $, which
# also matches before a final newline.)
WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?\Z")  # PEP 508 names
CHANNEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~%+@:/-]{0,254}\Z")
VERSION = re.compile(r"^[0-9]{1,4}(?:\.[0-9]{1,4}){0,3}\Z")
REQUIRES_PIXI = re.compile(r"^[0-9A-Za-z.,<>=!~*| ]{1,64}\Z")
ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z")


def _workspace_name(value: Any, path: Path) -> str:
    name = _string(value, path, "workspace.name")
    if not WORKSPACE_NAME.match(name):
        raise WorkspaceError(
            f"name {name!r} is not allowed: names images and labels, so it may "
            "use letters, digits, '.', '_' and '-' only",
            file=path,
            field="workspace.name",
            fix='rename it, e.g. name = "my-workspace"',
        )
    return name


def _platform_entries(workspace_table: dict[str, Any], path: Path) -> tuple[Platform, ...]:
    """[workspace].platforms: bare subdirs and rich entries (kit.model.platforms), names unique."""
    raw = _list(workspace_table.get("platforms", []), path, "workspace.platforms")
    entries = tuple(parse_platform(p, path, f"workspace.platforms[{i}]") for i, p in enumerate(raw))
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if entry.name in seen:
            raise WorkspaceError(
                f"platform {entry.name!r} is listed twice",
                file=path,
                field=f"workspace.platforms[{i}]",
                fix="give one of the entries a `name` of its own",
            )
        seen.add(entry.name)
    return entries


def _requires_pixi(workspace_table: dict[str, Any], path: Path) -> str | None:
    """`requires-pixi`, a conda version spec (">=0.74"); checked here, compared with the pin later."""
    value = workspace_table.get("requires-pixi")
    if value is None:
        return None
    text = _string(value, path, "workspace.requires-pixi")
    if not REQUIRES_PIXI.match(text):
        raise WorkspaceError(
            f"{text!r} is not a version requirement",
            file=path,
            field="workspace.requires-pixi",
            fix='write it as requires-pixi = ">=0.74"',
        )
    try:
        rattler.VersionSpec(text)
    except Exception:  # rattler's InvalidVersionSpecError
        raise WorkspaceError(
            f"{text!r} is not a version requirement",
            file=path,
            field="workspace.requires-pixi",
            fix='write it as requires-pixi = ">=0.74"',
        ) from None
    return text


def _channel_name(channel: Any, path: Path, field_name: str) -> str:
    if isinstance(channel, dict):
        channel, field_name = channel.get("channel"), field_name + ".channel"
    text = _string(channel, path, field_name)
    if not CHANNEL.match(text):
        raise WorkspaceError(
            f"channel {text!r} is not a channel name or URL",
            file=path,
            field=field_name,
            fix='use a name such as "conda-forge" or an https:// or file:// URL without spaces or quotes',
        )
    return text


def _feature_requirements(table: dict[str, Any], path: Path, where: str) -> dict[str, str]:
    reqs = table.get("system-requirements", {})
    if not isinstance(reqs, dict):
        raise WorkspaceError(
            "must be a table",
            file=path,
            field=f"{where}system-requirements",
            fix='write it as [system-requirements] with cuda = "12"',
        )
    out: dict[str, str] = {}
    for key, value in reqs.items():
        field_name = f"{where}system-requirements.{key}"
        if isinstance(value, dict):  # libc = { family = "glibc", version = "2.28" }
            value = value.get("version")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not VERSION.match(value):
            raise WorkspaceError(
                f"{value!r} is not a version",
                file=path,
                field=field_name,
                fix=f'write it as {key} = "12" or "12.4"',
            )
        if key == "cuda" and not names.CUDA_VERSION.match(value):
            raise WorkspaceError(
                f"CUDA requirement {value!r} is not MAJOR or MAJOR.MINOR",
                file=path,
                field=field_name,
                fix='write it as cuda = "12" or "12.4"',
            )
        out[str(key)] = value
    return out


def _merge_requirements(parts: list[dict[str, str]]) -> dict[str, str]:
    """Merge per-feature requirements as pixi does: the highest version of each wins."""
    merged: dict[str, str] = {}
    for part in parts:
        for key, value in part.items():
            if key not in merged or _version_key(value) > _version_key(merged[key]):
                merged[key] = value
    return dict(sorted(merged.items()))


def _version_key(value: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", value))


def _environments(
    table: dict[str, Any], path: Path, entries: tuple[Platform, ...] = ()
) -> dict[str, Environment]:
    features = _must_be(
        table.get("feature", {}),
        dict,
        "a table of features",
        path,
        "feature",
        "write features as [feature.NAME.dependencies]",
    )
    for feature_name, feature in features.items():
        _must_be(
            feature,
            dict,
            "a table",
            path,
            f"feature.{feature_name}",
            "write it as [feature.NAME.dependencies] and so on",
        )
    default_reqs = _feature_requirements(table, path, "")
    declared = _must_be(
        table.get("environments", {}),
        dict,
        "a table",
        path,
        "environments",
        'write environments as NAME = ["feature", ...]',
    )
    linux_names = _linux_platform_names(entries)
    parts_of = {"default": _FeatureParts.read(table, path, "", entries, linux_names)}
    for f, feature in features.items():
        parts_of[f] = _FeatureParts.read(feature, path, f"feature.{f}.", entries, linux_names)
    result: dict[str, Environment] = {}
    if DEFAULT_ENV not in declared:
        result[DEFAULT_ENV] = _environment(DEFAULT_ENV, ["default"], [default_reqs], parts_of, entries)
    for env_name, spec in declared.items():
        field_name = f"environments.{env_name}"
        if not ENV_NAME.match(str(env_name)):
            raise WorkspaceError(
                f"environment name {env_name!r} is not allowed",
                file=path,
                field=field_name,
                fix="use lowercase letters, digits and '-'",
            )
        feature_names, no_default = _environment_features(spec, path, field_name)
        unknown = [f for f in feature_names if f not in features]
        if unknown:
            raise WorkspaceError(
                f"uses undefined feature(s) {', '.join(map(repr, unknown))}",
                file=path,
                field=field_name,
                fix="define [feature.NAME] or fix the name",
            )
        parts = ([] if no_default else [default_reqs]) + [
            _feature_requirements(features[f], path, f"feature.{f}.") for f in feature_names
        ]
        chain = ([] if no_default else ["default"]) + feature_names
        result[env_name] = _environment(env_name, chain, parts, parts_of, entries, declared=True)
    return result


def _environment(
    name: str,
    chain: list[str],
    requirements: list[dict[str, str]],
    parts_of: dict[str, _FeatureParts],
    entries: tuple[Platform, ...],
    declared: bool = False,
) -> Environment:
    """One environment from its feature chain: the platforms are those every feature that names
    platforms allows (all of [workspace].platforms when none does), as pixi intersects them."""
    allowed = [p.name for p in entries]
    for feature in chain:
        narrowed = parts_of[feature].platforms
        if narrowed is not None:
            allowed = [p for p in allowed if p in narrowed]
    by_name = {p.name: p for p in entries}
    # pixi installs the first linux-64 entry, in manifest order, whose virtual packages the machine
    # meets: on a GPU node that is the first one listed, so its CUDA (none for a plain
    # `linux-64` listed before a CUDA entry) is the one the image serves.
    first_linux = next((by_name[p] for p in allowed if by_name[p].subdir == LINUX), None)
    scripts: dict[str, None] = {}
    env_vars: dict[str, str] = {}
    fields: dict[str, str] = {}
    sources: dict[str, None] = {}
    for feature in chain:
        part = parts_of[feature]
        scripts.update(dict.fromkeys(part.scripts))
        for key, value in part.fields.items():
            fields.setdefault(key, value)
        env_vars.update(part.env)
        sources.update(dict.fromkeys(part.sources))
    return Environment(
        name,
        tuple(chain),
        _merge_requirements(requirements),
        platforms=tuple(allowed),
        platform_cuda=first_linux.cuda if first_linux is not None else None,
        activation_scripts=tuple(scripts),
        activation_env=dict(sorted(env_vars.items())),
        source_paths=tuple(sorted(sources)),
        declared=declared,
        path_fields=fields,
    )


def _linux_platform_names(entries: tuple[Platform, ...]) -> frozenset[str]:
    """The `[target.X]` keys that apply to a Linux container: each Linux subdir the kit builds
    for, the `linux`/`unix` selectors, and the names of rich Linux entries. One image recipe
    serves every platform of a multi-platform build, so it copies the union: a script or source
    that only `[target.linux-aarch64]` names must be in the arm64 image too, and a file one
    platform does not activate costs nothing in the other."""
    subdirs = {p.subdir for p in LINUX_PLATFORMS}
    return frozenset({*subdirs, "linux", "unix", *(p.name for p in entries if p.subdir in subdirs)})


SOURCE_DEPENDENCY_TABLES = (
    "dependencies",
    "host-dependencies",
    "build-dependencies",
    "run-dependencies",
    "pypi-dependencies",
)


@dataclass(frozen=True)
class _FeatureParts:
    """What one feature (or the manifest's top level, the default feature) adds to a build."""

    platforms: frozenset[str] | None
    scripts: tuple[str, ...]
    env: dict[str, str]
    sources: tuple[str, ...]
    fields: dict[str, str]

    @classmethod
    def read(
        cls,
        table: dict[str, Any],
        path: Path,
        where: str,
        entries: tuple[Platform, ...],
        linux_names: frozenset[str],
    ) -> _FeatureParts:
        platforms = None
        if where and "platforms" in table:  # top-level platforms are [workspace]'s, read above
            raw = _list(table["platforms"], path, f"{where}platforms")
            platforms = frozenset(
                name
                for i, value in enumerate(raw)
                for name in _feature_platform(value, path, f"{where}platforms[{i}]", entries)
            )
        blocks: list[tuple[str, dict[str, Any]]] = [(where, table)]
        targets = table.get("target", {})
        _must_be(
            targets, dict, "a table", path, f"{where}target", "write it as [target.linux-64.dependencies]"
        )
        for target, body in targets.items():
            body = _must_be(
                body,
                dict,
                "a table",
                path,
                f"{where}target.{target}",
                "write it as [target.NAME.dependencies]",
            )
            if str(target) in linux_names:
                blocks.append((f"{where}target.{target}.", body))
        scripts: list[str] = []
        env: dict[str, str] = {}
        sources: list[str] = []
        fields: dict[str, str] = {}
        for prefix, block in blocks:
            activation = block.get("activation", {})
            activation = _must_be(
                activation,
                dict,
                "a table",
                path,
                f"{prefix}activation",
                'write it as [activation] scripts = ["env.sh"]',
            )
            for i, script in enumerate(
                _list(activation.get("scripts", []), path, f"{prefix}activation.scripts")
            ):
                where = f"{prefix}activation.scripts[{i}]"
                scripts.append(_manifest_path(script, path, where))
                fields.setdefault(scripts[-1], where)
            values = _must_be(
                activation.get("env", {}),
                dict,
                "a table",
                path,
                f"{prefix}activation.env",
                'write it as env = { NAME = "value" }',
            )
            for key, value in values.items():
                if not ENV_VAR.match(str(key)):
                    raise WorkspaceError(
                        f"{key!r} is not an environment variable name",
                        file=path,
                        field=f"{prefix}activation.env.{key}",
                        fix="use letters, digits and '_', not starting with a digit",
                    )
                env[str(key)] = _string(value, path, f"{prefix}activation.env.{key}")
            for kind in SOURCE_DEPENDENCY_TABLES:
                deps = block.get(kind, {})
                if not isinstance(deps, dict):
                    continue  # the dependency tables' own shapes are pixi's to check
                for package, spec in deps.items():
                    if isinstance(spec, dict) and "path" in spec:
                        where = f"{prefix}{kind}.{package}.path"
                        sources.append(_manifest_path(spec["path"], path, where))
                        fields.setdefault(sources[-1], where)
        return cls(platforms, tuple(scripts), env, tuple(sources), fields)


def _feature_platform(
    value: Any, path: Path, field_name: str, entries: tuple[Platform, ...]
) -> tuple[str, ...]:
    """A feature's `platforms` item: a workspace entry's name, or a bare subdir standing for every
    entry of that subdir (pixi accepts bare subdirs as aliases)."""
    text = _string(value, path, field_name)
    named = [p.name for p in entries if p.name == text]
    aliased = [p.name for p in entries if p.subdir == text]
    if named or aliased:
        return tuple(named or aliased)
    known = ", ".join(p.name for p in entries) or "none"
    raise WorkspaceError(
        f"platform {text!r} is not in [workspace].platforms (listed: {known})",
        file=path,
        field=field_name,
        fix="add it to [workspace].platforms or use one of the names listed",
    )


def _manifest_path(value: Any, path: Path, field_name: str) -> str:
    """A path the manifest names (an activation script, a source package), relative to the
    workspace, in a shape every recipe can print; `..` is kept (the checks say it is outside the
    build context), anything absolute or with shell characters is refused here."""
    text = _string(value, path, field_name)
    parts = [p for p in text.split("/") if p not in ("", ".")]  # "./x", "x/" and "x//y" are x, x, x/y
    if text.startswith("/") or not all(p == ".." or PATH_COMPONENT.match(p) for p in parts):
        raise WorkspaceError(
            f"path {text!r} is not allowed: it must be relative to the workspace, without "
            "spaces or shell characters",
            file=path,
            field=field_name,
            fix='use a path such as "scripts/env.sh" or "src/pkg"',
        )
    # "a/../../x" is "../x": whether a path leaves the workspace is read from its first part.
    return posixpath.normpath("/".join(parts)) if parts else "."


# `[system-requirements]` keys and the rich platform keys that replace them (pixi's
# docs/workspace/system_requirements.md, v0.77.0); `macos` belongs to an osx platform.
RICH_KEYS = {"cuda": "cuda", "libc": "glibc", "linux": "linux", "archspec": "archspec"}


def system_requirements_deprecations(path: Path, table: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(the table's field, message, fix) for each `[system-requirements]` table: pixi 0.71+
    marks it deprecated. It is still read (an older pin needs it, and pixi migrates it), so this
    is a warning, whose fix is the rich platform entry pixi's migration page gives for it: the
    workspace's table becomes the linux-64 entry's keys, a feature's a named entry that the
    feature's `platforms` picks."""
    prefix = "tool.pixi." if path.name == "pyproject.toml" else ""
    features = table.get("feature", {})
    found = [("", table)] + [
        (f"feature.{n}.", f)
        for n, f in (features.items() if isinstance(features, dict) else ())
        if isinstance(f, dict)
    ]
    out = []
    for where, block in found:
        reqs = block.get("system-requirements")
        if not isinstance(reqs, dict):
            continue
        keys = []
        for key, rich in RICH_KEYS.items():
            value = reqs.get(key)
            if isinstance(value, dict):  # libc = { family = "glibc", version = "2.28" }
                value = value.get("version")
            if isinstance(value, str | int | float) and str(value):
                keys.append(f'{rich} = "{value}"')
        if where:
            feature = where.removeprefix("feature.").rstrip(".")
            name = f"linux-64-{feature}"
            entry = ", ".join([f'name = "{name}"', 'platform = "linux-64"', *keys])
            fix = (
                f"add {{ {entry} }} to [{prefix}workspace].platforms and platforms = "
                f'["{name}"] to [{prefix}{where.rstrip(".")}]; keep the table only for a pixi older than 0.71'
            )
        else:
            entry = ", ".join(['platform = "linux-64"', *keys])
            fix = (
                f'replace "linux-64" in [{prefix}workspace].platforms with {{ {entry} }}; '
                "keep the table only for a pixi older than 0.71"
            )
        out.append(
            (
                f"{prefix}{where}system-requirements",
                "is deprecated since pixi 0.71, which declares these on the platform (a rich platform entry)",
                fix,
            )
        )
    return out


def _environment_features(spec: Any, path: Path, field_name: str) -> tuple[list[str], bool]:
    if isinstance(spec, list):
        return [_string(f, path, field_name) for f in spec], False
    if isinstance(spec, dict):
        features = _list(spec.get("features", []), path, f"{field_name}.features")
        no_default = spec.get("no-default-feature", False)
        if not isinstance(no_default, bool):
            raise WorkspaceError(
                f"must be true or false, not {no_default!r}",
                file=path,
                field=f"{field_name}.no-default-feature",
                fix="write no-default-feature = true (no quotes)",
            )
        return [_string(f, path, f"{field_name}.features") for f in features], no_default
    raise WorkspaceError(
        "must be a list of features or a table",
        file=path,
        field=field_name,
        fix='write NAME = ["feature"] or NAME = { features = ["feature"] }',
    )


def _tasks(table: dict[str, Any], path: Path) -> tuple[str, ...]:
    found: set[str] = set()
    sources = [("tasks", table.get("tasks", {}))] + [
        (f"feature.{name}.tasks", feature.get("tasks", {}))
        for name, feature in (table.get("feature", {}) or {}).items()
        if isinstance(feature, dict)
    ]
    for field_name, tasks in sources:
        _must_be(tasks, dict, "a table", path, field_name, 'write tasks as NAME = "command"')
        found.update(str(name) for name in tasks)
    return tuple(sorted(found))


# -- lock ---------------------------------------------------------------------------------------


def _read_lock(path: Path) -> Lock | None:
    if not os.path.lexists(path):
        return None
    text = read_text(path, limit=LOCK_LIMIT, field="lock", error=WorkspaceError, follow=True)
    version = _lock_version(text, path)  # refuses FIFOs, devices and huge files before rattler opens it
    try:
        lock_file = rattler.LockFile.from_path(path)
    except Exception as exc:  # rattler raises its own ParseCondaLockError
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WorkspaceError(
            f"cannot be read: {message}",
            file=path,
            field="lock",
            fix="re-create it with `pixi lock` (or restore it from git)",
        ) from None
    environments = {name: _locked_environment(name, env) for name, env in lock_file.environments()}
    named = any(e.name != e.subdir for env in environments.values() for e in env.entries)
    return Lock(
        path=path,
        version=version,
        environments=dict(sorted(environments.items())),
        layout=LAYOUT_NAMED if named or _named_platforms(text) else LAYOUT_SUBDIR,
    )


def _lock_version(text: str, path: Path) -> int:
    for line in text.splitlines():
        match = re.fullmatch(r"version:\s*(\d{1,6})\s*", line)
        if match:
            return int(match.group(1))
        if line.strip() and not line.startswith("#"):
            break
    raise WorkspaceError(
        "has no `version:` on its first line", file=path, field="version", fix="re-create it with `pixi lock`"
    )


def _named_platforms(text: str) -> bool:
    """Whether the top-level `platforms:` list gives any entry a `subdir:` of its own (pixi 0.71+
    writes one only for an entry whose name is not its subdir), even one no environment uses."""
    in_platforms = False
    for line in text.splitlines():
        if line.startswith("platforms:"):
            in_platforms = True
        elif in_platforms and line and not line.startswith((" ", "-")):
            return False
        elif in_platforms and line.lstrip("- ").startswith("subdir:"):
            return True
    return False


def cuda_requirement_gaps(
    manifest: Path, environments: dict[str, Environment], lock: Lock | None
) -> list[tuple[str, str, str]]:
    """(environment, message, fix) for each environment whose lock holds CUDA builds but whose
    manifest asks for no CUDA: the kit would build and tag it as a CPU image without a word
    (common in older workspaces, written before pixi had system requirements). The fix names the
    CUDA the locked packages ask of the driver (`__cuda >=10.1` -> "10.1"), 12 when none says."""
    out: list[tuple[str, str, str]] = []
    for env in environments.values():
        locked = lock.environments.get(env.name) if lock else None
        if env.cuda or locked is None or not locked.cuda_packages:
            continue
        version = locked.cuda_needed or "12"
        pyproject = "tool.pixi." if manifest.name == "pyproject.toml" else ""
        feature = "" if env.features[-1:] == ("default",) else f"feature.{env.features[-1]}."
        out.append(
            (
                env.name,
                f"environment {env.name!r} locks CUDA packages "
                f"({', '.join(locked.cuda_packages[:3])}) but declares no CUDA system "
                "requirement, so its image is built and tagged as a CPU image",
                f'add [{pyproject}{feature}system-requirements] cuda = "{version}"',
            )
        )
    return out


CUDA_FLOOR = re.compile(r"^__cuda\s*>=?\s*([0-9]+(?:\.[0-9]+)?)")


def _needs_cuda(record: Any) -> bool:
    if record.name.normalized == "cuda-version":
        return True
    if any(str(dep).split()[0] == "__cuda" for dep in record.depends):
        return True
    build = str(record.build)
    return build.startswith("cuda") or "_cuda" in build


def _locked_environment(name: str, env: Any) -> LockedEnvironment:
    """One environment of the lock. Its platform entries come from py-rattler with their subdir
    and virtual packages, whatever the lock keys them by; the packages that name the image come
    from the linux-64 entry with the highest `__cuda` (the one pixi installs where there is a driver)."""
    counts: dict[str, int] = {}
    entries: list[LockedPlatform] = []
    linux: list[tuple[LockedPlatform, Any]] = []
    for platform in env.platforms():
        entry = LockedPlatform(
            str(platform.name), str(platform.subdir), tuple(str(v) for v in platform.virtual_packages or ())
        )
        entries.append(entry)
        records = env.conda_repodata_records_for_platform(platform) or []
        pypi = env.pypi_packages_for_platform(platform) or []
        counts[entry.name] = len(records) + len(pypi)
        if entry.subdir == LINUX:
            linux.append((entry, records))
    key: dict[str, LockedPackage] = {}
    cuda: set[str] = set()
    floors: list[str] = []
    if linux:
        _, records = max(linux, key=lambda pair: _version_key(pair[0].cuda or "0"))
        for record in records:
            pkg = record.name.normalized
            if pkg in IMAGE_NAMING_PACKAGES:
                key[pkg] = LockedPackage(pkg, str(record.version), str(record.build))
            if _needs_cuda(record):
                cuda.add(pkg)
            for spec in (*record.depends, *record.constrains):
                match = CUDA_FLOOR.match(str(spec))
                if match:
                    floors.append(match.group(1))
    if not floors and "cuda-version" in key:
        floors.append(".".join(key["cuda-version"].version.split(".")[:2]))
    entries.sort(key=lambda e: e.name)
    return LockedEnvironment(
        name,
        tuple(sorted({e.subdir for e in entries})),
        dict(sorted(counts.items())),
        dict(sorted(key.items())),
        tuple(sorted(cuda)),
        tuple(entries),
        max(floors, key=_version_key) if floors else None,
    )

"""Read a Pixi workspace (manifest and lock) into frozen data the rest of the kit renders from.

Nothing here knows about Jinja, Docker or Apptainer: the manifest and the lock are facts, and the
renderer decides what to do with them. The manifest may be `pixi.toml` or the `[tool.pixi]` table
of `pyproject.toml`; the workspace table may be the current `[workspace]` or the older
`[project]`. The lock is read through py-rattler, pixi's own engine, so any lock pixi writes reads
the same way here.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import rattler

from kit.base import names
from kit.base.errors import OptionsError, WorkspaceError
from kit.base.files import LOCK_LIMIT, MANIFEST_LIMIT, read_text
from kit.base.names import ENV_NAME, environment_name

LINUX = "linux-64"
DEFAULT_ENV = "default"
# Locked packages whose versions name an image (python 3.13, pytorch's cuda129 build, CUDA 12.9).
IMAGE_NAMING_PACKAGES = ("python", "pytorch", "cuda-version", "jax", "jaxlib")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Environment:
    """A manifest environment: its features (default feature first) and merged requirements."""

    name: str
    features: tuple[str, ...]
    system_requirements: dict[str, str] = field(default_factory=dict)

    @property
    def cuda(self) -> str | None:
        """The CUDA requirement (`[system-requirements] cuda`), None for a CPU environment."""
        return self.system_requirements.get("cuda")


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    build: str


@dataclass(frozen=True)
class LockedEnvironment:
    """What the lock holds for one environment."""

    name: str
    platforms: tuple[str, ...]
    package_count: dict[str, int]
    # Packages that name an image, on linux-64 only (that is what containers run).
    key_packages: dict[str, LockedPackage]
    # linux-64 packages that need a CUDA driver: cuda-version, a `__cuda` dependency, a cuda build.
    cuda_packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Lock:
    path: Path
    version: int
    environments: dict[str, LockedEnvironment]


@dataclass(frozen=True)
class Workspace:
    """A Pixi workspace as the kit sees it."""

    root: Path
    manifest_path: Path
    name: str
    channels: tuple[str, ...]
    platforms: tuple[str, ...]
    environments: dict[str, Environment]
    tasks: tuple[str, ...]
    lock: Lock | None
    warnings: tuple[str, ...] = ()
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
        locked = self.locked(env)
        return locked is not None and LINUX in locked.platforms

    @property
    def container_environments(self) -> tuple[str, ...]:
        """Environments worth a container: every named one, or `default` when it stands alone."""
        named = tuple(n for n in self.environments if n != DEFAULT_ENV)
        return named or (DEFAULT_ENV,)


def load_workspace(directory: Path | str) -> Workspace:
    """Read the workspace in `directory`; raise WorkspaceError with file, field and fix."""
    root = Path(directory)
    if not root.is_dir() or not os.access(root, os.R_OK | os.X_OK):  # else: "no pixi.toml here"
        raise WorkspaceError(
            "is not a readable directory", file=root, field="dir", fix="pass the folder that holds pixi.toml"
        )
    manifest_path, table, project = _read_manifest(root)
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
    platforms = tuple(
        _platform(p, manifest_path, f"workspace.platforms[{i}]")
        for i, p in enumerate(
            _list(workspace_table.get("platforms", []), manifest_path, "workspace.platforms")
        )
    )
    environments = _environments(table, manifest_path)
    warnings.extend(
        f"{manifest_path}: {message} (fix: {fix})"
        for _, message, fix in cuda_requirement_gaps(manifest_path, environments, lock)
    )
    tasks = _tasks(table, manifest_path)
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
    )


# -- manifest -----------------------------------------------------------------------------------


def _read_manifest(root: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """The manifest, its pixi table, and (pyproject.toml) its `[project]` table: the name pixi
    falls back to when `[tool.pixi.workspace]` has none, and what a build backend reads."""
    pixi_toml = root / "pixi.toml"
    pyproject = root / "pyproject.toml"
    if os.path.lexists(pixi_toml):  # a folder, FIFO or device there is an error, not "no manifest"
        return pixi_toml, parse_manifest_toml(pixi_toml), {}
    if os.path.lexists(pyproject):
        data = parse_manifest_toml(pyproject)
        tool = data.get("tool")
        pixi = tool.get("pixi") if isinstance(tool, dict) else None
        if isinstance(pixi, dict):
            project = data.get("project")
            return pyproject, pixi, project if isinstance(project, dict) else {}
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
    text = read_text(path, limit=MANIFEST_LIMIT, field="toml", error=WorkspaceError, follow=True)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
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


def _platform(value: Any, path: Path, field_name: str) -> str:
    text = _string(value, path, field_name)
    try:
        return str(rattler.Subdir(text))
    except Exception:  # rattler's ParseSubdirError
        raise WorkspaceError(
            f"{text!r} is not a conda platform",
            file=path,
            field=field_name,
            fix='use a platform such as "linux-64" or "osx-arm64"',
        ) from None


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


def _environments(table: dict[str, Any], path: Path) -> dict[str, Environment]:
    features = table.get("feature", {})
    if not isinstance(features, dict):
        raise WorkspaceError(
            "must be a table of features",
            file=path,
            field="feature",
            fix="write features as [feature.NAME.dependencies]",
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
    declared = table.get("environments", {})
    if not isinstance(declared, dict):
        raise WorkspaceError(
            "must be a table",
            file=path,
            field="environments",
            fix='write environments as NAME = ["feature", ...]',
        )
    result: dict[str, Environment] = {}
    if DEFAULT_ENV not in declared:
        result[DEFAULT_ENV] = Environment(DEFAULT_ENV, ("default",), _merge_requirements([default_reqs]))
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
        chain = tuple(([] if no_default else ["default"]) + feature_names)
        result[env_name] = Environment(env_name, chain, _merge_requirements(parts))
    return result


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
    version = _lock_version(path)  # also refuses FIFOs, devices and huge files before rattler opens it
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
    return Lock(path=path, version=version, environments=dict(sorted(environments.items())))


def _lock_version(path: Path) -> int:
    text = read_text(path, limit=LOCK_LIMIT, field="lock", error=WorkspaceError, follow=True)
    for line in text.splitlines():
        match = re.match(r"^version:\s*(\d{1,6})\s*$", line)
        if match:
            return int(match.group(1))
        if line.strip() and not line.startswith("#"):
            break
    raise WorkspaceError(
        "has no `version:` on its first line", file=path, field="version", fix="re-create it with `pixi lock`"
    )


def cuda_requirement_gaps(
    manifest: Path, environments: dict[str, Environment], lock: Lock | None
) -> list[tuple[str, str, str]]:
    """(environment, message, fix) for each environment whose lock holds CUDA builds but whose
    manifest asks for no CUDA: the kit would build and tag it as a CPU image without a word
    (common in older workspaces, written before pixi had system requirements)."""
    out: list[tuple[str, str, str]] = []
    for env in environments.values():
        locked = lock.environments.get(env.name) if lock else None
        if env.cuda or locked is None or not locked.cuda_packages:
            continue
        cuda = locked.key_packages.get("cuda-version")
        major = cuda.version.split(".")[0] if cuda else "12"
        pyproject = "tool.pixi." if manifest.name == "pyproject.toml" else ""
        feature = "" if env.features[-1:] == ("default",) else f"feature.{env.features[-1]}."
        out.append(
            (
                env.name,
                f"environment {env.name!r} locks CUDA packages "
                f"({', '.join(locked.cuda_packages[:3])}) but declares no CUDA system "
                "requirement, so its image is built and tagged as a CPU image",
                f'add [{pyproject}{feature}system-requirements] cuda = "{major}"',
            )
        )
    return out


def _needs_cuda(record: Any) -> bool:
    if record.name.normalized == "cuda-version":
        return True
    if any(str(dep).split()[0] == "__cuda" for dep in record.depends):
        return True
    build = str(record.build)
    return build.startswith("cuda") or "_cuda" in build


def _locked_environment(name: str, env: Any) -> LockedEnvironment:
    platforms = env.platforms()
    counts: dict[str, int] = {}
    key: dict[str, LockedPackage] = {}
    cuda: set[str] = set()
    for platform in platforms:
        records = env.conda_repodata_records_for_platform(platform) or []
        pypi = env.pypi_packages_for_platform(platform) or []
        counts[platform.name] = len(records) + len(pypi)
        if platform.name == LINUX:
            for record in records:
                pkg = record.name.normalized
                if pkg in IMAGE_NAMING_PACKAGES:
                    key[pkg] = LockedPackage(pkg, str(record.version), str(record.build))
                if _needs_cuda(record):
                    cuda.add(pkg)
    names = tuple(sorted(counts))
    return LockedEnvironment(
        name, names, dict(sorted(counts.items())), dict(sorted(key.items())), tuple(sorted(cuda))
    )

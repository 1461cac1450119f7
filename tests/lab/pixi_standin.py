#!/usr/bin/env python3
"""pixi STAND-IN: NOT the real pixi binary.

The lab machines cannot reach the pixi binary, its ``ghcr.io/prefix-dev/pixi`` images or
conda-forge, so the lab's ``kit-lab/pixi:bookworm`` image carries this script as
``/usr/local/bin/pixi`` instead. It is built on py-rattler, the Python binding of rattler (the
engine pixi itself is written on), and implements ONLY what the kit's rendered Dockerfiles and
Apptainer definition files call, the way the pixi version it EMULATES does (the image writes that
version into ``/opt/pixi-standin/emulates`` at build time: the kit's pin, or an older one):

* ``pixi install --locked|--frozen [-e|--environment ENV] [--manifest-path PATH]``: refuses a
  lock format newer than the emulated pixi reads (with that pixi's message); under ``--locked``
  checks the lock against the manifest (channels, platforms, conda and PyPI dependencies) and
  refuses an out-of-date one; then installs the environment's records for the platform it runs on
  (linux-64, or linux-aarch64 in an arm64 image) exactly as the lock lists them (no solving) into ``.pixi/envs/<env>``, plus an editable path dependency on a local
  project, and lays out ``.pixi/`` like pixi. An environment whose merged ``system-requirements``
  ask for CUDA needs a ``__cuda`` virtual package: a driver, or ``CONDA_OVERRIDE_CUDA``.
* ``pixi shell-hook [-e ENV] [-s|--shell bash]``: the environment's bash activation script
  (rattler's: PATH, CONDA_PREFIX, the env's ``activate.d`` scripts) plus pixi's ``PIXI_*`` variables.
* ``pixi info``, ``pixi list [-e ENV]``, ``pixi --version`` (``pixi X.Y.Z``, the emulated one).

Manifests: ``pixi.toml``, or ``pyproject.toml`` with ``[tool.pixi.workspace]`` (or the older
``[tool.pixi.project]``). Anything else fails with a clear message and a non-zero exit status.
Every remaining difference from the real pixi is listed in tests/lab/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import json
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, NoReturn

# The conda subdir of the machine it runs on, as pixi picks the lock's platform to install.
PLATFORM = {"x86_64": "linux-64", "aarch64": "linux-aarch64"}.get(
    os.uname().machine, f"linux-{os.uname().machine}"
)
STANDIN_DIR = Path("/opt/pixi-standin")
EMULATES_FILE = STANDIN_DIR / "emulates"  # written by tests/lab/base_images.sh
# The shells pixi's `shell-hook --shell` accepts (rattler_shell's ShellEnum, as listed in
# pixi_cli/src/shell_hook.rs) and the one this stand-in emulates.
PIXI_SHELLS = ("bash", "zsh", "xonsh", "cmd", "powershell", "fish", "nushell")
EMULATED_SHELLS = ("bash",)


def _pixi_versions() -> Any:
    """kit/model/pixi_versions.py: the one table of which pixi reads which lock format.

    On the host it is the kit's module; in the image base_images.sh copies the same file next to
    the stand-in (the image has no kit installed).
    """
    try:
        from kit.model import pixi_versions

        return pixi_versions
    except ImportError:
        for d in (STANDIN_DIR, Path(__file__).resolve().parent):
            if (d / "pixi_versions.py").is_file() and str(d) not in sys.path:
                sys.path.insert(0, str(d))
        import pixi_versions  # type: ignore[import-not-found,no-redef]

        return pixi_versions


def _sibling(name: str) -> Any:
    """A module shipped beside the stand-in: in the image under /opt/pixi-standin (copied by
    base_images.sh), on the host next to this file."""
    for d in (STANDIN_DIR, Path(__file__).resolve().parent):
        if (d / f"{name}.py").is_file() and str(d) not in sys.path:
            sys.path.insert(0, str(d))
    return importlib.import_module(name)


# How the lock is read against the manifest: the --locked check, platforms (tests/lab/standin_lock.py).
standin_lock = _sibling("standin_lock")
channel_url, pypi_name, out_of_date_reasons = (
    standin_lock.channel_url,
    standin_lock.pypi_name,
    standin_lock.out_of_date_reasons,
)
_is_path = standin_lock.is_path


def emulated_version() -> str:
    """The pixi version this stand-in behaves as: $PIXI_STANDIN_EMULATES, the image's file, or
    (on the host, where the kit is importable) the kit's own pin."""
    found = os.environ.get("PIXI_STANDIN_EMULATES", "").strip()
    if not found and EMULATES_FILE.is_file():
        found = EMULATES_FILE.read_text().strip()
    if not found:
        try:
            from kit.decide.options import PIXI_VERSION

            found = PIXI_VERSION
        except ImportError:
            fail(
                f"the pixi stand-in does not know which pixi it emulates: {EMULATES_FILE} is missing",
                code=2,
                help="build the image with tests/lab/base_images.sh",
            )
    _pixi_versions().version_tuple(found)  # ValueError on nonsense, at once
    return found


class Emulated:
    """What differs between the pixi versions the stand-in emulates, each from pixi's source."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.key = _pixi_versions().version_tuple(version)
        table = _pixi_versions()
        self.reads = table.newest_lock_format(version)
        # pixi 0.71 (PR #6178): rich platforms, platforms matched against the host's virtual
        # packages, `[system-requirements]` migrated onto the platforms, locks keyed `p1`, ...
        self.rich = self.key >= table.MANIFEST_FEATURE_SINCE["rich-platforms"]
        self.named_layout = table.reads_lock_layout(version, table.LAYOUT_NAMED)
        # pixi 0.73: TOML 1.1 manifests.
        self.toml_1_1 = self.key >= table.MANIFEST_FEATURE_SINCE["toml-1.1"]

    def not_up_to_date(self) -> str:
        # crates/pixi_core/src/lock_file/update.rs: "lock-file not up-to-date with the workspace"
        # up to 0.69.x, "lock file not up-to-date with the workspace" from 0.70.0.
        return (
            "lock file not up-to-date with the workspace"
            if self.key >= (0, 70, 0)
            else "lock-file not up-to-date with the workspace"
        )

    def refuse_newer_lock(self, found: int, path: Path) -> NoReturn:
        """Stop as this pixi does on a lock format it cannot read (install --locked/--frozen)."""
        if self.key < (0, 60, 0):
            # up to 0.59 (e.g. v0.55.0 crates/pixi_core/src/lock_file/update.rs, load_lock_file)
            fail(
                f"Failed to load lock file from `{path}`",
                cause=(
                    f"The lock file version is {found}, but only up to including version "
                    f"{self.reads} is supported by the current version."
                ),
                help="Please update pixi to the latest version and try again.",
            )
        # from 0.60 (e.g. v0.67.2 update.rs, LockFileVersionMismatchError under --locked/--frozen)
        fail(
            f"Lock-file version {found} is newer than supported",
            help=(
                f"Maximum supported version: {self.reads} (pixi v{self.version})\n"
                "Cannot continue with --locked or --frozen mode as the lock-file cannot be read.\n"
                "Try running `pixi self-update` to update to the latest version."
            ),
        )

    def warn_older_lock(self, found: int) -> None:
        # v0.70.2 update.rs: an up-to-date lock in an older format installs, with this warning.
        if found < self.reads and self.key >= (0, 68, 0):
            warn(
                f"the lock file is up-to-date but uses an older format (v{found}), run "
                f"`pixi lock` to upgrade to v{self.reads} for improved reproducibility"
            )


def rattler_version() -> str:
    try:
        from importlib.metadata import version

        return version("py-rattler")
    except Exception:  # pragma: no cover
        return "unknown"


def fail(msg: str, code: int = 1, help: str | None = None, cause: str | None = None) -> NoReturn:
    """Report like pixi (miette): `Error:   × msg`, `╰─▶ cause`, `help: ...`; exit `code`."""
    print(f"Error:   \u00d7 {msg}", file=sys.stderr)
    if cause:
        print(f"  \u2570\u2500\u25b6 {cause}", file=sys.stderr)
    if help:
        lines = help.splitlines()
        print(f"  help: {lines[0]}", file=sys.stderr)
        for line in lines[1:]:
            print(f"        {line}", file=sys.stderr)
    raise SystemExit(code)


def warn(msg: str) -> None:
    print(f" WARN {msg}", file=sys.stderr)


# --------------------------------------------------------------------------- manifest


def read_toml(path: Path, emulated: Emulated | None = None) -> dict[str, Any]:
    """A manifest's TOML as the emulated pixi reads it: TOML 1.0 (tomllib), and from pixi 0.73
    TOML 1.1 too (tomli, as the kit reads it: only a manifest tomllib refuses goes there)."""
    emulated = emulated or Emulated(emulated_version())
    try:
        text = path.read_text()
        return tomllib.loads(text)
    except OSError as e:
        fail(f"failed to parse {path}", cause=str(e))
    except tomllib.TOMLDecodeError as e:
        if not emulated.toml_1_1:
            fail(f"failed to parse {path}", cause=str(e))
        try:
            import tomli
        except ImportError:
            fail(
                f"the pixi stand-in cannot read {path} as TOML 1.1: tomli is not installed",
                code=2,
                help="build the image with tests/lab/base_images.sh (it installs tomli beside py-rattler)",
            )
        try:
            loaded: dict[str, Any] = tomli.loads(text)
            return loaded
        except tomli.TOMLDecodeError as e2:
            fail(f"failed to parse {path}", cause=str(e2))


def _channel_name(c: Any) -> str:
    return c if isinstance(c, str) else str(c["channel"])


def _platform_targets(platform: str) -> list[str]:
    family = platform.split("-", 1)[0]
    unix = [] if family == "win" else ["unix"]
    return unix + [family, platform]


class Workspace:
    """The subset of a pixi manifest (pixi.toml, or pyproject.toml's [tool.pixi]) the stand-in reads."""

    def __init__(self, manifest_path: Path, emulated: Emulated | None = None) -> None:
        self.manifest_path = manifest_path.resolve()
        self.root = self.manifest_path.parent
        self.emulated = emulated or Emulated(emulated_version())
        raw = read_toml(self.manifest_path, self.emulated)
        ws: dict[str, Any]
        self.pyproject = self.manifest_path.name == "pyproject.toml"
        if self.pyproject:
            project = raw.get("project", {})
            data = raw.get("tool", {}).get("pixi", {})
            found = data.get("workspace", data.get("project"))
            if not isinstance(found, dict):
                fail(f"{self.manifest_path}: no [tool.pixi.workspace] table")
            ws = dict(found)
            # pixi: the name and version default to the [project] table's
            ws.setdefault("name", project.get("name"))
            ws.setdefault("version", project.get("version"))
            data = self._pyproject_features(data, project, raw.get("dependency-groups", {}))
        else:
            data = raw
            found = data.get("workspace", data.get("project"))
            if not isinstance(found, dict):
                fail(f"{self.manifest_path}: no [workspace] table")
            ws = found
        self.data = data
        self.name: str = ws.get("name") or self.root.name
        self.version: str | None = ws.get("version")
        self.workspace_channels: list[Any] = list(ws.get("channels", []))
        self.channels: list[str] = [_channel_name(c) for c in self.workspace_channels]
        try:
            self.platform_entries = [
                standin_lock.parse_platform(p, self.emulated.rich) for p in ws.get("platforms", [])
            ]
        except standin_lock.Refusal as refusal:
            fail(f"failed to parse {self.manifest_path}", cause=refusal.message)

        self.platforms: list[str] = [p.name for p in self.platform_entries]
        self.features: dict[str, dict[str, Any]] = {"default": data}
        self.features.update(data.get("feature", {}))
        envs: dict[str, Any] = {"default": {"features": []}}
        for name, spec in data.get("environments", {}).items():
            envs[name] = {"features": spec} if isinstance(spec, list) else dict(spec)
        self.environments = envs
        for env, spec in envs.items():
            for f in spec.get("features", []):
                if f not in self.features:
                    fail(f"the environment '{env}' references an unknown feature '{f}'")

    @staticmethod
    def _pyproject_features(
        data: dict[str, Any], project: dict[str, Any], groups: dict[str, Any]
    ) -> dict[str, Any]:
        """pixi's reading of a pyproject.toml: [project].dependencies join the default feature's
        PyPI dependencies, `requires-python` becomes a `python` conda dependency unless one is
        given, and each optional-dependencies extra / dependency group becomes a feature."""
        data = json.loads(json.dumps(data))  # a private copy
        pypi = data.setdefault("pypi-dependencies", {})
        for req in project.get("dependencies", []):
            name = re.split(r"[ <>=!~;\[(@]", req.strip(), maxsplit=1)[0]
            pypi.setdefault(name, req[len(name) :].strip() or "*")
        deps = data.setdefault("dependencies", {})
        if "python" not in deps and project.get("requires-python"):
            deps["python"] = project["requires-python"]
        extras = dict(project.get("optional-dependencies", {}))
        extras.update({k: v for k, v in groups.items() if isinstance(v, list)})
        features = data.setdefault("feature", {})
        for extra, reqs in extras.items():
            table = features.setdefault(extra, {}).setdefault("pypi-dependencies", {})
            for req in reqs:
                if isinstance(req, str):
                    name = re.split(r"[ <>=!~;\[(@]", req.strip(), maxsplit=1)[0]
                    table.setdefault(name, req[len(name) :].strip() or "*")
        return data

    # -- features and environments (pixi_core workspace/environment.rs, HasFeaturesIter)

    def env_features(self, env: str) -> list[str]:
        """The environment's features in pixi's order: its own, then `default` (unless
        no-default-feature)."""
        spec = self.environments[env]
        feats = list(spec.get("features", []))
        if not spec.get("no-default-feature", False):
            feats.append("default")
        return feats

    def group_features(self, env: str) -> list[str]:
        """The features of the environment's solve group (all its environments), or its own."""
        group = self.environments[env].get("solve-group")
        if not group:
            return self.env_features(env)
        out: list[str] = []
        for name, spec in self.environments.items():
            if spec.get("solve-group") == group:
                out += [f for f in self.env_features(name) if f not in out]
        return out

    def dependencies(self, env: str, platform: str = PLATFORM) -> dict[str, str]:
        """Conda dependencies of ``env`` on ``platform``: name -> match spec string."""
        return self._combined(env, platform, "dependencies", spec_string)

    def pypi_dependencies(self, env: str, platform: str = PLATFORM) -> dict[str, Any]:
        """PyPI dependencies of ``env`` on ``platform``: normalized name -> spec (str or table)."""
        return self._combined(env, platform, "pypi-dependencies", lambda _n, s: s, normalize=pypi_name)

    def _combined(
        self, env: str, platform: str, key: str, conv: Any, normalize: Any = str.lower
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        # later (lower-priority) features first, so the environment's own features win
        for f in reversed(self.env_features(env)):
            feat = self.features.get(f, {})
            tables = [feat.get(key, {})]
            tables += [feat.get("target", {}).get(t, {}).get(key, {}) for t in _platform_targets(platform)]
            for table in tables:
                for name, spec in table.items():
                    out[normalize(name)] = conv(name, spec)
        return out

    def system_requirements(self, env: str) -> dict[str, str]:
        """The merged system requirements of ``env`` as pixi merges them.

        pixi (v0.70.2 crates/pixi_manifest/src/features_ext.rs, `local_system_requirements`, and
        crates/pixi_manifest/src/system_requirements.rs, `SystemRequirements::union`): the union
        over the environment's features (its own and `default`), or over every feature of its
        solve group (pixi_core/src/workspace/solve_group.rs); where several name the same
        requirement the HIGHEST version wins; two libc families or two archspecs cannot be
        combined (an error).
        """
        from rattler import Version

        merged: dict[str, str] = {}
        family: str | None = None
        for f in self.group_features(env):
            for k, v in self.features.get(f, {}).get("system-requirements", {}).items():
                if k == "libc":
                    fam = "glibc"
                    if isinstance(v, dict):
                        fam = str(v.get("family", "glibc")).lower()
                        v = v.get("version", "")
                    if family is not None and fam != family:
                        fail(
                            f"cannot combine the system requirements of environment '{env}'",
                            cause=f"the libc families '{family}' and '{fam}' differ",
                        )
                    family = fam
                elif k == "archspec":
                    if k in merged and merged[k] != str(v):
                        fail(
                            f"cannot combine the system requirements of environment '{env}'",
                            cause=f"the archspecs '{merged[k]}' and '{v}' differ",
                        )
                    merged[k] = str(v)
                    continue
                elif isinstance(v, dict):
                    v = v.get("version", "")
                v = str(v)
                if k not in merged or Version(v) > Version(merged[k]):
                    merged[k] = v
        return merged

    def env_channels(self, env: str) -> list[str]:
        """The channels of ``env``'s solve group as pixi orders them (features_ext.rs,
        `prioritized_channels`): each feature's channels, or the workspace's when it names none,
        sorted by priority (highest first, stable), the first of each kept."""
        entries: list[tuple[int, str]] = []
        for f in self.group_features(env):
            feat = self.features.get(f, {})
            chans = feat.get("channels") if f != "default" else None
            for c in chans if chans is not None else self.workspace_channels:
                prio = 0 if isinstance(c, str) else int(c.get("priority", 0) or 0)
                entries.append((prio, _channel_name(c)))
        out: list[str] = []
        for _prio, name in sorted(entries, key=lambda e: -e[0]):
            if name not in out:
                out.append(name)
        return out

    def env_platforms(self, env: str) -> list[str]:
        """The intersection of the platforms of the environment's features (features_ext.rs)."""
        result: list[str] | None = None
        for f in self.env_features(env):
            feat = self.features.get(f, {})
            plats = feat.get("platforms") if f != "default" else None
            plats = self._feature_platforms(plats) if plats is not None else self.platforms
            result = plats if result is None else [p for p in result if p in plats]
        return result or []

    def _feature_platforms(self, listed: list[str]) -> list[str]:
        """A feature's `platforms`: entry names, or a bare subdir for the entries of that subdir."""
        out: list[str] = []
        for item in listed:
            named = [p.name for p in self.platform_entries if p.name == item]
            out += named or [p.name for p in self.platform_entries if p.subdir == item]
        return out

    def entry(self, name: str) -> Any:
        return next(p for p in self.platform_entries if p.name == name)

    def declared_virtual_packages(self, env: str, name: str) -> dict[str, str]:
        """What platform `name` of `env` declares beyond its subdir's defaults: its own virtual
        packages and, from pixi 0.71 (which migrates `[system-requirements]` onto the
        platforms), the environment's system requirements."""
        declared = dict(self.entry(name).declared)
        if self.emulated.rich:
            from rattler import Version

            for key, value in self.system_requirements(env).items():
                virtual = standin_lock.SYSREQ_VIRTUAL.get(key)
                if virtual and (virtual not in declared or Version(value) > Version(declared[virtual])):
                    declared[virtual] = value
        return declared

    def prefix(self, env: str) -> Path:
        return self.root / ".pixi" / "envs" / env


def spec_string(name: str, spec: Any) -> str:
    if isinstance(spec, str):
        return name if spec.strip() in ("", "*") else f"{name} {spec.strip()}"
    if isinstance(spec, dict):
        version = spec.get("version", "*")
        out = name if version in ("", "*") else f"{name} {version}"
        if "build" in spec:
            out = f"{name} {version or '*'} {spec['build']}"
        return out
    raise ValueError(f"unsupported dependency spec for {name}: {spec!r}")


def _pyproject_has_pixi(path: Path) -> bool:
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except OSError:
        return False
    except tomllib.TOMLDecodeError:
        if not Emulated(emulated_version()).toml_1_1:
            return False
        try:
            import tomli

            data = tomli.loads(text)
        except Exception:  # tomli missing or the text not TOML 1.1 either
            return False
    return "pixi" in data.get("tool", {})


def _manifest_in(d: Path) -> Path | None:
    """pixi's choice in one directory: pixi.toml first, then a pyproject.toml with [tool.pixi]."""
    if (d / "pixi.toml").is_file():
        return d / "pixi.toml"
    if (d / "pyproject.toml").is_file() and _pyproject_has_pixi(d / "pyproject.toml"):
        return d / "pyproject.toml"
    return None


def find_manifest(explicit: str | None) -> Path | None:
    if explicit:
        p = Path(explicit)
        if p.is_dir():
            return _manifest_in(p)
        return p if p.is_file() else None
    env = os.environ.get("PIXI_PROJECT_MANIFEST")
    d = Path.cwd()
    for cand in [d, *d.parents]:
        found = _manifest_in(cand)
        if found is not None:
            return found
    if env and Path(env).exists():
        return Path(env)
    return None


def load_workspace(explicit: str | None) -> Workspace:
    m = find_manifest(explicit)
    if m is None:
        fail(
            f"could not find pixi.toml or pyproject.toml at directory {Path.cwd()}",
            help="this is the pixi stand-in; it needs a pixi workspace in the current directory",
        )
    return Workspace(m)


def pick_env(ws: Workspace, env: str | None) -> str:
    name = env or os.environ.get("PIXI_ENVIRONMENT_NAME") or "default"
    if name not in ws.environments:
        fail(
            f"unknown environment '{name}' in {ws.manifest_path}",
            help=f"available environments: {', '.join(sorted(ws.environments))}",
        )
    return name


# --------------------------------------------------------------------------- lock file


def lock_format(path: Path) -> int:
    """The `version:` of a pixi.lock, read before parsing it (as rattler_lock does)."""
    with path.open() as f:
        for line in f:
            m = re.match(r"^version:\s*(\d+)\s*$", line)
            if m:
                return int(m.group(1))
            if line.strip() and not line.startswith("#"):
                break
    fail(f"Failed to load lock file from `{path}`", cause="missing field `version`")


def load_lock(ws: Workspace, emulated: Emulated) -> tuple[Any, int]:
    """The lock, refused as the emulated pixi refuses a format newer than it reads."""
    from rattler import LockFile

    path = ws.root / "pixi.lock"
    found = lock_format(path)
    if found > emulated.reads:
        emulated.refuse_newer_lock(found, path)
    try:
        return LockFile.from_path(path), found
    except Exception as e:  # rattler's parse errors
        fail(f"Failed to load lock file from `{path}`", cause=str(e))


def locked_env(ws: Workspace, env: str, frozen: bool, emulated: Emulated) -> tuple[Any, Any]:
    """The locked environment and its PLATFORM entry, after the checks pixi makes."""
    lock_path = ws.root / "pixi.lock"
    if not lock_path.exists():
        if frozen:
            fail("no lockfile available, can't do a frozen installation.")
        fail(
            emulated.not_up_to_date(),
            help=f"{lock_path} does not exist; the pixi stand-in cannot create it (run `pixi lock`)",
        )
    lock, found = load_lock(ws, emulated)
    lenv = lock.environment(env)
    if not frozen:
        reasons = out_of_date_reasons(ws, env, lenv)
        if reasons:
            for r in reasons:
                print(f" INFO {r}", file=sys.stderr)
            fail(emulated.not_up_to_date())
        emulated.warn_older_lock(found)
    if lenv is None:
        fail(f"the lockfile is not up-to-date with requested environment: '{env}'")
    if emulated.rich:
        chosen = install_platform(ws, env, lenv)
        plat = locked_platforms(ws, env, lenv).get(chosen.name)  # None: locked empty
    else:  # pixi <= 0.70 looks the platform up by its subdir's name
        plat = next((p for p in lenv.platforms() if p.name == PLATFORM), None)
    if plat is None and not emulated.rich and PLATFORM not in ws.env_platforms(env):
        fail(
            f"the lock file does not contain platform '{PLATFORM}' for environment '{env}'",
            help=f"the pixi stand-in installs the platform it runs on ({PLATFORM})",
        )
    return lenv, plat


def locked_records(ws: Workspace, env: str, frozen: bool, emulated: Emulated | None = None) -> list[Any]:
    lenv, plat = locked_env(ws, env, frozen, emulated or Emulated(emulated_version()))
    return list((lenv.conda_repodata_records_for_platform(plat) if plat else None) or [])


def best_declared_platform(ws: Workspace, env: str) -> Any:
    return standin_lock.best_declared_platform(ws, env, virtual_packages())


def install_platform(ws: Workspace, env: str, lenv: Any) -> Any:
    try:
        return standin_lock.install_platform(ws, env, lenv, virtual_packages(), warn)
    except standin_lock.Refusal as refusal:
        fail(refusal.message, cause=refusal.cause, help=refusal.help)


locked_platforms = standin_lock.locked_platforms


# --------------------------------------------------------------------------- virtual packages


def virtual_packages() -> dict[str, tuple[str, str]]:
    from rattler import VirtualPackage, VirtualPackageOverrides

    out = {}
    for vp in VirtualPackage.detect(VirtualPackageOverrides.from_env()):
        g = vp.into_generic()
        out[g.name.normalized] = (str(g.version), str(g.build_string))
    return out


def check_system_requirements(ws: Workspace, env: str) -> None:
    from rattler import Version

    cuda = ws.system_requirements(env).get("cuda")
    if not cuda:
        return
    have = virtual_packages().get("__cuda")
    if have is None:
        fail(
            f"Cannot install environment '{env}': the virtual package '__cuda' is missing. "
            f"The environment requires cuda >={cuda} (system-requirements) but no CUDA driver "
            "was detected",
            help=f"set CONDA_OVERRIDE_CUDA={cuda} to install it on a machine without a GPU driver",
        )
    if Version(have[0]) < Version(cuda):
        fail(
            f"Cannot install environment '{env}': the virtual package '__cuda' has version "
            f"{have[0]}, but the environment requires cuda >={cuda} (system-requirements)"
        )


# --------------------------------------------------------------------------- commands


def cache_dir() -> Path:
    base = os.environ.get("PIXI_CACHE_DIR") or os.environ.get("RATTLER_CACHE_DIR")
    root = (
        Path(base)
        if base
        else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rattler" / "cache"
    )
    return root / "pkgs"


def write_pixi_dir(ws: Workspace) -> None:
    d = ws.root / ".pixi"
    d.mkdir(exist_ok=True)
    (d / ".gitignore").write_text("*\n")
    (d / ".condapackageignore").write_text(".pixi\n")


def python_site_packages(prefix: Path) -> Path:
    found = sorted(prefix.glob("lib/python3*/site-packages"))
    if not found:
        fail(f"no python in {prefix}: a PyPI package needs a python from the lock's conda packages")
    return found[0]


def install_pypi(ws: Workspace, env: str, lenv: Any, plat: Any, prefix: Path) -> int:
    """Install the environment's locked PyPI packages, as far as the lab can: an editable path
    dependency on a local project (what uv would leave behind: a `.pth` pointing at the source
    and a `.dist-info` saying so). Anything that needs a download or a build is refused."""
    packages = (lenv.pypi_packages_for_platform(plat) if plat else None) or []
    if not packages:
        return 0
    specs = ws.pypi_dependencies(env)
    site = python_site_packages(prefix)
    for p in packages:
        spec = specs.get(pypi_name(p.name))
        editable = isinstance(spec, dict) and "path" in spec and bool(spec.get("editable"))
        if not (_is_path(p.location) and editable):
            fail(
                f"the pixi stand-in cannot install the PyPI package '{p.name}' ({p.location})",
                code=2,
                help="the lab reaches no package index and builds nothing; it installs "
                'only an editable path dependency (`{ path = ".", editable = true }`)',
            )
        source = (ws.root / p.location.removeprefix("file://")).resolve()
        if not source.is_dir():
            fail(f"the editable PyPI package '{p.name}' points at {source}, which is not a directory")
        root = source / "src" if (source / "src").is_dir() else source
        dist = re.sub(r"[-_.]+", "_", p.name)
        (site / f"__editable__.{dist}-{p.version}.pth").write_text(f"{root}\n")
        info = site / f"{dist}-{p.version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {p.name}\nVersion: {p.version}\n")
        (info / "INSTALLER").write_text("uv\n")
        (info / "direct_url.json").write_text(
            json.dumps({"url": source.as_uri(), "dir_info": {"editable": True}}) + "\n"
        )
        files = [
            f"__editable__.{dist}-{p.version}.pth",
            *(f"{info.name}/{n}" for n in ("METADATA", "INSTALLER", "direct_url.json", "RECORD")),
        ]
        (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))
    return len(packages)


def cmd_install(a: argparse.Namespace) -> int:
    from rattler import install

    if not (a.locked or a.frozen):
        fail(
            "the pixi stand-in only installs from an up-to-date lock file",
            code=2,
            help="pass --locked or --frozen",
        )
    emulated = Emulated(emulated_version())
    ws = load_workspace(a.manifest_path)
    env = pick_env(ws, a.environment or "default")
    lenv, plat = locked_env(ws, env, a.frozen, emulated)
    records = list((lenv.conda_repodata_records_for_platform(plat) if plat else None) or [])
    if not emulated.rich:  # 0.71+ matched the platform against the host above
        check_system_requirements(ws, env)
    write_pixi_dir(ws)
    prefix = ws.prefix(env)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    # (requested_specs is left out: py-rattler 0.28 rejects its own MatchSpec objects there)
    asyncio.run(install(records, target_prefix=prefix, cache_dir=cache_dir(), show_progress=False))
    n_pypi = install_pypi(ws, env, lenv, plat, prefix)
    lock_hash = hashlib.sha256((ws.root / "pixi.lock").read_bytes()).hexdigest()
    (prefix / "conda-meta" / "pixi").write_text(
        json.dumps(
            {
                "manifest_path": str(ws.manifest_path),
                "environment_name": env,
                "pixi_version": emulated.version,
                "environment_lock_file_hash": lock_hash,
            },
            indent=2,
        )
        + "\n"
    )
    extra = f" + {n_pypi} PyPI" if n_pypi else ""
    print(
        f"\u2714 The {env} environment has been installed ({len(records)} packages{extra}, pixi stand-in).",
        file=sys.stderr,
    )
    return 0


def check_shell(shell: str | None) -> None:
    """pixi rejects a shell it does not know (a clap usage error, exit 2); the stand-in also
    refuses the ones pixi knows but it does not emulate, rather than print the wrong script."""
    if shell is None or shell in EMULATED_SHELLS:
        return
    if shell not in PIXI_SHELLS:
        print(
            f"error: invalid value '{shell}' for '--shell <SHELL>'\n"
            f"  [possible values: {', '.join(PIXI_SHELLS)}]\n\n"
            "For more information, try '--help'.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    fail(
        f"the pixi stand-in emulates `shell-hook` for {', '.join(EMULATED_SHELLS)} only, not '{shell}'",
        code=2,
        help="the real pixi prints a script for it; the lab cannot",
    )


def cmd_shell_hook(a: argparse.Namespace) -> int:
    from rattler.shell import ActivationVariables, Shell, activate

    check_shell(a.shell)
    emulated = Emulated(emulated_version())
    ws = load_workspace(a.manifest_path)
    env = pick_env(ws, a.environment or "default")
    if (ws.root / "pixi.lock").exists():
        found = lock_format(ws.root / "pixi.lock")
        if found > emulated.reads:
            emulated.refuse_newer_lock(found, ws.root / "pixi.lock")
    prefix = ws.prefix(env)
    if not (prefix / "conda-meta").is_dir():
        fail(
            f"environment '{env}' is not installed at {prefix}",
            help=f"run `pixi install --locked -e {env}` first (the stand-in does not install on demand)",
        )
    exports = {
        "PIXI_PROJECT_ROOT": str(ws.root),
        "PIXI_PROJECT_NAME": ws.name,
        "PIXI_PROJECT_MANIFEST": str(ws.manifest_path),
        "PIXI_PROJECT_VERSION": ws.version or "NO_VERSION_SPECIFIED",
        "PIXI_ENVIRONMENT_NAME": env,
        "PIXI_ENVIRONMENT_PLATFORMS": ",".join(ws.env_platforms(env)),
        "PIXI_PROMPT": f"({ws.name})" if env == "default" else f"({ws.name}:{env})",
        "CONDA_DEFAULT_ENV": ws.name if env == "default" else f"{ws.name}:{env}",
    }
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    result = activate(prefix, ActivationVariables(None, path), Shell.bash)
    out = [f'export {k}="{v}"' for k, v in exports.items()]
    # pixi (activation.rs, `get_activator`): the manifest's scripts run after the packages'
    # activate.d scripts (a missing one is only warned about), then its `env` is set.
    scripts, variables = standin_lock.activation(ws, env, _platform_targets(PLATFORM))
    found = [ws.root / s for s in scripts if (ws.root / s).is_file()]
    missing = [str(ws.root / s) for s in scripts if not (ws.root / s).is_file()]
    if missing:
        print(f" WARN Could not find activation scripts: {', '.join(missing)}", file=sys.stderr)
    tail = [f'. "{script}"' for script in found]
    tail += [f'export {k}="{v}"' for k, v in variables.items()]  # as rattler writes it: $VAR expands
    sys.stdout.write(
        "\n".join(out) + "\n" + result.script.rstrip("\n") + "\n" + "".join(f"{t}\n" for t in tail)
    )
    return 0


def installed_records(prefix: Path) -> list[dict[str, Any]]:
    recs = []
    for p in sorted((prefix / "conda-meta").glob("*.json")):
        recs.append(json.loads(p.read_text()))
    return recs


def cmd_list(a: argparse.Namespace) -> int:
    ws = load_workspace(a.manifest_path)
    env = pick_env(ws, a.environment)
    if ws.emulated.rich and best_declared_platform(ws, env) is None:
        # pixi_api/src/workspace/list/mod.rs at v0.76.1: no fallback to the locked minimum here.
        fail(f"no platform supported by environment '{env}' matches the current system")
    prefix = ws.prefix(env)
    if (prefix / "conda-meta").is_dir():
        rows = [
            (r["name"], r["version"], r["build"], int(r.get("size") or 0), r.get("channel") or "")
            for r in installed_records(prefix)
        ]
    else:
        print(f"(environment '{env}' is not installed: listing the lock file)", file=sys.stderr)
        rows = [
            (r.name.normalized, str(r.version), str(r.build), int(r.size or 0), r.channel or "")
            for r in locked_records(ws, env, frozen=True)
        ]
    if not rows:
        print(f"No packages found in '{env}' environment for '{PLATFORM}' platform.")
        return 0
    explicit = {n.lower() for n in ws.dependencies(env)}
    rows.sort()
    head = ("Package", "Version", "Build", "Size", "Kind", "Source")
    table = [
        (("*" if n in explicit else "") + n, v, b, f"{s / 1e6:.1f} MiB" if s else "", "conda", c.rstrip("/"))
        for n, v, b, s, c in rows
    ]
    widths = [max(len(str(r[i])) for r in [head, *table]) for i in range(len(head))]
    for r in [head, *table]:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_info(a: argparse.Namespace) -> int:
    vps = virtual_packages()
    version = emulated_version()
    print(
        f"pixi {version}: a STAND-IN emulating pixi {version}, built on py-rattler "
        f"{rattler_version()} (tests/lab/pixi_standin.py)"
    )
    print()
    print("System")
    print("------------")
    print(f"       Pixi version: {version}")
    print(f"  Lock formats read: up to {Emulated(version).reads}")
    print(f"           Platform: {PLATFORM}")
    for i, (n, (v, b)) in enumerate(sorted(vps.items())):
        print(f"{'Virtual packages' if i == 0 else '':>19}: {n}={v}={b}")
    print(f"          Cache dir: {cache_dir()}")
    m = find_manifest(a.manifest_path)
    if m is None:
        return 0
    ws = Workspace(m)
    print()
    print("Workspace")
    print("------------")
    print(f"               Name: {ws.name}")
    if ws.version:
        print(f"            Version: {ws.version}")
    print(f"      Manifest file: {ws.manifest_path}")
    for env in ws.environments:
        print()
        print(f"Environment: {env}")
        print("------------")
        print(f"           Features: {', '.join(ws.env_features(env))}")
        print(f"           Channels: {', '.join(ws.env_channels(env))}")
        deps = ws.dependencies(env)
        print(f"   Dependency count: {len(deps)}")
        if deps:
            print(f"       Dependencies: {', '.join(deps)}")
        sysreq = ws.system_requirements(env)
        if sysreq:
            print(f"System requirements: {', '.join(f'{k} = {v}' for k, v in sysreq.items())}")
        print(f"   Target platforms: {', '.join(ws.env_platforms(env))}")
        prefix = ws.prefix(env)
        state = "" if (prefix / "conda-meta").is_dir() else " (not installed)"
        print(f"    Prefix location: {prefix}{state}")
    return 0


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # pixi-like message, exit 2
        fail(f"{message} (pixi stand-in; supported: install, shell-hook, info, list, --version)", code=2)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = Parser(prog="pixi", description="pixi STAND-IN built on py-rattler (see module docstring)")
    ap.add_argument("-V", "--version", action="store_true")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    ap.add_argument("-q", "--quiet", action="count", default=0)
    ap.add_argument("--color", default="auto")
    ap.add_argument("--no-progress", action="store_true")
    sub = ap.add_subparsers(dest="cmd", parser_class=Parser)

    def common(p: argparse.ArgumentParser, env: bool = True) -> None:
        p.add_argument("--manifest-path", default=None)
        if env:
            p.add_argument("-e", "--environment", default=None)

    p = sub.add_parser("install", aliases=["i"])
    common(p)
    p.add_argument("--locked", action="store_true")
    p.add_argument("--frozen", action="store_true")
    p.add_argument("-a", "--all", action="store_true")
    p = sub.add_parser("shell-hook")
    common(p)
    p.add_argument("-s", "--shell", default=None)
    p.add_argument("--locked", action="store_true")
    p.add_argument("--frozen", action="store_true")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("list")
    common(p)
    p.add_argument("--locked", action="store_true")
    p.add_argument("--frozen", action="store_true")
    p = sub.add_parser("info")
    common(p, env=False)
    p.add_argument("--json", action="store_true")

    if not argv:
        ap.print_usage(sys.stderr)
        return 2
    if argv[0] not in ("install", "i", "shell-hook", "list", "info") and not argv[0].startswith("-"):
        fail(
            f"'{argv[0]}' is not implemented by the pixi stand-in",
            code=2,
            help="it implements only: install --locked|--frozen, shell-hook, info, list, --version",
        )
    a = ap.parse_args(argv)
    if a.version:
        print(f"pixi {emulated_version()}")
        return 0
    if a.cmd is None:
        ap.print_usage(sys.stderr)
        return 2
    if a.cmd in ("install", "i"):
        if a.all:
            fail("`pixi install --all` is not implemented by the pixi stand-in", code=2)
        return cmd_install(a)
    if a.cmd == "shell-hook":
        if a.json:
            fail("`pixi shell-hook --json` is not implemented by the pixi stand-in", code=2)
        return cmd_shell_hook(a)
    if a.cmd == "list":
        return cmd_list(a)
    if a.cmd == "info":
        if a.json:
            fail("`pixi info --json` is not implemented by the pixi stand-in", code=2)
        return cmd_info(a)
    return 2


def exit_now(code: int) -> NoReturn:
    """Leave without the interpreter's teardown.

    py-rattler's native worker threads can still be running while Python finalizes, and about one
    finished install in fifteen then died with SIGSEGV after printing its result. Flushing and
    leaving with os._exit skips that teardown; the install itself is complete by then.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    try:
        status = main()
    except SystemExit as exc:  # fail() and argparse report their own message first
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        status = 130
    exit_now(status)

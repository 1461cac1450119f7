#!/usr/bin/env python3
"""pixi STAND-IN: NOT the real pixi binary.

The lab machines cannot reach the pixi binary, its ``ghcr.io/prefix-dev/pixi`` images or
conda-forge, so the lab's ``kit-lab/pixi:bookworm`` image carries this script as
``/usr/local/bin/pixi`` instead. It is built on py-rattler, the Python binding of rattler (the
engine pixi itself is written on), and implements ONLY what the kit's rendered Dockerfiles and
Apptainer definition files call:

* ``pixi install --locked|--frozen [-e|--environment ENV] [--manifest-path PATH]``: installs the
  environment's linux-64 records exactly as the lock file lists them (no solving), into
  ``.pixi/envs/<env>``, and lays out ``.pixi/`` like pixi (``.gitignore``, ``.condapackageignore``,
  ``envs/<env>/conda-meta``). An environment whose ``system-requirements`` ask for CUDA needs a
  ``__cuda`` virtual package: a driver, or ``CONDA_OVERRIDE_CUDA``.
* ``pixi shell-hook [-e ENV] [-s|--shell bash]``: the environment's bash activation script
  (rattler's: PATH, CONDA_PREFIX, the env's ``activate.d`` scripts) plus pixi's ``PIXI_*`` variables.
* ``pixi info``, ``pixi list [-e ENV]``, ``pixi --version``.

Anything else fails with a clear message and a non-zero exit status. Without ``--locked`` or
``--frozen`` it refuses to install, since it cannot update a lock file as pixi would.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Any, NoReturn

PLATFORM = "linux-64"
STANDIN_VERSION = "0.0.0-standin"


def rattler_version() -> str:
    try:
        from importlib.metadata import version
        return version("py-rattler")
    except Exception:  # pragma: no cover
        return "unknown"


def fail(msg: str, code: int = 1, help: str | None = None) -> NoReturn:
    print(f"Error:   \u00d7 {msg}", file=sys.stderr)
    if help:
        print(f"  help: {help}", file=sys.stderr)
    raise SystemExit(code)


# --------------------------------------------------------------------------- manifest

class Workspace:
    """The subset of a pixi manifest (pixi.toml, or pyproject.toml's [tool.pixi]) the stand-in reads."""

    def __init__(self, manifest_path: Path) -> None:
        self.manifest_path = manifest_path.resolve()
        self.root = self.manifest_path.parent
        data: dict[str, Any] = tomllib.loads(self.manifest_path.read_text())
        ws: dict[str, Any]
        if self.manifest_path.name == "pyproject.toml":
            project = data.get("project", {})
            data = data.get("tool", {}).get("pixi", {})
            ws = dict(data.get("workspace", data.get("project", {})))
            ws.setdefault("name", project.get("name"))
            ws.setdefault("version", project.get("version"))
        else:
            found = data.get("workspace", data.get("project"))
            if not isinstance(found, dict):
                fail(f"{self.manifest_path}: no [workspace] table")
            ws = found
        self.data = data
        self.name: str = ws.get("name") or self.root.name
        self.version: str | None = ws.get("version")
        self.channels: list[str] = [c if isinstance(c, str) else c["channel"]
                                    for c in ws.get("channels", [])]
        self.platforms: list[str] = list(ws.get("platforms", []))
        self.features: dict[str, dict[str, Any]] = {"default": data}
        self.features.update(data.get("feature", {}))
        envs: dict[str, Any] = {"default": {"features": []}}
        for name, spec in data.get("environments", {}).items():
            envs[name] = {"features": spec} if isinstance(spec, list) else dict(spec)
        self.environments = envs

    def env_features(self, env: str) -> list[str]:
        spec = self.environments[env]
        feats = list(spec.get("features", []))
        if not spec.get("no-default-feature", False):
            feats.append("default")
        return feats

    def dependencies(self, env: str, platform: str = PLATFORM) -> dict[str, str]:
        """Conda dependencies of ``env`` on ``platform``: name -> match spec string."""
        targets = ["unix", "linux", platform] if platform.startswith("linux") else [platform]
        deps: dict[str, str] = {}
        for f in self.env_features(env):
            feat = self.features.get(f, {})
            tables = [feat.get("dependencies", {})]
            tables += [feat.get("target", {}).get(t, {}).get("dependencies", {}) for t in targets]
            for table in tables:
                for name, spec in table.items():
                    deps[name] = spec_string(name, spec)
        return deps

    def system_requirements(self, env: str) -> dict[str, str]:
        req: dict[str, str] = {}
        for f in self.env_features(env):
            for k, v in self.features.get(f, {}).get("system-requirements", {}).items():
                req[k] = v if isinstance(v, str) else str(v.get("version", v))
        return req

    def env_channels(self, env: str) -> list[str]:
        chans = []
        for f in self.env_features(env):
            for c in self.features.get(f, {}).get("channels", []) if f != "default" else []:
                chans.append(c if isinstance(c, str) else c["channel"])
        return chans + [c for c in self.channels if c not in chans]

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


def find_manifest(explicit: str | None) -> Path | None:
    if explicit:
        p = Path(explicit)
        if p.is_dir():
            p = p / "pixi.toml"
        return p if p.exists() else None
    d = Path.cwd()
    for cand in [d, *d.parents]:
        if (cand / "pixi.toml").exists():
            return cand / "pixi.toml"
        pp = cand / "pyproject.toml"
        if pp.exists() and "[tool.pixi" in pp.read_text():
            return pp
    env = os.environ.get("PIXI_PROJECT_MANIFEST")
    if env and Path(env).exists():
        return Path(env)
    return None


def load_workspace(explicit: str | None) -> Workspace:
    m = find_manifest(explicit)
    if m is None:
        fail(f"could not find pixi.toml or pyproject.toml at directory {Path.cwd()}",
             help="this is the pixi stand-in; it needs a pixi workspace in the current directory")
    return Workspace(m)


def pick_env(ws: Workspace, env: str | None) -> str:
    name = env or os.environ.get("PIXI_ENVIRONMENT_NAME") or "default"
    if name not in ws.environments:
        fail(f"unknown environment '{name}' in {ws.manifest_path}",
             help=f"available environments: {', '.join(sorted(ws.environments))}")
    return name


# --------------------------------------------------------------------------- lock file

def locked_records(ws: Workspace, env: str, frozen: bool) -> list[Any]:
    from rattler import LockFile, MatchSpec

    lock_path = ws.root / "pixi.lock"
    if not lock_path.exists():
        if frozen:
            fail("no lockfile available, can't do a frozen installation.")
        fail("lock-file not up-to-date with the workspace",
             help=f"{lock_path} does not exist; the pixi stand-in cannot create it (run `pixi lock`)")
    lock = LockFile.from_path(lock_path)
    lenv = lock.environment(env)
    if lenv is None:
        fail("lock-file not up-to-date with the workspace",
             help=f"the lock-file does not contain an environment named '{env}'")
    plat = next((p for p in lenv.platforms() if p.name == PLATFORM), None)
    if plat is None:
        fail("lock-file not up-to-date with the workspace",
             help=f"environment '{env}' is not locked for platform '{PLATFORM}'")
    records = lenv.conda_repodata_records_for_platform(plat) or []
    if lenv.pypi_packages_for_platform(plat):
        fail(f"environment '{env}' has PyPI packages: the pixi stand-in only installs conda packages")
    if not frozen:
        # --locked: like pixi, refuse when the manifest asks for something the lock lacks.
        by_name = {r.name.normalized: r for r in records}
        for name, spec in ws.dependencies(env).items():
            r = by_name.get(name.lower())
            if r is None or not MatchSpec(spec).matches(r):
                fail("lock-file not up-to-date with the workspace",
                     help=f"environment '{env}' ({PLATFORM}): the manifest requires '{spec}' "
                          f"but the lock has {'nothing by that name' if r is None else f'{r.name.normalized} {r.version} {r.build}'}")
    return records


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
        fail(f"Cannot install environment '{env}': the virtual package '__cuda' is missing. "
             f"The environment requires cuda >={cuda} (system-requirements) but no CUDA driver "
             "was detected",
             help=f"set CONDA_OVERRIDE_CUDA={cuda} to install it on a machine without a GPU driver")
    if Version(have[0]) < Version(cuda):
        fail(f"Cannot install environment '{env}': the virtual package '__cuda' has version "
             f"{have[0]}, but the environment requires cuda >={cuda} (system-requirements)")


# --------------------------------------------------------------------------- commands

def cache_dir() -> Path:
    base = os.environ.get("PIXI_CACHE_DIR") or os.environ.get("RATTLER_CACHE_DIR")
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rattler" / "cache"
    return root / "pkgs"


def write_pixi_dir(ws: Workspace) -> None:
    d = ws.root / ".pixi"
    d.mkdir(exist_ok=True)
    (d / ".gitignore").write_text("*\n")
    (d / ".condapackageignore").write_text(".pixi\n")


def cmd_install(a: argparse.Namespace) -> int:
    from rattler import install

    if not (a.locked or a.frozen):
        fail("the pixi stand-in only installs from an up-to-date lock file",
             code=2, help="pass --locked or --frozen")
    ws = load_workspace(a.manifest_path)
    env = pick_env(ws, a.environment or "default")
    records = locked_records(ws, env, a.frozen)
    check_system_requirements(ws, env)
    write_pixi_dir(ws)
    prefix = ws.prefix(env)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    # (requested_specs is left out: py-rattler 0.28 rejects its own MatchSpec objects there)
    asyncio.run(install(records, target_prefix=prefix, cache_dir=cache_dir(), show_progress=False))
    lock_hash = hashlib.sha256((ws.root / "pixi.lock").read_bytes()).hexdigest()
    (prefix / "conda-meta" / "pixi").write_text(json.dumps({
        "manifest_path": str(ws.manifest_path), "environment_name": env,
        "pixi_version": STANDIN_VERSION, "environment_lock_file_hash": lock_hash}, indent=2) + "\n")
    print(f"\u2714 The {env} environment has been installed ({len(records)} packages, "
          f"pixi stand-in).", file=sys.stderr)
    return 0


def cmd_shell_hook(a: argparse.Namespace) -> int:
    from rattler.shell import ActivationVariables, Shell, activate

    if a.shell not in (None, "bash", "zsh", "sh"):
        fail(f"the pixi stand-in's shell-hook supports bash only, not '{a.shell}'", code=2)
    ws = load_workspace(a.manifest_path)
    env = pick_env(ws, a.environment or "default")
    prefix = ws.prefix(env)
    if not (prefix / "conda-meta").is_dir():
        fail(f"environment '{env}' is not installed at {prefix}",
             help=f"run `pixi install --locked -e {env}` first (the stand-in does not install on demand)")
    exports = {
        "PIXI_PROJECT_ROOT": str(ws.root),
        "PIXI_PROJECT_NAME": ws.name,
        "PIXI_PROJECT_MANIFEST": str(ws.manifest_path),
        "PIXI_PROJECT_VERSION": ws.version or "NO_VERSION_SPECIFIED",
        "PIXI_ENVIRONMENT_NAME": env,
        "PIXI_ENVIRONMENT_PLATFORMS": ",".join(ws.platforms),
        "PIXI_PROMPT": f"({ws.name})" if env == "default" else f"({ws.name}:{env})",
        "CONDA_DEFAULT_ENV": ws.name if env == "default" else f"{ws.name}:{env}",
    }
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    result = activate(prefix, ActivationVariables(None, path), Shell.bash)
    out = [f'export {k}="{v}"' for k, v in exports.items()]
    sys.stdout.write("\n".join(out) + "\n" + result.script.rstrip("\n") + "\n")
    return 0


def installed_records(prefix: Path) -> list[dict[str, Any]]:
    recs = []
    for p in sorted((prefix / "conda-meta").glob("*.json")):
        recs.append(json.loads(p.read_text()))
    return recs


def cmd_list(a: argparse.Namespace) -> int:
    ws = load_workspace(a.manifest_path)
    env = pick_env(ws, a.environment)
    prefix = ws.prefix(env)
    if (prefix / "conda-meta").is_dir():
        rows = [(r["name"], r["version"], r["build"], int(r.get("size") or 0),
                 r.get("channel") or "") for r in installed_records(prefix)]
    else:
        print(f"(environment '{env}' is not installed: listing the lock file)", file=sys.stderr)
        rows = [(r.name.normalized, str(r.version), str(r.build), int(r.size or 0), r.channel or "")
                for r in locked_records(ws, env, frozen=True)]
    if not rows:
        print(f"No packages found in '{env}' environment for '{PLATFORM}' platform.")
        return 0
    explicit = {n.lower() for n in ws.dependencies(env)}
    rows.sort()
    head = ("Package", "Version", "Build", "Size", "Kind", "Source")
    table = [(("*" if n in explicit else "") + n, v, b, f"{s / 1e6:.1f} MiB" if s else "", "conda",
              c.rstrip("/")) for n, v, b, s, c in rows]
    widths = [max(len(str(r[i])) for r in [head, *table]) for i in range(len(head))]
    for r in [head, *table]:
        print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip())
    return 0


def cmd_info(a: argparse.Namespace) -> int:
    vps = virtual_packages()
    print(f"pixi {STANDIN_VERSION} (py-rattler {rattler_version()}): a STAND-IN for the real pixi, "
          "built on py-rattler")
    print()
    print("System")
    print("------------")
    print(f"       Pixi version: {STANDIN_VERSION}")
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
        print(f"   Target platforms: {', '.join(ws.platforms)}")
        prefix = ws.prefix(env)
        state = "" if (prefix / "conda-meta").is_dir() else " (not installed)"
        print(f"    Prefix location: {prefix}{state}")
    return 0


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # pixi-like message, exit 2
        fail(f"{message} (pixi stand-in; supported: install, shell-hook, info, list, --version)",
             code=2)


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
        fail(f"'{argv[0]}' is not implemented by the pixi stand-in",
             code=2, help="it implements only: install --locked|--frozen, shell-hook, info, list, --version")
    a = ap.parse_args(argv)
    if a.version:
        print(f"pixi {STANDIN_VERSION} (py-rattler {rattler_version()})")
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

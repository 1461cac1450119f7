"""How the pixi stand-in (tests/lab/pixi_standin.py) reads the lock against the manifest.

The `--locked` check (pixi's satisfiability check, the part the stand-in makes), and from pixi 0.71
rich platforms, the identity by which a lock entry (`p1`, ...) maps to a manifest platform, and the
choice of the platform an install targets on this host: each from pixi's source, cited where it is
used. A module of its own so that the stand-in stays one readable file; it is shipped
beside the stand-in in the lab's pixi image (base_images.sh). Nothing here exits: a refusal is a
`Refusal`, which the stand-in reports as pixi does. `ws` is the stand-in's `Workspace`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The conda subdir of the machine it runs on (linux-aarch64 in the lab's arm64 image), as in
# pixi_standin.py.
PLATFORM = {"x86_64": "linux-64", "aarch64": "linux-aarch64"}.get(
    os.uname().machine, f"linux-{os.uname().machine}"
)
DEFAULT_CHANNEL_ALIAS = "https://conda.anaconda.org/"


class Refusal(Exception):
    """What pixi would stop with: its message, the cause (`╰─▶`) and the help."""

    def __init__(self, message: str, cause: str | None = None, help: str | None = None) -> None:
        super().__init__(message)
        self.message, self.cause, self.help = message, cause, help


# Defaults pixi declares for a bare subdir (docs/workspace/system_requirements.md at v0.76.1,
# "Default declared virtual packages"; the lock lists them with each platform).
SUBDIR_DEFAULTS = {
    "linux-64": {"__unix": "0=0", "__linux": "4.18", "__glibc": "2.28", "__archspec": "0=x86_64"},
    "linux-aarch64": {"__unix": "0=0", "__linux": "4.18", "__glibc": "2.28", "__archspec": "0=aarch64"},
}
# A rich platform's friendly keys (crates/pixi_manifest/src/toml/platform.rs at v0.76.1), in the
# order pixi derives a name from them, and `[system-requirements]` keys, as virtual packages.
FRIENDLY = (
    ("cuda", "__cuda"),
    ("archspec", "__archspec"),
    ("glibc", "__glibc"),
    ("linux", "__linux"),
    ("macos", "__osx"),
    ("windows", "__win"),
)
SYSREQ_VIRTUAL = {
    "cuda": "__cuda",
    "libc": "__glibc",
    "linux": "__linux",
    "macos": "__osx",
    "archspec": "__archspec",
}


class Plat:
    """One `[workspace].platforms` entry: its name, subdir and the virtual packages it declares
    beyond the subdir's defaults (a bare string declares none)."""

    def __init__(self, name: str, subdir: str, declared: dict[str, str] | None = None) -> None:
        self.name, self.subdir, self.declared = name, subdir, dict(declared or {})

    def __repr__(self) -> str:
        return f"Plat({self.name!r}, {self.subdir!r}, {self.declared!r})"


def parse_platform(value: Any, rich: bool) -> Plat:
    """A bare subdir, or (`rich`: pixi 0.71+) a rich platform table; pixi 0.70 and older read
    strings only and stop at a table where toml_span wanted a string."""
    if isinstance(value, str):
        return Plat(value, value)
    if not isinstance(value, dict) or not rich:
        raise Refusal(
            f"expected a string, found {'table' if isinstance(value, dict) else type(value).__name__}"
        )
    subdir = str(value.get("platform") or value.get("name"))
    declared: dict[str, str] = {}
    for key, virtual in FRIENDLY:
        raw = value.get(key, value.get("osx") if key == "macos" else None)
        if isinstance(raw, dict):  # cuda = { driver = "12.4", arch = "8.6" }
            if "arch" in raw:
                declared["__cuda_arch"] = str(raw["arch"])
            raw = raw.get("driver")
        if raw is not None:
            declared[virtual] = str(raw)
    declared.update({str(k): str(v) for k, v in value.items() if str(k).startswith("__")})
    name = value.get("name")
    if name is None:  # pixi's derived name: the subdir, then key-value per friendly key
        parts = [subdir] + [
            f"{k}-{re.sub(r'[^A-Za-z0-9]+', '-', declared[v])}" for k, v in FRIENDLY if v in declared
        ]
        name = "-".join(parts)
    return Plat(str(name), subdir, declared)


def customised_virtual_packages(locked: Any) -> dict[str, str]:
    """A locked platform's virtual packages beyond its subdir's defaults (`__cuda=12` ->
    {"__cuda": "12"}): with the subdir, its identity, by which pixi 0.71+ maps a lock entry to a
    manifest platform whatever the lock keys it by (`align_platform_names`)."""
    defaults = SUBDIR_DEFAULTS.get(str(locked.subdir), {})
    out: dict[str, str] = {}
    for package in locked.virtual_packages or []:
        name, _, rest = str(package).partition("=")
        if defaults.get(name) != rest:
            out[name] = rest if name == "__archspec" else rest.split("=")[0]
    return out


def locked_platforms(ws: Any, env: str, lenv: Any) -> dict[str, Any]:
    """Each platform of `env` in the manifest -> its entry in the lock. pixi <= 0.70 looks entries
    up by name; 0.71+ by identity (subdir and declared virtual packages), so `p1` is found. In a
    lock whose entries list no virtual packages at all (v6, or v7 as pixi <= 0.70 wrote it) an
    entry is the platform of the subdir it is named after."""
    locked = list(lenv.platforms())
    names = ws.env_platforms(env)
    if not ws.emulated.named_layout:
        by_name = {str(p.name): p for p in locked}
        return {n: by_name[n] for n in names if n in by_name}
    legacy_lock = not any(lp.virtual_packages for lp in locked)
    found: dict[str, Any] = {}
    for name in names:
        entry = ws.entry(name)
        want = ws.declared_virtual_packages(env, name)
        for lp in locked:
            if str(lp.subdir) != entry.subdir:
                continue
            legacy = legacy_lock and str(lp.name) == entry.subdir
            if legacy or customised_virtual_packages(lp) == want:
                found[name] = lp
                break
    return found


def _unmet(declared: dict[str, str], host: dict[str, tuple[str, str]]) -> list[tuple[str, str]]:
    """The declared virtual packages the host lacks or has too old (pixi's
    `satisfied_by_system`; `__archspec` is not compared by the stand-in)."""
    from rattler import Version

    out = []
    for name, version in sorted(declared.items()):
        if name == "__archspec":
            continue
        have = host.get(name)
        if have is None or Version(have[0]) < Version(version or "0"):
            out.append((name, version or "0"))
    return out


def _requirements(unmet: list[tuple[str, str]]) -> str:
    return ", ".join(f"{n} (any version)" if v == "0" else f"{n} >= {v}" for n, v in unmet)


def best_declared_platform(ws: Any, env: str, host: dict[str, tuple[str, str]]) -> Plat | None:
    """pixi 0.71+'s `best_declared_platform`: the first workspace platform (in the manifest's
    order) of this host's subdir whose declared virtual packages the host has, that the
    environment declares; the host's virtual packages are rattler's detection, with the
    CONDA_OVERRIDE_* variables honoured (an empty one removes the package)."""
    names = ws.env_platforms(env)
    for entry in ws.platform_entries:
        if entry.subdir == PLATFORM and entry.name in names:
            if not _unmet(ws.declared_virtual_packages(env, entry.name), host):
                return entry
    return None


CONDA_OVERRIDES = {
    "__cuda": "CONDA_OVERRIDE_CUDA",
    "__glibc": "CONDA_OVERRIDE_GLIBC",
    "__linux": "CONDA_OVERRIDE_LINUX",
    "__osx": "CONDA_OVERRIDE_OSX",
}


def install_platform(
    ws: Any, env: str, lenv: Any, host: dict[str, tuple[str, str]], warn: Callable[[str], None]
) -> Plat:
    """The platform `pixi install` targets (pixi 0.71+, lock_file/update.rs `install_platform`):
    the best declared one; else the first declared linux-64 one whose lock-resolved minimum (the
    virtual packages the locked packages `depends` on) the host meets, with pixi's warning; else
    pixi's refusal (update.rs `update_prefix` wrapping `UnsupportedPlatformError`)."""
    best = best_declared_platform(ws, env, host)
    if best is not None:
        return best
    names = [n for n in ws.env_platforms(env) if ws.entry(n).subdir == PLATFORM]
    minimum: dict[str, str] = {}
    for locked in locked_platforms(ws, env, lenv).values():
        for record in lenv.conda_repodata_records_for_platform(locked) or []:
            for dep in record.depends:
                m = re.match(r"^(__[a-z0-9_]+)\s*(?:>=?\s*([0-9][0-9.]*))?", str(dep))
                if m:
                    from rattler import Version

                    version = m.group(2) or "0"
                    if m.group(1) not in minimum or Version(version) > Version(minimum[m.group(1)]):
                        minimum[m.group(1)] = version
    unmet = _unmet(minimum, host)
    if names and not unmet:
        warn(
            f"The current machine is not one of the platforms declared for environment '{env}', "
            "but the resolved dependencies are compatible with it, continuing."
        )
        return ws.entry(names[0])
    lead = (
        f"The workspace does not support '{PLATFORM}'"
        if env == "default"
        else f"the environment '{env}' does not support '{PLATFORM}'"
    )
    lines = [f"{lead} on this machine.", "", "Declared platforms and why none runs here:"]
    for name in ws.env_platforms(env):
        entry = ws.entry(name)
        label = name if name == entry.subdir else f"{name} (subdir {entry.subdir})"
        if entry.subdir != PLATFORM:
            lines.append(f"  - {label}: requires subdir '{entry.subdir}', which this machine can't run")
        else:
            missing = _unmet(ws.declared_virtual_packages(env, name), host)
            lines.append(f"  - {label}: missing virtual packages: {_requirements(missing)}")
    if unmet:
        lines += ["", f"Unsatisfied requirements: {_requirements(unmet)}"]
    if env == "default":
        lines += ["", f"Add it with 'pixi workspace platform add {PLATFORM}'."]
    hints = [f"{CONDA_OVERRIDES[n]}={v}" for n, v in unmet if n in CONDA_OVERRIDES]
    base = (
        "Mock the missing virtual packages via the environment, e.g.:\n  " + "\n  ".join(hints)
        if hints
        else f"supported platforms are {', '.join(ws.env_platforms(env))}"
    )
    raise Refusal(
        f"Cannot install environment '{env}'",
        cause="\n      ".join(lines),
        help=f"{base}\nOr install for a target this machine cannot run with `pixi install --platform <platform>`.",
    )


def channel_url(channel: str) -> str:
    """A channel as pixi compares it (NamedChannelOrUrl::into_base_url): a URL with a trailing
    slash; a bare name under the default channel alias; a path as a file:// URL."""
    if "://" in channel:
        return channel.rstrip("/") + "/"
    if channel.startswith(("/", "./", "../", "~")):
        return Path(channel).expanduser().resolve().as_uri().rstrip("/") + "/"
    return DEFAULT_CHANNEL_ALIAS + channel.strip("/") + "/"


def pypi_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def out_of_date_reasons(ws: Any, env: str, lenv: Any) -> list[str]:
    """Why the lock does not satisfy ``env`` of the manifest, as pixi's --locked check finds it
    (v0.70.2 crates/pixi_core/src/lock_file/satisfiability/environment.rs and mod.rs): channels
    (order matters; extended counts too), platforms (extra), then per platform the
    conda and PyPI dependencies. Empty when the lock is up to date."""
    from rattler import MatchSpec

    if lenv is None:
        return [f"environment '{env}' is out of date because it does not exist in the lock file."]
    want = [channel_url(c) for c in ws.env_channels(env)]
    have = [channel_url(str(c)) for c in lenv.channels()]
    if want[: len(have)] == have and len(want) > len(have):
        return [
            f"environment '{env}' is out of date because channels were extended with "
            "additional lower-priority channels"
        ]
    if want != have:
        return [
            f"environment '{env}' is out of date because the channels in the lock file do "
            f"not match the environments channels (manifest: {', '.join(want) or '-'}; "
            f"lock: {', '.join(have) or '-'})"
        ]
    plats = locked_platforms(ws, env, lenv)
    used = {str(p.name) for p in plats.values()}
    extra = sorted(str(p.name) for p in lenv.platforms() if str(p.name) not in used)
    if extra:
        return [
            f"environment '{env}' is out of date because platform(s) '{', '.join(extra)}' "
            "present in the lock file but not in the environment"
        ]
    reasons = []
    for platform in ws.env_platforms(env):
        plat = plats.get(platform)  # pixi (platform.rs) reads a platform the lock lacks as empty
        subdir = ws.entry(platform).subdir
        records = (lenv.conda_repodata_records_for_platform(plat) if plat else None) or []
        by_name = {r.name.normalized: r for r in records}
        prefix = (
            f"environment '{env}' does not satisfy the requirements of the project for platform '{platform}'"
        )
        for name, spec in ws.dependencies(env, subdir).items():
            r = by_name.get(name.lower())
            if r is None or not MatchSpec(spec).matches(r):
                reasons.append(
                    f"{prefix}: the requirement '{spec}' could not be satisfied (required by '{env}')"
                )
        pypi_deps = ws.pypi_dependencies(env, subdir)
        locked_pypi = {
            pypi_name(p.name): p for p in ((lenv.pypi_packages_for_platform(plat) if plat else None) or [])
        }
        if pypi_deps and "python" not in by_name:
            reasons.append(
                f"{prefix}: there are PyPi dependencies but a python interpreter is "
                "missing from the lock file"
            )
        for name, spec in pypi_deps.items():
            p = locked_pypi.get(name)
            if p is None:
                reasons.append(
                    f"{prefix}: the requirement '{name}' could not be satisfied (required by '{env}')"
                )
                continue
            if isinstance(spec, dict) and "path" in spec:
                target = (ws.root / spec["path"]).resolve()
                if not is_path(p.location) or (ws.root / p.location).resolve() != target:
                    reasons.append(
                        f"{prefix}: the locked package '{name}' is not the path "
                        f"'{spec['path']}' (locked: {p.location})"
                    )
            elif isinstance(spec, str) and spec.strip() not in ("", "*"):
                if not p.satisfies(f"{name}{spec.strip()}"):
                    reasons.append(
                        f"{prefix}: the requirement '{name}{spec.strip()}' could not "
                        f"be satisfied (required by '{env}'; locked {p.version})"
                    )
            elif isinstance(spec, dict) and spec.get("version", "*") not in ("", "*"):
                if not p.satisfies(f"{name}{spec['version']}"):
                    reasons.append(
                        f"{prefix}: the requirement '{name}{spec['version']}' could "
                        f"not be satisfied (required by '{env}'; locked {p.version})"
                    )
    return reasons


def is_path(location: str) -> bool:
    return "://" not in location or location.startswith("file://")


def activation(ws: Any, env: str, targets: list[str]) -> tuple[list[str], dict[str, str]]:
    """``env``'s activation scripts and variables as pixi combines them (environment.rs and
    feature.rs, v0.77.0): features in the environment's order, from each the most specific
    target (``targets``: least specific first) with scripts; a variable keeps its first value."""
    scripts: list[str] = []
    variables: dict[str, str] = {}
    for f in ws.env_features(env):
        feat = ws.features.get(f, {})
        tables = [feat.get("target", {}).get(t, {}) for t in reversed(targets)]
        tables = [t.get("activation") for t in [*tables, feat]]
        tables = [t for t in tables if isinstance(t, dict)]
        found = next((t["scripts"] for t in tables if isinstance(t.get("scripts"), list)), [])
        scripts += [str(s) for s in found]
        for table in tables:
            for k, v in (table.get("env") or {}).items():
                variables.setdefault(str(k), str(v))
    return scripts, variables

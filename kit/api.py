"""The kit's facade: what the CLI, the widgets and the notebooks call, taking a folder and options.

Each function is one job from start to end (load, resolve, render, check, write, build, probe);
front ends only collect options and show results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.check import Finding, check_dir, check_files
from kit.options import RenderOptions, resolve
from kit.render import RenderedFile, render
from kit.repo import Location, locate
from kit.workspace import LINUX, Workspace, load_workspace
from kit.write import Change, apply_changes, plan_changes


@dataclass(frozen=True)
class EnvSummary:
    name: str
    features: tuple[str, ...]
    cuda: str | None
    locked_platforms: tuple[str, ...]
    locked_for_linux: bool
    packages: dict[str, str]      # image-naming packages on linux-64: name -> version[=build]


@dataclass(frozen=True)
class Summary:
    root: str
    manifest: str
    name: str
    channels: tuple[str, ...]
    platforms: tuple[str, ...]
    lock: str | None
    lock_version: int | None
    environments: tuple[EnvSummary, ...]
    tasks: tuple[str, ...]
    warnings: tuple[str, ...]


def summarize(ws: Workspace) -> Summary:
    envs = []
    for env in ws.environments.values():
        locked = ws.locked(env.name)
        packages = {name: f"{p.version}={p.build}" for name, p in (locked.key_packages if locked else {}).items()}
        envs.append(EnvSummary(env.name, env.features, env.cuda, locked.platforms if locked else (),
                               ws.is_locked_for_linux(env.name), packages))
    return Summary(str(ws.root), ws.manifest_path.name, ws.name, ws.channels, ws.platforms,
                   str(ws.lock.path) if ws.lock else None, ws.lock.version if ws.lock else None,
                   tuple(envs), ws.tasks, ws.warnings)


def inspect(directory: Path | str) -> Summary:
    return summarize(load_workspace(directory))


def format_summary(s: Summary) -> str:
    lines = [f"workspace {s.name} ({s.root}/{s.manifest})",
             f"  channels:  {', '.join(s.channels) or '-'}",
             f"  platforms: {', '.join(s.platforms) or '-'}",
             f"  lock:      {f'version {s.lock_version}' if s.lock else 'none'}",
             "  environments:"]
    for e in s.environments:
        lock = "locked for linux-64" if e.locked_for_linux else ("locked: " + ", ".join(e.locked_platforms) if e.locked_platforms else "not locked")
        cuda = f"CUDA {e.cuda}" if e.cuda else "CPU"
        lines.append(f"    {e.name:<12} {cuda:<10} {lock:<22} features: {', '.join(e.features)}")
        for name, version in e.packages.items():
            lines.append(f"      {name} {version}")
    lines.extend(f"warning: {w}" for w in s.warnings)
    return "\n".join(lines)


@dataclass(frozen=True)
class Prepared:
    """A workspace, where it sits, and the options resolved against it."""

    workspace: Workspace
    location: Location
    options: RenderOptions

    def render(self, only: tuple[str, ...] = ()) -> dict[str, RenderedFile]:
        return render(self.workspace, self.options, only)


def prepare(directory: Path | str, out: Path | None = None, **options: Any) -> Prepared:
    """Load the workspace, locate it in its repository, and validate the options."""
    ws = load_workspace(directory)
    location = locate(ws.root, out, options.pop("subdir", None))
    opts = RenderOptions(subdir=location.subdir, **options)
    resolve(ws, opts)
    return Prepared(ws, location, opts)


@dataclass(frozen=True)
class GenerateResult:
    root: Path
    changes: list[Change]
    warnings: tuple[str, ...] = field(default=())


def generate(directory: Path | str, *, out: Path | None = None, only: tuple[str, ...] = (),
             dry_run: bool = False, force: bool = False, **options: Any) -> GenerateResult:
    """Render and write (unless `dry_run`) the deployment files; refuse to clobber hand edits."""
    prepared = prepare(directory, out, **options)
    files = prepared.render(only)
    changes = plan_changes(files, prepared.location.root, force)
    if not dry_run:
        apply_changes(changes, prepared.location.root)
    return GenerateResult(prepared.location.root, changes, prepared.workspace.warnings)


def check(directory: Path | str, subdir: str | None = None) -> list[Finding]:
    """Check the deployment files on disk for the workspace in `directory`."""
    ws = load_workspace(directory)
    location = locate(ws.root, None, subdir)
    return check_dir(ws, location.root, location.prefix)


def check_rendered(prepared: Prepared) -> list[Finding]:
    """Check freshly rendered files before they are written (the widgets' Check button)."""
    files = {p: f.text for p, f in prepared.render().items()}
    return check_files(prepared.workspace, files, prepared.location.prefix)


ProgressCallback = Callable[[Any], None]

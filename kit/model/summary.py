"""What `kit inspect` shows of a workspace: a plain summary of the model (environments, CUDA,
locked platforms, the packages an image is named after) and its text form, kept beside the model
it summarises so that the facade only forwards."""

from __future__ import annotations

from dataclasses import dataclass

from kit.model.workspace import Workspace


@dataclass(frozen=True)
class EnvSummary:
    name: str
    features: tuple[str, ...]
    cuda: str | None
    locked_platforms: tuple[str, ...]
    locked_for_linux: bool
    packages: dict[str, str]  # image-naming packages on linux-64: name -> version[=build]


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
    lock_layout: str | None = None
    requires_pixi: str | None = None


def summarize(ws: Workspace) -> Summary:
    envs = []
    for env in ws.environments.values():
        locked = ws.locked(env.name)
        packages = {
            name: f"{p.version}={p.build}" for name, p in (locked.key_packages if locked else {}).items()
        }
        envs.append(
            EnvSummary(
                env.name,
                env.features,
                env.cuda,
                locked.platforms if locked else (),
                ws.is_locked_for_linux(env.name),
                packages,
            )
        )
    return Summary(
        str(ws.root),
        ws.manifest_path.name,
        ws.name,
        ws.channels,
        ws.platforms,
        str(ws.lock.path) if ws.lock else None,
        ws.lock.version if ws.lock else None,
        tuple(envs),
        ws.tasks,
        ws.warnings,
        ws.lock.layout if ws.lock else None,
        ws.requires_pixi,
    )


def format_summary(s: Summary) -> str:
    lines = [
        f"workspace {s.name} ({s.root}/{s.manifest})",
        f"  channels:  {', '.join(s.channels) or '-'}",
        f"  platforms: {', '.join(s.platforms) or '-'}",
        f"  lock:      {f'version {s.lock_version}' if s.lock else 'none'}",
        "  environments:",
    ]
    for e in s.environments:
        also = [p for p in e.locked_platforms if p.startswith("linux-") and p != "linux-64"]
        lock = (
            "locked for " + ", ".join(["linux-64", *also])
            if e.locked_for_linux
            else ("locked: " + ", ".join(e.locked_platforms) if e.locked_platforms else "not locked")
        )
        cuda = f"CUDA {e.cuda}" if e.cuda else "CPU"
        lines.append(f"    {e.name:<12} {cuda:<10} {lock:<22} features: {', '.join(e.features)}")
        for name, version in e.packages.items():
            lines.append(f"      {name} {version}")
    lines.extend(f"warning: {w}" for w in s.warnings)
    return "\n".join(lines)

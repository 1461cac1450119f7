"""Rebuild a SIF after an application-only edit without installing the environment again.

Why: a SIF is one squashfs, so any edit re-packs the whole root file system; but that is all an
edit to app/ needs. Apptainer keeps no stage cache, so `apptainer build` of a def installs again
every time (fetch the pixi image, `pixi install`, copy the environment). `kit build` therefore
keeps the unpacked root of its last build, keyed by everything that root was made from except
the final stage's own host `%files` (the application code): the def's text, the build
arguments, and every host file the other stages copy in (manifest, lock, project sources).
When the key matches, it copies the final stage's host `%files` into that root again and packs it:
the least work an edit needs. When anything else changed, or the def's final stage runs commands
(`%post`, `%setup`: the lesson's does), it builds from the def as a learner would.

The def itself is untouched: `apptainer build X.sif apptainer.def` builds the same image on its
own. The kept root lives under `KIT_APPTAINER_ROOTS` (default
`$XDG_CACHE_HOME/pixi-deploy-kit/apptainer-roots`), one per SIF name, replaced by the next key.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kit.model.deffile import DefStage, parse_def

ENV_ROOTS = "KIT_APPTAINER_ROOTS"
# The final stage may only copy files for its root to be rebuilt by copying them again.
_RUNS_COMMANDS = ("post", "setup")


@dataclass(frozen=True)
class Reuse:
    """Where the unpacked root for one key lives, and the final stage's host copies."""

    root: Path
    app_files: tuple[tuple[str, str], ...]  # (source relative to the def's folder, destination)

    @property
    def ready(self) -> bool:
        return (self.root / ".singularity.d").is_dir()


def roots_dir(env: Mapping[str, str]) -> Path:
    chosen = env.get(ENV_ROOTS)
    if chosen:
        return Path(chosen)
    cache = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(cache) / "pixi-deploy-kit" / "apptainer-roots"


def plan_reuse(
    definition: Path, build_args: Mapping[str, str], name: str, env: Mapping[str, str]
) -> Reuse | None:
    """The kept root for this def and its inputs, or None where a rebuild cannot be a re-pack
    (one stage, a final stage that runs commands, no host `%files` in it, sources outside)."""
    text = definition.read_text(encoding="utf-8")
    stages = parse_def(text).stages
    if len(stages) < 2 or any(stages[-1].sections_named(s) for s in _RUNS_COMMANDS):
        return None
    app = _host_files(stages[-1])
    if not app or any(src.startswith("/") or ".." in Path(src).parts for src, _ in app):
        return None
    digest = hashlib.sha256(text.encode())
    for key, value in sorted(build_args.items()):
        digest.update(f"\0arg {key}={value}".encode())
    for stage in stages[:-1]:
        for source, _ in _host_files(stage):
            _hash_tree(digest, definition.parent, source)
    return Reuse(roots_dir(env) / f"{name}-{digest.hexdigest()[:24]}", tuple(app))


def refresh(reuse: Reuse, context: Path) -> None:
    """Copy the final stage's host `%files` into the kept root again, as `%files` would."""
    for source, dest in reuse.app_files:
        target = reuse.root / dest.lstrip("/")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif os.path.lexists(target):
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        src = context / source
        if src.is_dir():
            shutil.copytree(src, target, symlinks=True)
        else:
            shutil.copy2(src, target)


def others(reuse: Reuse, name: str) -> list[Path]:
    """Roots kept for the same SIF name under another key: replaced by this one."""
    parent = reuse.root.parent
    if not parent.is_dir():
        return []
    return [p for p in parent.glob(f"{name}-*") if p != reuse.root and len(p.name) == len(reuse.root.name)]


def _host_files(stage: DefStage) -> list[tuple[str, str]]:
    out = []
    for section in stage.sections_named("files"):
        if section.argument:
            continue
        for raw, _ in section.body:
            words = raw.split()
            if words and not words[0].startswith("#"):
                out.append((words[0].removeprefix("./"), words[-1] if len(words) > 1 else words[0]))
    return out


def _hash_tree(digest: hashlib._Hash, base: Path, source: str) -> None:
    path = base / source
    digest.update(f"\0file {source}".encode())
    if path.is_dir():
        for sub in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"\0{sub.relative_to(base)}\0".encode())
            digest.update(sub.read_bytes())
    elif path.is_file():
        digest.update(path.read_bytes())

"""Lab copies of the workspace shapes in ``tests/data/shapes/``, locked against the lab channel.

A shape folder is a repository (or a workspace): every manifest in it (``pixi.toml``, or a
``pyproject.toml`` with ``[tool.pixi]``) gets its channels pointed at the lab's local channel
and its platforms cut to linux-64 (``workspace.lab_manifest``), then a ``pixi.lock`` solved with
py-rattler beside it (``workspace._lock``, the same solve the lab workspace gets). Locking takes
well under a second per manifest, so shapes are locked at test time into the test's own folder.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

from . import pixi_standin
from .workspace import REPO, _lock, default_cache, lab_manifest

SHAPES = REPO / "tests" / "data" / "shapes"


def manifests(root: Path) -> list[Path]:
    """Every pixi manifest under ``root`` (no hidden folders), sorted."""
    found = [p for p in root.rglob("pixi.toml")]
    found += [p for p in root.rglob("pyproject.toml") if "[tool.pixi" in p.read_text()]
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts))


def lock_shape(name: str, dest: Path, *, cache: Path | None = None, git: bool = False) -> Path:
    """A copy of ``tests/data/shapes/<name>`` at ``dest`` with every manifest lab-locked;
    ``git``: make it a repository with one commit (as a user's clone is)."""
    channel = (cache or default_cache()) / "channel"
    shutil.copytree(SHAPES / name, dest)
    for manifest in manifests(dest):
        origin = f"tests/data/shapes/{name}/{manifest.relative_to(dest).as_posix()}"
        manifest.write_text(lab_manifest(manifest.read_text(), origin))
        asyncio.run(_lock(pixi_standin.Workspace(manifest), channel, manifest.parent / "pixi.lock"))
    if git:
        commit(dest)
    return dest


def commit(repo: Path, message: str = "shape") -> None:
    """``git init`` (if needed) and commit everything, with a fixed identity and no hooks."""
    env = [
        "-c",
        "user.name=kit tests",
        "-c",
        "user.email=kit@example.invalid",
        "-c",
        "commit.gpgsign=false",
        "-c",
        "init.defaultBranch=main",
    ]
    if not (repo / ".git").exists():
        subprocess.run(["git", *env, "init", "-q", str(repo)], check=True, timeout=30)
    subprocess.run(["git", *env, "-C", str(repo), "add", "-A"], check=True, timeout=30)
    subprocess.run(
        ["git", *env, "-C", str(repo), "commit", "-q", "--no-verify", "-m", message], check=True, timeout=30
    )

"""`kit build --engine apptainer` after an app/-only edit re-packs the root it kept, for real.

The optimized def's final stage only copies files, so `kit build` keeps the unpacked root of its
last build (kit.engines.apptainer_reuse) and, when only app/ changed, copies app/ in and packs it
again: no pixi image fetched, no `pixi install`. This checks that such a rebuild skips the
install, still runs `apptainer test`, and gives a SIF with the edited code and the environment
active; and that an edit to the manifest builds from the def again.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kit import api
from kit.decide.options import BuildOptions

SQUASHFS_ARGS = "-comp lz4"  # as in tests/test_engines.py: the compression is not what is checked


def _build(lab: Any, root: Path, tag: str) -> tuple[str, ...]:
    result = api.build(
        root,
        build=BuildOptions(engine="apptainer", tag=tag),
        sif_dir=root / "sif",
        style="optimized",
        environment="cpu",
        base_image=lab.base_image,
        runtime_image=lab.runtime_image,
        bootstrap="docker-daemon",
    )
    return result.log


@pytest.mark.apptainer
def test_app_only_rebuild_repacks_the_kept_root(
    lab_workspace: Any, docker_client: Any, apptainer_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPTAINER_MKSQUASHFS_ARGS", SQUASHFS_ARGS)
    lab, root = lab_workspace.settings, lab_workspace.root
    tag = f"reuse-{os.getpid()}"
    first = _build(lab, root, tag)
    assert any("Running post scriptlet" in line for line in first)
    (root / "app" / "edited.py").write_text("EDITED = 1\n")
    second = _build(lab, root, tag)
    assert not any("Running post scriptlet" in line or "Fetching" in line for line in second)
    assert any("environment active: /app/.pixi/envs/cpu" in line for line in second)  # %test ran
    sif = root / "sif" / f"{tag}.sif"
    run = subprocess.run(
        [apptainer_path, "run", str(sif), "bash", "-c", 'cat /app/src/edited.py; echo "$CONDA_PREFIX"'],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.stdout.splitlines() == ["EDITED = 1", "/app/.pixi/envs/cpu"], run.stderr
    # The manifest is an install input: editing it builds from the def again.
    (root / "pixi.toml").write_text((root / "pixi.toml").read_text() + "\n# edited\n")
    third = _build(lab, root, tag)
    assert any("Running post scriptlet" in line for line in third)

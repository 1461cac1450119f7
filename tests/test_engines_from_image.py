"""`--apptainer-from docker-image` with the real engines: the SIF is made from the Docker image.

The Apptainer workflow of that option installs nothing: its def starts from the Docker image
built from the same commit. In the lab the image comes from this machine's Docker
(`--bootstrap docker-daemon`; the workflow names the pushed image by digest instead). Checked as
a user does it: `kit build` with each engine, then a plain `apptainer build` of the generated def
with no arguments (its IMAGE default is the image `kit build --engine docker` tagged).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kit import api
from kit.model.deffile import parse_def

SQUASHFS_ARGS = "-comp lz4"  # as in tests/test_engines.py: the compression is not what is checked
ACTIVE_ENV = 'echo "$CONDA_PREFIX"; command -v python'


def kit(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kit.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=env,
    )


@pytest.mark.docker
@pytest.mark.apptainer
def test_sif_from_the_docker_image_builds_and_runs(
    lab_workspace: Any, docker_client: Any, apptainer_path: str
) -> None:
    lab, root = lab_workspace.settings, lab_workspace.root
    tag = f"from-image-{os.getpid()}"
    options = [
        *("--env", "cpu", "--style", "optimized"),
        *("--base-image", lab.base_image, "--runtime-image", lab.runtime_image),
        *("--apptainer-from", "docker-image", "--bootstrap", "docker-daemon", "--tags", tag),
    ]
    image = f"{api.prepare(root).workspace.name}:{tag}"
    env = dict(os.environ, APPTAINER_MKSQUASHFS_ARGS=SQUASHFS_ARGS)
    try:
        docker = kit("build", root, "--engine", "docker", *options, "--tag", tag)
        assert docker.returncode == 0, docker.stderr[-2000:]
        sif = kit("build", root, "--engine", "apptainer", *options, "--tag", tag, env=env)
        assert sif.returncode == 0, sif.stderr[-2000:]
        # The def installs nothing: one stage, no %post, started from the image Docker built.
        generated = kit("generate", root, *options, "--only", "apptainer")
        assert generated.returncode == 0, generated.stderr
        stages = parse_def((root / "apptainer.def").read_text()).stages
        assert [(s.header["bootstrap"], s.arguments["IMAGE"], s.sections_named("post")) for s in stages] == [
            ("docker-daemon", image, [])
        ]
        plain = subprocess.run(
            [apptainer_path, "build", "plain.sif", "apptainer.def"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert plain.returncode == 0, plain.stderr[-2000:]
        for built in (root / f"{tag}.sif", root / "plain.sif"):
            run = subprocess.run(
                [apptainer_path, "run", str(built), "bash", "-c", ACTIVE_ENV],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert run.stdout.splitlines() == ["/app/.pixi/envs/cpu", "/app/.pixi/envs/cpu/bin/python"], (
                run.stderr
            )
    finally:
        from docker.errors import ImageNotFound

        try:
            docker_client.images.remove(image)
        except ImageNotFound:
            pass

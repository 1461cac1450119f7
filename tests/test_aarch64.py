"""linux-aarch64 (issue 17) in the offline lab, under emulation: the kit's files build arm64 images
and SIFs, a manifest list carries both architectures, and the GPU probe runs on arm64.

Built on tests/lab/aarch64.sh (qemu-aarch64 through binfmt_misc, arm64 base images, a loopback
registry holding the base images as manifest lists; tests/lab/aarch64_lab.py names them) and on
the lab's small workspace locked for linux-64 and linux-aarch64 (`default`: python and pytorch,
the lab's stand-in torch on arm64; `bare`: python). Emulation is 9-25x slower than native, so the
work here is kept small: the arm64 builds install python and the stand-in torch only.

Three kinds of test:
- what a user types with the kit: `kit generate|build --platform linux/arm64` in both styles and
  both engines, then `kit probe`, which reports the architecture;
- plain `docker build --platform linux/arm64` and `apptainer build --arch arm64` on the files
  `kit generate` wrote, as a learner runs them;
- one image for two architectures: each built from the same generated Dockerfile, pushed to a
  registry of the test's own, joined in a manifest list, and each run from the list.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import kit_cli, need, run_command
from servers import free_port, stop_group, wait_until_answers

from kit.engines.gpu import sif_machine
from tests.lab.aarch64_lab import Aarch64Lab, aarch64_lab, list_architectures, missing
from tests.lab.workspace import aarch64_workspace

BUILD_S = 1500  # an emulated install and, for Apptainer, an emulated squashfs
SQUASHFS_ARGS = "-comp lz4"  # as the engine tests: the tests time nothing, they wait
MACHINE = "import platform; print(platform.machine())"
STANDIN_TORCH = "2.13.0+kitlab.standin"  # tests/lab/aarch64_channel.py


@pytest.fixture(scope="module")
def arm() -> Aarch64Lab:
    """The aarch64 lab, once everything it names is in place (else skip; fail under CI=true)."""
    lab = aarch64_lab()
    gaps = missing(lab)
    need(not gaps, "the aarch64 lab is not provisioned: " + "; ".join(gaps))
    return lab


@pytest.fixture
def workspace(arm: Aarch64Lab, tmp_path: Path) -> Path:
    """A fresh copy of the workspace locked for linux-64 and linux-aarch64."""
    return aarch64_workspace(tmp_path / "kit-arm")


@pytest.fixture
def tags(arm: Aarch64Lab) -> Iterator[list[str]]:
    """Image tags a test makes; removed afterwards (by tag, never by id)."""
    made: list[str] = []
    yield made
    for tag in made:
        run_command([arm.docker, "rmi", tag], timeout=120)


def docker_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_BUILDKIT": "1"}


def apptainer_env() -> dict[str, str]:
    """The lab registry speaks http: APPTAINER_NOHTTPS is `--no-https` for every apptainer
    command the kit runs (a plain command in these tests gives the flag itself)."""
    return {**os.environ, "APPTAINER_MKSQUASHFS_ARGS": SQUASHFS_ARGS, "APPTAINER_NOHTTPS": "1"}


def generate(workspace: Path, *flags: str) -> None:
    done = kit_cli("generate", str(workspace), *flags, "--force", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def registry_images(arm: Aarch64Lab) -> list[str]:
    """`kit generate` flags: the lab's base images by their registry names, lists of both
    architectures as ghcr.io/prefix-dev/pixi is, so the same files build either architecture
    (BuildKit and Apptainer's `Bootstrap: docker` pick one from the list)."""
    return ["--base-image", arm.base_image, "--runtime-image", arm.runtime_image]


def strings(value: Any) -> list[str]:
    """Every string in a JSON value (the probe's report names the architecture somewhere)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def image_architecture(arm: Aarch64Lab, image: str) -> str:
    done = run_command([arm.docker, "image", "inspect", "--format", "{{.Architecture}}", image])
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# ---------------------------------------------------------------- the lab itself


@pytest.mark.aarch64
@pytest.mark.docker
def test_standin_installs_the_platform_it_runs_on(arm: Aarch64Lab, workspace: Path) -> None:
    """The same lock installs linux-aarch64 in the arm64 pixi image, and the python it installs
    is an arm64 one (the stand-in torch with it)."""
    info = run_command(
        [arm.docker, "run", "--rm", "--network", "none", arm.local_base_image, "pixi", "info"], timeout=300
    )
    assert info.returncode == 0, info.stderr
    assert "Platform: linux-aarch64" in info.stdout
    script = (
        "pixi install --locked && "
        'eval "$(pixi shell-hook -s bash)" && '
        f"python -c '{MACHINE}' && python -c 'import torch; print(torch.__version__)'"
    )
    done = run_command(
        [
            arm.docker,
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            f"{workspace}:/w",
            "-w",
            "/w",
            arm.local_base_image,
            "bash",
            "-c",
            script,
        ],
        timeout=BUILD_S,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split()[-2:] == ["aarch64", STANDIN_TORCH]


# ---------------------------------------------------------------- what a user types: the kit


@pytest.mark.aarch64
@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("style", ["lesson", "optimized"])
def test_kit_builds_arm64_image_and_probe_sees_aarch64(
    arm: Aarch64Lab, workspace: Path, tags: list[str], style: str
) -> None:
    flags = ["--platform", "linux/arm64", "--env", "default", "--style", style, *registry_images(arm)]
    generate(workspace, *flags)
    tag = f"aarch64-{style}-{os.getpid()}"
    image = f"kit-arm:{tag}"
    tags.append(image)
    built = kit_cli("build", str(workspace), "--engine", "docker", *flags, "--tag", tag, timeout=BUILD_S)
    assert built.returncode == 0, built.stdout + built.stderr
    assert image_architecture(arm, image) == "arm64"
    probe = kit_cli("probe", image, "--engine", "docker", "--json", timeout=600)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    report = json.loads(probe.stdout)["result"]
    assert "aarch64" in strings(report)
    assert report["torch_version"] == STANDIN_TORCH and report["cuda_available"] is False
    text = kit_cli("probe", image, "--engine", "docker", timeout=600)
    assert text.returncode == 0 and "aarch64" in text.stdout, text.stdout + text.stderr


@pytest.mark.aarch64
@pytest.mark.apptainer
@pytest.mark.slow
@pytest.mark.parametrize("style", ["lesson", "optimized"])
def test_kit_builds_arm64_sif_and_probe_sees_aarch64(
    arm: Aarch64Lab, apptainer_path: str, workspace: Path, tmp_path: Path, style: str
) -> None:
    flags = ["--platform", "linux/arm64", "--env", "default", "--style", style, *registry_images(arm)]
    generate(workspace, *flags)
    built = kit_cli(
        "build",
        str(workspace),
        "--engine",
        "apptainer",
        *flags,
        "--json",
        timeout=BUILD_S,
        env=apptainer_env(),
    )
    assert built.returncode == 0, built.stdout + built.stderr
    sif = next(s for s in strings(json.loads(built.stdout)["result"]) if s.endswith(".sif"))
    listing = run_command([apptainer_path, "sif", "list", sif], timeout=120)
    assert listing.returncode == 0 and "/arm64" in listing.stdout, listing.stdout + listing.stderr
    assert sif_machine(Path(sif)) == "aarch64"  # the header the probe's time limit is read from
    probe = kit_cli("probe", sif, "--engine", "apptainer", "--json", timeout=600, env=apptainer_env())
    assert probe.returncode == 0, probe.stdout + probe.stderr
    report = json.loads(probe.stdout)["result"]
    assert "aarch64" in strings(report)
    assert report["torch_version"] == STANDIN_TORCH


# ---------------------------------------------------------------- what a learner types: plain engines


@pytest.mark.aarch64
@pytest.mark.docker
@pytest.mark.slow
def test_plain_docker_build_for_arm64(arm: Aarch64Lab, workspace: Path, tags: list[str]) -> None:
    """`docker build --platform linux/arm64` on the Dockerfile `kit generate` wrote (today's
    files: FROM names a manifest list, BuildKit picks arm64 from it), then the probe inside."""
    generate(workspace, "--env", "default", "--style", "lesson", *registry_images(arm))
    tag = f"kit-arm:plain-arm64-{os.getpid()}"
    tags.append(tag)
    built = run_command(
        [arm.docker, "build", "--platform", "linux/arm64", "-t", tag, str(workspace)],
        timeout=BUILD_S,
        env=docker_env(),
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert image_architecture(arm, tag) == "arm64"
    run = [arm.docker, "run", "--rm", "--network", "none", "--platform", "linux/arm64", tag]
    machine = run_command([*run, "python", "-c", MACHINE], timeout=300)
    assert (machine.returncode, machine.stdout.strip()) == (0, "aarch64"), machine.stderr
    probe = run_command([*run, "python", "/app/src/torch_detect_GPU.py", "--json"], timeout=300)
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout)["torch"] == STANDIN_TORCH


@pytest.mark.aarch64
@pytest.mark.apptainer
@pytest.mark.slow
def test_plain_apptainer_build_for_arm64(
    arm: Aarch64Lab, apptainer_path: str, workspace: Path, tmp_path: Path
) -> None:
    """`apptainer build --arch arm64` on the definition file `kit generate` wrote; the SIF holds
    an arm64 root, its %test passes, and it runs (qemu, through the launcher's binfmt_misc)."""
    generate(workspace, "--env", "default", "--style", "lesson", *registry_images(arm))
    sif = tmp_path / "kit-arm.sif"
    built = run_command(
        [apptainer_path, "build", "--arch", "arm64", "--no-https", str(sif), "apptainer.def"],
        cwd=workspace,
        timeout=BUILD_S,
        env={**os.environ, "APPTAINER_MKSQUASHFS_ARGS": SQUASHFS_ARGS},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    listing = run_command([apptainer_path, "sif", "list", str(sif)], timeout=120)
    assert "/arm64" in listing.stdout, listing.stdout + listing.stderr
    # from the SIF's folder: the lesson's %test runs `pixi info` and `pixi list` where it is started
    tested = run_command([apptainer_path, "test", str(sif)], cwd=tmp_path, timeout=600)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    machine = run_command(
        [apptainer_path, "run", str(sif), "python", "-c", MACHINE], cwd=tmp_path, timeout=300
    )
    assert (machine.returncode, machine.stdout.strip()) == (0, "aarch64"), machine.stderr
    probe = run_command(
        [apptainer_path, "run", str(sif), "python", "/app/src/torch_detect_GPU.py", "--json"],
        cwd=tmp_path,
        timeout=300,
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout)["torch"] == STANDIN_TORCH


# ---------------------------------------------------------------- one image, two architectures


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """A registry of the test's own (Debian's docker-registry on a free loopback port), so the
    images it pushes go with its tmp_path instead of staying in the lab's."""
    binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    need(Path(binary).exists(), "docker-registry is missing (tests/lab/hub.sh installs Debian's)")
    host = f"127.0.0.1:{free_port()}"
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'registry'}\n"
        f"http:\n  addr: {host}\n"
    )
    log = tmp_path / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_answers(process, f"http://{host}/v2/", 30, "docker-registry", log.read_text)
        yield host
    finally:
        stop_group(process)


@pytest.mark.aarch64
@pytest.mark.docker
@pytest.mark.slow
def test_multi_platform_image_runs_on_each_architecture(
    arm: Aarch64Lab, workspace: Path, registry: str, tags: list[str], tmp_path: Path
) -> None:
    """One generated Dockerfile built for linux/amd64 and linux/arm64, both pushed, joined in a
    manifest list (`docker manifest`), and each architecture pulled from the list and run."""
    generate(workspace, "--env", "bare", "--style", "optimized", *registry_images(arm))
    name = f"{registry}/kit-arm:bare"
    client = {**docker_env(), "DOCKER_CONFIG": str(tmp_path / "docker-config")}  # manifest lists kept there
    for arch in ("amd64", "arm64"):
        tag = f"{name}-{arch}"
        tags.append(tag)
        built = run_command(
            [arm.docker, "build", "--platform", f"linux/{arch}", "-t", tag, str(workspace)],
            timeout=BUILD_S,
            env=docker_env(),
        )
        assert built.returncode == 0, built.stderr[-3000:]
        pushed = run_command([arm.docker, "push", tag], timeout=600)
        assert pushed.returncode == 0, pushed.stderr
    created = run_command(
        [arm.docker, "manifest", "create", "--insecure", name, f"{name}-amd64", f"{name}-arm64"], env=client
    )
    assert created.returncode == 0, created.stderr
    pushed = run_command([arm.docker, "manifest", "push", "--insecure", "--purge", name], env=client)
    assert pushed.returncode == 0, pushed.stderr
    assert list_architectures(registry, name) == ["amd64", "arm64"]
    tags.append(name)
    for arch, machine in (("arm64", "aarch64"), ("amd64", "x86_64")):
        ran = run_command(
            [arm.docker, "run", "--rm", "--pull", "always", "--platform", f"linux/{arch}", name]
            + ["python", "-c", MACHINE],
            timeout=600,
        )
        assert (ran.returncode, ran.stdout.strip()) == (0, machine), ran.stderr


def test_lab_names_follow_the_environment() -> None:
    """A cold provisioning run measured under names of one's own (KIT_LAB_RUNTIME_REPO,
    KIT_LAB_PIXI_REPO, KIT_LAB_REGISTRY, KIT_LAB_CACHE) is tested under those same names."""
    env = {
        "KIT_LAB_CACHE": "/tmp/c",
        "KIT_LAB_REGISTRY": "127.0.0.1:6001",
        "KIT_LAB_RUNTIME_REPO": "mine/runtime",
        "KIT_LAB_PIXI_REPO": "mine/pixi",
    }
    lab = aarch64_lab(env)
    assert (
        lab.registry,
        lab.base_image,
        lab.runtime_image,
        lab.local_base_image,
        lab.local_runtime_image,
    ) == (
        "127.0.0.1:6001",
        "127.0.0.1:6001/mine/pixi:bookworm",
        "127.0.0.1:6001/mine/runtime:bookworm",
        "mine/pixi:bookworm-arm64",
        "mine/runtime:bookworm-arm64",
    )
    assert aarch64_lab({}).local_runtime_image == "kit-lab/runtime:bookworm-arm64"

"""The practice pool (practice/): built offline from its own Dockerfile, started by the one
command a learner types (`practice/start`), it runs the kit's HTCondor and Slurm files unchanged
against an image published to a registry, and a CUDA job file runs on the CPU.

The lab differs from a learner's machine in three ways, each named where it happens: the
Dockerfile's BASE is the lab's own Debian sid root (no Docker Hub here; on GitHub it is
`debian:sid`), the image is "published" to a docker-registry on the pool's own loopback (no
ghcr.io here), which Apptainer reaches over plain HTTP (`PRACTICE_PLAIN_HTTP=1` for HTCondor,
`APPTAINER_NOHTTPS=1` for the batch script's pull), and the image pushed under the gpu
environment's tag is the lab's CPU build (the lab has no CUDA build of torch).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, assert_lab_probe_report, kit_cli, need, run_command

from tests.lab.settings import LabSettings, copy_workspace

PRACTICE = REPO / "practice"
DOCKER = "/usr/bin/docker"  # Debian's 20.10 client: BuildKit built in (engines.md)
IMAGE_NAME = "127.0.0.1:5000/some-lab/cuda-lesson"  # the pool's own loopback
COMMIT = "1234567890abcdef1234567890abcdef12345678"
LIMIT_S = 600


def must(argv: list[str], timeout: float = 600, **kwargs: object) -> str:
    done = run_command(argv, timeout=timeout, **kwargs)  # type: ignore[arg-type]
    assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def lab_cache() -> Path:
    return Path(os.environ.get("KIT_LAB_CACHE") or "/var/cache/kit-lab")


@pytest.fixture(scope="session")
def practice_image(docker_client: object, lab: LabSettings) -> str:
    """The pool's image, built from practice/ with the lab's sid root as BASE; kept in the daemon
    under a tag named after the recipe's and the base's contents, as the lab keeps its images."""
    tarball = lab_cache() / "apptainer-root.tar.zst"
    stamp = lab_cache() / "apptainer-root.tar.zst.stamp"
    need(tarball.is_file() and stamp.is_file(), f"no {tarball} (tests/lab/apptainer.sh makes it)")
    need(shutil.which("zstd") is not None, "zstd is missing (Debian's zstd)")
    base = "kit-lab/practice-base:" + hashlib.sha256(stamp.read_bytes()).hexdigest()[:12]
    if run_command([DOCKER, "image", "inspect", base], timeout=60).returncode != 0:
        imported = subprocess.run(
            f"zstd -dc {tarball} | {DOCKER} import - {base}",
            shell=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert imported.returncode == 0, imported.stderr
    recipe = hashlib.sha256(base.encode())
    for path in sorted(PRACTICE.iterdir()):
        recipe.update(path.name.encode() + path.read_bytes())
    image = "kit-lab/practice-pool:" + recipe.hexdigest()[:12]
    if run_command([DOCKER, "image", "inspect", image], timeout=60).returncode != 0:
        must(
            [DOCKER, "build", "-q", "--build-arg", f"BASE={base}", "-t", image, str(PRACTICE)],
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
            timeout=900,
        )
    return image


@pytest.fixture
def pool(practice_image: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """`practice/start`'s environment for a pool of this test's own, removed at the end."""
    name = f"kit-practice-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PRACTICE_IMAGE": practice_image,
        "PRACTICE_NAME": name,
        "PRACTICE_ENGINE": DOCKER,
        "PRACTICE_PLAIN_HTTP": "1",
    }
    try:
        yield env
    finally:
        run_command([DOCKER, "rm", "-f", name], timeout=120)


def publish(env: dict[str, str], sif: Path, tags: list[str]) -> None:
    """What the workflow does on GitHub, done inside the pool: a registry on its loopback (the
    host's Debian docker-registry, copied in) and the SIF pushed over ORAS under `tags`."""
    name = env["PRACTICE_NAME"]
    registry = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    need(Path(registry).exists(), "docker-registry is missing (tests/lab/hub.sh installs Debian's)")
    must([DOCKER, "cp", registry, f"{name}:/usr/local/bin/"])
    must([DOCKER, "cp", str(sif), f"{name}:/tmp/published.sif"])
    config = (
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n"
        "http:\n  addr: 127.0.0.1:5000\n"
    )
    script = (
        f"printf '{config}' > /etc/registry.yml && chmod 0644 /tmp/published.sif && "
        "(setsid docker-registry serve /etc/registry.yml >/var/log/registry.log 2>&1 &) && "
        "for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null && break; sleep 0.2; done"
    )
    must([DOCKER, "exec", name, "bash", "-c", script])
    for tag in tags:
        must(
            [
                DOCKER,
                "exec",
                "-u",
                "learner",
                "-w",
                "/tmp",
                name,
                "env",
                "HOME=/tmp",
                "apptainer",
                "push",
                "--no-https",
                "/tmp/published.sif",
                f"oras://{IMAGE_NAME}:{tag}",
            ]
        )


@pytest.mark.practice
def test_the_pool_runs_the_kits_job_files_unchanged(
    pool: dict[str, str], lab: LabSettings, lab_sif: Path, tmp_path: Path
) -> None:
    workspace = copy_workspace(tmp_path / "workspace", lab)
    done = kit_cli(
        "generate",
        str(workspace),
        "--only",
        "htcondor",
        "--only",
        "slurm",
        "--env",
        "gpu",
        "--job-image-name",
        IMAGE_NAME,
        "--job-commit",
        COMMIT,
        "--job-memory",
        "1GB",
        "--job-disk",
        "2GB",
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sub = (workspace / "jobs/htcondor.sub").read_text()
    script = (workspace / "jobs/slurm.sbatch").read_text()
    tag = f"apptainer-gpu-sha-{COMMIT[:7]}"
    assert f"container_image = oras://{IMAGE_NAME}:{tag}\n" in sub and "request_gpus = 1\n" in sub
    assert "#SBATCH --gres=gpu:1\n" in script and "apptainer exec --nv" in script
    subprocess.run(["chmod", "-R", "a+rwX", str(workspace)], check=True, timeout=60)

    start = [str(PRACTICE / "start"), str(workspace), "--"]
    ready = run_command([*start, "true"], env=pool, timeout=LIMIT_S)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert "GPU: none (GPU jobs run on the CPU)" in ready.stdout, ready.stdout
    publish(pool, lab_sif, [tag])

    condor = run_command(
        [
            *start,
            "bash",
            "-c",
            "condor_submit jobs/htcondor.sub && condor_wait -wait 500 cuda-exercise-gpu.log",
        ],
        env=pool,
        timeout=LIMIT_S,
    )
    assert condor.returncode == 0, condor.stdout + condor.stderr
    cluster = re.search(r"submitted to cluster (\d+)", condor.stdout)
    assert cluster, condor.stdout
    assert_lab_probe_report((workspace / f"cuda-exercise-gpu-{cluster.group(1)}.0.out").read_text())

    slurm = run_command(
        [*start, "env", "APPTAINER_NOHTTPS=1", "sbatch", "--wait", "jobs/slurm.sbatch"],
        env=pool,
        timeout=LIMIT_S,
    )
    assert slurm.returncode == 0, slurm.stdout + slurm.stderr
    job = re.search(r"Submitted batch job (\d+)", slurm.stdout)
    assert job, slurm.stdout
    assert_lab_probe_report((workspace / f"cuda-exercise-gpu-{job.group(1)}.out").read_text())


@pytest.mark.practice
def test_without_user_namespaces_the_pool_says_which_flag_is_missing(practice_image: str) -> None:
    """Started without `--security-opt seccomp=unconfined`, Apptainer cannot make a user
    namespace: the pool stops at once and names the flags, instead of queueing jobs that fail."""
    done = run_command([DOCKER, "run", "--rm", practice_image], timeout=300)
    assert done.returncode == 1
    assert "--security-opt seccomp=unconfined" in done.stdout + done.stderr


# ---------------------------------------------------------------- without an engine


def test_the_workflow_pins_the_actions_the_kit_pins() -> None:
    """The pool's workflow uses each action at the commit kit/decide/actions.py verified."""
    from kit.decide.actions import ACTIONS

    text = (REPO / ".github" / "workflows" / "practice-pool.yaml").read_text()
    used = re.findall(r"(?m)^\s*(?:- )?uses: (\S+@\S+ # \S+)$", text)
    assert used and all(u in {a.uses for a in ACTIONS.values()} for u in used), used


def test_start_names_the_lessons_own_image(tmp_path: Path) -> None:
    """`practice/start` pulls ghcr.io/<owner>/<lesson>/practice-pool from the lesson's remote, in
    lower case; with no GitHub remote and no PRACTICE_IMAGE it says what to set (exit 2)."""
    lesson = tmp_path / "lesson"
    shutil.copytree(PRACTICE, lesson / "practice")
    subprocess.run(["git", "init", "-q", str(lesson)], check=True, timeout=30)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRACTICE_")}
    refused = run_command([str(lesson / "practice" / "start")], cwd=tmp_path, env=env, timeout=60)
    assert refused.returncode == 2 and "set PRACTICE_IMAGE" in refused.stderr
    subprocess.run(
        ["git", "-C", str(lesson), "remote", "add", "origin", "https://github.com/Some-Lab/Pixi-Lesson.git"],
        check=True,
        timeout=30,
    )
    # `echo` as the engine: the commands it would run are printed, nothing starts
    shown = run_command(
        ["bash", "-x", str(lesson / "practice" / "start"), str(tmp_path)],
        env={**env, "PRACTICE_ENGINE": "echo"},
        timeout=60,
    )
    assert "IMAGE=ghcr.io/some-lab/pixi-lesson/practice-pool:latest" in shown.stderr, shown.stderr

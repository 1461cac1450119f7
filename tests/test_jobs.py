"""Job files from the kit: what `kit generate --only htcondor / --only slurm` writes, and refuses.

Run as the user types it (the `kit` command line in a subprocess), on a copy of the example
workspace inside a git repository with a GitHub remote, as a learner's clone would be.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import EXAMPLE
from conftest import kit_cli as kit
from learner_repo import make_clone, plain_git

# `kit generate`'s flags for the two job files (and nothing else), as the episodes type them.
JOB_FILES = ("--only", "htcondor", "--only", "slurm")


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A learner's repository: the example in `cuda-exercise/`, one commit, a GitHub remote."""
    return make_clone(tmp_path)


def generate(workspace: Path, *args: str) -> dict[str, str]:
    done = kit("generate", str(workspace), "--json", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)
    root = Path(body["result"]["root"])
    return {c["path"]: (root / c["path"]).read_text() for c in body["result"]["changes"]}


def generate_jobs(clone: Path, *flags: str) -> dict[str, str]:
    """The two job files of the clone's workspace, with ``flags`` for `kit generate`."""
    return generate(clone / "cuda-exercise", *JOB_FILES, *flags)


def test_generate_writes_both_job_files_with_the_commit_tag(clone: Path) -> None:
    head = plain_git(clone, "rev-parse", "HEAD")[:7]
    files = generate_jobs(clone)
    assert sorted(files) == [
        "cuda-exercise/jobs/htcondor.sub",
        "cuda-exercise/jobs/inputs.txt",
        "cuda-exercise/jobs/slurm.sbatch",
    ]
    sub = files["cuda-exercise/jobs/htcondor.sub"]
    image = f"ghcr.io/some-lab/cuda-lesson:apptainer-gpu-sha-{head}"
    assert f"container_image = oras://{image}\n" in sub
    assert "universe = container\n" in sub and "transfer_executable = false\n" in sub
    assert "request_gpus = 1\n" in sub and "gpus_minimum_runtime = 12.0\n" in sub
    assert "request_memory = 4GB\n" in sub and "request_disk = 10GB\n" in sub
    assert "transfer_input_files = $(input)\n" in sub
    assert sub.endswith("queue input from jobs/inputs.txt\n")
    assert files["cuda-exercise/jobs/inputs.txt"] == "pixi.toml\n"
    sbatch = files["cuda-exercise/jobs/slurm.sbatch"]
    assert "#SBATCH --gres=gpu:1\n" in sbatch and "#SBATCH --mem=4G\n" in sbatch
    assert "#SBATCH --time=01:00:00\n" in sbatch and "module load" not in sbatch
    assert f'apptainer pull "$SIF" oras://{image}\n' in sbatch
    assert sbatch.rstrip().endswith(
        'srun apptainer exec --nv "$SIF" /app/entrypoint.sh python /app/src/torch_detect_GPU.py'
    )
    subprocess.run(["bash", "-n", str(clone / "cuda-exercise/jobs/slurm.sbatch")], check=True)


def test_a_cpu_environment_asks_for_no_gpu(clone: Path) -> None:
    files = generate_jobs(
        clone,
        "--env",
        "cpu",
        "--job-image-kind",
        "docker",
        "--job-modules",
        "apptainer/1.3",
    )
    sub = files["cuda-exercise/jobs/htcondor.sub"]
    assert "request_gpus" not in sub and "gpus_minimum_runtime" not in sub
    assert "container_image = docker://ghcr.io/some-lab/cuda-lesson:cpu-sha-" in sub
    sbatch = files["cuda-exercise/jobs/slurm.sbatch"]
    assert "gpu" not in sbatch.split("set -euo")[0].replace("kit-environment", "")
    assert "--nv" not in sbatch and "module load apptainer/1.3\n" in sbatch


def test_a_moving_tag_and_a_local_sif(clone: Path) -> None:
    files = generate_jobs(
        clone,
        "--job-reference",
        "tag",
        "--job-image-kind",
        "sif",
        "--job-sif",
        "images/gpu.sif",
        "--job-memory",
        "512MB",
        "--job-time",
        "2-00:00:00",
    )
    sub = files["cuda-exercise/jobs/htcondor.sub"]
    assert "container_image = images/gpu.sif\n" in sub and "request_memory = 512MB\n" in sub
    sbatch = files["cuda-exercise/jobs/slurm.sbatch"]
    assert "SIF=images/gpu.sif\n" in sbatch and "apptainer pull" not in sbatch
    assert "#SBATCH --mem=512M\n" in sbatch and "#SBATCH --time=2-00:00:00\n" in sbatch


def test_default_generate_writes_no_job_files(clone: Path) -> None:
    files = generate(clone / "cuda-exercise")
    assert not any("/jobs/" in path for path in files)


@pytest.mark.parametrize(
    ("flag", "value", "field"),
    [
        ("--job-memory", "4 GB", "job_memory"),
        ("--job-memory", "lots", "job_memory"),
        ("--job-time", "1h", "job_time"),
        ("--job-gpus", "0", "job_gpus"),
        ("--job-command", "python x.py; rm -rf ~", "job_command"),
        ("--job-command", "python $HOME/x.py", "job_command"),
        ("--job-modules", "cuda\nrm", "job_modules"),
        ("--job-sif", "../outside.sif", "job_sif"),
        ("--job-commit", "HEAD", "job_commit"),
        ("--job-image-name", "ghcr.io/Bad Name", "job_image_name"),
    ],
)
def test_bad_job_values_exit_2_naming_the_field(clone: Path, flag: str, value: str, field: str) -> None:
    done = kit("generate", str(clone / "cuda-exercise"), "--only", "slurm", flag, value)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"[{field}]" in lines[0] and "fix:" in lines[0]
    assert "Traceback" not in done.stderr
    assert not (clone / "cuda-exercise" / "jobs").exists()


def test_outside_git_the_job_files_say_what_is_missing(tmp_path: Path) -> None:
    import shutil

    workspace = tmp_path / "cuda-exercise"
    shutil.copytree(EXAMPLE, workspace, ignore=shutil.ignore_patterns(".pixi", "__pycache__"))
    done = kit("generate", str(workspace), "--only", "htcondor")
    assert done.returncode == 2 and "[job_image_name]" in done.stderr
    done = kit("generate", str(workspace), "--only", "htcondor", "--job-image-name", "ghcr.io/me/x")
    assert done.returncode == 2 and "[job_commit]" in done.stderr and "--job-commit" in done.stderr
    files = generate(
        workspace,
        "--only",
        "htcondor",
        "--job-commit",
        "abcdef0123",
        "--job-image-name",
        "ghcr.io/me/exercise",
    )
    assert (
        "container_image = oras://ghcr.io/me/exercise:apptainer-gpu-sha-abcdef0\n"
        in files["jobs/htcondor.sub"]
    )


# ---------------------------------------------------------------- kit check on the job files


def job_findings(workspace: Path, env: dict[str, str] | None = None) -> list[dict[str, object]]:
    """`kit check --json` on the clone: the job files' findings. The example ships without
    pixi.lock, so the check always exits 1, and the one error not about the job files is the
    def file's %files line for that missing lock (copy-source; the Dockerfile copies the
    folder)."""
    import os

    done = kit("check", str(workspace), "--json", timeout=300, env={**os.environ, **(env or {})})
    assert done.returncode == 1, done.stdout + done.stderr
    findings = json.loads(done.stdout)["result"]["findings"]
    others = [f for f in findings if not str(f["rule"]).startswith("job-") and f["severity"] == "error"]
    assert [(f["rule"], f["file"]) for f in others] == [("copy-source", "cuda-exercise/apptainer.def")], (
        others
    )
    return [f for f in findings if str(f["rule"]).startswith("job-")]


@pytest.fixture
def with_jobs(clone: Path) -> Path:
    """The clone with every generated file, job files included (the gpu environment)."""
    workspace = clone / "cuda-exercise"
    generate(workspace)
    generate(workspace, *JOB_FILES)
    return workspace


def test_check_passes_the_generated_job_files(with_jobs: Path) -> None:
    assert [f for f in job_findings(with_jobs) if f["severity"] in ("error", "warning")] == []


def test_check_refuses_a_gpu_request_for_a_cpu_environment(with_jobs: Path) -> None:
    generate(with_jobs, "--env", "cpu", *JOB_FILES, "--force")
    sub = with_jobs / "jobs/htcondor.sub"
    sub.write_text(sub.read_text().replace("request_disk", "request_gpus = 1\nrequest_disk"))
    sbatch = with_jobs / "jobs/slurm.sbatch"
    sbatch.write_text(sbatch.read_text().replace("apptainer exec", "apptainer exec --nv"))
    gpu = [f for f in job_findings(with_jobs) if f["rule"] == "job-gpu"]
    assert {(f["file"], f["severity"]) for f in gpu} == {
        ("cuda-exercise/jobs/htcondor.sub", "error"),
        ("cuda-exercise/jobs/slurm.sbatch", "error"),
    }
    assert all("'cpu' needs no CUDA" in str(f["message"]) for f in gpu)


def test_check_refuses_an_image_the_workflows_do_not_publish(with_jobs: Path) -> None:
    sub = with_jobs / "jobs/htcondor.sub"
    text = sub.read_text()
    sub.write_text(
        text.replace(
            "oras://ghcr.io/some-lab/cuda-lesson:apptainer-gpu-sha-",
            "oras://ghcr.io/someone-else/cuda-lesson:gpu-sha-",
        )
    )
    images = [f for f in job_findings(with_jobs) if f["rule"] == "job-image"]
    messages = " | ".join(str(f["message"]) for f in images)
    assert "the workflows publish ghcr.io/some-lab/cuda-lesson" in messages
    assert "is not what the workflows push there" in messages
    sub.write_text(
        text.replace("-sha-", "-sha-").replace(
            text.split("container_image = ")[1].split("\n")[0],
            "oras://ghcr.io/some-lab/cuda-lesson:apptainer-gpu-noble-cuda-13.0",
        )
    )
    images = [f for f in job_findings(with_jobs) if f["rule"] == "job-image"]
    assert [f["severity"] for f in images] == ["error"]
    assert "no workflow pushes the tag" in str(images[0]["message"])


def test_check_reads_a_broken_submit_file(with_jobs: Path) -> None:
    sub = with_jobs / "jobs/htcondor.sub"
    sub.write_text(sub.read_text().replace("queue input from jobs/inputs.txt\n", "request_gpus\n"))
    parse = [f for f in job_findings(with_jobs) if f["rule"] == "job-parse" and f["severity"] == "error"]
    assert any("not a submit command" in str(f["message"]) for f in parse)
    assert any("no `queue` statement" in str(f["message"]) for f in parse)


@pytest.mark.htcondor
def test_check_runs_condor_submit_dry_run(with_jobs: Path) -> None:
    """With HTCondor's client at hand, its own parser judges the submit file."""
    from conftest import LAB_HTCONDOR_BIN, need

    from kit.schedulers import find_client

    env = {} if find_client("htcondor", "condor_submit") else {"KIT_HTCONDOR_BIN": str(LAB_HTCONDOR_BIN)}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        from kit import api

        need(not api.scheduler_available("htcondor"), "no HTCondor: run tests/lab/schedulers.sh")
    assert [f for f in job_findings(with_jobs, env) if f["severity"] != "info"] == []
    sub = with_jobs / "jobs/htcondor.sub"
    sub.write_text(sub.read_text().replace("universe = container", "universe = nonsense"))
    parse = [f for f in job_findings(with_jobs, env) if f["rule"] == "job-parse"]
    assert any(
        "condor_submit -dry-run refused it" in str(f["message"]) and "nonsense" in str(f["message"])
        for f in parse
    ), parse


@pytest.mark.parametrize("scheduler", ["htcondor", "slurm"])
def test_no_scheduler_here_says_so_and_what_to_run(
    scheduler: str, clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kit import api
    from kit.base.errors import SchedulerUnavailable

    workspace = clone / "cuda-exercise"
    generate(workspace, "--only", scheduler)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("KIT_HTCONDOR_BIN", raising=False)
    monkeypatch.delenv("KIT_SLURM_BIN", raising=False)
    assert "is not installed here" in api.scheduler_available(scheduler)
    with pytest.raises(SchedulerUnavailable) as unavailable:
        api.submit_job(workspace, scheduler)
    message = str(unavailable.value)
    command = "condor_submit jobs/htcondor.sub" if scheduler == "htcondor" else "sbatch jobs/slurm.sbatch"
    assert "scheduler is reachable" in message and "Instead:" in message and command in message


def test_the_studio_shows_the_job_files(clone: Path) -> None:
    """The studio's third tab: both job files for the form's options, or why they cannot be made."""
    from test_widgets import status

    from kit.widgets.studio import Studio

    studio = Studio(clone / "cuda-exercise", engines=status())
    assert tuple(studio.views.titles) == ("Rendered files", "Diff against disk", "Job files")
    assert "jobs/htcondor.sub" in studio.jobs.value and "jobs/slurm.sbatch" in studio.jobs.value
    assert "ghcr.io/some-lab/cuda-lesson" in studio.jobs.value
    studio.set_option("environment", "cpu")
    assert "request_gpus" not in studio.jobs.value and "cpu-sha-" in studio.jobs.value

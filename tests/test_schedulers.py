"""The kit's job files on real schedulers: the lab's single-node HTCondor and Slurm
(tests/lab/schedulers.sh) run a SIF the kit built in the lab, and the probe's report comes back
in each job's output. Then the faults users meet: a missing image, a GPU no node has, a job
removed while it runs; each time the kit reports the scheduler's own words.

Files are made the way a user makes them (`kit generate --only htcondor --only slurm`), jobs are
submitted through `kit.api` (what the notebooks call), and every wait is bounded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import REPO, kit_cli

from kit import api
from kit.base.errors import SchedulerError
from kit.engines.gpu import parse_probe_output
from kit.schedulers import JobStatus, Submitted
from tests.lab.settings import LabSettings, copy_workspace

JOB_LIMIT_S = 300
TORCH = "2.13.0"


def job_workspace(lab: LabSettings, tmp_path: Path, *flags: str) -> Path:
    """A fresh copy of the lab workspace with job files written by `kit generate`."""
    workspace = copy_workspace(tmp_path / "workspace", lab)
    done = kit_cli(
        "generate",
        str(workspace),
        "--only",
        "htcondor",
        "--only",
        "slurm",
        "--job-image-kind",
        "sif",
        "--job-memory",
        "1GB",
        "--job-disk",
        "2GB",
        *flags,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return workspace


@pytest.fixture
def apptainer_on_path(apptainer_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch script calls `apptainer` as a cluster's does: the one the kit uses goes first on
    PATH (the lab's launcher here, which no cluster would name)."""
    monkeypatch.setenv("PATH", f"{Path(apptainer_path).parent}:{os.environ['PATH']}")


def follow(job: Submitted, **kwargs: object) -> tuple[JobStatus, list[str]]:
    """Wait (bounded) and keep every state the job went through."""
    seen: list[str] = []
    final = api.wait_job(job, JOB_LIMIT_S, on_status=lambda s: seen.append(s.state), poll=0.5, **kwargs)  # type: ignore[arg-type]
    return final, seen


def assert_probe_report(text: str) -> None:
    report = parse_probe_output(text)
    assert report.torch_version is not None and report.torch_version.split("+")[0] == TORCH
    assert report.cuda_available is False and report.device_count == 0


# ---------------------------------------------------------------- the kit's files run


@pytest.mark.htcondor
def test_htcondor_runs_the_kit_submit_file(
    htcondor: str, lab: LabSettings, lab_sif: Path, tmp_path: Path
) -> None:
    workspace = job_workspace(lab, tmp_path, "--env", "cpu", "--job-sif", str(lab_sif))
    sub = (workspace / "jobs/htcondor.sub").read_text()
    assert f"container_image = {lab_sif}\n" in sub and "request_gpus" not in sub
    job = api.submit_job(workspace, "htcondor")
    final, seen = follow(job)
    assert final.state == "completed" and final.exit_code == 0, final.summary()
    assert seen[-1] == "completed" and len(seen) >= 2  # it was seen before it ended
    assert_probe_report(api.job_output(job))
    assert (workspace / f"cuda-exercise-cpu-{job.job_id}.0.out").is_file()


@pytest.mark.slurm
@pytest.mark.usefixtures("apptainer_on_path")
def test_slurm_runs_the_kit_batch_script(slurm: str, lab: LabSettings, lab_sif: Path, tmp_path: Path) -> None:
    workspace = job_workspace(lab, tmp_path, "--env", "cpu", "--job-sif", str(lab_sif))
    script = (workspace / "jobs/slurm.sbatch").read_text()
    assert f"SIF={lab_sif}\n" in script and "--gres" not in script and "--nv" not in script
    job = api.submit_job(workspace, "slurm")
    final, seen = follow(job)
    assert final.state == "completed" and final.exit_code == 0, final.summary()
    assert_probe_report(api.job_output(job))
    assert final.output_files == (str(workspace / f"cuda-exercise-cpu-{job.job_id}.out"),)


# ---------------------------------------------------------------- faults


@pytest.mark.htcondor
def test_htcondor_missing_image_is_held_with_the_reason(
    htcondor: str, lab: LabSettings, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "gone.sif"
    workspace = job_workspace(lab, tmp_path, "--env", "cpu", "--job-sif", str(missing))
    job = api.submit_job(workspace, "htcondor")  # the access point sends the file at the start
    final, _ = follow(job)
    try:
        assert final.state == "held", final.summary()
        assert f"{missing}: (errno 2) No such file or directory" in final.reason, final.reason
    finally:
        api.cancel_job(job)


@pytest.mark.slurm
@pytest.mark.usefixtures("apptainer_on_path")
def test_slurm_missing_image_fails_with_apptainer_words(slurm: str, lab: LabSettings, tmp_path: Path) -> None:
    missing = tmp_path / "gone.sif"
    workspace = job_workspace(lab, tmp_path, "--env", "cpu", "--job-sif", str(missing))
    job = api.submit_job(workspace, "slurm")
    final, _ = follow(job)
    assert (final.state, final.exit_code) == ("failed", 255), final.summary()  # apptainer's FATAL
    assert f"could not open image {missing}" in api.job_output(job)


@pytest.mark.htcondor
def test_htcondor_gpu_no_machine_has_stays_idle_and_says_why(
    htcondor: str, lab: LabSettings, lab_sif: Path, tmp_path: Path
) -> None:
    workspace = job_workspace(lab, tmp_path, "--env", "gpu", "--job-sif", str(lab_sif))
    assert "request_gpus = 1\n" in (workspace / "jobs/htcondor.sub").read_text()
    job = api.submit_job(workspace, "htcondor")
    try:
        final = api.wait_job(job, 60, poll=1.0, stop_when_unplaceable=False)
        assert final.state == "idle", final.summary()
        why = api.why_idle(job)
        assert "RequestGPUs" in why and "rejected by your job's requirements" in why, why
    finally:
        api.cancel_job(job)
    assert api.wait_job(job, 60, poll=0.5).state == "removed"


@pytest.mark.slurm
def test_slurm_gpu_request_no_node_meets_is_refused(
    slurm: str, lab: LabSettings, lab_sif: Path, tmp_path: Path
) -> None:
    workspace = job_workspace(lab, tmp_path, "--env", "gpu", "--job-gpus", "2", "--job-sif", str(lab_sif))
    assert "#SBATCH --gres=gpu:2\n" in (workspace / "jobs/slurm.sbatch").read_text()
    with pytest.raises(SchedulerError) as refused:
        api.submit_job(workspace, "slurm")
    assert "Requested node configuration is not available" in str(refused.value)


@pytest.mark.parametrize(
    ("scheduler", "words"),
    [
        pytest.param("htcondor", "condor_rm", marks=pytest.mark.htcondor, id="htcondor"),
        pytest.param("slurm", "(?i)cancelled", marks=pytest.mark.slurm, id="slurm"),
    ],
)
def test_job_removed_while_running(
    scheduler: str,
    words: str,
    lab: LabSettings,
    lab_sif: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """A running job cancelled through the kit ends `removed`, with the scheduler's own words."""
    request.getfixturevalue(scheduler)  # the lab's scheduler answers, or need() says why
    if scheduler == "slurm":
        request.getfixturevalue("apptainer_on_path")
    workspace = job_workspace(
        lab, tmp_path, "--env", "cpu", "--job-sif", str(lab_sif), "--job-command", "sleep 300"
    )
    job = api.submit_job(workspace, scheduler)
    wait_until_running(job)
    api.cancel_job(job)
    final, _ = follow(job)
    assert final.state == "removed", final.summary()
    assert re.search(words, final.reason), final.reason


def wait_until_running(job: Submitted) -> None:
    import time

    deadline = time.monotonic() + JOB_LIMIT_S
    while time.monotonic() < deadline:
        state = api.job_status(job).state
        if state == "running":
            return
        assert state == "idle", state
        time.sleep(0.5)
    pytest.fail("the job never started")

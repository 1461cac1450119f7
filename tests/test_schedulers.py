"""The kit's job files on real schedulers: the lab's single-node HTCondor and Slurm
(tests/lab/schedulers.sh) run a SIF the kit built in the lab, and the probe's report comes back
in each job's output. Then the faults users meet: a missing image, a GPU no node has, a job
removed while it runs; each time the kit reports the scheduler's own words.

Files are made the way a user makes them (`kit generate --only htcondor --only slurm`), jobs are
submitted through `kit.api` (what the notebooks call), and every wait is bounded.

The last section needs no scheduler: the registry of schedulers, each scheduler's reading of its
job file, and the verbs driven through stand-in clients (small shell scripts in the folder
`KIT_HTCONDOR_BIN` / `KIT_SLURM_BIN` names) that print what the real clients print.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import REPO, assert_lab_probe_report, kit_cli

from kit import api
from kit.base.errors import SchedulerError, SchedulerUnavailable
from kit.schedulers import SCHEDULERS, JobStatus, Scheduler, Submitted, get_scheduler, scheduler_names
from tests.lab.settings import LabSettings, copy_workspace

JOB_LIMIT_S = 300


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
    assert_lab_probe_report(api.job_output(job))
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
    assert_lab_probe_report(api.job_output(job))
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


# ---------------------------------------------------------------- the registry (no scheduler needed)


def test_the_table_names_each_scheduler_once_in_the_order_front_ends_list_them() -> None:
    assert scheduler_names() == ("htcondor", "slurm")
    assert all(isinstance(s, Scheduler) and s.name == name for name, s in SCHEDULERS.items())
    with pytest.raises(TypeError):
        SCHEDULERS["pbs"] = SCHEDULERS["slurm"]  # type: ignore[index]
    paths = [f.path for s in SCHEDULERS.values() for f in s.files]
    keys = [f.key for s in SCHEDULERS.values() for f in s.files]
    assert len(set(paths)) == len(paths) and len(set(keys)) == len(keys)


@pytest.mark.parametrize("name", ["htcondor", "slurm"])
def test_each_scheduler_owns_its_files_templates_and_commands(name: str) -> None:
    scheduler = get_scheduler(name)
    templates = REPO / "kit" / "templates"
    assert all((templates / f.template).is_file() for f in scheduler.files)
    assert scheduler.files[0].key == name  # the job templates call the submitted file by its name
    assert (
        scheduler.submit_command
        == {"htcondor": "condor_submit jobs/htcondor.sub", "slurm": "sbatch jobs/slurm.sbatch"}[name]
    )
    commands = scheduler.login_commands("demo-gpu")
    assert commands[0] == scheduler.submit_command and any("demo-gpu" in c for c in commands[1:])
    assert scheduler.bin_variable == f"KIT_{name.upper()}_BIN"


def test_an_unknown_scheduler_is_refused_naming_the_ones_there_are(tmp_path: Path) -> None:
    with pytest.raises(SchedulerError) as refused:
        get_scheduler("pbs")
    assert str(refused.value) == "scheduler 'pbs' is unknown: use one of: htcondor, slurm"
    with pytest.raises(SchedulerError, match="scheduler 'pbs' is unknown"):
        api.submit_job(tmp_path, "pbs")
    assert api.scheduler_available("pbs") == "scheduler 'pbs' is unknown: use one of: htcondor, slurm"


@pytest.mark.parametrize("name", ["htcondor", "slurm"])
def test_generate_only_a_scheduler_renders_exactly_its_files(name: str) -> None:
    from kit.decide.options import RenderOptions
    from kit.model.workspace import load_workspace
    from kit.output.render import GROUPS, render

    options = RenderOptions(
        job_commit="3f2c1ab9d0e4c5b6a7f8e9d0c1b2a3f4e5d6c7b8", job_image_name="ghcr.io/a/b"
    )
    files = render(load_workspace(REPO / "examples" / "cuda-exercise"), options, only=(name,))
    scheduler = get_scheduler(name)
    assert sorted(files) == sorted(f.path for f in scheduler.files)
    assert GROUPS[name] == scheduler.file_names
    assert f"{scheduler.submit_command}\n" in files[scheduler.job_file].text


# ---------------------------------------------------------------- each scheduler reads its job file


def stand_in_clients(folder: Path, **scripts: str) -> Path:
    """A folder of shell scripts, one per client, each printing what the real one would."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in scripts.items():
        path = folder / name
        path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
        path.chmod(0o755)
    return folder


SUBMIT_FILE = """# kit-environment: gpu
universe = container
container_image = docker://ghcr.io/a/b:gpu-sha-3f2c1ab
request_gpus = 1
queue input from jobs/inputs.txt
"""


def test_htcondor_reads_a_submit_file_without_its_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KIT_HTCONDOR_BIN", str(stand_in_clients(tmp_path / "bin")))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    reading = get_scheduler("htcondor").read_job_file({"jobs/htcondor.sub": SUBMIT_FILE})
    assert (reading.image, reading.image_line) == ("docker://ghcr.io/a/b:gpu-sha-3f2c1ab", 3)
    assert reading.gpu_requests == (("request_gpus", 4),)
    assert [(r.severity, r.message) for r in reading.remarks] == [
        ("info", "condor_submit is not installed here, so the kit read the submit file itself")
    ]
    broken = get_scheduler("htcondor").read_job_file(
        {"jobs/htcondor.sub": "universe = vanilla\nnot a command\n"}
    )
    assert [(r.line, r.message) for r in broken.remarks if r.severity == "error"] == [
        (2, "not a submit command: 'not a command'"),
        (None, "no `queue` statement: condor_submit would submit nothing"),
        (1, "the job is not in the container universe, so HTCondor will not start the image"),
        (None, "no container_image: the job has nothing to run the environment in"),
    ]


def test_htcondor_dry_run_sees_the_inputs_beside_the_submit_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """condor_submit -dry-run runs on a copy holding every file of the scheduler that is here."""
    bin_dir = stand_in_clients(
        tmp_path / "bin", condor_submit='echo "ERROR: $(cat jobs/inputs.txt)" >&2\nexit 1\n'
    )
    monkeypatch.setenv("KIT_HTCONDOR_BIN", str(bin_dir))
    reading = get_scheduler("htcondor").read_job_file(
        {"jobs/htcondor.sub": SUBMIT_FILE, "jobs/inputs.txt": "pixi.toml\n"}
    )
    assert [(r.severity, r.message, r.fix) for r in reading.remarks] == [
        (
            "error",
            "condor_submit -dry-run refused it: ERROR: pixi.toml",
            "fix the command it names, or regenerate with `kit generate --only htcondor`",
        )
    ]


def test_slurm_reads_a_batch_script() -> None:
    script = 'echo first\n#SBATCH --gres=gpu:1\nSIF=/data/b.sif\napptainer exec --nv "$SIF" python\n'
    reading = get_scheduler("slurm").read_job_file({"jobs/slurm.sbatch": script})
    assert (reading.image, reading.image_line) == ("/data/b.sif", 3)
    assert reading.gpu_requests == (("#SBATCH GPU request", 2), ("apptainer --nv", 4))
    assert [(r.severity, r.line, r.message) for r in reading.remarks] == [
        ("error", 1, "no #! line: sbatch refuses a script without one"),
        ("warning", 2, "an #SBATCH line after the first command: sbatch ignores it"),
    ]
    empty = get_scheduler("slurm").read_job_file({"jobs/slurm.sbatch": "#!/bin/bash\n"})
    assert [(r.message, r.fix) for r in empty.remarks] == [
        ("no SIF=... line: the script names no image to run", "regenerate with `kit generate --only slurm`")
    ]


# ---------------------------------------------------------------- the verbs, through stand-in clients


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A workspace folder holding both job files (the stand-in clients never read them)."""
    folder = tmp_path / "workspace"
    (folder / "jobs").mkdir(parents=True)
    for name in ("htcondor.sub", "slurm.sbatch"):
        (folder / "jobs" / name).write_text("# a job\n", encoding="utf-8")
    return folder


def test_htcondor_verbs(workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ads = '[{"ClusterId": 7, "ProcId": 0, "JobStatus": 1, "LastRejMatchReason": "no successful match recorded"}]'
    bin_dir = stand_in_clients(
        tmp_path / "bin",
        condor_submit='[ "$1" = -terse ] && echo "7.0 - 7.0"\n',
        condor_q=f"""case "$1" in
  -totals) echo "Total for query: 0 jobs" ;;
  -better-analyze) printf 'Job 7.000 defines RequestGPUs = 1\\nno successful match recorded\\nnothing else\\n' ;;
  *) echo '{ads}' ;;
esac
""",
        condor_rm=f'echo "$@" > {tmp_path}/removed\n',
    )
    monkeypatch.setenv("KIT_HTCONDOR_BIN", str(bin_dir))
    assert api.scheduler_available("htcondor") == ""
    job = api.submit_job(workdir, "htcondor")
    assert job == Submitted("htcondor", "7", workdir.resolve())
    assert api.job_status(job) == JobStatus("htcondor", "7", "idle", "no successful match recorded")
    assert api.wait_job(job, 30, stop_when_unplaceable=True).state == "idle"  # returns at once: unplaceable
    assert api.why_idle(job) == "Job 7.000 defines RequestGPUs = 1 no successful match recorded"
    api.cancel_job(job)
    assert (tmp_path / "removed").read_text() == "7\n"


def test_slurm_verbs(workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "demo-42.out"
    out.write_text("hello from the job\n", encoding="utf-8")
    bin_dir = stand_in_clients(
        tmp_path / "bin",
        sinfo="echo gpu\n",
        sbatch='[ "$1" = --parsable ] && echo "42;cluster"\n',
        scontrol=f'echo "JobId=42 JobName=demo JobState=COMPLETED Reason=None ExitCode=0:0 StdOut={out}"\n',
        scancel=f'echo "$@" > {tmp_path}/cancelled\n',
    )
    monkeypatch.setenv("KIT_SLURM_BIN", str(bin_dir))
    assert api.scheduler_available("slurm") == ""
    job = api.submit_job(workdir, "slurm")
    assert job == Submitted("slurm", "42", workdir.resolve())
    final = api.wait_job(job, 30)
    assert final == JobStatus("slurm", "42", "completed", "", 0, (str(out),))
    assert final.summary() == "slurm job 42: completed (exit 0)"
    assert api.job_output(job) == "hello from the job\n"
    assert api.why_idle(job) == ""
    api.cancel_job(job)
    assert (tmp_path / "cancelled").read_text() == "42\n"


def test_job_output_reads_the_end_of_what_a_job_printed_and_no_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job that prints without end must not fill the notebook's memory, and a job that made its
    output file a link to someone else's file must not have it read back."""
    from kit.schedulers import jobs

    long = tmp_path / "long.out"
    long.write_bytes(b"x" * (jobs.OUTPUT_LIMIT + 10) + b"\nREPORT\n")
    link = tmp_path / "link.out"
    link.symlink_to("/etc/passwd")
    names = (str(long), "link.out", "not-yet.out")
    monkeypatch.setattr(jobs, "status", lambda job: JobStatus("slurm", "1", "completed", "", 0, names))
    text = api.job_output(Submitted("slurm", "1", tmp_path))
    left_out = jobs.OUTPUT_LIMIT + 11
    assert text == (
        f"[kit: the first {left_out} of {left_out + 7} bytes of {long} left out]\nREPORT\n"
        f"[kit: {link} not read: is a symbolic link]\n"
    )


@pytest.mark.parametrize("name", ["htcondor", "slurm"])
def test_a_scheduler_that_cannot_reach_its_pool_says_what_to_run_instead(
    name: str, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = get_scheduler(name)
    refuse = 'echo "Failed to connect to the controller" >&2\nexit 1\n'
    clients = {scheduler.answer[0]: refuse, scheduler.submit_client: refuse}
    monkeypatch.setenv(scheduler.bin_variable, str(stand_in_clients(tmp_path / "bin", **clients)))
    why = api.scheduler_available(name)
    assert why.startswith(f"no {scheduler.title} scheduler is reachable from here (Failed to connect")
    assert (
        f"{scheduler.article} {scheduler.title} login node and run `{scheduler.submit_command}` there" in why
    )
    with pytest.raises(SchedulerError) as refused:  # a refused submission, in the client's own words
        api.submit_job(workdir, name)
    assert not isinstance(refused.value, SchedulerUnavailable)
    assert str(refused.value) == f"{name} refused {scheduler.job_file}: Failed to connect to the controller"


def test_a_missing_job_file_says_to_generate_it(workdir: Path) -> None:
    with pytest.raises(SchedulerError) as missing:
        api.submit_job(workdir, "slurm", "jobs/other.sbatch")
    assert str(missing.value) == (
        f"{workdir.resolve()}/jobs/other.sbatch does not exist: "
        f"run `kit generate {workdir.resolve()} --only slurm` first"
    )

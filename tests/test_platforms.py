"""linux-aarch64 beside linux-64 (issue 17, the kit's side): the `platforms` option, the plan per
platform and its refusals, a build for another architecture through emulation, the probe's
architecture, the multi-platform workflows and the job files' architecture requests.

The workspace is tests/fixtures/pixi-shapes/linux-aarch64: `cpu` and `gpu` locked for linux-64
and linux-aarch64, `legacy` narrowed to linux-64. The builds and probes that run under QEMU are
the lab's (marker `aarch64`); here the engines are recorders.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLE, kit_cli, need, run_command
from syrupy.assertion import SnapshotAssertion

from kit import api
from kit.base.errors import OptionsError
from kit.check.linters import find_tool
from kit.decide.options import RenderOptions
from kit.engines import emulation, gpu
from kit.engines.apptainer_engine import ApptainerEngine
from kit.engines.docker_engine import DockerEngine
from kit.engines.engine import BuildRequest
from kit.engines.events import BuildEvent, BuildResult

FIXTURE = Path(__file__).parent / "fixtures" / "pixi-shapes" / "linux-aarch64"
BOTH = ("linux-64", "linux-aarch64")
COMMIT = "3f2c1ab9d0e4c5b6a7f8e9d0c1b2a3f4e5d6c7b8"
JOBS = {"job_commit": COMMIT, "job_image_name": "ghcr.io/someone/arm-nodes"}


@pytest.fixture
def arm(tmp_path: Path) -> Path:
    """A private copy of the two-platform workspace, alone in its folder."""
    target = tmp_path / "arm-nodes"
    shutil.copytree(FIXTURE, target)
    return target


def _plan(folder: Path, **options: Any) -> Any:
    return api.prepare(folder, environments=options.pop("environments", ("cpu", "gpu")), **options).plan


# -- the option ----------------------------------------------------------------------------------


def test_pixi_and_oci_names_are_one_platform_each() -> None:
    given = RenderOptions(platforms=("linux/arm64,linux-64", "linux-aarch64", "linux/amd64"))
    assert given.platforms == ("linux-aarch64", "linux-64")


@pytest.mark.parametrize("value", ["linux/s390x", "osx-arm64", "arm64", ""])
def test_a_platform_the_kit_does_not_build_is_refused(value: str) -> None:
    with pytest.raises(OptionsError) as caught:
        RenderOptions(platforms=(value,))
    assert (caught.value.field, caught.value.fix) == (
        "platforms",
        "use linux-64 (or linux/amd64), linux-aarch64 (or linux/arm64)",
    )


def test_the_cli_refuses_an_unknown_platform_in_one_line(arm: Path) -> None:
    done = kit_cli("generate", str(arm), "--platform", "linux/riscv64", "--json")
    error = json.loads(done.stdout)["errors"][0]
    assert (done.returncode, error["field"], "Traceback" in done.stderr) == (2, "platforms", False)


# -- the plan ------------------------------------------------------------------------------------


def test_default_is_every_locked_linux_platform_the_pixi_image_serves(arm: Path) -> None:
    plan = _plan(arm)
    assert ([(e.name, e.platforms) for e in plan.matrix], plan.multi_platform) == (
        [("gpu", BOTH), ("cpu", BOTH)],
        True,
    )


def test_an_environment_locked_for_linux_64_alone_is_built_for_it_alone(arm: Path) -> None:
    plan = _plan(arm, environments=("legacy",), environment="legacy")
    assert (plan.primary.platforms, plan.multi_platform) == (("linux-64",), False)


def test_another_base_image_is_taken_to_serve_amd64_only(arm: Path) -> None:
    assert _plan(arm, base_image="debian:12").platforms == ("linux-64",)


def test_naming_a_platform_says_what_another_base_image_serves(arm: Path) -> None:
    plan = _plan(arm, base_image="debian:12", platforms=("linux/arm64",))
    assert (plan.platforms, plan.primary.tag) == (("linux-aarch64",), "gpu-cuda-12")


def test_an_environment_not_locked_for_a_requested_platform_is_refused(arm: Path) -> None:
    done = kit_cli("generate", str(arm), "--platform", "linux/arm64", "--diff")
    assert (done.returncode, done.stderr.strip()) == (
        2,
        f"kit: error: {arm / 'pixi.lock'} [platforms]: environment 'legacy' is not locked for "
        'linux-aarch64 (locked Linux platforms: linux-64) (fix: add "linux-aarch64" to '
        "[workspace] platforms (and to the features that narrow them), run `pixi lock`, or drop "
        "--platform linux-aarch64)",
    )


def test_without_a_lock_the_manifest_says_which_platforms(arm: Path) -> None:
    (arm / "pixi.lock").unlink()
    plan = _plan(arm, environments=("cpu", "legacy"))
    assert {e.name: e.platforms for e in plan.matrix} == {"gpu": BOTH, "cpu": BOTH, "legacy": ("linux-64",)}


def test_a_local_build_makes_the_hosts_platform_unless_told(arm: Path) -> None:
    assert _plan(arm).build_platform("x86_64").subdir == "linux-64"
    assert _plan(arm).build_platform("aarch64").subdir == "linux-aarch64"
    assert _plan(arm, platforms=("linux/arm64",)).build_platform("x86_64").subdir == "linux-aarch64"


def test_a_local_build_of_two_named_platforms_is_refused(arm: Path) -> None:
    with pytest.raises(OptionsError) as caught:
        _plan(arm, platforms=("linux-64", "linux-aarch64")).build_platform("x86_64")
    assert (caught.value.field, caught.value.fix) == (
        "platforms",
        "pass one --platform per build (the workflows build them all)",
    )


# -- a build for another architecture ------------------------------------------------------------


class _Engine:
    """A recording engine: what the facade hands it."""

    name = "docker"
    requests: list[BuildRequest] = []

    def build(self, request: BuildRequest) -> BuildResult:
        self.requests.append(request)
        return BuildResult("docker", "sha256:0", (request.name,), 0, 0.0, (), ())

    def artifact_name(self, repository: str, tag: str) -> str:
        return f"{repository}:{tag}"


def test_a_build_for_arm64_on_amd64_goes_through_emulation_and_says_so(
    arm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _Engine()
    engine.requests = []
    monkeypatch.setattr(api, "get_engine", lambda name: engine)
    monkeypatch.setattr("kit.decide.plan.get_engine", lambda name: engine)
    monkeypatch.setattr(emulation, "host_machine", lambda: "x86_64")
    monkeypatch.setattr(api.staging, "stage_build_context", lambda prepared, dest, engine: dest)
    events: list[BuildEvent] = []
    prepared = api.prepare(arm, environments=("cpu", "gpu"), platforms=("linux/arm64",))
    api.build_prepared(prepared, "docker", tmp_path, on_event=events.append)
    (request,) = engine.requests
    assert (request.platform, request.name) == ("linux/arm64", "arm-nodes:gpu-noble-cuda-12-arm64")
    assert [e.line for e in events] == [
        "building for linux/arm64 on a x86_64 machine through emulation (QEMU): about 10-25x slower "
        "than on a native machine; a native aarch64 machine, or the workflow's arm64 runner, builds "
        "it in its normal time"
    ]


def test_a_native_build_names_no_platform(arm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _Engine()
    engine.requests = []
    monkeypatch.setattr(api, "get_engine", lambda name: engine)
    monkeypatch.setattr("kit.decide.plan.get_engine", lambda name: engine)
    monkeypatch.setattr(emulation, "host_machine", lambda: "x86_64")
    monkeypatch.setattr(api.staging, "stage_build_context", lambda prepared, dest, engine: dest)
    events: list[BuildEvent] = []
    api.build_prepared(
        api.prepare(arm, environments=("cpu", "gpu")), "docker", tmp_path, on_event=events.append
    )
    assert ([(r.platform, r.name) for r in engine.requests], events) == (
        [(None, "arm-nodes:gpu-noble-cuda-12")],
        [],
    )


class _Recorder:
    def __init__(self) -> None:
        self.kwargs: dict[str, Any] = {}

    def build(self, *args: Any, **kwargs: Any) -> BuildResult:
        self.kwargs = kwargs
        return BuildResult("fake", "x", (), 0, 0.0, (), ())


def test_docker_gets_platform_and_apptainer_arch(tmp_path: Path) -> None:
    request = BuildRequest(tmp_path, "gpu", tmp_path, {}, platform="linux/arm64")
    docker, apptainer = _Recorder(), _Recorder()
    DockerEngine(docker).build(request)  # type: ignore[arg-type]
    ApptainerEngine(apptainer).build(request)  # type: ignore[arg-type]
    assert (docker.kwargs["platform"], apptainer.kwargs["arch"]) == ("linux/arm64", "arm64")


# -- the probe's architecture --------------------------------------------------------------------


def test_the_probe_reports_the_machine_in_json_and_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "host_machine", lambda: "x86_64")
    as_json = gpu.parse_probe_output(json.dumps({"torch": None, "error": "no torch", "machine": "aarch64"}))
    as_text = gpu.parse_probe_output("PyTorch has no active GPU\nMachine architecture: aarch64\n")
    assert (as_json.machine, as_text.machine) == ("aarch64", "aarch64")
    assert gpu.format_probe(as_json).splitlines()[1:] == [
        "architecture: aarch64",
        "note: ran aarch64 code on a x86_64 machine through emulation (QEMU): about 10-25x slower "
        "than on a native machine",
    ]


def test_a_native_probe_has_no_emulation_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "host_machine", lambda: "x86_64")
    report = gpu.parse_probe_output("PyTorch has no active GPU\nMachine architecture: x86_64\n")
    assert gpu.format_probe(report).splitlines()[1:] == ["architecture: x86_64"]


# -- the workflows -------------------------------------------------------------------------------


def _workflows(folder: Path, **options: Any) -> dict[str, Any]:
    files = api.prepare(folder, environments=("cpu", "gpu"), **options).render(("workflows",))
    return {Path(p).stem: yaml.safe_load(f.text) for p, f in files.items()}


def _matrix(job: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    rows = job["strategy"]["matrix"]["include"]
    return [(r["environment"], r["platform"], r["runner"], r["qemu"]) for r in rows]


def test_docker_builds_each_platform_on_its_runner_then_merges(arm: Path) -> None:
    jobs = _workflows(arm)["docker"]["jobs"]
    assert (set(jobs), jobs["merge"]["needs"], _matrix(jobs["publish"])) == (
        {"build", "publish", "merge"},
        "publish",
        [
            ("gpu", "linux/amd64", "ubuntu-latest", False),
            ("gpu", "linux/arm64", "ubuntu-24.04-arm", False),
            ("cpu", "linux/amd64", "ubuntu-latest", False),
            ("cpu", "linux/arm64", "ubuntu-24.04-arm", False),
        ],
    )
    (push,) = [s for s in jobs["publish"]["steps"] if s.get("id") == "build"]
    assert (push["with"]["outputs"], push["with"]["cache-to"]) == (
        "type=image,name=${{ steps.image.outputs.name }},push-by-digest=true,name-canonical=true,push=true",
        "type=gha,mode=max,scope=docker-${{ matrix.environment }}-${{ matrix.arch }}",
    )
    (meta,) = [s for s in jobs["merge"]["steps"] if s.get("id") == "meta"]
    assert meta["with"]["tags"].splitlines() == [
        "type=raw,value=${{ matrix.tag }}",
        "type=raw,value=latest,enable=${{ matrix.latest }}",
        "type=sha,prefix=${{ matrix.environment }}-sha-",
    ]
    assert "docker buildx imagetools create" in jobs["merge"]["steps"][-1]["run"]


def test_qemu_builds_arm64_on_the_amd64_runner(arm: Path) -> None:
    jobs = _workflows(arm, arm_runner="qemu")["docker"]["jobs"]
    qemu = [s for s in jobs["publish"]["steps"] if s.get("name") == "Set up QEMU"]
    assert ([r[2:] for r in _matrix(jobs["publish"])][:2], [s["if"] for s in qemu]) == (
        [("ubuntu-latest", False), ("ubuntu-latest", True)],
        ["matrix.qemu"],
    )


def test_apptainer_builds_a_sif_per_architecture_with_its_own_tags(arm: Path) -> None:
    job = _workflows(arm)["apptainer"]["jobs"]["publish"]
    rows = job["strategy"]["matrix"]["include"]
    installs = {s["if"]: s["name"] for s in job["steps"] if s.get("name", "").startswith("Install Apptainer")}
    (push,) = [s for s in job["steps"] if s.get("name") == "Publish"]
    assert ([r["sif-suffix"] for r in rows], sorted(installs)) == (
        ["", "-arm64", "", "-arm64"],
        ["runner.arch == 'ARM64'", "runner.arch == 'X64'"],
    )
    assert push["run"].splitlines() == [
        'apptainer push "$TAG$SIF_SUFFIX.sif" "oras://${IMAGE,,}:apptainer-$TAG$SIF_SUFFIX"',
        'apptainer push "$TAG$SIF_SUFFIX.sif" "oras://${IMAGE,,}:apptainer-$ENVIRONMENT-sha-${GITHUB_SHA::7}$SIF_SUFFIX"',
    ]


def test_a_linux_64_workspace_keeps_the_simple_workflows() -> None:
    texts = "".join(f.text for f in api.prepare(EXAMPLE).render(("workflows",)).values())
    assert ("merge:" in texts, "matrix.platform" in texts, "--arch" in texts) == (False, False, False)


@pytest.mark.parametrize("runner", ["native", "qemu"])
def test_kit_check_finds_nothing_in_the_multi_platform_files(arm: Path, runner: str) -> None:
    for tool in ("zizmor", "hadolint", "check-jsonschema"):
        need(find_tool(tool) is not None, f"{tool} is not installed (pip install 'pixi-deploy-kit[lint]')")
    assert (
        kit_cli("generate", str(arm), "--matrix", "cpu", "--matrix", "gpu", "--arm-runner", runner).returncode
        == 0
    )
    done = kit_cli("check", str(arm))
    assert (done.returncode, done.stdout.strip()) == (0, "no findings")


@pytest.mark.parametrize("runner", ["native", "qemu"])
def test_zizmor_pedantic_finds_nothing_in_the_multi_platform_workflows(arm: Path, runner: str) -> None:
    zizmor = find_tool("zizmor")
    need(zizmor is not None, "zizmor is not installed (pip install 'pixi-deploy-kit[lint]')")
    assert zizmor is not None
    assert (
        kit_cli("generate", str(arm), "--matrix", "cpu", "--matrix", "gpu", "--arm-runner", runner).returncode
        == 0
    )
    workflows = sorted(str(p) for p in (arm / ".github" / "workflows").glob("*.yaml"))
    done = run_command(
        [zizmor, "--offline", "--persona", "pedantic", "--format", "json", *workflows], cwd=arm
    )
    assert (json.loads(done.stdout or "null"), done.returncode) == ([], 0), done.stderr


# -- the job files -------------------------------------------------------------------------------


def _jobs(folder: Path, **options: Any) -> dict[str, str]:
    files = api.prepare(folder, environments=("cpu", "gpu"), **JOBS, **options).render(("htcondor", "slurm"))
    return {Path(p).name: f.text for p, f in files.items() if p.endswith((".sub", ".sbatch"))}


def _lines(text: str, *starts: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(starts)]


def test_a_sif_job_asks_for_its_architecture(arm: Path) -> None:
    jobs = _jobs(arm)
    assert _lines(jobs["htcondor.sub"], "requirements", "container_image") == [
        "container_image = oras://ghcr.io/someone/arm-nodes:apptainer-gpu-sha-3f2c1ab",
        'requirements = (Arch == "X86_64")',
    ]
    assert _lines(jobs["slurm.sbatch"], "#SBATCH --constraint", "SIF=") == [
        "#SBATCH --constraint=x86_64",
        "SIF=apptainer-gpu-sha-3f2c1ab.sif",
    ]


def test_the_arm64_sif_job_with_the_sites_feature_name(arm: Path) -> None:
    jobs = _jobs(arm, job_platform="linux/arm64", job_arch_feature="grace")
    assert _lines(jobs["htcondor.sub"], "requirements", "container_image") == [
        "container_image = oras://ghcr.io/someone/arm-nodes:apptainer-gpu-sha-3f2c1ab-arm64",
        'requirements = (Arch == "aarch64")',
    ]
    assert _lines(jobs["slurm.sbatch"], "#SBATCH --constraint", "SIF=") == [
        "#SBATCH --constraint=grace",
        "SIF=apptainer-gpu-sha-3f2c1ab-arm64.sif",
    ]


def test_a_multi_platform_docker_image_runs_on_either(arm: Path) -> None:
    jobs = _jobs(arm, job_image_kind="docker")
    assert _lines(jobs["htcondor.sub"], "requirements") == [
        'requirements = ((Arch == "X86_64") || (Arch == "aarch64"))'
    ]
    assert _lines(jobs["slurm.sbatch"], "#SBATCH --constraint", "SIF=") == [
        "SIF=gpu-sha-3f2c1ab-$(uname -m).sif"
    ]


def test_a_job_platform_the_environment_is_not_built_for_is_refused(arm: Path) -> None:
    with pytest.raises(OptionsError) as caught:
        _jobs(arm, base_image="debian:12", job_platform="linux-aarch64")
    assert (caught.value.field, caught.value.fix) == (
        "job_platform",
        "use one of: linux-64, or add --platform linux-aarch64",
    )


def test_a_linux_64_workspace_asks_for_no_architecture(example: Path) -> None:
    files = api.prepare(example, **JOBS).render(("htcondor", "slurm"))
    texts = "".join(f.text for f in files.values())
    assert ("requirements" in texts, "--constraint" in texts) == (False, False)


# -- the files a reviewer reads ------------------------------------------------------------------


def test_two_platform_files(arm: Path, snapshot: SnapshotAssertion) -> None:
    files = api.prepare(arm, environments=("cpu", "gpu"), **JOBS).render(("workflows", "htcondor", "slurm"))
    assert {
        p: f.text for p, f in sorted(files.items()) if p.endswith((".yaml", ".sub", ".sbatch"))
    } == snapshot


def test_kit_check_knows_the_arm64_sifs_tags(arm: Path) -> None:
    generate = [
        "generate",
        str(arm),
        "--matrix",
        "cpu",
        "--matrix",
        "gpu",
        "--job-image-name",
        "ghcr.io/me/arm",
    ]
    assert kit_cli(*generate).returncode == 0
    jobs = ["--only", "htcondor", "--only", "slurm", "--job-commit", COMMIT, "--job-platform", "linux/arm64"]
    assert kit_cli(*generate, *jobs, "--force").returncode == 0
    done = kit_cli("check", str(arm), "--json")
    findings = json.loads(done.stdout)["result"]["findings"]
    assert (done.returncode, [f for f in findings if f["severity"] != "info"]) == (0, [])


def test_apptainer_builds_with_arch_for_another_platform(tmp_path: Path) -> None:
    """The argv `apptainer build` gets, through a stand-in that records it and writes the SIF."""
    from kit.engines.apptainer import ApptainerBuilder

    log = tmp_path / "argv"
    fake = tmp_path / "apptainer"
    fake.write_text(
        '#!/bin/sh\necho "$@" >> "$LOG"\n'
        'if [ "$1" = build ]; then for last; do :; done; eval "sif=\\${$(($#-1))}"; : > "$sif"; fi\n'
    )
    fake.chmod(0o755)
    definition = tmp_path / "apptainer.def"
    definition.write_text("Bootstrap: docker\nFrom: ghcr.io/prefix-dev/pixi:0.70.2-noble\n")
    builder = ApptainerBuilder(apptainer=str(fake), env={"LOG": str(log), "PATH": "/usr/bin:/bin"})
    builder.build(definition, output=tmp_path / "gpu-arm64.sif", arch="arm64")
    build, test = log.read_text().splitlines()
    assert (build.split()[:4], test.split()[0]) == (["build", "--notest", "--arch", "arm64"], "test")


def test_the_engines_own_commands_name_another_platform(arm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulation, "host_machine", lambda: "x86_64")
    prepared = api.prepare(arm, environments=("cpu", "gpu"), platforms=("linux/arm64",))
    assert [api.engine_command(prepared, engine, "arm-nodes") for engine in ("docker", "apptainer")] == [
        "docker build --platform linux/arm64 --tag arm-nodes:gpu-noble-cuda-12-arm64 arm-nodes",
        "cd arm-nodes && apptainer build --arch arm64 gpu-noble-cuda-12-arm64.sif apptainer.def",
    ]

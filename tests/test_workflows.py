"""The generated GitHub workflows: the linters' verdict in every persona, and each promise they make.

The workflows are generated the way a user does it (`kit generate`, for the example in a
subfolder of a git repository and for the real-world workspace, in both styles), then read by
zizmor (default and pedantic personas) and check-jsonschema, as a user's CI would. The shell
steps that compute tags and check the Apptainer download are run for real with bash.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLE, need, run_command

from kit.base.errors import OptionsError
from kit.check.linters import find_tool
from kit.cli import main
from kit.decide.actions import ACTIONS, APPTAINER
from kit.decide.options import RenderOptions
from kit.decide.plan import immutable_tag, published_tag
from kit.model.deployfiles import WORKFLOW_DIR
from kit.model.workspace import load_workspace
from kit.output.render import render

WORKFLOWS = (".github/workflows/docker.yaml", ".github/workflows/apptainer.yaml")
PR_ONLY = "github.event_name == 'pull_request'"
NOT_PR = "github.event_name != 'pull_request'"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _example_repo(tmp_path: Path) -> tuple[Path, Path]:
    """The lesson's layout: a git repository with the workspace in `cuda-exercise/`."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo / "cuda-exercise", ignore=shutil.ignore_patterns(".pixi", "__pycache__"))
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    return repo, repo / "cuda-exercise"


@pytest.fixture(params=["example", "real-world"])
def generated(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    """(repository root, workspace) of a workspace whose files `kit generate` has just written."""
    if request.param == "example":
        return _example_repo(tmp_path)
    real_world: Path = request.getfixturevalue("real_world")
    return real_world, real_world


def _linter(name: str) -> str:
    exe = find_tool(name)
    need(exe is not None, f"{name} is not installed (pip install 'pixi-deploy-kit[lint]')")
    assert exe is not None
    return exe


@pytest.mark.parametrize("style", ["lesson", "optimized"])
@pytest.mark.parametrize("persona", ["regular", "pedantic"])
def test_zizmor_finds_nothing(generated: tuple[Path, Path], style: str, persona: str) -> None:
    root, workspace = generated
    zizmor = _linter("zizmor")
    assert main(["generate", str(workspace), "--style", style]) == 0
    done = run_command([zizmor, "--offline", "--persona", persona, "--format", "json", *WORKFLOWS], cwd=root)
    findings = json.loads(done.stdout or "null")
    assert findings == [], done.stdout + done.stderr
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("style", ["lesson", "optimized"])
def test_workflow_schema_accepts_them(generated: tuple[Path, Path], style: str) -> None:
    root, workspace = generated
    checker = _linter("check-jsonschema")
    assert main(["generate", str(workspace), "--style", style]) == 0
    done = run_command([checker, "--builtin-schema", "vendor.github-workflows", *WORKFLOWS], cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- what each workflow promises


def _workflows(options: RenderOptions) -> dict[str, dict[Any, Any]]:
    files = render(load_workspace(EXAMPLE), options, only=("workflows",))
    return {
        Path(path).stem: yaml.safe_load(f.text) for path, f in files.items() if path.startswith(WORKFLOW_DIR)
    }


CUDA_MATRIX = RenderOptions(environment="gpu", style="lesson", subdir="cuda-exercise")
CPU_ONLY = RenderOptions(environment="cpu", environments=("cpu",), style="optimized", app_dir="")


def _steps(job: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if s.get("name", "").startswith(name)]


@pytest.mark.parametrize("options", [CUDA_MATRIX, CPU_ONLY], ids=["cuda", "cpu"])
def test_only_runs_off_pull_requests_may_publish(options: RenderOptions) -> None:
    """Pull requests get a read-only job; the publishing job never runs for them."""
    for name, workflow in _workflows(options).items():
        jobs = workflow["jobs"]
        assert set(jobs) == {"build", "publish"}, name
        assert jobs["build"]["if"] == PR_ONLY and jobs["publish"]["if"] == NOT_PR
        assert jobs["build"]["permissions"] == {"contents": "read"}
        assert jobs["publish"]["permissions"] == {"contents": "read", "packages": "write"}
        assert workflow["permissions"] == {}
        assert jobs["build"]["strategy"] == jobs["publish"]["strategy"]
        pushes = [
            s
            for s in jobs["build"]["steps"]
            if s.get("with", {}).get("push")
            or "push" in str(s.get("run", "")).split()
            or "login" in str(s.get("uses", "")) + str(s.get("run", ""))
        ]
        assert pushes == [], f"{name}: the pull-request job logs in or pushes"


def test_only_pull_request_runs_are_cancelled() -> None:
    for workflow in _workflows(CUDA_MATRIX).values():
        assert workflow["concurrency"]["cancel-in-progress"] == "${{ " + PR_ONLY + " }}"


def test_every_action_is_a_pinned_current_major() -> None:
    pinned = {a.uses.split(" #")[0] for a in ACTIONS.values()}
    used = set()
    # A workspace built for two platforms (with QEMU) uses the pins the example's workflows do not.
    two = render(
        load_workspace(EXAMPLE.parents[1] / "tests" / "fixtures" / "pixi-shapes" / "linux-aarch64"),
        RenderOptions(environments=("cpu",), arm_runner="qemu"),
        only=("workflows",),
    )
    both = [*_workflows(CUDA_MATRIX).values(), *(yaml.safe_load(f.text) for f in two.values())]
    both = [w for w in both if isinstance(w, dict) and "jobs" in w]  # not dependabot.yml
    for workflow in both:
        for job in workflow["jobs"].values():
            used |= {s["uses"] for s in job["steps"] if "uses" in s}
    assert used == pinned  # every action in the table is used, and nothing outside it
    for action in ACTIONS.values():
        assert re.fullmatch(r"[0-9a-f]{40}", action.sha), action.repo
        assert re.fullmatch(r"v\d+\.\d+\.\d+", action.version), action.repo
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", action.verified), action.repo
    # The node24 majors (each checked in the action's own repository; see kit/decide/actions.py).
    majors = {a.repo: int(a.version[1:].split(".")[0]) for a in ACTIONS.values()}
    assert majors == {
        "actions/checkout": 7,
        "docker/metadata-action": 6,
        "docker/setup-buildx-action": 4,
        "docker/login-action": 4,
        "docker/build-push-action": 7,
        "docker/setup-qemu-action": 4,
        "actions/upload-artifact": 7,
        "actions/download-artifact": 8,
    }


def test_docker_builds_share_a_layer_cache_per_environment() -> None:
    jobs = _workflows(CUDA_MATRIX)["docker"]["jobs"]
    for job in jobs.values():
        (build,) = [s for s in job["steps"] if "build-push-action" in s.get("uses", "")]
        scope = "scope=docker-cuda-exercise-${{ matrix.environment }}"
        assert build["with"]["cache-from"] == f"type=gha,{scope}"
        assert build["with"]["cache-to"] == f"type=gha,mode=max,{scope}"
    assert jobs["build"]["steps"][-1]["with"]["push"] is False
    assert jobs["publish"]["steps"][-1]["with"]["push"] is True


def test_disk_is_freed_only_for_cuda_entries() -> None:
    for workflow in _workflows(CUDA_MATRIX).values():
        for job in workflow["jobs"].values():
            (free,) = _steps(job, "Free disk space")
            assert free["if"] == "matrix.cuda != ''" and "/usr/local/lib/android" in free["run"]
            assert job["steps"][0] is free
    for workflow in _workflows(CPU_ONLY).values():
        for job in workflow["jobs"].values():
            assert _steps(job, "Free disk space") == []


# ---------------------------------------------------------------- Apptainer, installed and pushed


def _install_script() -> str:
    job = _workflows(CUDA_MATRIX)["apptainer"]["jobs"]["build"]
    (install,) = _steps(job, "Install Apptainer")
    assert install["env"] == {"APPTAINER_DEB_URL": APPTAINER.url, "APPTAINER_DEB_SHA256": APPTAINER.sha256}
    assert f"/v{APPTAINER.version}/apptainer_{APPTAINER.version}_amd64.deb" in APPTAINER.url
    assert "ppa:" not in install["run"] and "add-apt-repository" not in install["run"]
    return str(install["run"])


def _run_with_stubs(
    script: str, stubs: str, env: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """The step as the runner runs it (`bash -e`), with the named commands replaced by functions."""
    path = tmp_path / "step.sh"
    path.write_text(stubs + "\n" + script)
    return run_command(["bash", "-e", str(path)], env={"PATH": "/usr/bin:/bin", **env}, timeout=30)


def _fake_download(content: str) -> str:
    """A curl that writes `content` to its --output file; sudo and apptainer only say what they'd do."""
    return (
        f'curl() {{ while [ "$1" != --output ]; do shift; done; printf %s "{content}" > "$2"; }}\n'
        'sudo() { echo "sudo $*"; }\napptainer() { echo "apptainer $*"; }'
    )


def test_apptainer_download_with_a_wrong_digest_stops_the_run(tmp_path: Path) -> None:
    script = _install_script()
    env = {
        "RUNNER_TEMP": str(tmp_path),
        "APPTAINER_DEB_URL": APPTAINER.url,
        "APPTAINER_DEB_SHA256": APPTAINER.sha256,
    }
    done = _run_with_stubs(script, _fake_download("not the release"), env, tmp_path)
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr
    assert "sudo apt-get install" not in done.stdout  # nothing was installed


def test_apptainer_download_with_the_right_digest_is_installed(tmp_path: Path) -> None:
    script = _install_script()
    content = "stand-in for the release"
    digest = subprocess.run(
        ["sha256sum"], input=content, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    env = {"RUNNER_TEMP": str(tmp_path), "APPTAINER_DEB_URL": APPTAINER.url, "APPTAINER_DEB_SHA256": digest}
    done = _run_with_stubs(script, _fake_download(content), env, tmp_path)
    assert done.returncode == 0, done.stderr
    deb = tmp_path / f"apptainer_{APPTAINER.version}_amd64.deb"
    assert f"sudo apt-get install -y {deb}" in done.stdout and "apptainer --version" in done.stdout


# ---------------------------------------------------------------- immutable tags (kit.decide.plan's rule)


def test_sif_is_pushed_under_its_moving_tag_and_its_commit_tag(tmp_path: Path) -> None:
    job = _workflows(CUDA_MATRIX)["apptainer"]["jobs"]["publish"]
    (push,) = _steps(job, "Publish")
    env = {
        "IMAGE": "ghcr.io/Owner/Repo",
        "TAG": "gpu-noble-cuda-12",
        "ENVIRONMENT": "gpu",
        "GITHUB_SHA": COMMIT,
    }
    done = _run_with_stubs(push["run"], 'apptainer() { echo "$3"; }', env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        f"oras://ghcr.io/owner/repo:{published_tag('gpu-noble-cuda-12', 'apptainer')}",
        f"oras://ghcr.io/owner/repo:{immutable_tag('gpu', COMMIT, 'apptainer')}",
    ]
    assert done.stdout.split()[1].endswith(":apptainer-gpu-sha-0123456")


def test_docker_image_gets_the_commit_tag_of_the_rule() -> None:
    """docker/metadata-action's `type=sha` writes `<prefix><first 7 hex digits>`."""
    for job in _workflows(CUDA_MATRIX)["docker"]["jobs"].values():
        (meta,) = _steps(job, "Docker meta")
        (sha_rule,) = [line for line in meta["with"]["tags"].splitlines() if line.startswith("type=sha")]
        prefix = re.fullmatch(r"type=sha,prefix=(.*)", sha_rule)  # format: short (the default)
        assert prefix is not None
        assert prefix.group(1).replace("${{ matrix.environment }}", "gpu") + COMMIT[:7] == immutable_tag(
            "gpu", COMMIT
        )


@pytest.mark.parametrize("commit", ["", "abc", "HEAD", "0123456; id", "G" * 40])
def test_immutable_tag_refuses_what_is_not_a_commit(commit: str) -> None:
    with pytest.raises(OptionsError) as info:
        immutable_tag("gpu", commit)
    assert info.value.field == "commit" and info.value.fix

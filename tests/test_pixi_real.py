"""Manifests and locks written by real pixi releases (tests/fixtures/pixi-real/, sources and
licences in its README): `kit inspect`, `kit generate` and `kit check` as a user types them, each
with the one outcome it should give, and a lab build of the one shape the lab can install (an
environment pixi locked empty: nothing to download).

The generate and check runs work in a copy made a git repository, as a user's clone is; the
copy of a repository holding several workspaces keeps them where they were, so each gets
workflows of its own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import kit_cli, lab_image_flags
from test_shapes import LIMIT_S, RUN_ID, docker_build, images  # noqa: F401 (images: a fixture)

from kit.model.discover import find_workspaces
from tests.lab.settings import LabSettings
from tests.lab.shapes import commit

REAL = Path(__file__).resolve().parent / "fixtures" / "pixi-real"
PIXI = REAL / "prefix-dev-pixi"
LESSON = REAL / "reproducible-ml-workflows"

NO_LINUX = (
    "the workspace lists no linux-64 platform (listed: osx-arm64), so no container image can be built from it"
)
NO_LINUX_FIX = 'add "linux-64" to [workspace].platforms, then run `pixi lock`'
NO_LOCK = "no lock file; images cannot be built with `pixi install --locked` until you run `pixi lock` and commit pixi.lock"
DEPRECATED = "is deprecated since pixi 0.71, which declares these on the platform (a rich platform entry)"
KEEP = "keep the table only for a pixi older than 0.71"


def kit(*args: str) -> tuple[int, dict[str, Any]]:
    done = kit_cli(*args, "--json", timeout=LIMIT_S)
    return done.returncode, json.loads(done.stdout)


def repository(tmp_path: Path, source: Path) -> Path:
    """A copy of `source` as a git repository with one commit."""
    repo = tmp_path / source.name
    shutil.copytree(source, repo)
    commit(repo)
    return repo


# folder: (name, manifest, lock version, lock layout, [(environment, CUDA, locked for linux-64)])
INSPECTED = {
    "init": ("hello-world", "pixi.toml", 6, "subdir", [("default", None, True)]),
    "sysreq-pn-lock": (
        "sysreq-platform-restriction-composition",
        "pixi.toml",
        7,
        "named",
        [("default", None, True), ("restricted", None, True)],
    ),
    "rich-cuda-when": ("conditional-dependency-cuda", "pixi.toml", 7, "named", [("default", "12", True)]),
    "rich-only": ("permuted-virtual-packages", "pixi.toml", 7, "named", [("default", "12.0", True)]),
    "source-dependency": ("source-dependency", "pixi.toml", 6, "subdir", [("default", None, True)]),
    "out-of-tree-source": ("out-of-tree-source", "pixi.toml", 6, "subdir", [("default", None, True)]),
    "tasks-osx-only": (
        "tasks-osx-only",
        "pixi.toml",
        6,
        "subdir",
        [("default", None, False), ("extra", None, False)],
    ),
    "docker-pyproject": (
        "docker-project",
        "pyproject.toml",
        6,
        "subdir",
        [("default", None, True), ("prod", None, True)],
    ),
}
SYSREQ_PN_WARNING = (
    f'pixi.toml: [system-requirements] {DEPRECATED} (fix: replace "linux-64" in [workspace].platforms '
    f'with {{ platform = "linux-64", glibc = "2.17" }}; {KEEP})'
)


@pytest.mark.parametrize("folder", sorted(INSPECTED))
def test_inspect_reads_what_pixi_wrote(folder: str) -> None:
    code, out = kit("inspect", str(PIXI / folder))
    result = out["result"]
    environments = [(e["name"], e["cuda"], e["locked_for_linux"]) for e in result["environments"]]
    assert code == 0 and out["errors"] == []
    got = (result["name"], result["manifest"], result["lock_version"], result["lock_layout"], environments)
    assert got == INSPECTED[folder]
    warnings = [w.removeprefix(f"{PIXI / folder}/") for w in result["warnings"]]
    assert warnings == ([SYSREQ_PN_WARNING] if folder == "sysreq-pn-lock" else [])


# folder: what the generated .dockerignore lets into the build context (the install's inputs)
ADMITTED = {
    "init": ["pixi.toml", "pixi.lock", "app/"],
    "sysreq-pn-lock": ["pixi.toml", "pixi.lock", "app/"],
    "rich-cuda-when": ["pixi.toml", "pixi.lock", "app/"],
    "rich-only": ["pixi.toml", "pixi.lock", "app/"],
    # the source package's folder, and (out of tree) the folder its manifest names as its source
    "source-dependency": ["pixi.toml", "pixi.lock", "child-package/", "app/"],
    "out-of-tree-source": ["pixi.toml", "pixi.lock", "build-config/", "source-files/", "app/"],
    # the project the environments install from "." (its package folder; no readme is declared)
    "docker-pyproject": ["pyproject.toml", "pixi.lock", "docker_project/", "app/"],
}


@pytest.mark.parametrize("folder", sorted(ADMITTED))
def test_generate_and_check_take_what_pixi_wrote(tmp_path: Path, folder: str) -> None:
    ws = repository(tmp_path, PIXI / folder)
    code, out = kit("generate", str(ws))
    assert (code, out["ok"], out["errors"]) == (0, True, [])
    # one workspace: the lesson's workflow names (a source package's folder is no workspace)
    written = {c["path"] for c in out["result"]["changes"]}
    assert {".github/workflows/docker.yaml", ".github/workflows/apptainer.yaml"} <= written
    admitted = [line[1:] for line in (ws / ".dockerignore").read_text().splitlines() if line.startswith("!")]
    assert admitted == ADMITTED[folder]
    code, out = kit("check", str(ws))
    findings = [(f["rule"], f["severity"], f["file"]) for f in out["result"]["findings"]]
    expected = [("system-requirements", "warning", "pixi.toml")] if folder == "sysreq-pn-lock" else []
    assert (code, findings) == (0, expected)


def test_a_workspace_without_linux_64_is_refused(tmp_path: Path) -> None:
    """pixi's tasks example: osx-arm64 only (and TOML 1.1): nothing is written, the refusal names
    the file, the field and the fix; kit check has nothing generated to check."""
    ws = repository(tmp_path, PIXI / "tasks-osx-only")
    code, out = kit("generate", str(ws))
    manifest = ws / "pixi.toml"
    message = f"{manifest} [workspace.platforms]: {NO_LINUX} (fix: {NO_LINUX_FIX})"
    assert (code, out["ok"]) == (2, False)
    assert [(e["message"], e["field"], e["fix"]) for e in out["errors"]] == [
        (message, "workspace.platforms", NO_LINUX_FIX)
    ]
    assert sorted(p.name for p in ws.iterdir()) == [".git", ".gitignore", "pixi.lock", "pixi.toml"]
    done = kit_cli("generate", str(ws))
    assert (done.returncode, done.stderr.strip()) == (2, f"kit: error: {message}")
    code, out = kit("check", str(ws))
    assert (code, out["result"]["findings"]) == (0, [])


LESSON_WORKSPACES = (
    "episodes/code/cuda-example",
    "episodes/code/mnist-example/htcondor",
    "episodes/code/mnist-example/slurm",
)


def test_workspaces_in_subfolders_get_workflows_of_their_own(tmp_path: Path) -> None:
    """A lesson repository with three unlocked workspaces below episodes/code/: each is found,
    inspected (no lock: a warning; [system-requirements]: a warning with the rich form),
    generated with workflows named after its folder, and checked from the repository root."""
    repo = repository(tmp_path, LESSON)
    assert find_workspaces(repo) == LESSON_WORKSPACES
    assert find_workspaces(PIXI) == tuple(sorted(INSPECTED))
    cuda_fix = (
        f'replace "linux-64" in [workspace].platforms with {{ platform = "linux-64", cuda = "12" }}; {KEEP}'
    )
    gpu_fix = (
        'add { name = "linux-64-gpu", platform = "linux-64", cuda = "12" } to [workspace].platforms '
        f'and platforms = ["linux-64-gpu"] to [feature.gpu]; {KEEP}'
    )
    for folder, environments, (where, fix) in (
        (LESSON_WORKSPACES[0], [("default", "12", False)], ("system-requirements", cuda_fix)),
        (
            LESSON_WORKSPACES[2],
            [("default", None, False), ("cpu", None, False), ("gpu", "12", False)],
            ("feature.gpu.system-requirements", gpu_fix),
        ),
    ):
        ws = repo / folder
        code, out = kit("inspect", str(ws))
        result = out["result"]
        assert code == 0
        assert [(e["name"], e["cuda"], e["locked_for_linux"]) for e in result["environments"]] == environments
        assert result["warnings"] == [
            f"{ws / 'pixi.lock'}: {NO_LOCK}",
            f"{ws / 'pixi.toml'}: [{where}] {DEPRECATED} (fix: {fix})",
        ]
        code, out = kit("generate", str(ws))
        assert (code, out["result"]["warnings"]) == (0, result["warnings"])
        slug = folder.replace("/", "-")
        written = {c["path"] for c in out["result"]["changes"]}
        assert {
            f".github/workflows/docker-{slug}.yaml",
            f".github/workflows/apptainer-{slug}.yaml",
        } <= written
    code, out = kit("check", str(repo))
    findings = sorted({(f["rule"], f["severity"], f["file"]) for f in out["result"]["findings"]})
    generated = LESSON_WORKSPACES[0], LESSON_WORKSPACES[2]
    assert code == 1  # the def files copy a pixi.lock that is not there yet
    assert findings == sorted(
        [(rule, "error", f"{w}/apptainer.def") for w in generated for rule in ("copy-source",)]
        + [("system-requirements", "warning", f"{w}/pixi.toml") for w in LESSON_WORKSPACES]
        + [
            ("env-locked", "warning", path)
            for w in generated
            for path in (
                f"{w}/Dockerfile",
                f"{w}/apptainer.def",
                f".github/workflows/docker-{w.replace('/', '-')}.yaml",
                f".github/workflows/apptainer-{w.replace('/', '-')}.yaml",
            )
        ]
    )


# ---------------------------------------------------------------- the lab: pixi's `pixi init`


PRINT_PREFIX = 'echo "$CONDA_PREFIX $PIXI_PROJECT_NAME"'


@pytest.mark.docker
@pytest.mark.parametrize("style", ["lesson", "optimized"])
def test_an_environment_locked_empty_builds_with_docker(
    lab: LabSettings,
    docker_client: Any,
    images: list[str],  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    style: str,
) -> None:
    """pixi's `pixi init` workspace as pixi wrote it (lock v6, no platform entry): the image
    installs and activates the empty environment."""
    ws = repository(tmp_path, PIXI / "init")
    done = kit_cli("generate", str(ws), *lab_image_flags(lab), "--style", style, timeout=LIMIT_S)
    assert done.returncode == 0, done.stderr
    tag = f"kit-test-real/init:{style}-{RUN_ID}"
    images.append(tag)
    built = docker_build(lab, ws, tag)
    assert built.returncode == 0, built.stderr[-3000:]
    run = subprocess.run(
        [lab.docker, "run", "--rm", tag, "sh", "-c", PRINT_PREFIX],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (run.returncode, run.stdout) == (0, "/app/.pixi/envs/default hello-world\n"), run.stderr


@pytest.mark.apptainer
def test_an_environment_locked_empty_builds_with_apptainer(
    lab: LabSettings,
    docker_client: Any,
    apptainer_path: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APPTAINER_MKSQUASHFS_ARGS", "-comp lz4")
    ws = repository(tmp_path, PIXI / "init")
    done = kit_cli("generate", str(ws), *lab_image_flags(lab), timeout=LIMIT_S)
    assert done.returncode == 0, done.stderr
    sif = tmp_path / "init.sif"
    for argv in (
        [apptainer_path, "build", str(sif), "apptainer.def"],
        [apptainer_path, "test", str(sif)],
    ):
        step = subprocess.run(argv, cwd=ws, capture_output=True, text=True, timeout=LIMIT_S, check=False)
        assert step.returncode == 0, (argv, step.stderr[-3000:])
    run = subprocess.run(
        [apptainer_path, "run", str(sif), "sh", "-c", PRINT_PREFIX],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (run.returncode, run.stdout) == (0, "/app/.pixi/envs/default hello-world\n"), run.stderr


def test_check_flags_an_out_of_tree_source_the_context_leaves_out(tmp_path: Path) -> None:
    """The package's manifest names its source beside it (`../source-files`): an ignore file
    that lets only the package folder in leaves that source out, and kit check says so."""
    ws = repository(tmp_path, PIXI / "out-of-tree-source")
    assert kit("generate", str(ws))[0] == 0
    ignore = ws / ".dockerignore"
    ignore.write_text(ignore.read_text().replace("!source-files/\n", ""))
    code, out = kit("check", str(ws))
    findings = [
        (f["rule"], f["severity"], f["file"], f["message"], f["fix"]) for f in out["result"]["findings"]
    ]
    what = "path named by source package 'build-config' source-files"
    assert (code, findings) == (
        1,
        [
            (
                "manifest-path",
                "error",
                ".dockerignore",
                f".dockerignore leaves {what} out of the build context",
                "add !source-files to .dockerignore (kit generate does)",
            )
        ],
    )

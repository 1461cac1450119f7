"""The real linters and the kit's own rules, on rendered files and on hand-broken ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kit.api import check, generate
from kit.check import check_files
from kit.check import linters
from kit.check.linters import find_tool
from kit.check.patterns import dockerignore_excludes, path_filter_matches
from kit.cli import main
from kit.workspace import load_workspace

LINTERS = ("hadolint", "zizmor", "check-jsonschema")


def linters_present() -> None:
    missing = [t for t in LINTERS if find_tool(t) is None]
    if missing:
        pytest.skip(f"linters not installed: {', '.join(missing)} (pip install 'pixi-deploy-kit[lint]')")


@pytest.mark.parametrize("style", ["lesson", "optimized"])
def test_real_world_gpu_is_clean_with_every_linter(real_world: Path, style: str, capsys: pytest.CaptureFixture[str]) -> None:
    linters_present()
    generate(real_world, environment="gpu", environments=("cpu",), style=style)
    findings = check(real_world)
    assert findings == [], "\n".join(f.one_line() for f in findings)
    assert main(["check", str(real_world), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"ok": True, "command": "check", "result": {"findings": []}, "errors": []}


def test_zizmor_and_hadolint_really_run(real_world: Path) -> None:
    """A deliberately bad workflow and Dockerfile must produce the linters' own findings."""
    linters_present()
    ws = load_workspace(real_world)
    files = {
        "Dockerfile": "FROM ubuntu\nRUN apt-get install curl\n",
        ".github/workflows/docker.yaml": "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                                         "      - uses: actions/checkout@v4\n"
                                         "      - run: echo ${{ github.event.head_commit.message }}\n",
    }
    found = {(f.tool, f.rule) for f in check_files(ws, files)}
    assert ("hadolint", "DL3006") in found
    assert ("zizmor", "unpinned-uses") in found and ("zizmor", "artipacked") in found


def test_missing_linter_is_a_skipped_finding(real_world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linters, "find_tool", lambda name: None)
    ws = load_workspace(real_world)
    findings = check_files(ws, {"Dockerfile": "FROM ubuntu:24.04\n"})
    skipped = [f for f in findings if f.severity == "skipped"]
    assert [f.tool for f in skipped] == ["hadolint"] and "pip install" in skipped[0].fix


def rules(findings: list) -> set[str]:  # type: ignore[type-arg]
    return {f.rule for f in findings if f.tool in ("kit", "apptainer-def")}


def test_kit_rules_catch_broken_files(real_world: Path) -> None:
    ws = load_workspace(real_world)
    files = {
        "Dockerfile": 'ARG CUDA_VERSION="11"\nARG ENVIRONMENT="gpu"\nFROM x:1 AS b\nARG CUDA_VERSION\n'
                      "ENV CONDA_OVERRIDE_CUDA=$CUDA_VERSION\nCOPY pixi.toml pixi.lock ./\nCOPY ./app /app/src\n",
        ".dockerignore": "*\n!pixi.toml\n",
        ".gitignore": "pixi.lock\n",
        "apptainer.def": "Bootstrap: docker\nFrom: x:1\n%arguments\nENVIRONMENT=nope\n%files from elsewhere\n/a /b\n",
        ".github/workflows/docker.yaml": "on:\n  push:\n    paths: ['Dockerfile']\njobs: {}\n",
    }
    found = rules(check_files(ws, files))
    assert {"cuda-override", "dockerignore", "lock-ignored", "app-dir", "env-exists",
            "unknown-stage", "path-filters"} <= found


def test_unlocked_environment_is_an_error(real_world: Path) -> None:
    lock = real_world / "pixi.lock"
    lock.write_text(lock.read_text().replace("  gpu:\n", "  gpu-old:\n", 1))
    ws = load_workspace(real_world)
    files = {"Dockerfile": 'ARG CUDA_VERSION="12"\nARG ENVIRONMENT="gpu"\nFROM x:1\nARG CUDA_VERSION\nENV CONDA_OVERRIDE_CUDA=$CUDA_VERSION\n'}
    assert "env-locked" in rules(check_files(ws, files))


def test_example_without_lock_warns_and_errors_on_missing_lock(example: Path) -> None:
    generate(example, environment="gpu")
    found = check(example)
    assert any(f.rule == "env-locked" and f.severity == "warning" for f in found)
    assert any(f.rule == "copy-source" and "pixi.lock" in f.message for f in found)


@pytest.mark.parametrize("patterns,path,excluded", [
    (["*", "!pixi.toml", "!app/"], "app/x/y.py", False),
    (["*", "!pixi.toml"], "pixi.lock", True),
    ([".pixi"], ".pixi/envs/gpu/bin/python", True),
    (["**/*.sif"], "a/b/c.sif", True),
    (["*", "!app", "app/secret"], "app/secret", True),
])
def test_dockerignore_semantics(patterns: list[str], path: str, excluded: bool) -> None:
    assert dockerignore_excludes(patterns, path) is excluded


@pytest.mark.parametrize("filters,path,hit", [
    (["cuda-exercise/app/**"], "cuda-exercise/app/a/b.py", True),
    (["cuda-exercise/*"], "cuda-exercise/app/a.py", False),
    (["**", "!docs/**"], "docs/x.md", False),
])
def test_path_filter_semantics(filters: list[str], path: str, hit: bool) -> None:
    assert path_filter_matches(filters, path) is hit


def test_shutil_which_is_not_required_for_venv_tools() -> None:
    assert find_tool("python") is not None and shutil.which("definitely-not-a-tool") is None


def test_def_file_cuda_argument_is_checked(real_world: Path) -> None:
    ws = load_workspace(real_world)
    text = ("Bootstrap: docker\nFrom: x:1\nStage: build\n\n%arguments\nENVIRONMENT=gpu\nCUDA_VERSION=11\n\n"
            "%post\nexport CONDA_OVERRIDE_CUDA={{ CUDA_VERSION }}\n")
    found = [f for f in check_files(ws, {"apptainer.def": text}) if f.rule == "cuda-override"]
    assert len(found) == 1 and "older than" in found[0].message
    fixed = text.replace("CUDA_VERSION=11", "CUDA_VERSION=12")
    assert not [f for f in check_files(ws, {"apptainer.def": fixed}) if f.rule == "cuda-override"]

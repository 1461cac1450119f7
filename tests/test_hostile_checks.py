"""`kit check` on odd files: an error-level finding that names the file (exit 1), never a refusal,
a traceback or a hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile_helpers import (
    Run,
    changed,
    kit,
    kit_process,
    snapshot,
)

# == kit check on odd files (no traceback, no hang) =============================================================

# case: (the file, its odd bytes, the rule of the error-level finding that names the file)
CHECK_CASES: dict[str, tuple[str, bytes, str]] = {
    "dockerignore-bad-class": (".dockerignore", b"*\n!pixi.toml\n[z-a]\n", "dockerignore-pattern"),
    "dockerignore-unclosed": (".dockerignore", b"*\n!pixi.toml\napp/[\n", "dockerignore-pattern"),
    "workflow-matrix-from-json": (
        ".github/workflows/docker.yaml",
        b"name: x\non: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n"
        b"    strategy:\n      matrix: ${{ fromJSON(vars.MATRIX) }}\n"
        b"    steps:\n      - run: echo ${{ matrix.env }}\n",
        "template-injection",
    ),
    "workflow-paths-bad-class": (
        ".github/workflows/docker.yaml",
        b"name: x\non:\n  push:\n    paths: ['[z-a]', 'app/[']\njobs: {}\n",
        "path-filter-pattern",
    ),
    "workflow-a-list": (".github/workflows/docker.yaml", b"- 1\n- 2\n", "github-workflow"),
    "workflow-scalar": (".github/workflows/docker.yaml", b"just text\n", "github-workflow"),
    "workflow-alias-bomb": (
        ".github/workflows/docker.yaml",
        b"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\njobs: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
        "yaml-parse",
    ),
    "workflow-non-utf-8": (".github/workflows/docker.yaml", b"name: \xff\xfe\n", "file-read"),
    "workflow-jobs-integer": (
        ".github/workflows/docker.yaml",
        b"name: x\non: push\njobs: 5\n",
        "github-workflow",
    ),
    "workflow-deep-nesting": (
        ".github/workflows/docker.yaml",
        b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "yaml-parse",
    ),
    "dockerfile-binary": ("Dockerfile", bytes(range(256)), "file-read"),
    "def-binary": ("apptainer.def", b"\x00\xff" * 100, "file-read"),
    "def-unknown-sections": (
        "apptainer.def",
        b"Bootstrap: docker\nFrom: x\n%evil\n%post\n",
        "unknown-section",
    ),
}


def assert_found(done: Run, name: str, rule: str) -> None:
    """`kit check` read the odd file and reported it: exit 1 (error-level findings, not a
    refusal), nothing on stderr, and an error of `rule` that names the file."""
    assert (done.code, done.err) == (1, ""), done
    assert "Traceback" not in done.out
    lines = [line for line in done.out.splitlines() if line.startswith("error ")]
    assert any(f"/{rule} {name}" in line for line in lines), done.out


@pytest.mark.parametrize("case", sorted(CHECK_CASES))
def test_check_on_odd_files(capsys: pytest.CaptureFixture[str], tree: Path, case: str) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    name, body, rule = CHECK_CASES[case]
    (repo / name).write_bytes(body)
    before = snapshot(tree)
    assert_found(kit_process("check", repo, timeout=120), name, rule)
    assert changed(before, snapshot(tree)) == set()


@pytest.mark.parametrize("name", ["Dockerfile", ".github/workflows/docker.yaml"])
def test_check_on_a_fifo_does_not_hang(capsys: pytest.CaptureFixture[str], tree: Path, name: str) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    (repo / name).unlink()
    os.mkfifo(repo / name)
    done = kit_process("check", repo, timeout=60)
    assert_found(done, name, "file-read")
    assert "is a FIFO, not a regular file" in done.out

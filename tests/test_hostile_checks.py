"""`kit check` on odd files: findings or one line, no traceback, no hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile_helpers import (
    changed,
    kit,
    kit_process,
    one_line,
    snapshot,
)

# == kit check on odd files (no traceback, no hang) =============================================================

CHECK_CASES: dict[str, tuple[str, bytes]] = {
    "dockerignore-bad-class": (".dockerignore", b"*\n!pixi.toml\n[z-a]\n"),
    "dockerignore-unclosed": (".dockerignore", b"*\n!pixi.toml\napp/[\n"),
    "workflow-matrix-from-json": (
        ".github/workflows/docker.yaml",
        b"name: x\non: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n"
        b"    strategy:\n      matrix: ${{ fromJSON(vars.MATRIX) }}\n"
        b"    steps:\n      - run: echo ${{ matrix.env }}\n",
    ),
    "workflow-paths-bad-class": (
        ".github/workflows/docker.yaml",
        b"name: x\non:\n  push:\n    paths: ['[z-a]', 'app/[']\njobs: {}\n",
    ),
    "workflow-a-list": (".github/workflows/docker.yaml", b"- 1\n- 2\n"),
    "workflow-scalar": (".github/workflows/docker.yaml", b"just text\n"),
    "workflow-alias-bomb": (
        ".github/workflows/docker.yaml",
        b"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\njobs: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
    ),
    "workflow-non-utf-8": (".github/workflows/docker.yaml", b"name: \xff\xfe\n"),
    "workflow-jobs-integer": (".github/workflows/docker.yaml", b"name: x\non: push\njobs: 5\n"),
    "workflow-deep-nesting": (".github/workflows/docker.yaml", b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n"),
    "dockerfile-binary": ("Dockerfile", bytes(range(256))),
    "def-binary": ("apptainer.def", b"\x00\xff" * 100),
    "def-unknown-sections": ("apptainer.def", b"Bootstrap: docker\nFrom: x\n%evil\n%post\n"),
}


@pytest.mark.parametrize("case", sorted(CHECK_CASES))
def test_check_on_odd_files(capsys: pytest.CaptureFixture[str], tree: Path, case: str) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    name, body = CHECK_CASES[case]
    (repo / name).write_bytes(body)
    before = snapshot(tree)
    done = kit_process("check", repo, timeout=120)
    assert done.code in (1, 2), done
    assert "Traceback" not in done.out + done.err
    if done.code == 2:
        one_line(done, 2)
    assert changed(before, snapshot(tree)) == set()


@pytest.mark.parametrize("name", ["Dockerfile", ".github/workflows/docker.yaml"])
def test_check_on_a_fifo_does_not_hang(capsys: pytest.CaptureFixture[str], tree: Path, name: str) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    (repo / name).unlink()
    os.mkfifo(repo / name)
    done = kit_process("check", repo, timeout=60)
    assert done.code in (1, 2) and "Traceback" not in done.err, done

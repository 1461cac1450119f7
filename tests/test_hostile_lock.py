"""Hostile lock files: odd bytes, and locks that are not small regular files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile_helpers import (
    LOCK,
    changed,
    kit_process,
    one_line,
    snapshot,
)

# == lock ===============================================================================================

LOCK_CASES: dict[str, bytes] = {
    "empty": b"",
    "version-only": b"version: 6\n",
    "no-version": b"environments: {}\npackages: []\n",
    "version-huge": b"version: 99999999999999999999\nenvironments: {}\npackages: []\n",
    "version-negative": b"version: -1\nenvironments: {}\npackages: []\n",
    "latin-1": LOCK.replace("Public-Domain", "\xe4").encode("latin-1"),
    "binary-garbage": bytes(range(256)) * 16,
    "nested-5000-deep": b"version: 6\nenvironments: " + b"[" * 5000 + b"]" * 5000 + b"\npackages: []\n",
    "yaml-alias-bomb": b"version: 6\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    b"environments: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\npackages: []\n",
    "environments-list": b"version: 6\nenvironments: [1, 2]\npackages: []\n",
    "package-url-injection": LOCK.replace("tzdata-2025b", "tzdata-2025b\nRUN id").encode(),
}


@pytest.mark.parametrize("case", sorted(LOCK_CASES))
def test_odd_lock_bytes(tree: Path, case: str) -> None:
    repo = tree / "repo"
    (repo / "pixi.lock").write_bytes(LOCK_CASES[case])
    before = snapshot(tree)
    run = kit_process("generate", repo, timeout=60)
    one_line(run, 2, "pixi.lock")
    assert changed(before, snapshot(tree)) == set()


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder", "dangling-link", "sparse-300-MiB"])
def test_lock_that_is_not_a_small_file_does_not_hang(tree: Path, kind: str) -> None:
    repo = tree / "repo"
    lock = repo / "pixi.lock"
    lock.unlink()
    if kind == "fifo":
        os.mkfifo(lock)
    elif kind == "dev-zero":
        lock.symlink_to("/dev/zero")
    elif kind == "folder":
        lock.mkdir()
    elif kind == "dangling-link":
        lock.symlink_to(tree / "gone.lock")
    else:
        with lock.open("wb") as handle:
            handle.write(b"version: 6\n")
            handle.truncate(300 * 1024 * 1024)
    before = snapshot(tree)
    run = kit_process("inspect", repo, timeout=30)
    one_line(run, 2, "pixi.lock")
    assert changed(before, snapshot(tree)) == set()

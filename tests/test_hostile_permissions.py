"""Folders the kit cannot write: immutable ones (root ignores permission bits) and another user's
unreadable or read-only ones; all or nothing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import OtherUser, need
from hostile_helpers import (
    as_nobody,
    changed,
    kit,
    kit_process,
    named_path,
    one_line,
    refused_everywhere,
    snapshot,
    temps,
    workspace,
)

# == immutable and read-only folders (root ignores permission bits: chattr +i) ==========================


def chattr_works(path: Path) -> bool:
    probe = path / "chattr-probe"
    probe.mkdir()
    try:
        ok = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, check=False).returncode == 0
    except FileNotFoundError:
        return False
    if ok:
        subprocess.run(["chattr", "-i", str(probe)], check=False)
    probe.rmdir()
    return ok


@pytest.fixture
def immutable(tree: Path) -> Iterator[Callable[[Path], None]]:
    need(chattr_works(tree), "chattr +i is not available here (needs root and ext4/xfs)")
    marked: list[Path] = []

    def mark(path: Path) -> None:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        marked.append(path)

    yield mark
    for path in reversed(marked):
        subprocess.run(["chattr", "-i", str(path)], check=False)


@pytest.mark.parametrize("which", [".github/workflows", "app", "repo", "Dockerfile", "out"])
def test_immutable_place_writes_nothing(
    capsys: pytest.CaptureFixture[str], tree: Path, immutable: Callable[[Path], None], which: str
) -> None:
    """A write error part-way through leaves no file written and no temporary file."""
    repo = tree / "repo"
    args: list[object] = ["generate", repo]
    if which == "Dockerfile":  # the kit's own older Dockerfile, now immutable
        assert kit(capsys, "generate", repo, "--style", "optimized").code == 0
        immutable(repo / "Dockerfile")
    elif which == "out":
        (tree / "out").mkdir()
        immutable(tree / "out")
        args += ["--out", tree / "out"]
    elif which == "repo":
        immutable(repo)
    else:
        (repo / which).mkdir(parents=True, exist_ok=True)
        if which == "app":
            (repo / "app" / "torch_detect_GPU.py").unlink()
        immutable(repo / which)
    run = refused_everywhere(
        capsys, tree, *args, expect="[write]: cannot be written: Operation not permitted"
    )
    place = {"Dockerfile": repo / "Dockerfile", "out": tree / "out", "repo": repo}.get(which, repo / which)
    named = named_path(run)
    assert named == place if which == "Dockerfile" else named.parent == place, run
    assert temps(tree) == []


def test_immutable_state_file_rolls_back_every_file(
    capsys: pytest.CaptureFixture[str], tree: Path, immutable: Callable[[Path], None]
) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    immutable(repo / ".kit-state.json")
    refused_everywhere(
        capsys,
        tree,
        "generate",
        repo,
        "--style",
        "optimized",
        expect=".kit-state.json [write]: cannot be written: Operation not permitted",
    )
    assert temps(tree) == []


@pytest.mark.parametrize(
    "case",
    [
        "unreadable-workspace",
        "unreadable-manifest",
        "unreadable-lock",
        "read-only-workspace",
        "unreadable-github",
        "read-only-github",
        "unreadable-app",
        "read-only-out",
    ],
)
def test_permissions_as_another_user(shared_tmp: Path, nobody: OtherUser, case: str) -> None:
    ws = workspace(shared_tmp / "ws")
    out = shared_tmp / "out"
    out.mkdir()
    (ws / ".github" / "workflows").mkdir(parents=True)
    as_nobody(shared_tmp)
    subprocess.run(["chown", "root:root", str(out)], check=True)  # nobody cannot write there
    mode_of = {
        "unreadable-workspace": (ws, 0o000),
        "unreadable-manifest": (ws / "pixi.toml", 0o000),
        "unreadable-lock": (ws / "pixi.lock", 0o000),
        "read-only-workspace": (ws, 0o555),
        "unreadable-github": (ws / ".github", 0o000),
        "read-only-github": (ws / ".github" / "workflows", 0o555),
        "unreadable-app": (ws / "app", 0o000),
        "read-only-out": (out, 0o555),
    }
    path, mode = mode_of[case]
    path.chmod(mode)
    before = snapshot(shared_tmp)
    args: list[object] = ["generate", ws] + (["--out", out] if case == "read-only-out" else [])
    run = kit_process(*args, user=nobody, cwd=shared_tmp)
    # What the one line names (the place itself, or a file in it) and what it says.
    place, itself, words = {
        "unreadable-workspace": (ws, True, "[dir]: is not a readable directory"),
        "unreadable-manifest": (ws / "pixi.toml", True, "[toml]: cannot be read: Permission denied"),
        "unreadable-lock": (ws / "pixi.lock", True, "[lock]: cannot be read: Permission denied"),
        "read-only-workspace": (ws, False, "[write]: cannot be written: Permission denied"),
        "unreadable-github": (
            ws / ".github" / "workflows",
            True,
            "[path]: cannot be read: Permission denied",
        ),
        "read-only-github": (
            ws / ".github" / "workflows",
            False,
            "[write]: cannot be written: Permission denied",
        ),
        "unreadable-app": (ws / "app", False, "[write]: cannot be written: Permission denied"),
        "read-only-out": (out, False, "[write]: cannot be written: Permission denied"),
    }[case]
    one_line(run, 2, words)
    assert (named_path(run) if itself else named_path(run).parent) == place, run
    assert changed(before, snapshot(shared_tmp)) == set()

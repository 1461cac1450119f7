"""The build context: only what `.dockerignore` admits, links kept inside, odd entries refused."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import OtherUser
from hostile_helpers import (
    ENV,
    as_nobody,
    changed,
    kit,
    kit_process,
    one_line,
    refused_everywhere,
    snapshot,
    stage,
    workspace,
)

# == staging (the build context) =============================================================================


def test_staging_copies_only_what_dockerignore_admits(tree: Path) -> None:
    repo = tree / "repo"
    (repo / "data").mkdir()
    (repo / "data" / "big.bin").write_bytes(b"0" * 4096)
    (repo / "notes.txt").write_text("private\n")
    (repo / ".env").write_text("TOKEN=x\n")
    (repo / "app" / "main.py").write_text("print('hi')\n")
    before = snapshot(tree)
    context = stage(repo, tree / "ctx")
    staged = set(snapshot(context))
    assert {"pixi.toml", "pixi.lock", "Dockerfile", ".dockerignore", "app/main.py"} <= staged
    assert not {"data", "data/big.bin", "notes.txt", ".env", ".git"} & staged
    assert changed(before, snapshot(tree)) == {"ctx"} | {f"ctx/{p}" for p in staged}


def test_staging_for_apptainer_copies_the_def_sources(tree: Path) -> None:
    repo = tree / "repo"
    (repo / "data").mkdir()
    (repo / "data" / "big.bin").write_bytes(b"0" * 4096)
    staged = set(snapshot(stage(repo, tree / "ctx", "apptainer")))
    assert {"pixi.toml", "pixi.lock", "apptainer.def", "app/torch_detect_GPU.py"} <= staged
    assert "data" not in staged


def test_staging_keeps_links_inside_the_context(tree: Path) -> None:
    repo = tree / "repo"
    (repo / "app" / "lib.py").write_text("X = 1\n")
    (repo / "app" / "alias.py").symlink_to("lib.py")
    context = stage(repo, tree / "ctx")
    assert (context / "app" / "alias.py").is_symlink() and os.readlink(
        context / "app" / "alias.py"
    ) == "lib.py"


@pytest.mark.parametrize(
    "case",
    [
        "absolute-outside",
        "relative-outside",
        "absolute-inside",
        "dangling",
        "loop",
        "folder-outside",
        "probe-dangling",
    ],
)
def test_staging_refuses_links_that_leave_or_break(
    capsys: pytest.CaptureFixture[str], tree: Path, case: str
) -> None:
    """`kit build` stops before any engine runs: exit 2, one line, nothing built or written."""
    app = tree / "repo" / "app"
    link = app / "creds"
    if case == "absolute-outside":
        link.symlink_to(tree / "outside" / "id_ed25519")
    elif case == "relative-outside":
        link.symlink_to("../../outside/id_ed25519")
    elif case == "absolute-inside":
        link.symlink_to(app / "torch_detect_GPU.py")
    elif case == "dangling":
        link.symlink_to("missing.py")
    elif case == "loop":
        link.symlink_to("creds2")
        (app / "creds2").symlink_to("creds")
    elif case == "folder-outside":
        link.symlink_to(tree / "outside")
    else:
        (app / "torch_detect_GPU.py").unlink()
        (app / "torch_detect_GPU.py").symlink_to("../../../kit/probe/torch_detect_GPU.py")
    run = refused_everywhere(capsys, tree, "build", tree / "repo", expect="app/")
    assert "PRIVATE KEY" not in run.err


def test_staging_skips_fifos_and_does_not_hang(tree: Path) -> None:
    os.mkfifo(tree / "repo" / "app" / "pipe")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from kit import api; from kit.output import staging; "
            "staging.stage_build_context(api.prepare(Path(sys.argv[1])), Path(sys.argv[2]))",
            str(tree / "repo"),
            str(tree / "ctx"),
        ],
        timeout=60,
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not os.path.lexists(tree / "ctx" / "app" / "pipe")


def test_staging_a_very_deep_tree() -> None:
    """1100 nested folders: deeper than Python's recursion limit, copied all the same. In a folder
    of its own, removed with `rm -rf` (pytest's clean-up of tmp_path would recurse and fail)."""
    base = Path(tempfile.mkdtemp(prefix="kit-hostile-deep-"))
    try:
        repo = workspace(base / "repo")
        depth = 1100
        fd = os.open(repo / "app", os.O_RDONLY)
        try:
            for _ in range(depth):  # one level at a time, relative to the last (paths stay short)
                os.mkdir("d", dir_fd=fd)
                new = os.open("d", os.O_RDONLY, dir_fd=fd)
                os.close(fd)
                fd = new
            os.close(os.open("leaf.py", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
        finally:
            os.close(fd)
        context = stage(repo, base / "ctx")
        assert (context / "app" / "/".join(["d"] * depth) / "leaf.py").exists()
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_staging_leaves_temporary_and_state_files_behind(
    capsys: pytest.CaptureFixture[str], tree: Path
) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    (repo / "app" / ".kit-tmp-x.py.0123456789ab").write_text("half\n")
    staged = set(snapshot(stage(repo, tree / "ctx")))
    assert not any(".kit-tmp-" in p or p == ".kit-state.json" for p in staged)


@pytest.mark.parametrize("pattern", ["[z-a]", "app/[", "[abc", "!data/[9-0]*"])
def test_bad_glob_class_in_dockerignore(pattern: str) -> None:
    from kit.base.errors import UserError
    from kit.engines.context import dockerignore_matcher

    with pytest.raises(UserError, match="pattern"):
        dockerignore_matcher(f"*\n!pixi.toml\n{pattern}\n")


@pytest.mark.parametrize(
    "pattern,path,excluded",
    [
        ("*", "a", True),
        ("*\n!app/", "app/x.py", False),
        ("**/*.pyc", "app/x/y.pyc", True),
        ("data", "data/x", True),
        ("[a-c]*", "b1", True),
        ("\\*", "*", True),
        ("\\*", "a", False),
        ("[^a]", "b", True),
        ("[^a]", "a", False),
        ("app/\n!app/keep", "app/keep", False),
    ],
)
def test_dockerignore_matches_like_docker(pattern: str, path: str, excluded: bool) -> None:
    from kit.engines.context import dockerignore_matcher

    assert dockerignore_matcher(pattern).matches(path) is excluded


def test_unreadable_folder_in_the_context(shared_tmp: Path, nobody: OtherUser) -> None:
    ws = workspace(shared_tmp / "ws")
    (ws / "app" / "private").mkdir()
    as_nobody(shared_tmp)
    (ws / "app" / "private").chmod(0o000)
    before = snapshot(shared_tmp)
    run = kit_process("build", ws, user=nobody, cwd=shared_tmp)
    one_line(run, 2, "private")
    assert changed(before, snapshot(shared_tmp)) == set()

"""Where `kit generate` writes: confined to the workspace and `.github/`, never through a link, never
over an odd file; `--subdir` and `--out`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hostile_helpers import (
    changed,
    kit,
    kit_process,
    one_line,
    refused_everywhere,
    snapshot,
    temps,
    workspace,
)

# == file system: confinement ===========================================================================


def allowed(rel: str, prefix: str = "") -> bool:
    """Where `kit generate` may write, relative to the tmp tree: the workspace, repo/.github, state."""
    return rel.startswith(f"repo/{prefix}") or rel.startswith("repo/.github") or rel == "repo/.kit-state.json"


def test_generate_writes_only_in_allowed_places(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    before = snapshot(tree)
    run = kit(capsys, "generate", tree / "repo")
    assert run.code == 0, run
    touched = changed(before, snapshot(tree))
    assert touched and all(allowed(p) for p in touched), touched
    assert temps(tree) == []


@pytest.mark.parametrize(
    "subdir", ["x/y/z", "/etc", "..", "../repo", "repo", ".", "./", "x", "a\nb", "//", "x/../..", "\\etc"]
)
def test_subdir_must_match_where_the_workspace_is(
    capsys: pytest.CaptureFixture[str], tree: Path, subdir: str
) -> None:
    """The workspace is the repository root: '.' and './' name that root (as '' does) and plan
    exactly what no --subdir plans; any other --subdir, '//' (an absolute path) included, is
    refused in one line naming the field, and nothing changes."""
    repo = tree / "repo"
    if subdir in (".", "./"):
        plain = kit(capsys, "generate", repo, "--diff", "--json")
        given = kit(capsys, "generate", repo, "--subdir", subdir, "--diff", "--json")
        assert (plain.code, given.code, given.err) == (0, 0, ""), given
        assert json.loads(given.out)["result"] == json.loads(plain.out)["result"]
        return
    refused_everywhere(capsys, tree, "generate", repo, "--subdir", subdir, expect="[subdir]")


def test_subdir_of_a_nested_workspace(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    ws = workspace(repo / "lab" / "ws")
    refused_everywhere(capsys, tmp_path, "generate", ws, "--subdir", "ws", expect="subdir")
    refused_everywhere(capsys, tmp_path, "generate", ws, "--subdir", "other/ws", expect="subdir")
    refused_everywhere(capsys, tmp_path, "check", ws, "--subdir", "x/y/z", expect="subdir")
    before = snapshot(tmp_path)
    assert kit(capsys, "generate", ws, "--subdir", "lab/ws").code == 0
    touched = changed(before, snapshot(tmp_path))
    assert all(
        p.startswith(("repo/lab/ws/", "repo/.github/")) or p in ("repo/.kit-state.json", "repo/.github")
        for p in touched
    ), touched


@pytest.mark.parametrize(
    "pyproject",
    [
        b"x = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",  # deeper than the TOML parser recurses
        b"\xff\xfe not utf-8\n",
        b"[tool.pixi\n",
    ],
    ids=["nested-100000-deep", "not-utf-8", "not-toml"],
)
def test_a_hostile_pyproject_elsewhere_in_the_repository(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pyproject: bytes
) -> None:
    """Looking for a repository's other workspaces reads every pyproject.toml below the root: a
    bad one there is not a workspace, and neither generate nor check on the root trips on it."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    workspace(repo / "ws")
    (repo / "vendored").mkdir()
    (repo / "vendored" / "pyproject.toml").write_bytes(pyproject)
    generated = kit(capsys, "generate", repo / "ws")
    assert (generated.code, generated.err) == (0, ""), generated
    checked = kit(capsys, "check", repo)
    assert (checked.code, checked.out, checked.err) == (0, "no findings\n", ""), checked


SYMLINKED = [
    "app",
    ".github",
    ".github/workflows",
    ".gitignore",
    ".gitattributes",
    "Dockerfile",
    ".dockerignore",
    "apptainer.def",
    ".github/workflows/docker.yaml",
]


@pytest.mark.parametrize("name", SYMLINKED)
def test_never_writes_through_a_symlink(capsys: pytest.CaptureFixture[str], tree: Path, name: str) -> None:
    """A link in the workspace to a private key or an outside folder: refused, the target untouched."""
    repo = tree / "repo"
    target = repo / name
    if target.exists():
        (tree / "outside" / "moved").mkdir(exist_ok=True)
        os.rename(target, tree / "outside" / "moved" / target.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    is_folder = name in ("app", ".github", ".github/workflows")
    target.symlink_to(tree / "outside" if is_folder else tree / "outside" / "id_ed25519")
    run = refused_everywhere(capsys, tree, "generate", repo, expect="link")
    assert "PRIVATE KEY" not in run.out + run.err


@pytest.mark.parametrize("name", [".gitignore", "Dockerfile"])
def test_diff_never_shows_a_linked_file(capsys: pytest.CaptureFixture[str], tree: Path, name: str) -> None:
    (tree / "repo" / name).symlink_to(tree / "outside" / "id_ed25519")
    run = refused_everywhere(capsys, tree, "generate", tree / "repo", "--diff", expect="link")
    assert "PRIVATE KEY" not in run.out + run.err


@pytest.mark.parametrize("name", ["Dockerfile", "apptainer.def", ".github/workflows/docker.yaml"])
def test_dangling_link_in_place_of_a_recipe(
    capsys: pytest.CaptureFixture[str], tree: Path, name: str
) -> None:
    target = tree / "repo" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(tree / "outside" / "created-by-the-kit")
    refused_everywhere(capsys, tree, "generate", tree / "repo", expect="link")
    assert not (tree / "outside" / "created-by-the-kit").exists()


@pytest.mark.parametrize(
    "name,kind",
    [
        (".github", "file"),
        (".github/workflows", "file"),
        ("app", "file"),
        ("Dockerfile", "folder"),
        ("apptainer.def", "folder"),
        (".gitignore", "folder"),
        (".gitattributes", "folder"),
        (".github/workflows/docker.yaml", "folder"),
    ],
)
def test_wrong_kind_of_entry(capsys: pytest.CaptureFixture[str], tree: Path, name: str, kind: str) -> None:
    target = tree / "repo" / name
    if target.is_dir():
        import shutil

        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "file":
        target.write_text("not a folder\n")
    else:
        (target / "inside").mkdir(parents=True)
    why = (
        "is a regular file, but the kit needs a folder here"
        if kind == "file"
        else "is a folder, not a file the kit can replace"
    )
    refused_everywhere(capsys, tree, "generate", tree / "repo", expect=f"repo/{name} [path]: {why}")


@pytest.mark.parametrize(
    "name,kind",
    [
        ("Dockerfile", "fifo"),
        (".gitignore", "fifo"),
        ("Dockerfile", "dev-zero"),
        (".kit-state.json", "fifo"),
        (".kit-state.json", "dev-zero"),
    ],
)
def test_fifo_or_device_in_place_of_a_written_file(tree: Path, name: str, kind: str) -> None:
    target = tree / "repo" / name
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    before = snapshot(tree)
    run = kit_process("generate", tree / "repo", timeout=30)
    one_line(run, 2, name)
    assert changed(before, snapshot(tree)) == set()


@pytest.mark.parametrize("name", ["Dockerfile", ".gitignore", ".github/workflows/docker.yaml"])
def test_huge_or_binary_existing_file(capsys: pytest.CaptureFixture[str], tree: Path, name: str) -> None:
    target = tree / "repo" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"\xff\xfe binary \x00\n")
    refused_everywhere(capsys, tree, "generate", tree / "repo", expect=name.rsplit("/", 1)[-1])
    with target.open("wb") as handle:
        handle.truncate(40 * 1024 * 1024)
    refused_everywhere(capsys, tree, "generate", tree / "repo", expect="MiB")


# == file system: --out ===================================================================================


def test_out_is_a_file(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    (tree / "outfile").write_text("x\n")
    refused_everywhere(capsys, tree, "generate", tree / "repo", "--out", tree / "outfile", expect="out")


def test_out_below_a_file(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    (tree / "outfile").write_text("x\n")
    refused_everywhere(
        capsys,
        tree,
        "generate",
        tree / "repo",
        "--out",
        tree / "outfile" / "deeper",
        expect="outfile/deeper [out]: cannot be used: Not a directory",
    )


def test_out_in_a_read_only_place(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    refused_everywhere(capsys, tree, "generate", tree / "repo", "--out", "/proc/sys/kit-out")


def test_out_writes_only_below_out(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    before = snapshot(tree)
    assert kit(capsys, "generate", tree / "repo", "--out", tree / "out").code == 0
    touched = changed(before, snapshot(tree))
    assert touched and all(p == "out" or p.startswith("out/") for p in touched), touched


def test_out_with_a_linked_github_folder(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    (tree / "out").mkdir()
    (tree / "out" / ".github").symlink_to(tree / "outside")
    refused_everywhere(capsys, tree, "generate", tree / "repo", "--out", tree / "out", expect="link")


@pytest.mark.parametrize("folder", ["my ws", "a;b", "x/$(id)"])
def test_a_workspace_folder_the_workflows_cannot_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, folder: str
) -> None:
    """No --subdir given, but the folder found from the repository root cannot go into workflow
    paths: one line that blames the folder (not a flag the user never passed), nothing written."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    ws = workspace(repo / folder)
    before = snapshot(tmp_path)
    run = kit(capsys, "generate", ws)
    one_line(run, 2, "the workspace's folder")
    assert "[subdir]" in run.err and "rename" in run.err
    assert not changed(before, snapshot(tmp_path))

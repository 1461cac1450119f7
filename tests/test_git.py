"""kit.base.git: the one module that starts git, asked only when a rendered file needs it, and
never steered by the repository it reads."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from learner_repo import REMOTE, make_clone, plain_git

from kit import api
from kit.base import git


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A learner's repository: the example in `cuda-exercise/`, one commit, a GitHub remote."""
    return make_clone(tmp_path)


@pytest.fixture
def git_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """Every git command the kit starts, by its arguments (through the one runner)."""
    calls: list[tuple[str, ...]] = []
    real = git.run

    def counted(directory: Path, *args: str) -> str:
        calls.append(args)
        return real(directory, *args)

    monkeypatch.setattr(git, "run", counted)
    return calls


def test_prepare_and_render_without_job_files_start_no_git(
    clone: Path, git_calls: list[tuple[str, ...]]
) -> None:
    prepared = api.prepare(clone / "cuda-exercise")
    prepared.render(("docker",))
    prepared.render()
    api.plan_writes(prepared, ("docker",))
    assert git_calls == []


def test_job_files_ask_git_for_the_commit_and_the_remote(
    clone: Path, git_calls: list[tuple[str, ...]]
) -> None:
    files = api.prepare(clone / "cuda-exercise").render(("htcondor",))
    head = plain_git(clone, "rev-parse", "HEAD")
    assert [args[0] for args in git_calls] == ["rev-parse", "remote"]
    sub = files["cuda-exercise/jobs/htcondor.sub"].text
    assert f"oras://ghcr.io/some-lab/cuda-lesson:apptainer-gpu-sha-{head[:7]}" in sub


def test_job_files_with_commit_and_image_given_start_no_git(
    clone: Path, git_calls: list[tuple[str, ...]]
) -> None:
    prepared = api.prepare(
        clone / "cuda-exercise", job_commit="0" * 40, job_image_name="ghcr.io/someone/else"
    )
    prepared.render(("htcondor", "slurm"))
    assert git_calls == []


def test_only_the_labelling_build_asks_for_the_commit(clone: Path, git_calls: list[tuple[str, ...]]) -> None:
    lesson = api.prepare(clone / "cuda-exercise")
    assert "REVISION" not in api.build_args(lesson, "docker")
    assert git_calls == []
    optimized = api.prepare(clone / "cuda-exercise", style="optimized")
    args = api.build_args(optimized, "docker")
    assert args["REVISION"] == plain_git(clone, "rev-parse", "HEAD")
    assert len(git_calls) == 1


def signed_looking_head(repo: Path) -> None:
    """Point HEAD at a commit with a `gpgsig` header, so that showing it with signatures on runs
    the signature program (the signature itself is junk: only the call matters)."""
    tree = plain_git(repo, "rev-parse", "HEAD^{tree}")
    body = (
        f"tree {tree}\nauthor L <l@example.org> 1700000000 +0000\n"
        "committer L <l@example.org> 1700000000 +0000\n"
        "gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQ==\n -----END PGP SIGNATURE-----\n\nsigned\n"
    )
    (repo / "commit.txt").write_text(body)
    commit = plain_git(repo, "hash-object", "-t", "commit", "-w", "commit.txt")
    (repo / "commit.txt").unlink()
    plain_git(repo, "update-ref", "HEAD", commit)


def test_the_repositorys_own_config_runs_no_program(clone: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    script = tmp_path / "steer.sh"
    script.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\nexit 1\n')
    script.chmod(0o755)
    signed_looking_head(clone)
    for key in ("gpg.program", "core.pager", "core.fsmonitor"):
        plain_git(clone, "config", key, str(script))
    plain_git(clone, "config", "log.showSignature", "true")
    # The trap is real: git run without the kit's protections starts the repository's program.
    plain_git(clone, "log", "-1", "--format=%H %cI")
    assert marker.is_file()
    marker.unlink()

    workspace = clone / "cuda-exercise"
    head = plain_git(clone, "rev-parse", "HEAD")
    assert git.head_commit(workspace) == head
    assert git.commit_labels(workspace)["REVISION"] == head
    assert git.remote_url(workspace) == REMOTE
    api.prepare(workspace).render(("htcondor", "slurm"))
    assert not marker.exists()


def test_the_callers_git_variables_do_not_reach_git(
    clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    plain_git(other, "init", "-q")
    plain_git(other, "commit", "-q", "--allow-empty", "-m", "another repository")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'log.showSignature'='true'")
    assert "GIT_DIR" not in git.environment() and "HOME" not in git.environment()
    head = subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    ).stdout.strip()
    assert git.head_commit(clone / "cuda-exercise") == head


def test_no_answer_outside_git_or_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (git.head_commit(tmp_path), git.commit_labels(tmp_path), git.remote_url(tmp_path)) == ("", {}, "")
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on the PATH at all
    assert git.run(tmp_path, "--version") == ""

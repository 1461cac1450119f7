"""A learner's clone for tests: the example workspace in `cuda-exercise/`, one commit, a GitHub
remote. Shared by the job-file tests and the git tests, which both need what `kit generate`
reads from a real repository (HEAD's commit, the origin remote)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import EXAMPLE

REMOTE = "https://github.com/Some-Lab/Cuda-Lesson.git"


def plain_git(repo: Path, *args: str) -> str:
    """git as a test drives it, with an identity and nothing else of the kit's protections."""
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.email=l@example.org", "-c", "user.name=Learner", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


def make_clone(tmp_path: Path) -> Path:
    repo = tmp_path / "lesson"
    shutil.copytree(EXAMPLE, repo / "cuda-exercise", ignore=shutil.ignore_patterns(".pixi", "__pycache__"))
    plain_git(repo, "init", "-q")
    plain_git(repo, "add", "-A")
    plain_git(repo, "commit", "-q", "-m", "the lesson's workspace")
    plain_git(repo, "remote", "add", "origin", REMOTE)
    return repo

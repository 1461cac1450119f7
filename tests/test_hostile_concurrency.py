"""Several kit processes at once on one repository: they serialise, and the state stays sound."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from hostile_helpers import (
    KIT,
    Run,
    finish,
    hold_lock,
    kit_process,
    one_line,
    start,
    temps,
    two_workspaces,
)

# == concurrency ==========================================================================================================


RACE_REFUSAL = "[write]: changed while the kit was writing"


def assert_race_left_a_sound_state(runs: list[Run], scratch: Path, repo: Path) -> dict[str, Any]:
    """Runs that raced each other: each wrote (exit 0, nothing on stderr) or met the one refusal
    a race may cause, a file another run replaced between its plan and its write (exit 2, one
    line naming that file and [write]); at least one wrote, no temporary file is left under
    ``scratch``, and every file the repository's state records holds exactly the content
    recorded. The recorded files, for more checks."""
    import hashlib

    for r in runs:
        if r.code == 0:
            assert r.err == "", r
        else:
            one_line(r, 2, RACE_REFUSAL)
            assert f"{repo.resolve()}/" in r.err, r
    assert any(r.code == 0 for r in runs), runs
    assert temps(scratch) == []
    files: dict[str, Any] = json.loads((repo / ".kit-state.json").read_text())["files"]
    for path, record in files.items():
        assert hashlib.sha256((repo / path).read_bytes()).hexdigest() == record["sha256"], path
    return files


def test_parallel_identical_runs(tree: Path) -> None:
    repo = tree / "repo"
    processes = [start("generate", repo, executable=KIT) for _ in range(4)]
    runs = [finish(p, timeout=120) for p in processes]
    assert [(r.code, r.err) for r in runs] == [(0, "")] * 4, runs
    assert_race_left_a_sound_state(runs, tree, repo)


def test_parallel_runs_with_different_options(tree: Path) -> None:
    repo = tree / "repo"
    processes = [
        start("generate", repo, "--style", style, executable=KIT)
        for style in ("lesson", "optimized", "lesson", "optimized")
    ]
    runs = [finish(p, timeout=120) for p in processes]
    assert_race_left_a_sound_state(runs, tree, repo)


def test_a_held_lock_delays_but_does_not_fail(tree: Path) -> None:
    repo = tree / "repo"
    fd = hold_lock(repo)
    release = threading.Timer(1.0, os.close, args=(fd,))
    release.start()
    try:
        run = kit_process("generate", repo, timeout=60)
    finally:
        release.join()
    assert run.code == 0, run


def test_two_workspaces_in_parallel(tmp_path: Path) -> None:
    repo, a, b = two_workspaces(tmp_path)
    runs = [finish(p, timeout=120) for p in [start("generate", ws, executable=KIT) for ws in (a, b)]]
    assert [(r.code, r.err) for r in runs] == [(0, ""), (0, "")], runs  # no file in common but the state
    files = assert_race_left_a_sound_state(runs, tmp_path, repo)
    assert {"a/Dockerfile", "b/Dockerfile"} <= set(files)

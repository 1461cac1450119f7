"""The `kit` command as a process of its own, as a user types it: the installed console script and
`python -m kit.cli` start, print and exit as the in-process tests say (tests/test_cli.py and
tests/test_cli_facade.py run `kit.cli.main` in this process). Signals and a reader that went away
need a process too: tests/test_hostile_signals.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import EXAMPLE, kit_cli, need, run_command

CONSOLE_SCRIPT = Path(sys.executable).parent / "kit"


def test_the_console_script_runs_the_kit() -> None:
    need(CONSOLE_SCRIPT.exists(), f"{CONSOLE_SCRIPT} is not installed (./dev setup)")
    done = run_command([str(CONSOLE_SCRIPT), "inspect", str(EXAMPLE), "--json"])
    assert (done.returncode, done.stderr) == (0, ""), done
    body = json.loads(done.stdout)
    assert (body["ok"], body["command"], body["result"]["name"]) == (True, "inspect", "cuda-exercise")


def test_the_console_script_helps() -> None:
    need(CONSOLE_SCRIPT.exists(), f"{CONSOLE_SCRIPT} is not installed (./dev setup)")
    done = run_command([str(CONSOLE_SCRIPT), "--help"])
    assert (done.returncode, done.stderr) == (0, "") and done.stdout.startswith("usage: kit ")


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = kit_cli("generate", str(tmp_path))
    assert (done.returncode, done.stdout) == (2, ""), done
    assert done.stderr == (
        f"kit: error: {tmp_path} [manifest]: no pixi.toml or pyproject.toml here "
        "(fix: run `pixi init` in this folder, or pass the workspace folder)\n"
    )


def test_a_usage_error_as_json() -> None:
    done = kit_cli("generate", "--json")
    assert (done.returncode, done.stderr) == (2, ""), done
    (error,) = json.loads(done.stdout)["errors"]
    assert (error["type"], error["field"]) == ("UsageError", "generate")

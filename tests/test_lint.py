"""The Python code is linted and formatted by ruff (configured in pyproject.toml): both clean."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from conftest import REPO, need

TARGETS = ["kit", "tests", "benchmarks"]


@pytest.mark.parametrize("argv", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_is_clean(argv: list[str]) -> None:
    need(importlib.util.find_spec("ruff") is not None, "ruff is in the test extra: pip install -e '.[test]'")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *argv, *TARGETS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

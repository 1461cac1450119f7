"""The Python code is linted and formatted by ruff (configured in pyproject.toml): both clean."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from conftest import REPO, need, run_command

TARGETS = ["kit", "tests", "benchmarks"]


@pytest.mark.parametrize("argv", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_is_clean(argv: list[str]) -> None:
    need(importlib.util.find_spec("ruff") is not None, "ruff is in the test extra: pip install -e '.[test]'")
    result = run_command([sys.executable, "-m", "ruff", *argv, *TARGETS], cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

"""The library is typed: mypy --strict over kit/ (configured in pyproject.toml) finds nothing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from conftest import REPO, need


@pytest.mark.slow
def test_mypy_strict_is_clean() -> None:
    need(importlib.util.find_spec("mypy") is not None, "mypy is in the test extra: pip install -e '.[test]'")
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr

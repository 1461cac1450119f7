"""Shared fixtures. Engine tests skip with a reason when an engine is missing, but fail under CI."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "cuda-exercise"
REAL_WORLD = REPO.parent / "shared" / "fixtures" / "real-world" / "nvidia-gpu-ml-library-test"
DATA = Path(__file__).resolve().parent / "data"
OUTPUT = REPO / "test-output"

sys.path.insert(0, str(REPO))  # `tests.lab` for the offline lab


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip when a real part is missing here; under CI=true that is a failure, not a skip."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of the embedded example workspace."""
    target = tmp_path / "cuda-exercise"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".pixi", "__pycache__"))
    return target


@pytest.fixture
def real_world(tmp_path: Path) -> Path:
    """A private copy of the real-world workspace (read from ../shared, never copied into the repo)."""
    if not (REAL_WORLD / "pixi.lock").exists():
        pytest.skip(f"real-world fixture absent: {REAL_WORLD}")
    target = tmp_path / "nvidia-gpu-ml-library-test"
    target.mkdir()
    for name in ("pixi.toml", "pixi.lock"):
        shutil.copyfile(REAL_WORLD / name, target / name)
    return target


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT

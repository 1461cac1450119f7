"""The house's shape, held by tests so that a change cannot quietly undo it.

- The import-linter contracts in pyproject.toml (`[tool.importlinter]`): the layers run one way
  (front ends > facade > lesson > checks > output > decide > engines | schedulers > model > base)
  and no package has a circle among its modules. grimp reads function-level imports too, so a
  lazy import cannot hide a cycle from it.
- Nothing outside an engine's, a scheduler's or the styles' own module decides by comparing with
  their names: they own what is particular to them, and everything else asks them.
- No test file grows past 1,000 lines.
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, need, run_command

KIT = REPO / "kit"

# name -> the one place allowed to compare against it
OWNERS = {
    "docker": "kit/engines/",
    "apptainer": "kit/engines/",
    "htcondor": "kit/schedulers/",
    "slurm": "kit/schedulers/",
    "lesson": "kit/decide/styles.py",
    "optimized": "kit/decide/styles.py",
}


def test_imports_keep_the_layers_and_no_circle() -> None:
    tool = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    need(tool is not None, "import-linter is not installed (pip install -e '.[test]')")
    assert tool is not None
    done = run_command([tool, "--no-cache"], cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def _name_comparisons(path: Path) -> list[tuple[int, str]]:
    """(line, name) for each `x == "docker"`, `x in ("htcondor", "slurm")` and the like."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Compare):
            continue
        for side in (node.left, *node.comparators):
            values = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
            for value in values:
                if isinstance(value, ast.Constant) and value.value in OWNERS:
                    found.append((node.lineno, value.value))
    return found


@pytest.mark.parametrize("name", sorted(set(OWNERS.values())))
def test_only_the_owner_branches_on_its_names(name: str) -> None:
    names = {n for n, owner in OWNERS.items() if owner == name}
    offenders = [
        f"{path.relative_to(REPO)}:{line}: compares with {value!r}"
        for path in sorted(KIT.rglob("*.py"))
        if not str(path.relative_to(REPO)).startswith(name)
        for line, value in _name_comparisons(path)
        if value in names
    ]
    assert offenders == [], f"ask {name} instead:\n" + "\n".join(offenders)


def test_no_test_file_exceeds_1000_lines() -> None:
    long = {
        str(p.relative_to(REPO)): n
        for p in sorted((REPO / "tests").rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 1000
    }
    assert long == {}

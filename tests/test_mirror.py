"""The notebooks mirror the episodes: one per episode, the same `##` headings in the same order.

Only level-2 headings outside fenced divs (`::: callout` ... `:::`) count: challenges and
callouts carry `##` titles of their own, which the notebooks show as `###` exercises instead.
Notebooks are committed clean (no outputs) and start with a papermill `parameters` cell.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
EPISODES = REPO / "episodes"
NOTEBOOKS = REPO / "notebooks"
EXTRA_NOTEBOOKS = {"studio"}
_FENCE = re.compile(r"^(```|~~~)")
_DIV_OPEN = re.compile(r"^:::+\s*\S")
_DIV_CLOSE = re.compile(r"^:::+\s*$")


def level2_headings(markdown: str) -> list[str]:
    """`## ` headings outside fenced divs and code blocks, in order."""
    headings: list[str] = []
    depth, in_code = 0, False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        elif in_code:
            continue
        elif _DIV_OPEN.match(line):
            depth += 1
        elif _DIV_CLOSE.match(line):
            depth = max(depth - 1, 0)
        elif depth == 0 and line.startswith("## "):
            headings.append(line[3:].strip())
    return headings


def notebook_headings(nb: nbformat.NotebookNode) -> list[str]:
    return [h for cell in nb.cells if cell.cell_type == "markdown" for h in level2_headings(cell.source)]


def episode_stems() -> list[str]:
    return sorted(p.stem for p in EPISODES.glob("[0-9][0-9]-*.md"))


def notebook_stems() -> list[str]:
    return sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))


def test_every_episode_has_a_notebook_and_back() -> None:
    episodes = set(episode_stems())
    notebooks = set(notebook_stems()) - EXTRA_NOTEBOOKS
    assert episodes, "no episodes found"
    assert episodes - notebooks == set(), "episodes without a notebook"
    assert notebooks - episodes == set(), "notebooks without an episode"


def test_heading_parser_skips_divs_and_code() -> None:
    text = "## A\n::: challenge\n## Not\n::: solution\n## Nor\n:::\n:::\n```\n## code\n```\n## B\n### C\n"
    assert level2_headings(text) == ["A", "B"]


@pytest.mark.parametrize("stem", episode_stems())
def test_same_headings_in_the_same_order(stem: str) -> None:
    episode = level2_headings((EPISODES / f"{stem}.md").read_text(encoding="utf-8"))
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    assert notebook_headings(nb) == episode


@pytest.mark.parametrize("stem", notebook_stems())
def test_notebook_is_clean_and_parametrized(stem: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and "parameters" in code[0].metadata.get("tags", [])
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, f"cell {cell.get('id')} has outputs"


@pytest.mark.parametrize("stem", episode_stems())
def test_solutions_are_collapsed(stem: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert solutions, "every episode has exercises, so every notebook has solutions"
    for cell in solutions:
        assert cell.metadata.get("jupyter", {}).get("source_hidden") is True

"""`kit lesson sync` on broken episodes, and lesson commands outside the lesson."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile_helpers import (
    changed,
    kit,
    kit_process,
    one_line,
    refused_everywhere,
    snapshot,
    temps,
    workspace,
)

# == kit lesson sync =====================================================================================================


def lesson_root(tmp_path: Path, *episodes: str) -> Path:
    root = tmp_path / "lesson"
    workspace(root / "examples" / "cuda-exercise", lock=None)
    (root / "episodes").mkdir()
    for number, text in enumerate(episodes, start=1):
        (root / "episodes" / f"0{number}-episode.md").write_text(text)
    return root


GOOD_EPISODE = "# One\n\n<!-- kit-file: cuda-exercise/Dockerfile -->\n```dockerfile\nold\n```\n\nThe end.\n"


@pytest.mark.parametrize(
    "case,text",
    [
        (
            "unclosed-fence",
            "# Two\n\n<!-- kit-file: cuda-exercise/Dockerfile -->\n```dockerfile\nold\n\nThe rest of the episode.\n",
        ),
        ("unclosed-tilde-fence", "<!-- kit-file: cuda-exercise/apptainer.def -->\n~~~\nold\n```\n"),
        ("marker-without-fence", "<!-- kit-file: cuda-exercise/Dockerfile -->\ntext\n"),
        ("marker-at-the-end", "text\n<!-- kit-file: cuda-exercise/Dockerfile -->\n"),
        ("unknown-file", "<!-- kit-file: ../../etc/passwd -->\n```\nx\n```\n"),
        ("bad-regex", '<!-- kit-file: cuda-exercise/Dockerfile from="([" to="x" -->\n```\nx\n```\n'),
        (
            "regex-matches-nothing",
            '<!-- kit-file: cuda-exercise/Dockerfile from="^NOTHING HERE$" to="x" -->\n```\nx\n```\n',
        ),
    ],
)
def test_lesson_sync_refuses_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str, text: str
) -> None:
    """The broken episode comes second: the first (fine) one is not written either."""
    root = lesson_root(tmp_path, GOOD_EPISODE, text)
    refused_everywhere(capsys, tmp_path, "lesson", "sync", "--root", root, expect="episodes/02-episode.md")


def test_lesson_sync_on_a_non_utf8_episode(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = lesson_root(tmp_path, GOOD_EPISODE)
    (root / "episodes" / "02-episode.md").write_bytes(b"caf\xe9\n")
    refused_everywhere(capsys, tmp_path, "lesson", "sync", "--root", root, expect="02-episode.md")


def test_lesson_sync_on_a_fifo_episode(tmp_path: Path) -> None:
    root = lesson_root(tmp_path, GOOD_EPISODE)
    os.mkfifo(root / "episodes" / "02-episode.md")
    before = snapshot(tmp_path)
    run = kit_process("lesson", "sync", "--root", root, timeout=60)
    one_line(run, 2, "02-episode.md")
    assert changed(before, snapshot(tmp_path)) == set()


def test_lesson_sync_through_a_linked_episode(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = lesson_root(tmp_path, GOOD_EPISODE)
    (tmp_path / "elsewhere.md").write_text(GOOD_EPISODE)
    (root / "episodes" / "02-episode.md").symlink_to(tmp_path / "elsewhere.md")
    refused_everywhere(capsys, tmp_path, "lesson", "sync", "--root", root, expect="link")


def test_lesson_sync_refills_a_good_episode(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = lesson_root(tmp_path, GOOD_EPISODE)
    run = kit(capsys, "lesson", "sync", "--root", root)
    assert run.code == 0, run
    text = (root / "episodes" / "01-episode.md").read_text()
    assert "FROM " in text and text.endswith("```\n\nThe end.\n") and temps(tmp_path) == []


def test_lesson_commands_outside_the_lesson_say_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for action in (("sync",), ("template", "--out", str(tmp_path / "t"))):
        run = kit(capsys, "lesson", *action, "--root", tmp_path)
        one_line(run, 2, "[root]")
    assert not (tmp_path / "t").exists()

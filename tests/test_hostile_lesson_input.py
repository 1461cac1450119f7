"""Hostile input, round two, class 5: the lesson commands on malformed URLs, undecodable lesson
files and unusable output folders: exit 2 and one line (one JSON object with --json), naming the
file or option and the field, never a traceback, nothing written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_helpers import changed, kit, one_json, one_line, snapshot, workspace

REPO_URL = "https://github.com/owner/lesson"

# == kit lesson link ================================================================================


@pytest.mark.parametrize(
    "hub,words",
    [
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://[zz]/", "does not appear to be an IPv4 or IPv6 address"),
        ("https://[::1]x/", "has a malformed host"),
        ("http://hub:99999/", "Port out of range"),
        ("http://hub:x/", "is not a URL that can be read"),
        ("http://hub:0/", "names port 0"),
    ],
    ids=["ipv6-unclosed", "ipv6-not-an-address", "ipv6-trailing", "port-99999", "port-word", "port-0"],
)
def test_a_malformed_hub_url_is_one_line(capsys: pytest.CaptureFixture[str], hub: str, words: str) -> None:
    run = kit(capsys, "lesson", "link", "--hub", hub, "--repo", REPO_URL)
    one_line(run, 2, "kit: error: [--hub]: ")
    assert words in run.err
    (error,) = one_json(kit(capsys, "lesson", "link", "--json", "--hub", hub, "--repo", REPO_URL))["errors"]
    assert (error["field"], error["file"]) == ("--hub", None)


@pytest.mark.parametrize("repo", ["https://[::1/lesson", "https://[zz]/lesson", "https://github.com:0/a/b"])
def test_a_malformed_repository_url_is_one_line(capsys: pytest.CaptureFixture[str], repo: str) -> None:
    run = kit(capsys, "lesson", "link", "--hub", "https://hub.example.org", "--repo", repo)
    one_line(run, 2, "kit: error: [--repo]: ")


def test_an_ipv6_hub_in_brackets_makes_a_link(capsys: pytest.CaptureFixture[str]) -> None:
    run = kit(capsys, "lesson", "link", "--hub", "http://[::1]:8000", "--repo", REPO_URL)
    assert run.code == 0 and run.out.startswith("http://[::1]:8000/hub/user-redirect/git-pull?"), run


# == undecodable lesson files ==========================================================================


def lesson(tmp_path: Path) -> Path:
    """A lesson repository the commands accept: config.yaml, one episode, the example workspace."""
    root = tmp_path / "lesson"
    workspace(root / "examples" / "cuda-exercise", lock=None)
    (root / "episodes").mkdir()
    (root / "episodes" / "01-one.md").write_text("---\ntitle: One\n---\n\nText.\n")
    (root / "config.yaml").write_text("title: A lesson\nepisodes:\n- 01-one.md\n")
    return root


BROKEN = {
    "config": ("config.yaml", b"title: caf\xe9\nepisodes:\n- 01-one.md\n", "config.yaml"),
    "episode": ("episodes/01-one.md", b"---\ntitle: One\n---\n\n\xff\xfe\n", "lesson page"),
}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_lesson_check_json_on_a_non_utf8_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, broken: str
) -> None:
    rel, body, field = BROKEN[broken]
    root = lesson(tmp_path)
    (root / rel).write_bytes(body)
    before = snapshot(tmp_path)
    (error,) = one_json(kit(capsys, "lesson", "check", "--root", root, "--json"))["errors"]
    assert (error["file"], error["field"]) == (str(root / rel), field), error
    assert "is not UTF-8 text" in error["message"]
    one_line(kit(capsys, "lesson", "check", "--root", root), 2, f"{root / rel} [{field}]: is not UTF-8 text")
    assert changed(before, snapshot(tmp_path)) == set()


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_lesson_preview_on_a_non_utf8_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, broken: str
) -> None:
    rel, body, field = BROKEN[broken]
    root = lesson(tmp_path)
    (root / rel).write_bytes(body)
    before = snapshot(tmp_path)
    run = kit(capsys, "lesson", "preview", "--root", root, "--out", tmp_path / "site")
    one_line(run, 2, f"{root / rel} [{field}]: is not UTF-8 text")
    (error,) = one_json(kit(capsys, "lesson", "preview", "--root", root, "--json"))["errors"]
    assert (error["file"], error["field"]) == (str(root / rel), field), error
    assert changed(before, snapshot(tmp_path)) == set()


# == --out onto an unusable place ======================================================================


def unusable(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a-file").write_text("x\n")
    return {"below-a-file": tmp_path / "a-file" / "out", "in-proc": Path("/proc/kit-hostile-out")}


@pytest.mark.parametrize("place", ["below-a-file", "in-proc"])
@pytest.mark.parametrize("command", ["template", "preview"])
def test_lesson_out_onto_an_unusable_place(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, place: str, command: str
) -> None:
    root = lesson(tmp_path)
    out = unusable(tmp_path)[place]
    field = "out" if command == "template" else "--out"
    if command == "template":  # the lesson's own example and README: run from this repository
        from conftest import REPO

        root = REPO
    before = snapshot(tmp_path)
    run = kit(capsys, "lesson", command, "--root", root, "--out", out)
    one_line(run, 2, f"kit: error: {out} [{field}]: ")
    assert "nothing was written" in run.err
    (error,) = one_json(kit(capsys, "lesson", command, "--root", root, "--out", out, "--json"))["errors"]
    assert (error["file"], error["field"]) == (str(out), field), error
    assert changed(before, snapshot(tmp_path)) == set()

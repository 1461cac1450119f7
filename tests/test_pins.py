"""The pin table (kit/decide/actions.py) and the workflows agree, line by line: every `uses:` in
a rendered workflow (and in the snapshots a reviewer reads) is `repo@SHA # version` exactly as the
table has it, so a SHA bumped without its comment, or a comment without its SHA, fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import EXAMPLE

from kit import api
from kit.decide.actions import ACTIONS, APPTAINER, PinnedAction
from kit.decide.options import (
    DEFAULT_BASE_IMAGE,
    DISTRO_CODENAMES,
    PIXI_PIN_HOW,
    PIXI_PIN_VERIFIED,
    PIXI_VERSION,
)

USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)@(\S+?)(?:\s+#\s*(\S+))?\s*$")
SNAPSHOTS = Path(__file__).parent / "__snapshots__"


def pins_in(text: str) -> list[tuple[str, str, str | None]]:
    """(repository, ref, version comment) of every `uses:` line in a workflow's text."""
    found: list[tuple[str, str, str | None]] = []
    for line in text.splitlines():
        match = USES.match(line)
        if match:
            found.append((match.group(1), match.group(2), match.group(3)))
    return found


def disagreements(text: str, table: dict[str, PinnedAction]) -> list[str]:
    """Each `uses:` line that is not exactly the table's pin for its repository."""
    by_repo = {a.repo: a for a in table.values()}
    wrong: list[str] = []
    for repo, ref, version in pins_in(text):
        pin = by_repo.get(repo)
        if pin is None or (ref, version) != (pin.sha, pin.version):
            wrong.append(f"{repo}@{ref} # {version}")
    return wrong


# A workspace locked for linux-64 and linux-aarch64: its workflows use the pins the example's do
# not (QEMU, with --arm-runner qemu; the artifacts that carry each platform's digest).
TWO_PLATFORMS = Path(__file__).parent / "fixtures" / "pixi-shapes" / "linux-aarch64"


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    files = api.prepare(EXAMPLE).render(("workflows",))
    both = api.prepare(TWO_PLATFORMS, environments=("cpu",), arm_runner="qemu").render(("workflows",))
    return {
        f"{which}:{path}": f.text
        for which, found in (("example", files), ("two-platform", both))
        for path, f in found.items()
        if path.endswith(".yaml")
    }


def test_every_rendered_uses_line_is_the_tables_pin(rendered: dict[str, str]) -> None:
    used = {repo for text in rendered.values() for repo, _, _ in pins_in(text)}
    assert (used, [d for text in rendered.values() for d in disagreements(text, ACTIONS)]) == (
        {a.repo for a in ACTIONS.values()},
        [],
    )


def test_the_snapshots_carry_the_tables_pins() -> None:
    texts = [path.read_text(encoding="utf-8") for path in sorted(SNAPSHOTS.glob("*.ambr"))]
    assert [d for text in texts for d in disagreements(text, ACTIONS)] == []


@pytest.mark.parametrize(
    "line",
    [
        "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.0",
        "      - uses: actions/checkout@0000000000000000000000000000000000000000 # v7.0.1",
        "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",
        "        uses: actions/checkout@v7 # v7.0.1",
        "        uses: someone/else@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1",
    ],
)
def test_a_pin_and_its_comment_that_disagree_are_caught(line: str) -> None:
    assert len(disagreements(line + "\n", ACTIONS)) == 1


def test_every_row_records_when_and_how_it_was_verified() -> None:
    for action in ACTIONS.values():
        assert re.fullmatch(r"2\d{3}-\d{2}-\d{2}", action.verified), action.repo
        assert "rev-parse" in action.how, action.repo


def _version(tag: str) -> tuple[int, ...]:
    return tuple(int(part) for part in tag.removeprefix("v").split("."))


def test_a_release_waited_for_is_newer_than_the_pin() -> None:
    """`newer` names a release not yet seen under its tag: once it is pinned, the row must drop
    it (a `newer` at or below the pin is a record that was not updated)."""
    waiting = {a.repo: a.newer for a in ACTIONS.values() if a.newer}
    assert [
        repo
        for repo, tag in waiting.items()
        if _version(tag) <= _version(ACTIONS[repo.split("/")[1]].version)
    ] == []
    assert sorted(waiting) == [
        "docker/build-push-action",
        "docker/login-action",
        "docker/setup-buildx-action",
    ]


def test_the_apptainer_release_records_when_it_was_seen_newest() -> None:
    assert (re.fullmatch(r"2\d{3}-\d{2}-\d{2}", APPTAINER.newest_checked) is not None, APPTAINER.version) == (
        True,
        "1.5.3",
    )
    assert f"/v{APPTAINER.version}/apptainer_{APPTAINER.version}_amd64.deb" in APPTAINER.url


def test_the_pixi_pin_records_when_and_how_it_was_verified() -> None:
    assert re.fullmatch(r"2\d{3}-\d{2}-\d{2}", PIXI_PIN_VERIFIED)
    assert (
        "rev-parse refs/tags/" + PIXI_VERSION in PIXI_PIN_HOW
        and f"PIXI_VERSION={PIXI_VERSION}" in PIXI_PIN_HOW
    )
    assert DEFAULT_BASE_IMAGE == f"ghcr.io/prefix-dev/pixi:{PIXI_VERSION}-noble"


def test_the_distro_table_holds_only_what_pixi_docker_publishes() -> None:
    # prefix-dev/pixi-docker's build.yml (see kit/decide/options.py): Debian and Ubuntu, no alpine.
    assert DISTRO_CODENAMES == ("noble", "jammy", "focal", "plucky", "bookworm", "bullseye", "trixie")

"""One writer, one rule (issue 19, class 2): every command that is told where to write refuses a
link there (or above it), writes all or nothing, and leaves no temporary folder behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import REPO, kit_cli

from kit import api
from kit.base.errors import UserError
from kit.lesson import template


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    target = tmp_path / "elsewhere"
    target.mkdir()
    return target


@pytest.mark.parametrize("below", [False, True])
def test_generate_refuses_an_out_that_is_or_sits_in_a_link(
    example: Path, tmp_path: Path, elsewhere: Path, below: bool
) -> None:
    link = tmp_path / "out-link"
    link.symlink_to(elsewhere, target_is_directory=True)
    out = link / "deeper" if below else link
    done = kit_cli("generate", str(example), "--out", str(out), "--json")
    report = json.loads(done.stdout)
    assert (done.returncode, report["errors"][0]["field"], os.listdir(elsewhere)) == (2, "out", [])
    assert "symbolic link" in report["errors"][0]["message"]


def test_template_refuses_a_link(tmp_path: Path, elsewhere: Path) -> None:
    link = tmp_path / "template-link"
    link.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UserError, match="symbolic link"):
        api.make_template(REPO, link)
    assert os.listdir(elsewhere) == []


def test_preview_refuses_a_link(tmp_path: Path, elsewhere: Path) -> None:
    link = tmp_path / "preview-link"
    link.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UserError, match="symbolic link"):
        api.preview_site(REPO, link / "site")
    assert os.listdir(elsewhere) == []


def test_an_interrupted_template_leaves_no_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM reaches the kit as an exception (kit.base.interrupts): the staging folder goes."""

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(template.os, "chmod", interrupted)
    with pytest.raises(KeyboardInterrupt):
        api.make_template(REPO, tmp_path / "new")
    assert os.listdir(tmp_path) == []


def test_a_template_in_a_missing_place_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = kit_cli("lesson", "template", "--out", str(tmp_path / "no" / "such" / "place"), "--json", cwd=REPO)
    report = json.loads(done.stdout)
    assert (done.returncode, report["ok"], report["errors"][0]["field"]) == (2, False, "out")

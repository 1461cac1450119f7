"""Hostile option values and terminal escapes: refused in one line (or one JSON object), never printed
raw.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_helpers import (
    changed,
    kit,
    manifest,
    one_json,
    one_line,
    refused_everywhere,
    snapshot,
    toml_str,
    toml_str_list,
)

# == options (flags) ===========================================================================================

OPTION_CASES: dict[str, list[str]] = {
    "env-newline": ["--env", "gpu\nRUN id"],
    "env-empty-quote": ["--env", "'"],
    "matrix-substitution": ["--matrix", "$(id)"],
    "matrix-unknown": ["--matrix", "nope"],
    "cuda-newline": ["--env", "gpu", "--cuda", "12\nRUN id"],
    "cuda-abc": ["--env", "gpu", "--cuda", "abc"],
    "cuda-older": ["--env", "gpu", "--cuda", "11"],
    "cuda-four-parts": ["--env", "gpu", "--cuda", "12.9.1.2"],
    "cuda-on-cpu": ["--env", "cpu", "--cuda", "12"],
    "image-name-upper": ["--image-name", "GHCR.IO/Owner/Name"],
    "image-name-newline": ["--image-name", "ghcr.io/a/b:tag\n"],
    "image-name-bad-digest": ["--image-name", "ghcr.io/a/b@sha256:abc"],
    "image-name-yaml-quote": ["--image-name", "ghcr.io/a/b' evil: 'x"],
    "base-image-empty": ["--base-image", ""],
    "base-image-as-stage": ["--base-image", "ubuntu:24.04 AS evil"],
    "runtime-image-semicolon": ["--style", "optimized", "--runtime-image", "ubuntu;id"],
    "app-dir-dotdot": ["--app-dir", "../x"],
    "app-dir-absolute": ["--app-dir", "/etc"],
    "app-dir-space": ["--app-dir", "a b"],
    "app-dir-substitution": ["--app-dir", "$(id)"],
    "bootstrap-source-semicolon": ["--bootstrap", "localimage", "--bootstrap-source", "x.sif;id"],
    "bootstrap-without-source": ["--bootstrap", "docker-archive"],
    "style-unknown": ["--style", "fancy"],
    "bootstrap-unknown": ["--bootstrap", "evil"],
    "only-unknown": ["--only", "everything"],
    "flag-unknown": ["--frobnicate"],
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_option_values_are_refused(capsys: pytest.CaptureFixture[str], tree: Path, case: str) -> None:
    refused_everywhere(capsys, tree, "generate", tree / "repo", *OPTION_CASES[case])


@pytest.mark.parametrize(
    "case", ["style-unknown", "flag-unknown", "bootstrap-unknown", "env-newline", "app-dir-dotdot"]
)
def test_json_prints_one_object_even_for_usage_errors(
    capsys: pytest.CaptureFixture[str], tree: Path, case: str
) -> None:
    before = snapshot(tree)
    run = kit(capsys, "generate", tree / "repo", "--json", *OPTION_CASES[case])
    one_json(run, 2)
    assert changed(before, snapshot(tree)) == set()


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", "--json"],
        ["generate", "--json"],
        ["check", "--json", "a", "b"],
        ["build", "--json", "--engine", "podman", "."],
    ],
)
def test_json_usage_errors_without_a_workspace(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    one_json(kit(capsys, *args), 2)


def test_build_tag_is_checked_before_anything_runs(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    refused_everywhere(capsys, tree, "build", tree / "repo", "--tag", "a b\nRUN id", expect="tag")


# == terminal escapes ==============================================================================================


@pytest.mark.parametrize("field", ["name", "channel"])
def test_terminal_escapes_from_a_manifest_are_never_printed_raw(
    capsys: pytest.CaptureFixture[str], tree: Path, field: str
) -> None:
    evil = "\u001b]0;owned\u0007\u001b[2J\u001b[31mred"
    text = manifest(name=toml_str(evil)) if field == "name" else manifest(channels=toml_str_list(evil))
    (tree / "repo" / "pixi.toml").write_text(text)
    before = snapshot(tree)
    for args in (
        ["inspect", tree / "repo"],
        ["inspect", tree / "repo", "--json"],
        ["generate", tree / "repo"],
    ):
        run = kit(capsys, *args)
        assert run.code in (0, 2) and "Traceback" not in run.err
        assert "\x1b" not in run.out + run.err and "\x07" not in run.out + run.err
    assert changed(before, snapshot(tree)) == set()


def test_terminal_escape_in_a_path_is_not_printed_raw(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    odd = tmp_path / "ws\x1b[2J"
    odd.mkdir()
    run = kit(capsys, "generate", odd)
    one_line(run, 2)
    assert "\x1b" not in run.err

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


# The field each case's refusal names: the option's own (argparse's for a bad choice or flag).
OPTION_FIELDS = {
    "env-newline": "environment",
    "env-empty-quote": "environment",
    "matrix-substitution": "environments",
    "matrix-unknown": "environments",
    "cuda-newline": "cuda",
    "cuda-abc": "cuda",
    "cuda-older": "cuda",
    "cuda-four-parts": "cuda",
    "cuda-on-cpu": "cuda",
    "image-name-upper": "image_name",
    "image-name-newline": "image_name",
    "image-name-bad-digest": "image_name",
    "image-name-yaml-quote": "image_name",
    "base-image-empty": "base_image",
    "base-image-as-stage": "base_image",
    "runtime-image-semicolon": "runtime_image",
    "app-dir-dotdot": "app_dir",
    "app-dir-absolute": "app_dir",
    "app-dir-space": "app_dir",
    "app-dir-substitution": "app_dir",
    "bootstrap-source-semicolon": "bootstrap_source",
    "bootstrap-without-source": "bootstrap_source",
    "style-unknown": "generate",
    "bootstrap-unknown": "generate",
    "only-unknown": "generate",
    "flag-unknown": "command",
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_option_values_are_refused(capsys: pytest.CaptureFixture[str], tree: Path, case: str) -> None:
    """Exit 2, one line naming the option's field (the manifest too where the value must be
    defined there), nothing written."""
    run = refused_everywhere(capsys, tree, "generate", tree / "repo", *OPTION_CASES[case])
    where = (
        "pixi.toml [environments]: " if case == "matrix-unknown" else f"kit: error: [{OPTION_FIELDS[case]}]: "
    )
    assert where in run.err, run


@pytest.mark.parametrize(
    "case", ["style-unknown", "flag-unknown", "bootstrap-unknown", "env-newline", "app-dir-dotdot"]
)
def test_json_prints_one_object_even_for_usage_errors(
    capsys: pytest.CaptureFixture[str], tree: Path, case: str
) -> None:
    before = snapshot(tree)
    run = kit(capsys, "generate", tree / "repo", "--json", *OPTION_CASES[case])
    (error,) = one_json(run, 2)["errors"]
    assert (error["field"], error["file"]) == (OPTION_FIELDS[case], None), error
    assert changed(before, snapshot(tree)) == set()


@pytest.mark.parametrize(
    "args,field,words",
    [
        (["inspect", "--json"], "inspect", "the following arguments are required: dir"),
        (["generate", "--json"], "generate", "the following arguments are required: dir"),
        (["check", "--json", "a", "b"], "command", "unrecognized arguments: b"),
        (
            ["build", "--json", "--engine", "podman", "."],
            "build",
            "argument --engine: invalid choice: 'podman'",
        ),
    ],
    ids=["args0", "args1", "args2", "args3"],
)
def test_json_usage_errors_without_a_workspace(
    capsys: pytest.CaptureFixture[str], args: list[str], field: str, words: str
) -> None:
    (error,) = one_json(kit(capsys, *args), 2)["errors"]
    assert (error["type"], error["field"]) == ("UsageError", field) and words in error["message"], error


def test_build_tag_is_checked_before_anything_runs(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    refused_everywhere(capsys, tree, "build", tree / "repo", "--tag", "a b\nRUN id", expect="tag")


# == terminal escapes ==============================================================================================


@pytest.mark.parametrize("field", ["name", "channel"])
def test_terminal_escapes_from_a_manifest_are_never_printed_raw(
    capsys: pytest.CaptureFixture[str], tree: Path, field: str
) -> None:
    """The value is refused where it enters (exit 2, the manifest's field named), by `inspect` as
    by `generate`, and its escapes are shown as text, never sent to the terminal."""
    evil = "\u001b]0;owned\u0007\u001b[2J\u001b[31mred"
    text = manifest(name=toml_str(evil)) if field == "name" else manifest(channels=toml_str_list(evil))
    where = "workspace.name" if field == "name" else "workspace.channels[0]"
    (tree / "repo" / "pixi.toml").write_text(text)
    before = snapshot(tree)
    for command in ("inspect", "generate"):
        run = kit(capsys, command, tree / "repo")
        one_line(run, 2, f"pixi.toml [{where}]: ")
        assert "\x1b" not in run.err and "\x07" not in run.err and "\\x1b]0;owned\\x07" in run.err
    as_json = kit(capsys, "inspect", tree / "repo", "--json")
    (error,) = one_json(as_json, 2)["errors"]
    assert (error["field"], Path(error["file"]).name) == (where, "pixi.toml")
    assert "\x1b" not in as_json.out and "\x07" not in as_json.out
    assert changed(before, snapshot(tree)) == set()


def test_terminal_escape_in_a_path_is_not_printed_raw(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    odd = tmp_path / "ws\x1b[2J"
    odd.mkdir()
    run = kit(capsys, "generate", odd)
    one_line(run, 2, "ws\\x1b[2J [manifest]: no pixi.toml or pyproject.toml here")
    assert "\x1b" not in run.err

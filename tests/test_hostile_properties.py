"""Properties: generated manifests and option values never change a file's structure."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hostile_helpers import (
    GOOD,
    Run,
    changed,
    kit,
    manifest,
    one_line,
    snapshot,
    toml_str,
    toml_str_list,
    workspace,
)

# == properties: generated manifests and option values =================================================================
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

NASTY = [
    '"',
    "'",
    "\n",
    "\r",
    "\t",
    "$",
    "{",
    "}",
    "(",
    ")",
    "`",
    "\\",
    "#",
    "%",
    ":",
    ";",
    "|",
    "&",
    " ",
    "\x1b",
    "\x00",
    "\u2028",
    "/",
    "..",
    "*",
    "[",
    "]",
    "-",
    ".",
    "=",
    "<",
    ">",
]
nasty_text = st.lists(
    st.one_of(
        st.sampled_from(NASTY),
        st.text(alphabet="abcXYZ019", min_size=1, max_size=4),
        st.characters(codec="utf-8"),
    ),
    max_size=8,
).map("".join)
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def structure(files: dict[str, str]) -> dict[str, Any]:
    """What a value must never change: every file parses, with the same lines, instructions,
    sections and YAML keys as for a plain value."""
    import yaml

    from kit.model.deffile import parse_def
    from kit.model.dockerfile import instructions as dockerfile_instructions

    shape: dict[str, Any] = {}
    for rel, text in files.items():
        lines = text.count("\n")
        if rel.endswith("Dockerfile"):
            shape[rel] = (lines, [i.keyword for i in dockerfile_instructions(text)])
        elif rel.endswith(".def"):
            stages = parse_def(text).stages
            shape[rel] = (
                lines,
                [sorted(s.header) for s in stages],
                [[(sec.name, sec.argument, len(sec.body)) for sec in s.sections] for s in stages],
            )
        elif rel.endswith((".yaml", ".yml")):
            data = yaml.safe_load(text)
            assert isinstance(data, dict), rel
            jobs = data.get("jobs", {})
            shape[rel] = (
                lines,
                sorted(map(str, data)),
                {j: sorted(v) for j, v in jobs.items()},
                {j: len(v.get("steps", [])) for j, v in jobs.items()},
            )
        else:
            shape[rel] = lines
    return shape


def rendered_under(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): p.read_text()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != ".kit-state.json" and p.suffix != ".py"
    }


def generate_into(
    capsys: pytest.CaptureFixture[str], text: str, *flags: str
) -> tuple[Run, dict[str, str], set[str]]:
    """Generate a workspace with manifest `text` into a fresh --out; what ran, what was written, and
    what changed outside --out."""
    with tempfile.TemporaryDirectory(prefix="kit-prop-") as tmp:
        base = Path(tmp)
        ws = workspace(base / "ws", manifest=text)
        before = snapshot(base)
        run = kit(capsys, "generate", ws, "--out", base / "out", *flags)
        after = snapshot(base)
        outside = {p for p in changed(before, after) if p != "out" and not p.startswith("out/")}
        files = rendered_under(base / "out") if (base / "out").is_dir() else {}
    return run, files, outside


_BASELINES: dict[tuple[str, ...], dict[str, Any]] = {}


def baseline(capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, Any]:
    if flags not in _BASELINES:
        run, files, _ = generate_into(capsys, GOOD, *flags)
        assert run.code == 0, run
        _BASELINES[flags] = structure(files)
    return _BASELINES[flags]


def assert_manifest_holds(capsys: pytest.CaptureFixture[str], text: str, *flags: str) -> None:
    """Manifest `text` generated with `flags`: nothing changes outside --out, and the kit either
    refuses in one line having written nothing, or writes files with the same structure as the
    plain manifest's, and never a terminal escape."""
    shape = baseline(capsys, *flags)
    run, files, outside = generate_into(capsys, text, *flags)
    assert outside == set(), outside
    assert "Traceback" not in run.out + run.err
    assert run.code in (0, 2), run
    if run.code == 2:
        one_line(run, 2)
        assert files == {}, "a refusal writes nothing"
        return
    assert "\x1b" not in run.out + run.err
    assert structure(files) == shape


@PROPERTY
@given(name=nasty_text, style=st.sampled_from(["lesson", "optimized"]))
def test_property_workspace_name(capsys: pytest.CaptureFixture[str], name: str, style: str) -> None:
    assert_manifest_holds(capsys, manifest(name=toml_str(name)), "--style", style, "--env", "gpu")


@PROPERTY
@given(
    cuda=st.one_of(nasty_text, st.from_regex(r"[0-9]{1,2}(\.[0-9]{1,2}){0,2}", fullmatch=True)),
    style=st.sampled_from(["lesson", "optimized"]),
)
def test_property_cuda_requirement(capsys: pytest.CaptureFixture[str], cuda: str, style: str) -> None:
    assert_manifest_holds(capsys, manifest(cuda=toml_str(cuda)), "--style", style, "--env", "gpu")


@PROPERTY
@given(channel=nasty_text, platform=nasty_text)
def test_property_channels_and_platforms(
    capsys: pytest.CaptureFixture[str], channel: str, platform: str
) -> None:
    text = manifest(
        channels=toml_str_list(channel or "c"), platforms=toml_str_list("linux-64", platform or "p")
    )
    assert_manifest_holds(capsys, text, "--env", "gpu")


OPTION_FLAGS = [
    "--env",
    "--matrix",
    "--cuda",
    "--image-name",
    "--base-image",
    "--runtime-image",
    "--subdir",
    "--app-dir",
    "--bootstrap-source",
]


@PROPERTY
@given(flag=st.sampled_from(OPTION_FLAGS), value=nasty_text)
def test_property_option_values(capsys: pytest.CaptureFixture[str], flag: str, value: str) -> None:
    """Any text for any flag: refused with one line, or rendered into files that parse with the
    same structure as the defaults (the app dir and the subdir only move paths)."""
    assume_flags = ["--style", "optimized", "--env", "gpu"]
    extra = ["--bootstrap", "localimage"] if flag == "--bootstrap-source" else []
    run, files, outside = generate_into(capsys, GOOD, *assume_flags, *extra, flag, value)
    assert outside == set(), outside
    assert "Traceback" not in run.out + run.err and run.code in (0, 2), run
    if run.code == 2:
        one_line(run, 2)
        return
    assert "\x1b" not in run.out + run.err
    shape = structure(files)  # parses
    if flag not in ("--subdir", "--app-dir", "--bootstrap-source", "--matrix", "--cuda", "--env"):
        assert shape == baseline(capsys, *assume_flags)

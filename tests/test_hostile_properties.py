"""Properties: generated manifests and option values never change a file's structure."""

from __future__ import annotations

import re
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
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
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


# What the kit accepts, written down here as the rules the kit states, so that every generated
# value has one right outcome: accepted and rendered, or refused naming its field. (Manifest
# values: kit.model.workspace; option values: kit.base.names and the option schema.)
WORKSPACE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")
CUDA = re.compile(r"[0-9]{1,2}(?:\.[0-9]{1,2})?")
CHANNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~%+@:/-]{0,254}")
ENVIRONMENTS = ("cpu", "default", "gpu")  # the example manifest's


def is_platform(text: str) -> bool:
    """A conda platform, as rattler (pixi's own parser) reads one."""
    import rattler

    try:
        rattler.Subdir(text)
    except Exception:  # rattler's ParseSubdirError
        return False
    return True


def assert_manifest_holds(
    capsys: pytest.CaptureFixture[str], text: str, *flags: str, refused_at: str | None
) -> None:
    """Manifest `text` generated with `flags`: nothing changes outside --out; with `refused_at`
    None, the files are written with the same structure as the plain manifest's (exit 0,
    nothing on stderr), else the kit refuses in one line naming the manifest's field
    `refused_at` and writes nothing; never a terminal escape."""
    shape = baseline(capsys, *flags)
    run, files, outside = generate_into(capsys, text, *flags)
    assert outside == set(), outside
    assert "\x1b" not in run.out + run.err
    if refused_at is not None:
        one_line(run, 2, f"pixi.toml [{refused_at}]: ")
        assert files == {}, "a refusal writes nothing"
        return
    assert (run.code, run.err) == (0, ""), run
    assert structure(files) == shape


@PROPERTY
@given(name=nasty_text, style=st.sampled_from(["lesson", "optimized"]))
@example(name="x\n", style="lesson")  # `$` in a pattern matches before a final newline: refused all the same
def test_property_workspace_name(capsys: pytest.CaptureFixture[str], name: str, style: str) -> None:
    refused_at = None if WORKSPACE_NAME.fullmatch(name) else "workspace.name"
    text = manifest(name=toml_str(name))
    assert_manifest_holds(capsys, text, "--style", style, "--env", "gpu", refused_at=refused_at)


@PROPERTY
@given(
    cuda=st.one_of(nasty_text, st.from_regex(r"[0-9]{1,2}(\.[0-9]{1,2}){0,2}", fullmatch=True)),
    style=st.sampled_from(["lesson", "optimized"]),
)
@example(cuda="12\n", style="lesson")
def test_property_cuda_requirement(capsys: pytest.CaptureFixture[str], cuda: str, style: str) -> None:
    refused_at = None if CUDA.fullmatch(cuda) else "workspace.platforms[1].cuda"  # the rich platform's
    text = manifest(cuda=toml_str(cuda))
    assert_manifest_holds(capsys, text, "--style", style, "--env", "gpu", refused_at=refused_at)


@PROPERTY
@given(channel=nasty_text, platform=nasty_text)
@example(channel="conda-forge\n", platform="linux-64")
def test_property_channels_and_platforms(
    capsys: pytest.CaptureFixture[str], channel: str, platform: str
) -> None:
    channel, platform = channel or "c", platform or "p"
    text = manifest(channels=toml_str_list(channel), platforms=toml_str_list("linux-64", platform))
    refused_at = (
        "workspace.channels[0]"
        if not CHANNEL.fullmatch(channel)
        else None
        if is_platform(platform)
        else "workspace.platforms[1]"
    )
    assert_manifest_holds(capsys, text, "--env", "gpu", refused_at=refused_at)


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


def option_refusal(flag: str, value: str) -> str | None:
    """Where the kit refuses `value` for `flag` (with --env gpu): the start of the one line after
    `kit: error: `, or None when it accepts it."""
    from kit.base import names

    def fails(check: Any) -> bool:
        try:
            check(value)
        except Exception:
            return True
        return False

    if value == "" and flag in ("--env", "--image-name", "--subdir", "--app-dir"):
        return None  # the default: the first environment, ghcr.io/<owner>/<repo>, detected, none
    field = flag.removeprefix("--").replace("-", "_")
    if flag in ("--env", "--matrix"):
        field = "environment" if flag == "--env" else "environments"
        if fails(names.environment_name):
            return f"[{field}]: "
        return None if value in ENVIRONMENTS else "pixi.toml [environments]: "
    if flag == "--cuda":
        return None if CUDA.fullmatch(value) and int(value.split(".")[0]) >= 12 else "[cuda]: "
    if flag in ("--image-name", "--base-image", "--runtime-image"):
        return f"[{field}]: " if fails(names.image_reference) else None
    if flag == "--subdir":
        return None if value.rstrip("/") in ("", ".") else "[subdir]: "
    if flag == "--app-dir":
        return "[app_dir]: " if fails(lambda v: names.relative_path(v, "app_dir")) else None
    return "[bootstrap_source]: " if fails(lambda v: names.file_path(v, "bootstrap_source")) else None


@PROPERTY
@given(flag=st.sampled_from(OPTION_FLAGS), value=nasty_text)
@example(flag="--image-name", value="ghcr.io/a/b\n")
@example(flag="--app-dir", value="src\n")
@example(flag="--subdir", value="./")
def test_property_option_values(capsys: pytest.CaptureFixture[str], flag: str, value: str) -> None:
    """Any text for any flag: refused with one line naming the option's field (or the manifest's,
    for an environment it does not define), or rendered into files that parse with the same
    structure as the defaults (the app dir and the subdir only move paths)."""
    assume_flags = ["--style", "optimized", "--env", "gpu"]
    extra = ["--bootstrap", "localimage"] if flag == "--bootstrap-source" else []
    run, files, outside = generate_into(capsys, GOOD, *assume_flags, *extra, flag, value)
    assert outside == set(), outside
    assert "\x1b" not in run.out + run.err
    refusal = option_refusal(flag, value)
    if refusal is not None:
        one_line(run, 2, refusal)
        if refusal.startswith("["):  # an option's own refusal names no file
            assert run.err.startswith(f"kit: error: {refusal}"), run
        return
    assert (run.code, run.err) == (0, ""), run
    shape = structure(files)  # parses
    if flag not in ("--subdir", "--app-dir", "--bootstrap-source", "--matrix", "--cuda", "--env"):
        assert shape == baseline(capsys, *assume_flags)

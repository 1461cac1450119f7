"""The pixi in the base image must serve the workspace (kit.model.pixi_support): `kit generate`
refuses, and `kit check` reports, a lock format, lock layout, manifest feature or `requires-pixi`
that it cannot serve, naming both versions, the file, the field and the fix. A user picks an
older pixi with the base image's tag (`--base-image ghcr.io/prefix-dev/pixi:0.70.2-noble`) or
with `--pixi-version 0.70.2`, checked the same way."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hostile_helpers import kit

from kit.decide.options import DEFAULT_BASE_IMAGE, PIXI_VERSION
from kit.model.pixi_support import image_with_version, satisfies

SHAPES = Path(__file__).parent / "fixtures" / "pixi-shapes"


def image(version: str) -> str:
    return f"ghcr.io/prefix-dev/pixi:{version}-jammy"


def copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(SHAPES / name, target)
    return target


def requiring_pixi(tmp_path: Path, spec: str) -> Path:
    """A copy of the explicit-default shape whose `[workspace]` says `requires-pixi = spec`."""
    ws = copy("explicit-default", tmp_path)
    manifest = ws / "pixi.toml"
    manifest.write_text(
        manifest.read_text().replace("[workspace]\n", f'[workspace]\nrequires-pixi = "{spec}"\n', 1)
    )
    return ws


def refusal(capsys: pytest.CaptureFixture[str], ws: Path, version: str | None = None) -> dict[str, str]:
    """`kit generate --json` with pixi `version` (else the kit's default image): exit 2, nothing
    written, the one error."""
    flags = ["--base-image", image(version)] if version else []
    run = kit(capsys, "generate", ws, *flags, "--json")
    body = run.json
    assert (run.code, body["ok"], body["result"]) == (2, False, None)
    assert not (ws / "Dockerfile").exists()
    errors = body["errors"]
    assert isinstance(errors, list) and len(errors) == 1
    error: dict[str, str] = errors[0]
    return error


@pytest.mark.parametrize(
    ("shape", "version", "file", "field", "needed"),
    [
        ("rich-platforms", "0.70.2", "pixi.lock", "platforms", "0.71.0"),
        ("toml-1-1", "0.70.2", "pixi.toml", "workspace.platforms[1]", "0.71.0"),
        ("toml-1-1", "0.72.2", "pixi.toml", "toml", "0.73.0"),
    ],
)
def test_generate_refuses_what_the_chosen_pixi_cannot_read(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    shape: str,
    version: str,
    file: str,
    field: str,
    needed: str,
) -> None:
    ws = copy(shape, tmp_path)
    error = refusal(capsys, ws, version)
    assert (Path(error["file"]).name, error["field"], error["type"]) == (file, field, "OptionsError")
    assert f"pixi {version}" in error["message"] and f"{needed} or newer" in error["message"]
    assert error["fix"].startswith(f"use pixi {needed} or newer: --base-image {image(PIXI_VERSION)}")


def test_generate_refuses_an_unmet_requires_pixi(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ws = copy("toml-1-1", tmp_path)  # requires-pixi = ">=0.74"
    error = refusal(capsys, ws, "0.73.0")
    assert (Path(error["file"]).name, error["field"]) == ("pixi.toml", "workspace.requires-pixi")
    assert "requires pixi '>=0.74'" in error["message"] and "pixi 0.73.0" in error["message"]
    assert (
        error["fix"]
        == f"use --base-image {image(PIXI_VERSION)} (pixi {PIXI_VERSION}, the kit's pin), or relax requires-pixi"
    )


def test_a_requires_pixi_the_pin_cannot_meet_is_refused_with_the_default_image(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    error = refusal(capsys, requiring_pixi(tmp_path, ">=9.0"))
    assert error["field"] == "workspace.requires-pixi"
    assert f"pixi {PIXI_VERSION} in {DEFAULT_BASE_IMAGE}" in error["message"]
    assert error["fix"] == "use a pixi image whose version satisfies '>=9.0', or relax requires-pixi"


def test_a_requires_pixi_pixi_would_not_parse_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    error = refusal(capsys, requiring_pixi(tmp_path, "0.74"))
    assert error["field"] == "workspace.requires-pixi"
    assert "not a version specifier pixi accepts" in error["message"] and ">=0.74" in error["fix"]


@pytest.mark.parametrize("shape", ["rich-platforms", "toml-1-1", "activation", "explicit-default"])
def test_the_pin_serves_every_shape(capsys: pytest.CaptureFixture[str], tmp_path: Path, shape: str) -> None:
    ws = copy(shape, tmp_path)
    assert kit(capsys, "generate", ws, "--json").code == 0
    assert f"FROM {DEFAULT_BASE_IMAGE} AS" in (ws / "Dockerfile").read_text()


def test_check_reports_each_gap_on_the_line_that_names_the_image(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = copy("toml-1-1", tmp_path)
    assert kit(capsys, "generate", ws, "--json").code == 0
    dockerfile = ws / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace(DEFAULT_BASE_IMAGE, image("0.70.2")))
    run = kit(capsys, "check", ws, "--json")
    findings = [f for f in run.json["result"]["findings"] if f["file"] == "Dockerfile" and f["tool"] == "kit"]  # type: ignore[index]
    gaps = {
        f["rule"]: f for f in findings if f["rule"] in ("manifest-feature", "requires-pixi", "lock-layout")
    }
    assert run.code == 1 and sorted(gaps) == ["manifest-feature", "requires-pixi"]
    line = next(i for i, t in enumerate(dockerfile.read_text().splitlines(), 1) if t.startswith("FROM "))
    assert {f["line"] for f in gaps.values()} == {line}
    assert gaps["requires-pixi"]["message"].startswith("pixi.toml [workspace.requires-pixi]: ")
    assert all(f["severity"] == "error" and "0.70.2" in f["message"] for f in gaps.values())


@pytest.mark.parametrize(
    ("spec", "version", "met"),
    [
        (">=0.74", "0.76.1", True),
        (">=0.74", "0.73.0", False),
        (">=0.70,<0.76", "0.76.1", False),
        ("0.76.*", "0.76.1", True),
        ("~=0.75.0", "0.76.1", False),
        ("==0.76.1", "0.76.1", True),
        ("0.74", "0.76.1", None),  # pixi's strict parser wants an operator
    ],
)
def test_requires_pixi_is_compared_as_pixi_compares_it(spec: str, version: str, met: bool | None) -> None:
    assert satisfies(spec, version) is met


def test_the_suggested_image_keeps_the_distribution() -> None:
    assert image_with_version(
        "ghcr.io/prefix-dev/pixi:0.70.2-noble-cuda-12.9.1@sha256:" + "a" * 64, "0.70.2", "0.76.1"
    ) == ("ghcr.io/prefix-dev/pixi:0.76.1-noble-cuda-12.9.1")


# -- --pixi-version: the same choice by version, checked the same way ---------------------------


def test_pixi_version_picks_the_noble_image_and_is_checked_like_the_base_image(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = copy("rich-platforms", tmp_path)
    run = kit(capsys, "generate", ws, "--pixi-version", "0.70.2", "--json")
    assert (run.code, run.json["ok"]) == (2, False)
    [error] = run.json["errors"]
    assert (Path(error["file"]).name, error["field"]) == ("pixi.lock", "platforms")
    assert "pixi 0.70.2 in ghcr.io/prefix-dev/pixi:0.70.2-noble" in error["message"]
    assert not (ws / "Dockerfile").exists()

    served = copy("explicit-default", tmp_path)
    assert kit(capsys, "generate", served, "--pixi-version", PIXI_VERSION).code == 0
    assert (
        f"FROM ghcr.io/prefix-dev/pixi:{PIXI_VERSION}-noble AS build" in (served / "Dockerfile").read_text()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pixi-version", "0.70"], "pixi version '0.70' is not MAJOR.MINOR.PATCH"),
        (["--pixi-version", "0.70.2\n"], "pixi version '0.70.2\\n' is not MAJOR.MINOR.PATCH"),
        (
            ["--pixi-version", "0.70.2", "--base-image", image(PIXI_VERSION)],
            f"--pixi-version 0.70.2 and --base-image {image(PIXI_VERSION)} name different pixi images",
        ),
    ],
)
def test_a_pixi_version_that_cannot_be_an_image_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    ws = copy("explicit-default", tmp_path)
    run = kit(capsys, "generate", ws, *args, "--json")
    [error] = run.json["errors"]
    assert (run.code, error["field"]) == (2, "pixi_version")
    assert error["message"].startswith(f"[pixi_version]: {message} (fix: ")
    assert not (ws / "Dockerfile").exists()

"""Hostile input, round two, class 6: shapes that a trailing newline passed, and values that were
accepted but wrong (ports out of range, names that are options, `scratch` as an image).

Each case runs `kit generate` as the user types it and asserts the one right outcome: exit 2,
one line naming the option's field, nothing written. The shape checks themselves get property
tests: any valid value with a newline (or anything) after it is refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_helpers import kit, one_json, refused_everywhere
from hypothesis import given
from hypothesis import strategies as st

from kit.base.errors import OptionsError
from kit.decide.options import RenderOptions

JOB = ["--only", "slurm", "--only", "htcondor", "--job-image-name", "ghcr.io/a/b", "--job-commit", "3f2c1ab"]

# == a trailing newline (re.match with `$`) =============================================================

VALID: dict[str, str | tuple[str, ...]] = {
    "job_cpus": "2",
    "job_gpus": "1",
    "job_memory": "4GB",
    "job_disk": "10GB",
    "job_time": "01:00:00",
    "job_modules": "cuda/12.4 apptainer",
    "job_command": "python /app/src/train.py --epochs=3",
    "job_commit": "3f2c1ab",
    "job_sif": "images/gpu.sif",
    "environment": "gpu",
    "cuda": "12.9",
    "tags": ("gpu-noble",),
    "image_name": "ghcr.io/owner/name",
    "registry": "localhost:5000",
}


@pytest.mark.parametrize("field", sorted(VALID))
@given(tail=st.sampled_from(["\n", "\r\n", "\n\n", " ", "\t", "\x00", "\nRUN id"]))
def test_a_valid_value_with_anything_after_it_is_refused(field: str, tail: str) -> None:
    value = VALID[field]
    RenderOptions(**{field: value})  # the value itself passes
    bad = (value[0] + tail,) if isinstance(value, tuple) else value + tail
    with pytest.raises(OptionsError) as refused:
        RenderOptions(**{field: bad})
    assert refused.value.field == field


@pytest.mark.parametrize(
    "flag,value,field",
    [
        ("--job-cpus", "2\n", "job_cpus"),
        ("--job-time", "01:00:00\n", "job_time"),
        ("--job-memory", "4GB\n", "job_memory"),
        ("--job-sif", "images/gpu.sif\n", "job_sif"),
        ("--job-commit", "3f2c1ab\n", "job_commit"),
    ],
)
def test_a_trailing_newline_on_the_command_line_is_refused(
    capsys: pytest.CaptureFixture[str], tree: Path, flag: str, value: str, field: str
) -> None:
    run = refused_everywhere(capsys, tree, "generate", tree / "repo", *JOB, f"{flag}={value}")
    assert f"kit: error: [{field}]: " in run.err


# == values accepted but wrong ==========================================================================


@pytest.mark.parametrize(
    "args,field,words",
    [
        (["--registry", "localhost:0"], "registry", "is not a port (1 to 65535)"),
        (["--registry", "localhost:65536"], "registry", "is not a port (1 to 65535)"),
        (["--registry", "ghcr.io:99999"], "registry", "is not a port (1 to 65535)"),
        (["--image-name", "localhost:70000/a/b"], "image_name", "is not a port (1 to 65535)"),
        (["--base-image", "registry.local:0/pixi:1"], "base_image", "is not a port (1 to 65535)"),
        ([*JOB, "--job-image-kind", "sif", "--job-sif=-gpu.sif"], "job_sif", "starts with '-'"),
        ([*JOB, "--job-image-kind", "sif", "--job-sif=--help.sif"], "job_sif", "starts with '-'"),
        ([*JOB, "--job-modules=-f apptainer"], "job_modules", "starts with '-'"),
        ([*JOB, "--job-modules=apptainer --force"], "job_modules", "starts with '-'"),
        (["--runtime-image", "scratch"], "runtime_image", "is empty"),
        (["--style", "optimized", "--runtime-image", "scratch"], "runtime_image", "is empty"),
        (
            ["--style", "optimized", "--runtime", "no-shell", "--runtime-image", "scratch"],
            "runtime_image",
            "is empty",
        ),
        (
            ["--style", "optimized", "--runtime-image", "docker.io/library/scratch"],
            "runtime_image",
            "is empty",
        ),
        (["--base-image", "scratch"], "base_image", "is empty"),
    ],
    ids=[
        "registry-port-0",
        "registry-port-65536",
        "registry-port-99999",
        "image-name-port",
        "base-image-port",
        "sif-dash",
        "sif-help",
        "modules-dash",
        "modules-force",
        "scratch-lesson",
        "scratch-optimized",
        "scratch-no-shell",
        "scratch-library",
        "scratch-base",
    ],
)
def test_values_accepted_before_are_refused(
    capsys: pytest.CaptureFixture[str], tree: Path, args: list[str], field: str, words: str
) -> None:
    run = refused_everywhere(capsys, tree, "generate", tree / "repo", *args)
    assert f"kit: error: [{field}]: " in run.err and words in run.err, run
    (error,) = one_json(kit(capsys, "generate", tree / "repo", "--json", *args), 2)["errors"]
    assert (error["field"], error["file"]) == (field, None)


def test_scratch_as_runtime_names_the_minimal_runtime(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    run = refused_everywhere(
        capsys, tree, "generate", tree / "repo", "--style", "optimized", "--runtime-image", "scratch"
    )
    assert "(fix: use --style optimized --runtime minimal" in run.err
    assert kit(capsys, "generate", tree / "repo", "--style", "optimized", "--runtime", "minimal").code == 0


@pytest.mark.parametrize("value", ["localhost:5000", "ghcr.io", "registry.example.org:65535", "a:1"])
def test_ports_in_range_are_accepted(value: str) -> None:
    assert RenderOptions(registry=value).registry == value


@given(port=st.integers(min_value=-10, max_value=200_000))
def test_a_registry_port_is_accepted_exactly_from_1_to_65535(port: int) -> None:
    value = f"localhost:{port}"
    if 1 <= port <= 65535:
        assert RenderOptions(registry=value).registry == value
    else:
        with pytest.raises(OptionsError) as refused:
            RenderOptions(registry=value)
        assert refused.value.field == "registry"


@given(word=st.from_regex(r"-[A-Za-z0-9_.+/-]{0,10}", fullmatch=True))
def test_no_module_word_may_be_an_option(word: str) -> None:
    with pytest.raises(OptionsError) as refused:
        RenderOptions(job_modules=f"apptainer {word}")
    assert refused.value.field == "job_modules"

"""Rendering: golden files, determinism, options validation, and names that must never inject."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml
from conftest import DATA, EXAMPLE
from hypothesis import given, settings
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion

from kit.base.errors import OptionsError
from kit.decide.options import RenderOptions
from kit.model.deffile import parse_def
from kit.model.dockerfile import instructions as dockerfile_instructions
from kit.model.workspace import load_workspace
from kit.output.render import FileKind, probe_script_text, render

SHAPES = DATA / "shapes"
# Golden cases on a workspace shape (tests/data/shapes/) instead of the example.
SHAPE_CASES = {
    "pyproject-optimized": (SHAPES / "pyproject", RenderOptions(style="optimized")),
    "pixi-toml-minimal": (SHAPES / "pixi-toml", RenderOptions(style="optimized", runtime="minimal")),
    "pixi-toml-no-shell": (
        SHAPES / "pixi-toml",
        RenderOptions(
            style="optimized", runtime="no-shell", runtime_image="gcr.io/distroless/cc-debian12:nonroot"
        ),
    ),
}
CASES = {
    "example-lesson-gpu": RenderOptions(environment="gpu", style="lesson", subdir="cuda-exercise"),
    "example-optimized-matrix": RenderOptions(
        environment="gpu", environments=("cpu",), style="optimized", subdir="cuda-exercise"
    ),
    "example-optimized-cpu-root": RenderOptions(
        environment="cpu", environments=("cpu",), style="optimized", app_dir=""
    ),
    "example-lesson-offline-def": RenderOptions(
        environment="gpu", bootstrap="docker-archive", bootstrap_source="pixi-image.tar", cuda="12.4"
    ),
}


@pytest.mark.parametrize("case", sorted([*CASES, *SHAPE_CASES]))
def test_golden(case: str, snapshot: SnapshotAssertion) -> None:
    """Every rendered file of each case, as reviewed: `./dev test tests/test_render.py
    --snapshot-update` rewrites tests/__snapshots__/test_render.ambr, and its diff is the review."""
    folder, options = SHAPE_CASES.get(case, (EXAMPLE, CASES.get(case)))
    assert options is not None
    rendered = render(load_workspace(folder), options)
    seeds = {p: f for p, f in rendered.items() if f.kind is FileKind.SEED}
    assert all(f.text == probe_script_text() for f in seeds.values())  # the packaged probe, as is
    assert {p: f.text for p, f in sorted(rendered.items()) if p not in seeds} == snapshot


def test_same_input_same_bytes(real_world: Path) -> None:
    ws = load_workspace(real_world)
    options = RenderOptions(environment="gpu", environments=("cpu",), style="optimized")
    first = {p: f.text for p, f in render(ws, options).items()}
    second = {p: f.text for p, f in render(load_workspace(real_world), options).items()}
    assert first == second


def test_tags_come_from_the_requirement_not_the_lock(real_world: Path) -> None:
    files = render(
        load_workspace(real_world), RenderOptions(environment="gpu", environments=("cpu", "gpu-jax"))
    )
    workflow = yaml.safe_load(files[".github/workflows/docker.yaml"].text)
    matrix = workflow["jobs"]["publish"]["strategy"]["matrix"]["include"]
    assert [(m["environment"], m["cuda"], m["tag"]) for m in matrix] == [
        ("gpu", "12", "gpu-noble-cuda-12"),
        ("cpu", "", "cpu-noble"),
        ("gpu-jax", "12.6", "gpu-jax-noble-cuda-12.6"),
    ]


def test_default_matrix_is_every_container_environment() -> None:
    files = render(load_workspace(EXAMPLE), RenderOptions(environment="gpu"))
    workflow = yaml.safe_load(files[".github/workflows/docker.yaml"].text)
    matrix = workflow["jobs"]["publish"]["strategy"]["matrix"]["include"]
    assert [m["environment"] for m in matrix] == ["gpu", "cpu"]


def test_cpu_environment_gets_no_cuda_override() -> None:
    files = render(load_workspace(EXAMPLE), RenderOptions(environment="cpu", environments=("cpu",)))
    assert all("CUDA" not in f.text for p, f in files.items() if not p.endswith(".py"))


def test_default_environment_is_the_cuda_one() -> None:
    dockerfile = render(load_workspace(EXAMPLE))["Dockerfile"].text
    assert 'ARG ENVIRONMENT="gpu"' in dockerfile and 'ARG CUDA_VERSION="12"' in dockerfile


def test_only_selects_groups() -> None:
    files = render(load_workspace(EXAMPLE), RenderOptions(), only=("workflows",))
    assert sorted(files) == [
        ".github/dependabot.yml",
        ".github/workflows/apptainer.yaml",
        ".github/workflows/docker.yaml",
    ]


def test_optimized_installs_before_app_code() -> None:
    text = render(load_workspace(EXAMPLE), RenderOptions(style="optimized"))["Dockerfile"].text
    lines = [i.keyword + " " + i.args for i in dockerfile_instructions(text)]
    install = next(i for i, line in enumerate(lines) if "pixi install" in line)
    app = next(i for i, line in enumerate(lines) if "/app/src" in line)
    assert lines[install - 1].startswith("COPY pixi.toml pixi.lock")
    assert install < app and "--mount=type=cache" in lines[install]
    assert "org.opencontainers.image.revision" in text and "FROM ubuntu:24.04 AS final" in text


@pytest.mark.parametrize(
    "changes,field",
    [
        (dict(environment="gpu; rm -rf /"), "environment"),
        (dict(environment="$(id)"), "environment"),
        (dict(environment="nope"), "environments"),
        (dict(tags=("x\ny",)), "tags"),
        (dict(tags=("${{ github.event.issue.title }}",)), "tags"),
        (dict(image_name='ghcr.io/a/b"; echo'), "image_name"),
        (dict(base_image="ubuntu:24.04\nRUN curl x | sh"), "base_image"),
        (dict(subdir="../etc"), "subdir"),
        (dict(app_dir="app'; id"), "app_dir"),
        (dict(cuda="12; id"), "cuda"),
        (dict(environment="cpu", cuda="12"), "cuda"),
        (dict(environment="gpu", cuda="11.8"), "cuda"),
        (dict(bootstrap="docker-archive"), "bootstrap_source"),
    ],
)
def test_unsafe_or_wrong_options_are_refused(changes: dict[str, object], field: str) -> None:
    """Shapes are refused when the options are made; workspace facts when they are resolved."""
    with pytest.raises(OptionsError) as info:
        render(load_workspace(EXAMPLE), RenderOptions(**changes))  # type: ignore[arg-type]
    assert info.value.field == field and info.value.fix


ENV_NAMES = st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}", fullmatch=True)


@settings(max_examples=40, deadline=None)
@given(
    env=ENV_NAMES,
    other=ENV_NAMES,
    cuda=st.sampled_from(["12", "12.4", "11.8", None]),
    style=st.sampled_from(["lesson", "optimized"]),
    subdir=st.from_regex(r"([a-z][a-z0-9_.-]{0,8}/){0,2}[a-z][a-z0-9_-]{0,8}", fullmatch=True),
)
def test_any_valid_name_renders_files_that_parse(
    tmp_path_factory: pytest.TempPathFactory, env: str, other: str, cuda: str | None, style: str, subdir: str
) -> None:
    root = tmp_path_factory.mktemp("ws")
    reqs = f'[feature.f1.system-requirements]\ncuda = "{cuda}"\n' if cuda else ""
    envs = f'"{env}" = ["f1"]\n' + (f'"{other}" = []\n' if other not in (env, "default") else "")
    (root / "pixi.toml").write_text(
        f'[workspace]\nname = "w"\nchannels = ["conda-forge"]\n'
        f'platforms = ["linux-64"]\n[feature.f1.dependencies]\n{reqs}'
        f"[environments]\n{envs}"
    )
    ws = load_workspace(root)
    matrix = tuple(n for n in ws.environments if n != env)
    files = render(
        ws,
        RenderOptions(
            environment=env,
            environments=matrix,
            style=style,  # type: ignore[arg-type]
            subdir=subdir,
        ),
    )
    for path, f in files.items():
        if path.endswith((".yaml",)):
            data = yaml.safe_load(f.text)
            entries = next(iter(data["jobs"].values()))["strategy"]["matrix"]["include"]
            assert entries[0]["environment"] == env
        elif path.endswith("Dockerfile"):
            keywords = {i.keyword for i in dockerfile_instructions(f.text)}
            assert keywords <= {"ARG", "FROM", "WORKDIR", "COPY", "ENV", "RUN", "LABEL", "ENTRYPOINT"}
        elif path.endswith("apptainer.def"):
            assert parse_def(f.text).problems == []
    allowed = set(string.ascii_letters + string.digits + "-_./")
    assert set(subdir) <= allowed


@pytest.mark.parametrize("value", ["a\nRUN id", 'x"', "x'", "a\\b", "a;b", "a|b", "`id`", "a\rb", "\x1b[31m"])
def test_a_printed_value_cannot_leave_its_token(value: str) -> None:
    """The second wall: even a value that slipped past validation cannot reach a recipe."""
    from kit.output.render import jinja_env

    with pytest.raises(OptionsError):
        jinja_env().from_string('LABEL title="{{ v }}"').render(v=value)
    assert jinja_env().from_string("{{ v }}").render(v="ghcr.io/a/b:gpu-12.9") == "ghcr.io/a/b:gpu-12.9"


def test_only_the_optimized_dockerfile_asks_git_for_the_commit() -> None:
    """REVISION and CREATED label only the optimized Dockerfile's image, so a lesson build or an
    Apptainer build never runs `git log` (kit.api.build_args asks the plan first)."""
    from kit.decide.plan import resolve

    workspace = load_workspace(EXAMPLE)
    lesson = resolve(workspace, RenderOptions(environment="gpu"))
    optimized = resolve(workspace, RenderOptions(environment="gpu", style="optimized"))
    assert not lesson.labels_with_commit("docker") and not lesson.labels_with_commit("apptainer")
    assert optimized.labels_with_commit("docker") and not optimized.labels_with_commit("apptainer")
    commit = {"REVISION": "a" * 40, "CREATED": "2026-01-01T00:00:00Z"}
    assert "REVISION" not in lesson.build_args("docker", commit)
    assert optimized.build_args("docker", commit)["REVISION"] == "a" * 40

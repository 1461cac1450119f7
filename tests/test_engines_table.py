"""kit.engines.registry and what each engine answers for itself: its names, its context, its
artifacts and tags, what it needs here, the command a person types, its probe and its make-up.

None of these needs an engine: builders, probes and readers are replaced where a test would
reach one, and every expected value is written out, not computed by the code under test.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from kit import api
from kit.base.errors import OptionsError
from kit.decide.options import ENGINES as OPTION_ENGINES
from kit.decide.options import BuildOptions, schema
from kit.decide.plan import immutable_tag, published_tag
from kit.engines import (
    DEFAULT_ENGINE,
    ENGINE_NAMES,
    ENGINES,
    SIF_TAG_PREFIX,
    ApptainerEngine,
    BuildRequest,
    BuildResult,
    Capability,
    DockerEngine,
    EngineStatus,
    apptainer_engine,
    docker_engine,
    engine_for_image,
    engine_for_scheme,
    engine_status,
    get_engine,
)
from kit.widgets.pipeline import build_commands, engine_blockers, probe_result

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _result(engine: str, artifact: str, tags: tuple[str, ...] = (), size: int = 0) -> BuildResult:
    return BuildResult(engine=engine, artifact=artifact, tags=tags, size_bytes=size, duration=1.0)


# -- the table ----------------------------------------------------------------------------------


def test_the_table_lists_docker_then_apptainer_and_docker_is_the_default() -> None:
    assert ENGINE_NAMES == ("docker", "apptainer")
    assert ENGINES["docker"] is DockerEngine and ENGINES["apptainer"] is ApptainerEngine
    assert DEFAULT_ENGINE == "docker"


def test_the_options_offer_the_tables_engines() -> None:
    (spec,) = [spec for f, spec in schema(BuildOptions) if f.name == "engine"]
    assert OPTION_ENGINES == ENGINE_NAMES
    assert spec.choices == ("docker", "apptainer")
    assert [f.default for f in fields(BuildOptions) if f.name == "engine"] == ["docker"]
    with pytest.raises(OptionsError, match=r"use one of: docker, apptainer"):
        BuildOptions(engine="podman")


def test_get_engine_makes_a_fresh_engine_for_any_case() -> None:
    first, second = get_engine("docker"), get_engine("Docker")
    assert type(first) is DockerEngine and type(second) is DockerEngine
    assert first is not second
    assert type(get_engine("APPTAINER")) is ApptainerEngine


def test_get_engine_refuses_an_unknown_name_naming_the_known_ones() -> None:
    with pytest.raises(OptionsError, match=r"engine 'podman' is unknown") as caught:
        get_engine("podman")
    assert caught.value.field == "engine"
    assert caught.value.fix == "use one of apptainer, docker"


def test_each_engine_says_who_it_is() -> None:
    facts = {
        name: (cls.name, cls.label, cls.recipe, cls.needs, cls.pull_scheme, cls.artifact_suffix)
        for name, cls in ENGINES.items()
    }
    assert facts == {
        "docker": ("docker", "Docker", "Dockerfile", ("docker_daemon", "buildkit_client"), "docker", ""),
        "apptainer": ("apptainer", "Apptainer", "apptainer.def", ("apptainer",), "oras", ".sif"),
    }


@pytest.mark.parametrize(
    ("image", "engine"),
    [
        ("out/gpu-noble-cuda-12.sif", "apptainer"),
        ("/abs/path/cpu.sif", "apptainer"),
        ("ghcr.io/owner/repo:gpu", "docker"),
        ("sha256:0123", "docker"),
        ("image.sif.d/inside", "docker"),
    ],
)
def test_engine_for_image_goes_by_the_artifacts_form(image: str, engine: str) -> None:
    assert engine_for_image(image) == engine


@pytest.mark.parametrize(("scheme", "engine"), [("docker", "docker"), ("oras", "apptainer"), ("sif", None)])
def test_engine_for_scheme_names_who_publishes_there(scheme: str, engine: str | None) -> None:
    assert engine_for_scheme(scheme) == engine


# -- names and tags -----------------------------------------------------------------------------


def test_only_the_sif_carries_a_tag_prefix() -> None:
    assert SIF_TAG_PREFIX == "apptainer-"
    assert get_engine("docker").published_tag("gpu-noble-cuda-12") == "gpu-noble-cuda-12"
    assert get_engine("apptainer").published_tag("gpu-noble-cuda-12") == "apptainer-gpu-noble-cuda-12"
    assert published_tag("gpu", "apptainer") == "apptainer-gpu"
    assert published_tag("gpu", "docker") == "gpu"
    assert published_tag("gpu") == "gpu"


def test_immutable_tags_take_the_engines_prefix() -> None:
    assert immutable_tag("gpu", COMMIT) == "gpu-sha-0123456"
    assert immutable_tag("gpu", COMMIT, "docker") == "gpu-sha-0123456"
    assert immutable_tag("gpu", COMMIT, "apptainer") == "apptainer-gpu-sha-0123456"
    with pytest.raises(OptionsError, match="'podman' is unknown"):
        immutable_tag("gpu", COMMIT, "podman")


def test_artifact_names_and_the_commands_a_person_types() -> None:
    docker, apptainer = get_engine("docker"), get_engine("apptainer")
    assert docker.artifact_name("ghcr.io/o/r", "gpu") == "ghcr.io/o/r:gpu"
    assert apptainer.artifact_name("ghcr.io/o/r", "gpu") == "gpu"
    assert docker.build_command("my ws", "r:gpu") == "docker build --tag r:gpu 'my ws'"
    assert apptainer.build_command("my ws", "gpu") == "cd 'my ws' && apptainer build gpu.sif apptainer.def"


def test_the_facade_and_the_widgets_name_builds_as_the_engine_does(example: Path) -> None:
    prepared = api.prepare(example, image_name="ghcr.io/o/r")
    assert api.artifact_name(prepared, "docker") == "ghcr.io/o/r:gpu-noble-cuda-12"
    assert api.artifact_name(prepared, "docker") == api.image_tag(prepared)
    assert api.artifact_name(prepared, "apptainer", "mine") == "mine"
    assert (
        build_commands(prepared, "docker")[1]
        == "docker build --tag ghcr.io/o/r:gpu-noble-cuda-12 cuda-exercise"
    )
    assert build_commands(prepared, "apptainer")[1] == (
        "cd cuda-exercise && apptainer build gpu-noble-cuda-12.sif apptainer.def"
    )


def test_only_the_optimized_dockerfile_takes_the_commit(example: Path) -> None:
    optimized = api.prepare(example, style="optimized").plan
    commit = {"REVISION": COMMIT, "CREATED": "2026-01-01T00:00:00Z"}
    assert get_engine("docker").commit_args == ("REVISION", "CREATED")
    assert get_engine("apptainer").commit_args == ()
    assert optimized.build_args("docker", commit) == {"ENVIRONMENT": "gpu", "CUDA_VERSION": "12", **commit}
    assert optimized.build_args("apptainer", commit) == {"ENVIRONMENT": "gpu", "CUDA_VERSION": "12"}
    assert not optimized.labels_with_commit("podman")


# -- builds -------------------------------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def build(self, *args: Any, **kwargs: Any) -> BuildResult:
        self.calls.append((args, kwargs))
        return _result("fake", "x")


def test_each_engine_hands_its_builder_its_own_recipe_and_name(tmp_path: Path) -> None:
    request = BuildRequest(tmp_path / "ctx", "gpu", tmp_path / "out", {"ENVIRONMENT": "gpu"})
    docker_builder, apptainer_builder = _Recorder(), _Recorder()
    DockerEngine(docker_builder).build(request)  # type: ignore[arg-type]
    ApptainerEngine(apptainer_builder).build(request)  # type: ignore[arg-type]
    assert docker_builder.calls == [
        (
            (tmp_path / "ctx",),
            {
                "tags": ["gpu"],
                "build_args": {"ENVIRONMENT": "gpu"},
                "no_cache": False,
                "on_event": None,
                "cancel": None,
                "platform": None,
            },
        )
    ]
    assert apptainer_builder.calls == [
        (
            (tmp_path / "ctx" / "apptainer.def",),
            {
                "output": (tmp_path / "out").resolve() / "gpu.sif",
                "build_args": {"ENVIRONMENT": "gpu"},
                "on_event": None,
                "cancel": None,
                "arch": None,
            },
        )
    ]


# -- what the context admits --------------------------------------------------------------------

DEF = """Bootstrap: docker
From: ubuntu:24.04

%files
    ./pixi.toml /app/pixi.toml
    ./src /app/src
"""


def test_docker_admits_what_the_rendered_dockerignore_admits(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("src/\n")  # the workspace's own is not read
    admits = get_engine("docker").context_admits({".dockerignore": "*\n!pixi.toml\n"}, tmp_path)
    assert admits("pixi.toml", False)
    assert not admits("data", True)
    assert not admits("src", True)


def test_docker_falls_back_to_the_workspaces_dockerignore(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("data/\n")
    admits = get_engine("docker").context_admits({}, tmp_path)
    assert not admits("data", True)
    assert admits("src", True)


def test_apptainer_admits_the_defs_files_sources(tmp_path: Path) -> None:
    rendered = {"apptainer.def": DEF, ".dockerignore": "pixi.toml\n"}
    admits = get_engine("apptainer").context_admits(rendered, tmp_path)
    assert admits("pixi.toml", False)
    assert admits("src", True)
    assert admits("src/app.py", False)
    assert not admits("data", True)
    assert not admits("pixi.lock", False)


def test_apptainer_without_a_rendered_def_admits_what_the_ignore_file_admits(tmp_path: Path) -> None:
    admits = get_engine("apptainer").context_admits({".dockerignore": "data/\n"}, tmp_path)
    assert not admits("data", True)
    assert admits("pixi.lock", False)


# -- what an engine needs here ------------------------------------------------------------------


def _status(*, daemon: bool, buildkit: bool, apptainer: bool) -> EngineStatus:
    return EngineStatus(
        (
            Capability("docker_daemon", daemon, "daemon detail", "start dockerd"),
            Capability("buildkit_client", buildkit, "buildx detail", "install buildx"),
            Capability("apptainer", apptainer, "apptainer detail", "install apptainer"),
            Capability("nvidia_runtime", False, "no runtime", "install the toolkit"),
            Capability("host_gpu", False, "no driver", "use a GPU host"),
        )
    )


def test_an_engine_is_usable_when_every_capability_it_needs_is_here() -> None:
    assert _status(daemon=True, buildkit=True, apptainer=True).usable_engines() == ["docker", "apptainer"]
    assert _status(daemon=True, buildkit=False, apptainer=True).usable_engines() == ["apptainer"]
    assert _status(daemon=False, buildkit=True, apptainer=False).usable_engines() == []


def test_blockers_name_each_missing_capability_with_its_fix() -> None:
    status = _status(daemon=False, buildkit=False, apptainer=True)
    assert engine_blockers("docker", status) == [
        "docker: daemon detail (fix: start dockerd)",
        "docker: buildx detail (fix: install buildx)",
    ]
    assert engine_blockers("apptainer", status) == []
    assert engine_blockers("podman", status) == ["podman is not usable here"]


def test_every_need_is_a_capability_the_status_reports(tmp_path: Path) -> None:
    """On an environment with nothing in it (no daemon answers port 9, an empty PATH)."""
    status = engine_status({"DOCKER_HOST": "tcp://127.0.0.1:9", "PATH": str(tmp_path)})
    reported = [c.name for c in status.checks]
    for engine in ENGINES.values():
        assert set(engine.needs) <= set(reported), engine.name
    assert status.usable_engines() == []
    # The daemon is missing whatever the host; a BuildKit client may be installed at a fixed path.
    assert status.blockers("docker")[0].startswith("docker: ")
    assert "(fix: start one (apt-get install docker.io; dockerd &)" in status.blockers("docker")[0]
    assert status.blockers("apptainer")[0].startswith("apptainer: ")


# -- probe and make-up --------------------------------------------------------------------------


def test_a_docker_build_is_probed_by_its_tag_a_sif_by_its_path(monkeypatch: pytest.MonkeyPatch) -> None:
    probed: list[tuple[str, str, str]] = []
    monkeypatch.setattr(docker_engine, "probe_docker", lambda a, gpu: probed.append(("docker", a, gpu)))
    monkeypatch.setattr(apptainer_engine, "probe_apptainer", lambda a, gpu: probed.append(("sif", a, gpu)))
    probe_result(_result("docker", "sha256:abc", ("r:gpu",)), gpu="never")
    probe_result(_result("docker", "sha256:abc"))
    probe_result(_result("apptainer", "/out/gpu.sif", ("gpu",)), gpu="require")
    assert probed == [
        ("docker", "r:gpu", "never"),
        ("docker", "sha256:abc", "auto"),
        ("sif", "/out/gpu.sif", "require"),
    ]


def test_the_facade_probes_a_sif_path_with_apptainer(monkeypatch: pytest.MonkeyPatch) -> None:
    probed: list[tuple[str, str]] = []
    monkeypatch.setattr(docker_engine, "probe_docker", lambda a, gpu: probed.append(("docker", a)))
    monkeypatch.setattr(apptainer_engine, "probe_apptainer", lambda a, gpu: probed.append(("sif", a)))
    api.probe("out/gpu.sif")
    api.probe("r:gpu")
    api.probe("out/gpu.sif", engine="docker")
    assert probed == [("sif", "out/gpu.sif"), ("docker", "r:gpu"), ("docker", "out/gpu.sif")]


def test_a_sif_that_cannot_be_read_has_a_makeup_of_nothing(tmp_path: Path) -> None:
    makeup = api.image_makeup(_result("apptainer", str(tmp_path / "missing.sif")), label="gpu")
    assert (makeup.engine, makeup.total_bytes, makeup.label) == ("apptainer", 0, "gpu")
    assert makeup.method.startswith("cannot read the SIF: ")


def test_a_docker_image_that_cannot_be_read_is_the_size_the_build_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[str, tuple[str, ...]]] = []

    def no_daemon(image: str, *, base_images: tuple[str, ...], label: str) -> None:
        asked.append((image, base_images))
        raise ConnectionError

    monkeypatch.setattr(docker_engine, "docker_makeup", no_daemon)
    result = _result("docker", "sha256:abc", ("r:gpu",), size=123)
    makeup = api.image_makeup(result, base_image="ubuntu:24.04")
    assert asked == [("r:gpu", ("ubuntu:24.04",))]
    assert (makeup.engine, makeup.total_bytes, makeup.label) == ("docker", 123, "r:gpu")
    assert makeup.method == "only the size: cannot read the image (ConnectionError)"

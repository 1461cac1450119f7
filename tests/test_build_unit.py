"""kit.engines: the BuildKit log parser on captured logs, docker client discovery against the real
binaries on this machine, def header rewriting, and real builds with Docker and Apptainer.

The logs under tests/data/buildkit/ were captured from Debian's docker 20.10 client
(``DOCKER_BUILDKIT=1 docker build --progress=plain``) building the Dockerfiles next to them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import need
from hypothesis import given
from hypothesis import strategies as st

from kit.base.errors import (
    BuildCancelled,
    BuildError,
    EngineUnavailable,
    OptionsError,
    ToolNotFound,
)
from kit.engines import (
    ApptainerBuilder,
    BuildEvent,
    DockerBuilder,
    engine_status,
    find_apptainer,
    find_docker_cli,
    get_engine,
)
from kit.engines.docker_cli import BUILDX_MISSING, inspect_cli
from kit.engines.progress import PlainProgressParser

LOGS = Path(__file__).parent / "data" / "buildkit"
DOCKER_28 = "/usr/local/bin/docker"
DOCKER_2010 = "/usr/bin/docker"


def _parse(name: str) -> tuple[PlainProgressParser, list[BuildEvent]]:
    parser = PlainProgressParser()
    events = [e for line in (LOGS / name).read_text().splitlines() for e in parser.feed(line)]
    return parser, events


# ---------------------------------------------------------------- the plain-progress parser


def test_parser_multistage_steps_and_timings() -> None:
    parser, events = _parse("run_multistage.log")
    steps = parser.timings()
    assert [(s.stage, s.step, s.total) for s in steps] == [
        ("build", 1, 4),
        ("build", 2, 4),
        ("build", 3, 4),
        ("build", 4, 4),
        ("final", 2, 3),
        ("final", 3, 3),
    ]
    run = steps[3]
    assert run.instruction.startswith('RUN echo "building gpu"')
    assert run.duration == 1.3 and not run.cached and not run.failed
    logs = [e.line for e in events if e.kind == "log" and e.step == 4 and e.stage == "build"]
    assert logs == ["#8 0.292 building gpu", "#8 0.293 data"]
    assert parser.image_id == ("sha256:482f2e76164c57a36c47844ed78ed890eca98d0420a0b679e8a7334257835b1a")
    assert parser.failed_step is None and parser.running_step() is None


def test_parser_counts_cache_hits() -> None:
    parser, events = _parse("run_multistage_cached.log")
    steps = parser.timings()
    assert sum(s.cached for s in steps) == 5  # everything but FROM
    done = [e for e in events if e.kind == "step_done"]
    assert len(done) == len(steps)


def test_parser_without_stage_names_and_scratch() -> None:
    parser, _ = _parse("scratch_multistage_tagged.log")
    assert [s.instruction for s in parser.timings()] == [
        "COPY hello.txt /app/hello.txt",
        "COPY --chmod=0755 run.sh /app/run.sh",
        "COPY --from=build /app /app",
    ]
    parser, _ = _parse("run_fails.log")
    assert [(s.stage, s.step, s.total) for s in parser.timings()][:2] == [(None, 1, 5), (None, 2, 5)]


def test_parser_names_the_failing_step() -> None:
    parser, events = _parse("run_fails.log")
    assert parser.failed_step == 'RUN echo "about to fail" && cat /app/missing.txt'
    failed = [e for e in events if e.failed]
    assert len(failed) == 1 and failed[0].step == 4 and failed[0].total == 5


def test_parser_sees_a_cancelled_step() -> None:
    parser, _ = _parse("run_cancelled.log")
    last = parser.timings()[-1]
    assert last.failed and last.instruction.startswith("RUN echo start")
    assert parser.failed_step is None  # a cancel is not a step error


@given(st.lists(st.text(max_size=80), max_size=30))
def test_parser_never_raises_on_arbitrary_lines(lines: list[str]) -> None:
    parser = PlainProgressParser()
    for line in lines:
        parser.feed(line)
    parser.timings()


# ---------------------------------------------------------------- docker client discovery


def _needs(path: str) -> None:
    need(os.access(path, os.X_OK), f"{path} is not installed here")


# Where the docker CLI looks for plugins besides $DOCKER_CONFIG/cli-plugins (compiled into it).
SYSTEM_PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)
STAND_IN_BUILDX = """#!/bin/sh
if [ "$1" = docker-cli-plugin-metadata ]; then
  echo '{"SchemaVersion": "0.1.0", "Vendor": "kit tests", "Version": "v0.0.0"}'
  exit 0
fi
echo "github.com/docker/buildx v0.0.0 a stand-in"
"""


def plugin_env(config: Path, *, buildx: bool) -> dict[str, str]:
    """The environment with DOCKER_CONFIG at a fresh folder `config`: none of the user's plugins,
    and with `buildx` a stand-in docker-buildx plugin there (the client only asks it its
    version). A docker-buildx in the system's plugin folders cannot be hidden: the tests that
    need a client without buildx say so and stop (need) where there is one."""
    plugins = config / "cli-plugins"
    plugins.mkdir(parents=True)
    if buildx:
        (plugins / "docker-buildx").write_text(STAND_IN_BUILDX)
        (plugins / "docker-buildx").chmod(0o755)
    return {**os.environ, "DOCKER_CONFIG": str(config)}


def _no_system_buildx() -> None:
    found = [d for d in SYSTEM_PLUGIN_DIRS if os.path.exists(os.path.join(d, "docker-buildx"))]
    need(not found, f"a system-wide docker-buildx plugin is installed ({', '.join(found)})")


def test_docker_28_without_buildx_is_refused_clearly(tmp_path: Path) -> None:
    _needs(DOCKER_28)
    _no_system_buildx()
    env = {**plugin_env(tmp_path / "docker", buildx=False), "KIT_DOCKER_CLI": DOCKER_28}
    assert inspect_cli(DOCKER_28, env) is None
    with pytest.raises(EngineUnavailable) as caught:
        find_docker_cli(env)
    assert BUILDX_MISSING in str(caught.value)
    assert caught.value.instead and "buildx" in caught.value.instead


def test_docker_28_with_buildx_builds_through_it(tmp_path: Path) -> None:
    _needs(DOCKER_28)
    env = {**plugin_env(tmp_path / "docker", buildx=True), "KIT_DOCKER_CLI": DOCKER_28}
    cli = find_docker_cli(env)
    assert (
        (cli.path, cli.mode) == (DOCKER_28, "buildx") and cli.version is not None and cli.version >= (23, 0)
    )
    assert cli.build_argv() == [DOCKER_28, "buildx", "build", "--load"]


def test_debian_docker_2010_has_builtin_buildkit(tmp_path: Path) -> None:
    _needs(DOCKER_2010)
    _no_system_buildx()
    cli = inspect_cli(DOCKER_2010, plugin_env(tmp_path / "docker", buildx=False))
    assert cli is not None and cli.mode == "builtin"
    assert cli.version is not None and cli.version < (23, 0)
    assert cli.build_argv() == [DOCKER_2010, "build"]
    assert cli.build_env({})["DOCKER_BUILDKIT"] == "1"


def test_discovery_prefers_a_working_client() -> None:
    _needs(DOCKER_2010)
    cli = find_docker_cli({k: v for k, v in os.environ.items() if k != "KIT_DOCKER_CLI"})
    assert inspect_cli(cli.path, dict(os.environ)) == cli


def test_kit_docker_cli_pointing_nowhere() -> None:
    with pytest.raises(ToolNotFound, match="KIT_DOCKER_CLI"):
        find_docker_cli({"KIT_DOCKER_CLI": "/nonexistent/docker", "PATH": "/usr/bin"})


def test_missing_apptainer_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ToolNotFound, match="install Apptainer"):
        find_apptainer({"PATH": str(tmp_path)})
    with pytest.raises(ToolNotFound, match="KIT_APPTAINER"):
        find_apptainer({"KIT_APPTAINER": str(tmp_path / "apptainer")})


def test_registry() -> None:
    assert isinstance(get_engine("docker").builder, DockerBuilder)  # type: ignore[attr-defined]
    assert isinstance(get_engine("Apptainer").builder, ApptainerBuilder)  # type: ignore[attr-defined]
    with pytest.raises(OptionsError, match="apptainer, docker"):
        get_engine("podman")


@pytest.fixture(scope="module")
def shell_image(docker_client: Any) -> Iterator[str]:
    """``kit-local/sh:host``, the base the captured Dockerfiles use (made here if absent)."""
    import docker

    from tests.lab.localbase import host_shell_image

    tag = "kit-local/sh:host"
    try:
        docker_client.images.get(tag)
        made = False
    except docker.errors.ImageNotFound:
        host_shell_image(docker_client, tag)
        made = True
    yield tag
    if made:
        docker_client.images.remove(tag, force=True)


def _context(tmp_path: Path, dockerfile: str) -> Path:
    (tmp_path / "data.txt").write_text("data\n")
    (tmp_path / "Dockerfile").write_text((LOGS / dockerfile).read_text())
    return tmp_path


def _tags(client: Any, repository: str) -> list[str]:
    return [tag for image in client.images.list(repository) for tag in image.tags]


@pytest.mark.docker
def test_docker_build_reports_steps_tags_and_cache(
    docker_client: Any, shell_image: str, tmp_path: Path
) -> None:
    context = _context(tmp_path, "run_multistage.Dockerfile")
    events: list[BuildEvent] = []
    tag = "kit-test/build-unit:1"
    try:
        first = DockerBuilder().build(
            context,
            tags=[tag],
            build_args={"ENVIRONMENT": "cpu"},
            labels={"org.example.kit": "test"},
            no_cache=True,
            on_event=events.append,
        )
        again = DockerBuilder().build(
            context, tags=[tag], build_args={"ENVIRONMENT": "cpu"}, labels={"org.example.kit": "test"}
        )
        image = docker_client.images.get(tag)
        assert image.id == first.artifact == again.artifact
        assert image.labels["org.example.kit"] == "test"
        assert first.size_bytes == image.attrs["Size"] > 0
        assert again.cache_hits >= 4 and again.cache_hits > first.cache_hits
        assert any("building cpu" in line for line in first.log)
        kinds = [e.kind for e in events]
        assert kinds[-1] == "finished" and "step_started" in kinds
        run = next(e for e in events if e.kind == "step_done" and "RUN" in e.instruction)
        assert run.duration is not None and run.duration >= 1.0
    finally:
        DockerBuilder().remove(tag, force=True)


@pytest.mark.docker
def test_docker_failing_step_is_named_and_nothing_tagged(
    docker_client: Any, shell_image: str, tmp_path: Path
) -> None:
    context = _context(tmp_path, "run_fails.Dockerfile")
    with pytest.raises(BuildError) as caught:
        DockerBuilder().build(context, tags=["kit-test/build-fails:1"])
    assert caught.value.step == 'RUN echo "about to fail" && cat /app/missing.txt'
    assert "cat /app/missing.txt" in str(caught.value)
    assert 0 < len(caught.value.log_tail.lines) <= 30
    assert any("No such file" in line for line in caught.value.log_tail.lines)
    assert _tags(docker_client, "kit-test/build-fails") == []


@pytest.mark.docker
def test_docker_cancel_stops_the_build_and_tags_nothing(
    docker_client: Any, shell_image: str, tmp_path: Path
) -> None:
    context = _context(tmp_path, "run_cancelled.Dockerfile")
    cancel = threading.Event()
    started = time.monotonic()

    def on_event(event: BuildEvent) -> None:
        if "start" in event.line:
            cancel.set()

    with pytest.raises(BuildCancelled, match="nothing was tagged"):
        DockerBuilder().build(
            context, tags=["kit-test/build-cancel:1"], no_cache=True, on_event=on_event, cancel=cancel
        )
    assert time.monotonic() - started < 25  # the RUN sleeps 30 s
    assert _tags(docker_client, "kit-test/build-cancel") == []


CTRL_C_CHILD = """
import sys
from kit.engines import DockerBuilder
from kit.base.errors import BuildCancelled
try:
    DockerBuilder().build(sys.argv[1], tags=["kit-test/build-ctrl-c:1"], no_cache=True,
          on_event=lambda e: print(e.line, flush=True) if "start" in e.line else None)
except BuildCancelled as error:
    print("cancelled:", error, flush=True)
    raise SystemExit(130)
"""


@pytest.mark.docker
def test_ctrl_c_stops_the_build_and_tags_nothing(
    docker_client: Any, shell_image: str, tmp_path: Path
) -> None:
    """A real SIGINT to a process that is building, as a terminal's Ctrl-C sends it."""
    import signal
    import subprocess
    import sys

    context = _context(tmp_path, "run_cancelled.Dockerfile")
    child = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_CHILD, str(context)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        for line in child.stdout:  # wait until the slow RUN step has started
            if "start" in line:
                break
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=25)  # the RUN sleeps 30 s
    finally:
        child.kill()
    assert child.returncode == 130 and "nothing was tagged" in out
    assert _tags(docker_client, "kit-test/build-ctrl-c") == []


@pytest.mark.docker
def test_docker_builder_with_docker_28_without_buildx(shell_image: str, tmp_path: Path) -> None:
    _needs(DOCKER_28)
    env = {**os.environ, "KIT_DOCKER_CLI": DOCKER_28}
    need(inspect_cli(DOCKER_28, env) is None, f"{DOCKER_28} has buildx here (nothing to refuse)")
    with pytest.raises(EngineUnavailable, match="buildx component is missing"):
        DockerBuilder(env=env).build(_context(tmp_path, "run_multistage.Dockerfile"))


def test_unreachable_daemon_says_what_to_do_instead(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    with pytest.raises(EngineUnavailable) as caught:
        DockerBuilder().build(tmp_path)
    assert "Cannot reach a Docker daemon" in str(caught.value)
    assert caught.value.instead and "GitHub workflow" in caught.value.instead


def test_engine_status_answers_everything() -> None:
    status = engine_status()
    names = [check.name for check in status.checks]
    assert names == ["docker_daemon", "buildkit_client", "apptainer", "nvidia_runtime", "host_gpu"]
    assert all(check.ok or check.fix for check in status.checks)
    assert set(status.usable_engines()) <= {"docker", "apptainer"}
    assert status.report().count("\n") == 4


# ---------------------------------------------------------------- real Apptainer builds


@pytest.fixture(scope="module")
def archive(
    docker_client: Any, apptainer_path: str, shell_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A ``docker save`` tarball of the shell image: an offline bootstrap source."""
    path = tmp_path_factory.mktemp("apptainer") / "sh.tar"
    with path.open("wb") as tar:
        for chunk in docker_client.images.get(shell_image).save(named=True):
            tar.write(chunk)
    return path


APPTAINER_DEF = """\
Bootstrap: docker-archive
From: {archive}
Stage: build

%files
./hello.txt /opt/hello.txt

%post
echo "post in build stage"
cat /opt/hello.txt > /opt/copy.txt

Bootstrap: docker-archive
From: {archive}
Stage: final

%files from build
/opt/copy.txt /opt/copy.txt

%post
echo "post in final stage"{slow}

%test
cat /opt/copy.txt{test_fails}
"""


def _def(directory: Path, archive: Path, *, slow: bool = False, test_fails: bool = False) -> Path:
    (directory / "hello.txt").write_text("hello\n")
    text = APPTAINER_DEF.format(
        archive=archive, slow="; sleep 30" if slow else "", test_fails="\nexit 4" if test_fails else ""
    )
    path = directory / "app.def"
    path.write_text(text)
    return path


@pytest.mark.apptainer
def test_apptainer_build_reports_stages_and_tests(archive: Path, tmp_path: Path) -> None:
    events: list[BuildEvent] = []
    result = ApptainerBuilder().build(_def(tmp_path, archive), on_event=events.append)
    assert result.artifact == str(tmp_path / "app.sif") and result.size_bytes > 0
    started = [(e.stage, e.instruction) for e in events if e.kind == "step_started"]
    assert started[:3] == [("build", "bootstrap"), ("build", "%files"), ("build", "%post")]
    assert ("final", "bootstrap") in started and started[-1] == ("final", "%test")
    assert any(line == "hello" for line in result.log)  # the %test section ran
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".sif"] == ["app.sif"]


@pytest.mark.apptainer
def test_apptainer_failed_test_keeps_the_old_sif(archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "app.sif"
    target.write_text("previous image")
    with pytest.raises(BuildError, match="%test") as caught:
        ApptainerBuilder().build(_def(tmp_path, archive, test_fails=True), output=target)
    assert caught.value.step == "%test"
    assert target.read_text() == "previous image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.def", "app.sif", "hello.txt"]


@pytest.mark.apptainer
def test_apptainer_failing_post_names_the_stage(archive: Path, tmp_path: Path) -> None:
    definition = _def(tmp_path, archive)
    definition.write_text(definition.read_text().replace("/opt/hello.txt >", "/opt/nope >"))
    with pytest.raises(BuildError) as caught:
        ApptainerBuilder().build(definition)
    assert caught.value.step == "%post of stage build"
    assert any("nope" in line for line in caught.value.log_tail.lines)
    assert not (tmp_path / "app.sif").exists()


@pytest.mark.apptainer
def test_apptainer_cancel(archive: Path, tmp_path: Path) -> None:
    cancel = threading.Event()

    def on_event(event: BuildEvent) -> None:
        if "sleep 30" in event.line:
            cancel.set()

    started = time.monotonic()
    with pytest.raises(BuildCancelled, match="no SIF was written"):
        ApptainerBuilder().build(_def(tmp_path, archive, slow=True), on_event=on_event, cancel=cancel)
    assert time.monotonic() - started < 25
    assert not any(p.suffix == ".sif" for p in tmp_path.iterdir())

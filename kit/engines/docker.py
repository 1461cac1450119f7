"""Build a Docker image with BuildKit, reporting progress, and tag it only when it succeeded.

The split follows repo2docker: the CLI builds (only it speaks BuildKit here, see
`kit.engines.docker_cli`), the docker SDK does everything else (ping, inspect, tag, remove),
because the SDK honours ``DOCKER_HOST`` and contexts and returns data instead of text.

Why tags are applied afterwards: the build runs with ``--iidfile`` and *no* ``-t``. BuildKit
names an image during its final export, so a build stopped at the wrong moment could still move
a tag; building untagged and tagging through the SDK after the CLI exited 0 means a failed or
cancelled build never leaves a tag behind (its layers stay in the build cache, which is what
makes the next attempt fast).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kit.base.errors import BuildError, EngineUnavailable, OptionsError
from kit.engines.docker_cli import DockerCli, find_docker_cli
from kit.engines.events import BuildEvent, BuildResult, EventCallback, ignore_event
from kit.engines.process import run_lines
from kit.engines.progress import PlainProgressParser

if TYPE_CHECKING:
    from docker import DockerClient

NO_DAEMON_INSTEAD = (
    "on Binder/JupyterHub there is no daemon: commit and push, and let the GitHub workflow build the image"
)


def connect_docker(client: DockerClient | None = None, env: Mapping[str, str] | None = None) -> DockerClient:
    """A pinged SDK client, or `EngineUnavailable` saying what to do instead.

    ``env`` (default: this process's environment) is where ``DOCKER_HOST`` is read, so a
    builder given its own environment builds and tags on the same daemon.
    """
    import docker
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    try:
        client = client or docker.from_env(environment=None if env is None else dict(env))
        client.ping()
    except (DockerException, RequestException) as error:
        raise EngineUnavailable(
            f"Cannot reach a Docker daemon at {docker_host(env)} ({error}).", instead=NO_DAEMON_INSTEAD
        ) from error
    return client


def docker_host(env: Mapping[str, str] | None = None) -> str:
    """The daemon address the SDK and the CLI use for ``env`` (default: this process's)."""
    env = os.environ if env is None else env
    return env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _daemon_answers(client: DockerClient) -> bool:
    """Whether the daemon still answers a ping (a failed build may mean it went away)."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    try:
        client.ping()
    except (DockerException, RequestException, OSError):
        return False
    return True


class DockerBuilder:
    """Builds a context directory into an image; one builder can run many builds."""

    engine = "docker"

    def __init__(
        self,
        *,
        client: DockerClient | None = None,
        cli: DockerCli | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self._cli = cli
        self._env = dict(os.environ if env is None else env)

    @property
    def client(self) -> DockerClient:
        if self._client is None:
            self._client = connect_docker(env=self._env)
        return self._client

    @property
    def cli(self) -> DockerCli:
        if self._cli is None:
            self._cli = find_docker_cli(self._env)
        return self._cli

    def build(
        self,
        context: Path | str,
        *,
        dockerfile: Path | str | None = None,
        tags: Sequence[str] = (),
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
        labels: Mapping[str, str] | None = None,
        no_cache: bool = False,
        pull: bool = False,
        on_event: EventCallback | None = None,
        cancel: threading.Event | None = None,
        platform: str | None = None,
    ) -> BuildResult:
        """Build ``context`` (with ``dockerfile``, default ``context/Dockerfile``); for
        ``platform`` (`linux/arm64`) when given, which BuildKit builds through emulation on
        another host (binfmt_misc with QEMU registered), each `RUN` many times slower.

        Raises `EngineUnavailable` (no daemon, no BuildKit client), `BuildError` (a step
        failed; names it and carries the last log lines) or `BuildCancelled`.
        """
        context = Path(context)
        if not context.is_dir():
            raise OptionsError(f"The build context {context} is not a directory.")
        client = connect_docker(self._client, self._env)
        self._client = client
        emit = on_event or ignore_event
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="kit-build-") as tmp:
            iidfile = Path(tmp) / "iid"
            argv = (
                self.cli.build_argv()
                + _options(dockerfile, build_args, target, labels, no_cache, pull, iidfile)
                + (["--platform", platform] if platform else [])
                + [str(context)]
            )
            parser = PlainProgressParser()
            run = run_lines(
                argv,
                env=self.cli.build_env(self._env),
                cancel=cancel,
                on_line=lambda line: _forward(parser, line, emit),
                what="Docker build",
                left_behind="nothing was tagged",
            )
            if run.returncode != 0:
                emit(BuildEvent("finished", failed=True, duration=time.monotonic() - started))
                if not _daemon_answers(client):
                    raise _daemon_gone(self._env, run.tail)
                raise _step_error(parser, run.tail, run.returncode)
            image_id = iidfile.read_text().strip() if iidfile.exists() else parser.image_id
        if not image_id:
            raise BuildError("The build succeeded but reported no image id.", list(run.tail))
        size = self._tag_and_measure(image_id, tags)
        duration = time.monotonic() - started
        emit(BuildEvent("finished", duration=duration))
        return BuildResult(
            "docker", image_id, tuple(tags), size, duration, parser.timings(), tuple(run.lines)
        )

    def _tag_and_measure(self, image_id: str, tags: Sequence[str]) -> int:
        image = self.client.images.get(image_id)
        for tag in tags:
            repository, _, version = _split_tag(tag)
            image.tag(repository, version or "latest")
        return int(image.attrs.get("Size") or 0)

    def remove(self, image: str, *, force: bool = False) -> None:
        """Remove an image (or one tag of it); a missing image is not an error."""
        from docker.errors import ImageNotFound

        try:
            self.client.images.remove(image, force=force)
        except ImageNotFound:
            pass


def _split_tag(tag: str) -> tuple[str, str, str]:
    """``host:5000/name:tag`` -> (``host:5000/name``, ``:``, ``tag``); the port is no tag."""
    repository, sep, version = tag.rpartition(":")
    if not sep or "/" in version:
        return tag, "", ""
    return repository, sep, version


def _options(
    dockerfile: Path | str | None,
    build_args: Mapping[str, str] | None,
    target: str | None,
    labels: Mapping[str, str] | None,
    no_cache: bool,
    pull: bool,
    iidfile: Path,
) -> list[str]:
    argv = ["--progress=plain", "--iidfile", str(iidfile)]
    if dockerfile is not None:
        argv += ["--file", str(dockerfile)]
    for key, value in (build_args or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in (labels or {}).items():
        argv += ["--label", f"{key}={value}"]
    if target:
        argv += ["--target", target]
    if no_cache:
        argv.append("--no-cache")
    if pull:
        argv.append("--pull")
    return argv


def _forward(parser: PlainProgressParser, line: str, emit: EventCallback) -> None:
    for event in parser.feed(line):
        emit(event)


def _step_error(parser: PlainProgressParser, tail: Sequence[str], status: int | None) -> BuildError:
    step = parser.failed_step
    if step:
        message = f"Docker build failed at step: {step}"
    else:
        last = next((line for line in reversed(tail) if line.strip()), "no output")
        message = f"Docker build failed (exit status {status}): {last}"
    return BuildError(message, list(tail), step=step)


def _daemon_gone(env: Mapping[str, str], tail: Sequence[str]) -> EngineUnavailable:
    """The build failed because the daemon stopped: say that, not the CLI's last line."""
    last = next((line for line in reversed(tail) if line.strip()), "no output")
    return EngineUnavailable(
        f"The Docker daemon at {docker_host(env)} stopped answering during the build "
        f"(the client's last line: {last}); nothing was tagged.",
        instead="restart the daemon (dockerd) and build again: finished steps are cached",
    )

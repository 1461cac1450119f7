"""Find a docker CLI that will really build with BuildKit.

The lesson's Dockerfile needs BuildKit (``COPY --chmod``), which the docker Python SDK's classic
builder lacks, so builds go through a CLI. Which CLI matters, because clients differ:

* a client with the buildx plugin: ``docker buildx build`` (the modern way);
* Docker 20.10-22.x clients (Debian 12's ``/usr/bin/docker``): BuildKit is built in,
  ``DOCKER_BUILDKIT=1 docker build``;
* Docker 23+ clients without buildx: ``DOCKER_BUILDKIT=1 docker build`` stops with "BuildKit is
  enabled but the buildx component is missing", and without the variable they fall back to the
  classic builder, which fails later on ``--chmod``. Such a client is refused up front, saying so.

The choice reads the environment it is given (never at import time), so tests can point it at
any binary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from kit.base.errors import EngineUnavailable, ToolNotFound

Mode = Literal["buildx", "builtin"]

ENV_CLI = "KIT_DOCKER_CLI"
WELL_KNOWN = ("/usr/bin/docker", "/usr/local/bin/docker")
BUILDX_MISSING = "BuildKit is enabled but the buildx component is missing"
BUILDX_HINT = (
    "install the buildx plugin (Debian/Ubuntu: apt-get install docker-buildx or "
    "docker-buildx-plugin; or put a docker-buildx binary in "
    "~/.docker/cli-plugins/), or set KIT_DOCKER_CLI to a docker client that has "
    "BuildKit built in (Docker 20.10-22.x, e.g. Debian 12's /usr/bin/docker)"
)
_VERSION = re.compile(r"Docker version (\d+)\.(\d+)")
_TIMEOUT_S = 20


@dataclass(frozen=True)
class DockerCli:
    """A docker client and how to make it build with BuildKit."""

    path: str
    version: tuple[int, int] | None
    mode: Mode

    def build_argv(self) -> list[str]:
        """The command's start; options and the context follow."""
        if self.mode == "buildx":
            return [self.path, "buildx", "build", "--load"]
        return [self.path, "build"]

    def build_env(self, base: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        env["DOCKER_BUILDKIT"] = "1"
        return env


def _run(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, env=dict(env), timeout=_TIMEOUT_S, check=False
    )


def client_version(path: str, env: Mapping[str, str]) -> tuple[int, int] | None:
    """The client's own version from ``docker --version`` (needs no daemon)."""
    match = _VERSION.search(_run([path, "--version"], env).stdout)
    return (int(match.group(1)), int(match.group(2))) if match else None


def has_buildx(path: str, env: Mapping[str, str]) -> bool:
    return _run([path, "buildx", "version"], env).returncode == 0


def refuses_buildkit(path: str, env: Mapping[str, str]) -> bool:
    """Ask the client itself: with DOCKER_BUILDKIT=1 and no arguments, a 23+ client without
    buildx prints the "buildx component is missing" error at once (no daemon needed)."""
    done = _run([path, "build"], {**env, "DOCKER_BUILDKIT": "1"})
    return BUILDX_MISSING in done.stdout + done.stderr


def inspect_cli(path: str, env: Mapping[str, str]) -> DockerCli | None:
    """How this client builds with BuildKit, or None when it cannot."""
    if has_buildx(path, env):
        return DockerCli(path, client_version(path, env), "buildx")
    version = client_version(path, env)
    if version is None or refuses_buildkit(path, env):
        return None
    return DockerCli(path, version, "builtin")


def _candidates(env: Mapping[str, str]) -> Iterator[str]:
    seen: set[str] = set()
    on_path = shutil.which("docker", path=env.get("PATH", os.defpath))
    for path in (on_path, *WELL_KNOWN):
        if path and os.access(path, os.X_OK) and os.path.realpath(path) not in seen:
            seen.add(os.path.realpath(path))
            yield path


def find_docker_cli(env: Mapping[str, str] | None = None) -> DockerCli:
    """``KIT_DOCKER_CLI`` if set; else a client with buildx; else one with built-in BuildKit."""
    env = dict(os.environ if env is None else env)
    chosen = env.get(ENV_CLI)
    if chosen:
        return _require(chosen, env)
    found = [(path, inspect_cli(path, env)) for path in _candidates(env)]
    if not found:
        raise ToolNotFound(
            "docker",
            "install a docker client (Debian/Ubuntu: apt-get install docker.io) or set KIT_DOCKER_CLI to one",
        )
    usable = [cli for _, cli in found if cli is not None]
    for cli in usable:
        if cli.mode == "buildx":
            return cli
    if usable:
        return usable[0]
    raise _no_buildkit(", ".join(path for path, _ in found))


def _require(path: str, env: Mapping[str, str]) -> DockerCli:
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ToolNotFound(
            path,
            f"{ENV_CLI} points at {path}, which is not an executable docker client; unset it or fix the path",
        )
    cli = inspect_cli(path, env)
    if cli is None:
        raise _no_buildkit(path)
    return cli


def _no_buildkit(paths: str) -> EngineUnavailable:
    return EngineUnavailable(
        f"No docker client here can build with BuildKit ({paths}): {BUILDX_MISSING}, and the "
        "classic builder cannot build the kit's Dockerfiles (COPY --chmod).",
        instead=BUILDX_HINT,
    )

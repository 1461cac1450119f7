"""What can build and run here, and what to do about what cannot.

The notebooks, the widgets and the instructor's pre-flight check all ask the same question
before offering a button: is there a Docker daemon, a BuildKit-capable client, an Apptainer, an
NVIDIA runtime, a GPU? Each answer carries a one-line fix, because "not available" alone strands
a learner. Nothing here raises: every probe failure becomes a ``False`` with its reason.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kit.base.errors import KitError, ToolNotFound
from kit.engines.apptainer import INSTALL_HINT, find_apptainer
from kit.engines.docker import NO_DAEMON_INSTEAD, connect_docker
from kit.engines.docker_cli import BUILDX_HINT, find_docker_cli
from kit.engines.gpu import docker_has_nvidia_runtime, host_has_nvidia_driver
from kit.engines.registry import ENGINES

if TYPE_CHECKING:
    from docker import DockerClient

DAEMON_FIX = "start one (apt-get install docker.io; dockerd &), or set DOCKER_HOST; " + NO_DAEMON_INSTEAD
RUNTIME_FIX = (
    "install the NVIDIA Container Toolkit and run 'nvidia-ctk runtime configure "
    "--runtime=docker', then restart dockerd (only useful on a host with a GPU)"
)
GPU_FIX = (
    "this machine has no NVIDIA driver: images still build (CONDA_OVERRIDE_CUDA), but the "
    "GPU probe only finds a GPU on a GPU host (a cluster node, a GPU CI runner)"
)


@dataclass(frozen=True)
class Capability:
    """One yes/no answer, what was found, and how to turn a no into a yes."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "ok " if self.ok else "NO "
        return f"{mark} {self.name}: {self.detail}" + ("" if self.ok else f" (fix: {self.fix})")


@dataclass(frozen=True)
class EngineStatus:
    """All the answers; ``status["apptainer"].ok`` or `usable_engines` for a quick decision."""

    checks: tuple[Capability, ...]

    def __getitem__(self, name: str) -> Capability:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def usable_engines(self) -> list[str]:
        """The engines whose every needed capability (`ContainerEngine.needs`) is here."""
        return [name for name, engine in ENGINES.items() if all(self[need].ok for need in engine.needs)]

    def blockers(self, engine: str) -> list[str]:
        """Why `engine` cannot build here (empty when it can): each capability it needs that is
        missing, with its fix."""
        if engine in self.usable_engines():
            return []
        known = ENGINES.get(engine)
        needs = known.needs if known else ()
        return [
            f"{engine}: {c.detail} (fix: {c.fix})" for c in self.checks if c.name in needs and not c.ok
        ] or [f"{engine} is not usable here"]

    def report(self) -> str:
        return "\n".join(check.line() for check in self.checks)


def engine_status(env: Mapping[str, str] | None = None, client: DockerClient | None = None) -> EngineStatus:
    """Probe everything (a few seconds at most: every call has a short timeout)."""
    env = dict(os.environ if env is None else env)
    daemon, client = _daemon(client, env)
    return EngineStatus((daemon, _buildkit(env), _apptainer(env), _runtime(client), _host_gpu()))


def _daemon(client: DockerClient | None, env: Mapping[str, str]) -> tuple[Capability, DockerClient | None]:
    import docker

    try:
        client = connect_docker(client or docker.from_env(timeout=5, environment=dict(env)))
    except (KitError, docker.errors.DockerException) as error:
        return Capability("docker_daemon", False, str(error).split(" Instead:")[0], DAEMON_FIX), None
    version = client.version().get("Version", "?")
    return Capability("docker_daemon", True, f"Docker Engine {version}"), client


def _buildkit(env: Mapping[str, str]) -> Capability:
    try:
        cli = find_docker_cli(env)
    except KitError as error:
        return Capability("buildkit_client", False, str(error).split(" Instead:")[0], BUILDX_HINT)
    how = "docker buildx" if cli.mode == "buildx" else "BuildKit built in"
    version = ".".join(map(str, cli.version)) if cli.version else "?"
    return Capability("buildkit_client", True, f"{cli.path} {version} ({how})")


def _apptainer(env: Mapping[str, str]) -> Capability:
    try:
        path = find_apptainer(env)
        done = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=60, check=False, env=dict(env)
        )
    except ToolNotFound as error:
        return Capability(
            "apptainer",
            False,
            error.hint.split(";")[0]
            if "KIT_APPTAINER=" in error.hint
            else "not found (KIT_APPTAINER unset, none on PATH)",
            INSTALL_HINT,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return Capability("apptainer", False, str(error), INSTALL_HINT)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return Capability("apptainer", False, f"{path} --version failed: {reason[0]}", INSTALL_HINT)
    return Capability("apptainer", True, f"{path}: {done.stdout.strip()}")


def _runtime(client: DockerClient | None) -> Capability:
    if client is None:
        return Capability("nvidia_runtime", False, "no Docker daemon to ask", RUNTIME_FIX)
    if docker_has_nvidia_runtime(client):
        return Capability("nvidia_runtime", True, "the daemon has the 'nvidia' runtime")
    return Capability("nvidia_runtime", False, "the daemon has no 'nvidia' runtime", RUNTIME_FIX)


def _host_gpu() -> Capability:
    if host_has_nvidia_driver():
        return Capability("host_gpu", True, "NVIDIA driver present")
    return Capability("host_gpu", False, "no /proc/driver/nvidia/version and no nvidia-smi", GPU_FIX)

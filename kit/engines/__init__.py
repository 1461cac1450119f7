"""Build images with real engines, behind one interface: `get_engine(name).build(BuildRequest)`.

Engines are picked by name from a plain table (no plugin loading, nothing runs at import), so
the CLI, the widgets and the tests all reach an engine the same way and a test can build its
own builder with a fake environment. Each builder owns its engine's quirks; the shared
vocabulary (events, results, errors) lives in `kit.engines.events` and `kit.base.errors`.
"""

from __future__ import annotations

from kit.engines.apptainer import ApptainerBuilder, find_apptainer
from kit.engines.docker import DockerBuilder, connect_docker
from kit.engines.docker_cli import DockerCli, find_docker_cli
from kit.engines.engine import (
    ENGINES,
    ApptainerEngine,
    BuildRequest,
    ContainerEngine,
    DockerEngine,
    get_engine,
)
from kit.engines.events import BuildEvent, BuildResult, EventCallback, StepTiming
from kit.engines.status import Capability, EngineStatus, engine_status

__all__ = [
    "ENGINES",
    "ApptainerBuilder",
    "ApptainerEngine",
    "BuildEvent",
    "BuildRequest",
    "BuildResult",
    "Capability",
    "ContainerEngine",
    "DockerBuilder",
    "DockerCli",
    "DockerEngine",
    "EngineStatus",
    "EventCallback",
    "StepTiming",
    "connect_docker",
    "engine_status",
    "find_apptainer",
    "find_docker_cli",
    "get_engine",
]

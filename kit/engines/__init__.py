"""Build images with real engines, behind one interface: `get_engine(name).build(BuildRequest)`.

Engines are picked by name from a plain table (`kit.engines.registry`: no plugin loading,
nothing runs at import), so the CLI, the widgets and the tests all reach an engine the same way
and a test can build its own builder with a fake environment. Each engine class
(`DockerEngine`, `ApptainerEngine`) holds all that is particular to its engine, and the rest of
the kit asks it instead of comparing names; each builder owns its tool's quirks; the shared
vocabulary (events, results, errors) lives in `kit.engines.events` and `kit.base.errors`.
"""

from __future__ import annotations

from kit.engines.apptainer import ApptainerBuilder, find_apptainer
from kit.engines.apptainer_engine import SIF_TAG_PREFIX, ApptainerEngine
from kit.engines.docker import DockerBuilder, connect_docker
from kit.engines.docker_cli import DockerCli, find_docker_cli
from kit.engines.docker_engine import DockerEngine
from kit.engines.engine import Admits, BuildRequest, ContainerEngine
from kit.engines.events import BuildEvent, BuildResult, EventCallback, StepTiming
from kit.engines.registry import (
    DEFAULT_ENGINE,
    ENGINE_NAMES,
    ENGINES,
    engine_for_image,
    engine_for_scheme,
    get_engine,
)
from kit.engines.status import Capability, EngineStatus, engine_status

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "ENGINE_NAMES",
    "SIF_TAG_PREFIX",
    "Admits",
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
    "engine_for_image",
    "engine_for_scheme",
    "engine_status",
    "find_apptainer",
    "find_docker_cli",
    "get_engine",
]

"""Build images with real engines: ``build("docker", context)`` or ``build("apptainer", def)``.

Builders are picked by name from a plain table (no plugin loading, nothing runs at import), so
the CLI, the widgets and the tests all reach an engine the same way and a test can build its
own builder with a fake environment. Each builder owns its engine's quirks; the shared
vocabulary (events, results, errors) lives in `kit.build.events` and `kit.errors`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from kit.build.apptainer import ApptainerBuilder, find_apptainer
from kit.build.docker import DockerBuilder, connect_docker
from kit.build.docker_cli import DockerCli, find_docker_cli
from kit.build.events import BuildEvent, BuildResult, EventCallback, StepTiming
from kit.build.status import Capability, EngineStatus, engine_status
from kit.errors import OptionsError


class Builder(Protocol):
    """What `build` needs of a builder; each engine's ``build`` has its own keyword options."""

    engine: str

    def build(self, *args: Any, **kwargs: Any) -> BuildResult: ...


BUILDERS: Mapping[str, Callable[[], Builder]] = MappingProxyType({
    "docker": DockerBuilder,
    "apptainer": ApptainerBuilder,
})


def get_builder(engine: str) -> Builder:
    """A fresh builder for ``engine`` ("docker" or "apptainer")."""
    factory = BUILDERS.get(engine.lower())
    if factory is None:
        raise OptionsError(f"Unknown engine {engine!r}.", field="engine",
                           fix="use one of " + ", ".join(sorted(BUILDERS)))
    return factory()


def build(engine: str, source: Path | str, *, on_event: EventCallback | None = None,
          cancel: threading.Event | None = None, **options: Any) -> BuildResult:
    """Build ``source`` with ``engine``.

    For "docker", ``source`` is the context directory; options: ``dockerfile``, ``tags``,
    ``build_args``, ``target``, ``labels``, ``no_cache``, ``pull``. For "apptainer", ``source``
    is the definition file; options: ``output``, ``build_args``, ``force``.
    """
    return get_builder(engine).build(source, on_event=on_event, cancel=cancel, **options)


__all__ = [
    "BUILDERS", "ApptainerBuilder", "BuildEvent", "BuildResult", "Builder",
    "Capability", "DockerBuilder", "DockerCli", "EngineStatus", "EventCallback",
    "StepTiming", "build", "connect_docker", "engine_status", "find_apptainer",
    "find_docker_cli", "get_builder",
]

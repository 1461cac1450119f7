"""The one interface every container engine offers the kit: build a staged context, probe a result.

As repo2docker's `ContainerEngine`, a `BuildRequest` says what to build and an engine's
`.build()` and `.probe()` do it, so the facade never branches on the engine's name: a new
engine is a new class in `ENGINES`, nothing else changes. Each engine wraps the builder that
knows its tool's quirks (`DockerBuilder`, `ApptainerBuilder`), which keep their own options for
the tests and benchmarks that drive them directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from kit.base.errors import OptionsError
from kit.engines.apptainer import ApptainerBuilder
from kit.engines.docker import DockerBuilder
from kit.engines.events import BuildResult, EventCallback

if TYPE_CHECKING:
    from kit.engines.gpu import GpuMode, ProbeReport


@dataclass(frozen=True)
class BuildRequest:
    """One build: a staged context holding the engine's recipe, and what to call the result."""

    context: Path  # a private folder: workspace + freshly rendered files
    name: str  # Docker: `repository:tag`; Apptainer: the SIF's stem
    output_dir: Path  # where a file artifact (a SIF) is written
    build_args: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    on_event: EventCallback | None = None
    cancel: threading.Event | None = None


class ContainerEngine(Protocol):
    """What the facade needs of an engine."""

    name: str
    recipe: str  # the file in the context this engine reads

    def build(self, request: BuildRequest) -> BuildResult: ...

    def probe(self, artifact: str, gpu: GpuMode = "auto") -> ProbeReport: ...


class DockerEngine:
    """Docker Engine with BuildKit: the context's Dockerfile, tagged `request.name`."""

    name = "docker"
    recipe = "Dockerfile"

    def __init__(self, builder: DockerBuilder | None = None) -> None:
        self.builder = builder or DockerBuilder()

    def build(self, request: BuildRequest) -> BuildResult:
        return self.builder.build(
            request.context,
            tags=[request.name],
            build_args=dict(request.build_args),
            no_cache=request.no_cache,
            on_event=request.on_event,
            cancel=request.cancel,
        )

    def probe(self, artifact: str, gpu: GpuMode = "auto") -> ProbeReport:
        from kit.engines.gpu import probe_docker  # kit.engines.gpu imports kit.engines

        return probe_docker(artifact, gpu=gpu)


class ApptainerEngine:
    """Apptainer: the context's apptainer.def, written to `output_dir/<name>.sif`."""

    name = "apptainer"
    recipe = "apptainer.def"

    def __init__(self, builder: ApptainerBuilder | None = None) -> None:
        self.builder = builder or ApptainerBuilder()

    def build(self, request: BuildRequest) -> BuildResult:
        sif = Path(request.output_dir).resolve() / f"{request.name}.sif"
        return self.builder.build(
            request.context / self.recipe,
            output=sif,
            build_args=dict(request.build_args),
            on_event=request.on_event,
            cancel=request.cancel,
        )

    def probe(self, artifact: str, gpu: GpuMode = "auto") -> ProbeReport:
        from kit.engines.gpu import probe_apptainer

        return probe_apptainer(artifact, gpu=gpu)


ENGINES: Mapping[str, Callable[[], ContainerEngine]] = MappingProxyType(
    {
        "docker": DockerEngine,
        "apptainer": ApptainerEngine,
    }
)


def get_engine(name: str) -> ContainerEngine:
    """A fresh engine for `name` ("docker" or "apptainer")."""
    factory = ENGINES.get(name.lower())
    if factory is None:
        raise OptionsError(
            f"engine {name!r} is unknown", field="engine", fix="use one of " + ", ".join(sorted(ENGINES))
        )
    return factory()

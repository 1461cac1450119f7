"""The engines the kit knows, by name: a constant table, and the questions asked across it.

A plain table (no plugin loading, nothing runs at import), so the CLI, the widgets, the facade
and the tests all reach an engine the same way, and a test can build its own engine around a
builder with a fake environment. Its order is the order front ends offer the engines in; the
first is the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from kit.base.errors import OptionsError
from kit.engines.apptainer_engine import ApptainerEngine
from kit.engines.docker_engine import DockerEngine
from kit.engines.engine import ContainerEngine

ENGINES: Mapping[str, type[ContainerEngine]] = MappingProxyType(
    {engine.name: engine for engine in (DockerEngine, ApptainerEngine)}
)
ENGINE_NAMES: tuple[str, ...] = tuple(ENGINES)
DEFAULT_ENGINE = ENGINE_NAMES[0]


def get_engine(name: str) -> ContainerEngine:
    """A fresh engine for `name` (any case), or OptionsError naming the ones there are."""
    factory = ENGINES.get(name.lower())
    if factory is None:
        raise OptionsError(
            f"engine {name!r} is unknown", field="engine", fix="use one of " + ", ".join(sorted(ENGINES))
        )
    return factory()


def engine_for_image(image: str) -> str:
    """The engine whose artifacts look like `image` (a `.sif` path: Apptainer), else the default."""
    return next((name for name, engine in ENGINES.items() if engine.owns_image(image)), DEFAULT_ENGINE)


def serves_several_platforms(scheme: str) -> bool:
    """Whether the image a job pulls over `scheme://` can hold several platforms (a local SIF
    file, no engine's scheme, holds one)."""
    name = engine_for_scheme(scheme)
    return name is not None and ENGINES[name].serves_several_platforms


def engine_for_scheme(scheme: str) -> str | None:
    """The engine whose published images are pulled over `scheme://` (None: no engine's)."""
    return next((name for name, engine in ENGINES.items() if engine.pull_scheme == scheme), None)

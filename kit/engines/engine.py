"""The one interface every container engine offers the kit: what it builds from, what it makes,
what it is called, what it needs here, and how to build, probe and measure with it.

As repo2docker's `ContainerEngine`, a `BuildRequest` says what to build and an engine's
`.build()` and `.probe()` do it. Beyond that, everything the rest of the kit would otherwise
decide by comparing an engine's name is a question put to the engine (papermill's registries:
one class holds all that is particular to one engine): which files its build context admits
(staging asks), how its artifact and its published tags are named (the facade and the job files
ask), which build arguments it takes from git, which capabilities of `EngineStatus` it needs and
the command a person would type (the widgets ask), and how to read a built image's make-up. A new
engine is one class here and one entry in `kit.engines.registry.ENGINES`; nothing else changes.

The engines wrap the builders that know their tool's quirks (`DockerBuilder`,
`ApptainerBuilder`), which keep their own options for the tests and benchmarks that drive them
directly.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from kit.engines.events import BuildResult, EventCallback

if TYPE_CHECKING:
    from kit.engines.gpu import GpuMode, ProbeReport
    from kit.engines.makeup import Makeup

Admits = Callable[[str, bool], bool]  # (relative path, is a folder) -> copy it / look inside it


@dataclass(frozen=True)
class BuildRequest:
    """One build: a staged context holding the engine's recipe, and what to call the result."""

    context: Path  # a private folder: workspace + freshly rendered files
    name: str  # what `ContainerEngine.artifact_name` gave: Docker's `repository:tag`, the SIF's stem
    output_dir: Path  # where a file artifact (a SIF) is written
    build_args: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    on_event: EventCallback | None = None
    cancel: threading.Event | None = None
    # A platform other than the host's, as OCI names it (`linux/arm64`): the engine builds for it
    # through emulation. None: the host's own platform, and the engine is not told any.
    platform: str | None = None


class ContainerEngine(ABC):
    """What the kit needs of an engine; the class attributes are facts, the methods the work."""

    name: ClassVar[str]  # the registry's key and the CLI's `--engine` value
    label: ClassVar[str]  # the engine as people write it ("Docker")
    recipe: ClassVar[str]  # the file in the context this engine reads
    # The `EngineStatus` capabilities (kit.engines.status) it cannot build without.
    needs: ClassVar[tuple[str, ...]]
    pull_scheme: ClassVar[str]  # the URI scheme its published images are pulled over (`docker://`)
    tag_prefix: ClassVar[str] = ""  # before every tag it publishes, to keep apart in one repository
    artifact_suffix: ClassVar[str] = ""  # the suffix of a file artifact; "" for an image in a store
    # The build arguments its recipe takes from git (the commit, for labels), when a style asks.
    commit_args: ClassVar[tuple[str, ...]] = ()
    # Whether one published artifact serves several platforms (Docker's manifest list), so a job
    # that pulls it runs on any of their architectures; a SIF holds one.
    serves_several_platforms: ClassVar[bool] = False

    @abstractmethod
    def build(self, request: BuildRequest) -> BuildResult:
        """Build `request.context` into the artifact `request.name`."""

    @abstractmethod
    def probe(self, artifact: str, gpu: GpuMode = "auto") -> ProbeReport:
        """Run the GPU probe in `artifact` (an image reference or a file, as the engine names them)."""

    @abstractmethod
    def makeup(self, result: BuildResult, *, base_image: str | None = None, label: str = "") -> Makeup:
        """What the artifact `result` produced is made of; never fails for want of the engine."""

    @abstractmethod
    def context_admits(self, rendered: Mapping[str, str], source: Path) -> Admits:
        """Which paths of the workspace folder `source` go into this engine's build context, given
        the freshly rendered files (path relative to the workspace -> text)."""

    @abstractmethod
    def artifact_name(self, repository: str, tag: str) -> str:
        """What a build of `repository` at `tag` is called (`BuildRequest.name`)."""

    @abstractmethod
    def build_command(self, folder: str, name: str, platform: str | None = None) -> str:
        """The engine's own command line that builds the workspace in `folder` as `name` (what
        `artifact_name` gave), for a person on a machine that has the engine; for `platform`
        (`linux/arm64`) when it is not that machine's."""

    def built_artifact(self, result: BuildResult) -> str:
        """What to run of a finished build (the probe's argument): the artifact itself."""
        return result.artifact

    def probe_built(self, result: BuildResult, gpu: GpuMode = "auto") -> ProbeReport:
        """Run the GPU probe in what a build produced."""
        return self.probe(self.built_artifact(result), gpu=gpu)

    @classmethod
    def published_tag(cls, tag: str) -> str:
        """`tag` as the workflows push this engine's artifact: with its prefix, if it has one."""
        return cls.tag_prefix + tag

    @classmethod
    def owns_image(cls, image: str) -> bool:
        """Whether `image` names an artifact of this engine by its form alone (a `.sif` path)."""
        return bool(cls.artifact_suffix) and image.endswith(cls.artifact_suffix)

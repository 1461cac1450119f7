"""Docker Engine with BuildKit, as the kit asks it: everything particular to Docker in one class.

The builder (kit.engines.docker) runs the build; the GPU probe (kit.engines.gpu) and the make-up
reader (kit.engines.makeup) each keep one function per engine. This class answers the rest: the
`.dockerignore` decides the context, the artifact is `repository:tag` in the daemon's store, the
optimized Dockerfile labels the image with the commit, and a build needs a daemon and a
BuildKit-capable client.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

from kit.engines.context import ignore_file_admits
from kit.engines.docker import DockerBuilder
from kit.engines.engine import Admits, BuildRequest, ContainerEngine
from kit.engines.events import BuildResult
from kit.engines.gpu import GpuMode, ProbeReport, probe_docker
from kit.engines.makeup import Makeup, base_candidates, docker_makeup, only_total
from kit.model import deployfiles


class DockerEngine(ContainerEngine):
    """The context's Dockerfile, built with BuildKit and tagged `request.name`."""

    name = "docker"
    label = "Docker"
    recipe = deployfiles.DOCKERFILE
    needs = ("docker_daemon", "buildkit_client")
    pull_scheme = "docker"
    serves_several_platforms = True  # a manifest list: each machine pulls its own platform's image
    commit_args = ("REVISION", "CREATED")  # the OCI labels org.opencontainers.image.{revision,created}

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
            platform=request.platform,
        )

    def probe(self, artifact: str, gpu: GpuMode = "auto") -> ProbeReport:
        return probe_docker(artifact, gpu=gpu)

    def built_artifact(self, result: BuildResult) -> str:
        """The tag it was given (a person reads it), else the image id."""
        return result.tags[0] if result.tags else result.artifact

    def makeup(self, result: BuildResult, *, base_image: str | None = None, label: str = "") -> Makeup:
        """The image's layers from the daemon, split at the final stage's base (the given one, or
        those the build's log names); without a daemon, the size the build reported is all."""
        candidates = ((base_image,) if base_image else ()) + base_candidates(result)
        image = self.built_artifact(result)
        try:
            return docker_makeup(image, base_images=candidates, label=label)
        except Exception as error:  # noqa: BLE001 - no daemon: the size the build reported is all
            return only_total(
                label or image,
                self.name,
                result.size_bytes,
                f"only the size: cannot read the image ({type(error).__name__})",
            )

    def context_admits(self, rendered: Mapping[str, str], source: Path) -> Admits:
        return ignore_file_admits(rendered, source)

    def artifact_name(self, repository: str, tag: str) -> str:
        return f"{repository}:{tag}"

    def build_command(self, folder: str, name: str, platform: str | None = None) -> str:
        return shlex.join(
            ["docker", "build", *(["--platform", platform] if platform else []), "--tag", name, folder]
        )

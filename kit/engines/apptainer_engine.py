"""Apptainer, as the kit asks it: everything particular to Apptainer in one class.

The builder (kit.engines.apptainer) runs the build; the GPU probe (kit.engines.gpu) and the
make-up reader (kit.engines.makeup) each keep one function per engine. This class answers the
rest: the def file's `%files` lines decide the context (Apptainer has no ignore file), the
artifact is a file, `<tag>.sif`, whose published tags carry `SIF_TAG_PREFIX`, and a build needs
an `apptainer` executable.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path

from kit.base.errors import BuildCancelled, BuildError
from kit.engines.apptainer import ApptainerBuilder
from kit.engines.apptainer_reuse import Reuse, others, plan_reuse, refresh
from kit.engines.context import def_admits, ignore_file_admits
from kit.engines.engine import Admits, BuildRequest, ContainerEngine
from kit.engines.events import BuildResult
from kit.engines.gpu import GpuMode, ProbeReport, probe_apptainer
from kit.engines.makeup import Makeup, sif_makeup
from kit.model import deployfiles


def arch_of(platform: str | None) -> str | None:
    """Apptainer's `--arch` value for an OCI platform (`linux/arm64` -> `arm64`)."""
    return platform.rsplit("/", 1)[-1] if platform else None


# The workflows push the SIF over ORAS to the same repository as the Docker image, so its tags
# carry this prefix to stay apart from the image's (kit.decide.plan.immutable_tag, the workflow
# templates and kit.check.jobs all follow it).
SIF_TAG_PREFIX = "apptainer-"


class ApptainerEngine(ContainerEngine):
    """The context's apptainer.def, written to `output_dir/<name>.sif`."""

    name = "apptainer"
    label = "Apptainer"
    recipe = deployfiles.APPTAINER_DEF
    needs = ("apptainer",)
    pull_scheme = "oras"
    tag_prefix = SIF_TAG_PREFIX
    artifact_suffix = ".sif"

    def __init__(self, builder: ApptainerBuilder | None = None) -> None:
        self.builder = builder or ApptainerBuilder()

    def build(self, request: BuildRequest) -> BuildResult:
        """Build the def; after an edit to the final stage's host `%files` only (app/), re-pack
        the root kept from the last build instead (kit.engines.apptainer_reuse)."""
        sif = Path(request.output_dir).resolve() / f"{request.name}{self.artifact_suffix}"
        definition = request.context / self.recipe
        reuse = (
            plan_reuse(definition, request.build_args, request.name, getattr(self.builder, "env", os.environ))
            if definition.is_file()
            else None
        )
        if reuse is not None and reuse.ready and not request.no_cache:
            try:
                refresh(reuse, request.context)
                return self.builder.build(
                    reuse.root, output=sif, on_event=request.on_event, cancel=request.cancel
                )
            except BuildCancelled:
                raise
            except (OSError, BuildError):  # a damaged kept root: drop it, build from the def
                shutil.rmtree(reuse.root, ignore_errors=True)
        result = self.builder.build(
            definition,
            output=sif,
            build_args=dict(request.build_args),
            on_event=request.on_event,
            cancel=request.cancel,
            arch=arch_of(request.platform),
        )
        if reuse is not None:
            self._keep_root(reuse, sif, request.name)
        return result

    def _keep_root(self, reuse: Reuse, sif: Path, name: str) -> None:
        """Unpack the new SIF as the root kept for its key (into a temporary name, renamed when
        complete), and drop the roots of older keys for the same name. The SIF is built and
        tested already: a root that cannot be kept costs the next rebuild its speed, nothing else."""
        partial = reuse.root.with_name(f".{reuse.root.name}.partial-{os.getpid()}")
        try:
            shutil.rmtree(partial, ignore_errors=True)
            partial.parent.mkdir(parents=True, exist_ok=True)
            self.builder.unpack(sif, partial)
            for old in [*others(reuse, name), reuse.root]:
                shutil.rmtree(old, ignore_errors=True)
            os.replace(partial, reuse.root)
        except (OSError, BuildError):
            pass
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    def probe(self, artifact: str, gpu: GpuMode = "auto") -> ProbeReport:
        return probe_apptainer(artifact, gpu=gpu)

    def makeup(self, result: BuildResult, *, base_image: str | None = None, label: str = "") -> Makeup:
        """Measured inside the SIF (a SIF has no layers, so `base_image` tells nothing)."""
        return sif_makeup(result.artifact, label=label)

    def context_admits(self, rendered: Mapping[str, str], source: Path) -> Admits:
        """The def's host `%files` sources; with no def rendered, what the ignore file admits."""
        if self.recipe in rendered:
            return def_admits(rendered[self.recipe])
        return ignore_file_admits(rendered, source)

    def artifact_name(self, repository: str, tag: str) -> str:
        """The SIF's stem: a file in the output folder, not an entry in a store."""
        return tag

    def build_command(self, folder: str, name: str, platform: str | None = None) -> str:
        sif = shlex.quote(name + self.artifact_suffix)
        arch = f"--arch {shlex.quote(a)} " if (a := arch_of(platform)) else ""
        return f"cd {shlex.quote(folder)} && apptainer build {arch}{sif} {self.recipe}"

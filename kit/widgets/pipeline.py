"""Build and probe what the kit renders, from a staged copy, for the studio and the notebooks.

`kit.api` has no build step that starts from a `Prepared` yet, so this module is that step:
it copies the workspace to a scratch folder, writes the rendered files there, and hands the
folder to `kit.build`. Building from a copy means a preview can be built without writing
anything into the learner's workspace (or into the lesson's `examples/`). It also answers the
question both front ends ask first: can a build happen here at all, and if not, why not and
what to run elsewhere.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kit import api
from kit.build import BuildResult, EngineStatus, EventCallback
from kit.errors import KitError
from kit.gpu import GpuMode, ProbeReport
from kit.options import DEFAULT_BASE_IMAGE, DEFAULT_RUNTIME_IMAGE, RenderOptions, resolve
from kit.workspace import Workspace
from kit.write import apply_changes, plan_changes

ENGINES: tuple[str, ...] = ("docker", "apptainer")
BuildMode = Literal["auto", "never", "require"]
BUILD_MODES: tuple[str, ...] = ("auto", "never", "require")
NO_LOCK_REASON = "no pixi.lock: run `pixi lock` on a connected machine and commit pixi.lock"
# Left out of a staged copy: installed environments, images, and git's own data.
_NOT_STAGED = (".pixi", ".git", "*.sif", "__pycache__", ".ipynb_checkpoints")

Builder = Callable[[api.Prepared, str, Path, EventCallback | None, threading.Event | None],
                   BuildResult]
Prober = Callable[[BuildResult], ProbeReport]


class BuildNotPossible(KitError):
    """`build="require"` was asked for, but this machine or workspace cannot build."""


@dataclass(frozen=True)
class BuildDecision:
    """Whether to build, and the sentence that says why (printed either way)."""

    go: bool
    reason: str


def stage_workspace(source: Path | str, dest: Path | str) -> Path:
    """Copy a workspace folder to `dest` (replaced if present), without `.pixi/` or images."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(Path(source), dest, ignore=shutil.ignore_patterns(*_NOT_STAGED))
    return dest


def option_values(options: RenderOptions) -> dict[str, Any]:
    """The options as keyword arguments for `api.prepare`, without the repository placement."""
    values = dataclasses.asdict(options)
    values.pop("subdir")
    return values


def write_staged(prepared: api.Prepared, stage: Path) -> api.Prepared:
    """Stage the workspace and write its rendered files there, as a repository of its own."""
    stage_workspace(prepared.workspace.root, stage)
    staged = api.prepare(stage, subdir="", **option_values(prepared.options))
    apply_changes(plan_changes(staged.render(), staged.location.root, force=True),
                  staged.location.root)
    return staged


def primary_tag(prepared: api.Prepared) -> str:
    return resolve(prepared.workspace, prepared.options).primary.tag


def image_reference(prepared: api.Prepared) -> str:
    """The local Docker tag the kit builds: `<image name or workspace name>:<derived tag>`."""
    name = prepared.options.image_name or local_image_name(prepared.workspace.name)
    return f"{name}:{primary_tag(prepared)}"


def local_image_name(workspace_name: str) -> str:
    """A workspace name as a Docker repository name (lower case, no spaces)."""
    return re.sub(r"[^a-z0-9._-]+", "-", workspace_name.lower()).strip("-._") or "pixi-workspace"


def build_staged(prepared: api.Prepared, engine: str, workdir: Path,
                 on_event: EventCallback | None = None,
                 cancel: threading.Event | None = None) -> BuildResult:
    """Build the rendered recipe for `engine` from a staged copy under `workdir`.

    Docker tags the image `image_reference(prepared)`; Apptainer writes `<tag>.sif` into
    `workdir`, never into the workspace.
    """
    from kit.build import build

    staged = write_staged(prepared, workdir / "context")
    if engine == "docker":
        return build("docker", staged.location.root, tags=[image_reference(prepared)],
                     on_event=on_event, cancel=cancel)
    return build("apptainer", staged.location.root / "apptainer.def",
                 output=workdir / f"{primary_tag(prepared)}.sif", on_event=on_event, cancel=cancel)


def probe_result(result: BuildResult, gpu: GpuMode = "auto") -> ProbeReport:
    """Run the GPU probe in what a build produced (a Docker tag or a SIF)."""
    from kit.gpu import probe_apptainer, probe_docker

    if result.engine == "apptainer":
        return probe_apptainer(result.artifact, gpu=gpu)
    return probe_docker(result.tags[0] if result.tags else result.artifact, gpu=gpu)


def engine_blockers(engine: str, status: EngineStatus) -> list[str]:
    """Why `engine` cannot build here (empty when it can), each with its fix."""
    if engine in status.usable_engines():
        return []
    names = ("docker_daemon", "buildkit_client") if engine == "docker" else ("apptainer",)
    return [f"{engine}: {c.detail} (fix: {c.fix})" for c in status.checks
            if c.name in names and not c.ok] or [f"{engine} is not usable here"]


def workspace_blockers(workspace: Workspace, environment: str | None) -> list[str]:
    """Why this workspace cannot be built with `pixi install --locked` (empty when it can)."""
    if workspace.lock is None:
        return [NO_LOCK_REASON]
    env = environment or default_environment(workspace)
    if not workspace.is_locked_for_linux(env):
        return [f"environment {env!r} is not locked for linux-64: add linux-64 to the "
                "workspace's platforms and run `pixi lock`"]
    return []


def default_environment(workspace: Workspace) -> str:
    """The kit's own default: the first CUDA container environment, else the first one."""
    names = workspace.container_environments
    with_cuda = [n for n in names if workspace.environments[n].cuda]
    return (with_cuda or list(names))[0]


def decide_build(mode: str, blockers: Sequence[str], engine: str) -> BuildDecision:
    """auto: build when nothing blocks; never: do not; require: build or raise BuildNotPossible."""
    if mode not in BUILD_MODES:
        raise BuildNotPossible(f"build={mode!r} is not one of {', '.join(BUILD_MODES)}")
    if mode == "never":
        return BuildDecision(False, "build='never': skipping the build (set build='auto' or "
                                    "'require' to build)")
    if blockers:
        reason = "; ".join(blockers)
        if mode == "require":
            raise BuildNotPossible(f"build='require' but the {engine} build cannot run: {reason}")
        return BuildDecision(False, f"skipping the {engine} build: {reason}")
    return BuildDecision(True, f"building with {engine}")


_FLAGS = (("cuda", "--cuda"), ("base_image", "--base-image"), ("runtime_image", "--runtime-image"),
          ("image_name", "--image-name"), ("bootstrap_source", "--bootstrap-source"))
_DEFAULTS = {"cuda": None, "base_image": DEFAULT_BASE_IMAGE, "runtime_image": DEFAULT_RUNTIME_IMAGE,
             "image_name": "", "bootstrap_source": ""}


def build_commands(prepared: api.Prepared, engine: str) -> list[str]:
    """The `kit build` line for these options, and the engine's own command, for elsewhere."""
    folder = prepared.location.subdir or prepared.workspace.root.resolve().name
    opts = prepared.options
    env = resolve(prepared.workspace, opts).primary.name
    argv = ["kit", "build", folder, "--engine", engine, "--env", env]
    if opts.style != "lesson":
        argv += ["--style", opts.style]
    for field, flag in _FLAGS:
        value = getattr(opts, field)
        if value != _DEFAULTS[field]:
            argv += [flag, str(value)]
    if opts.app_dir != "app":
        argv += ["--app-dir", opts.app_dir]
    if opts.bootstrap != "docker":
        argv += ["--bootstrap", opts.bootstrap]
    kit_line = shlex.join(argv)
    if engine == "docker":
        return [kit_line, shlex.join(["docker", "build", "--tag", image_reference(prepared), folder])]
    sif = f"{primary_tag(prepared)}.sif"
    return [kit_line, f"cd {shlex.quote(folder)} && apptainer build {shlex.quote(sif)} apptainer.def"]

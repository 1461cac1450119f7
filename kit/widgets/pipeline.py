"""What the studio and the notebooks ask before a build: can it happen here, and if not, why
not and what to run elsewhere. The build itself is `kit.api.build_prepared` (from a staged copy,
so a preview builds without writing into the learner's workspace or the lesson's `examples/`).
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kit import api
from kit.base.errors import BuildNotPossible
from kit.decide.options import RenderOptions, default_of, schema
from kit.engines import BuildResult, EngineStatus, EventCallback, get_engine
from kit.engines.gpu import GpuMode, ProbeReport
from kit.model.workspace import Workspace

BuildMode = Literal["auto", "never", "require"]
BUILD_MODES: tuple[str, ...] = ("auto", "never", "require")
NO_LOCK_REASON = "no pixi.lock: run `pixi lock` on a connected machine and commit pixi.lock"

Builder = Callable[[api.Prepared, str, Path, EventCallback | None, threading.Event | None], BuildResult]
Prober = Callable[[BuildResult], ProbeReport]


@dataclass(frozen=True)
class BuildDecision:
    """Whether to build, and the sentence that says why (printed either way)."""

    go: bool
    reason: str


def probe_result(result: BuildResult, gpu: GpuMode = "auto") -> ProbeReport:
    """Run the GPU probe in what a build produced (a Docker tag or a SIF)."""
    return get_engine(result.engine).probe_built(result, gpu=gpu)


def engine_blockers(engine: str, status: EngineStatus) -> list[str]:
    """Why `engine` cannot build here (empty when it can), each with its fix."""
    return status.blockers(engine)


def workspace_blockers(workspace: Workspace, environment: str | None) -> list[str]:
    """Why this workspace cannot be built with `pixi install --locked` (empty when it can)."""
    if workspace.lock is None:
        return [NO_LOCK_REASON]
    env = environment or api.default_environment(workspace)
    if not workspace.is_locked_for_linux(env):
        return [
            f"environment {env!r} is not locked for linux-64: add linux-64 to the "
            "workspace's platforms and run `pixi lock`"
        ]
    return []


def decide_build(mode: str, blockers: Sequence[str], engine: str) -> BuildDecision:
    """auto: build when nothing blocks; never: do not; require: build or raise BuildNotPossible."""
    if mode not in BUILD_MODES:
        raise BuildNotPossible(f"build={mode!r} is not one of {', '.join(BUILD_MODES)}")
    if mode == "never":
        return BuildDecision(
            False, "build='never': skipping the build (set build='auto' or 'require' to build)"
        )
    if blockers:
        reason = "; ".join(blockers)
        if mode == "require":
            raise BuildNotPossible(f"build='require' but the {engine} build cannot run: {reason}")
        return BuildDecision(False, f"skipping the {engine} build: {reason}")
    return BuildDecision(True, f"building with {engine}")


def option_flags(options: RenderOptions) -> list[str]:
    """The CLI flags that reproduce `options`: every schema field that differs from its default."""
    argv: list[str] = []
    for f, spec in schema(RenderOptions):
        value = getattr(options, f.name)
        if not spec.on_command_line or f.name == "environment" or value == default_of(f):
            continue
        if spec.widget == "bool":
            argv.append(spec.flag)
        elif isinstance(value, tuple):
            for item in value:
                argv += [spec.flag, item]
        else:
            argv += [spec.flag, str(value)]
    return argv


def build_commands(prepared: api.Prepared, engine: str) -> list[str]:
    """The `kit build` line for these options, and the engine's own command, for elsewhere."""
    folder = prepared.location.subdir or prepared.workspace.root.resolve().name
    argv = [
        "kit",
        "build",
        folder,
        "--engine",
        engine,
        "--env",
        prepared.plan.primary.name,
        *option_flags(prepared.options),
    ]
    own = api.engine_command(prepared, engine, folder)
    return [shlex.join(argv), own]

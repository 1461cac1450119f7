"""Build a SIF from a definition file with Apptainer, then run its ``%test`` section.

Apptainer has no daemon and no step numbers, so progress comes from its ``INFO:`` lines: each
change of phase (fetching the base, ``%files`` copies, the ``%post`` scriptlet, adding the run
and test scripts, writing the SIF) is reported as a step, and a new base fetch starts the next
stage of a multi-stage file, named from the file's own ``Stage:`` headers.

Two behaviours a learner relies on:

* Relative ``%files`` sources (``./pixi.toml``) resolve against the working directory, so the
  build runs in the definition file's directory, as the lesson's ``apptainer build`` does.
* Nothing half-written: the SIF is built under a temporary name next to the target and renamed
  over it only after ``apptainer test`` passed. ``--notest`` keeps the build from running the
  tests itself, so they run once, as their own step, with their own error message.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kit.base.errors import BuildError, OptionsError, ToolNotFound
from kit.engines.events import BuildEvent, BuildResult, EventCallback, StepTiming, ignore_event
from kit.engines.process import LineRun, run_lines
from kit.model.deffile import parse_def

ENV_APPTAINER = "KIT_APPTAINER"
INSTALL_HINT = (
    "install Apptainer (https://apptainer.org/docs/admin/main/installation.html: "
    "the .deb/.rpm from its GitHub releases, a distribution package, or conda-forge's "
    "'apptainer'), or set KIT_APPTAINER to the apptainer executable"
)

_PHASES = (
    ("Fetching", "bootstrap"),
    ("Extracting", "bootstrap"),
    ("Inserting", "bootstrap"),
    ("Copying", "%files"),
    ("Running setup scriptlet", "%setup"),
    ("Running post scriptlet", "%post"),
    ("Adding", "add scripts and metadata"),
    ("Creating SIF file", "write SIF"),
)


def find_apptainer(env: Mapping[str, str] | None = None) -> str:
    """``KIT_APPTAINER`` wins (a wrapper, or an install off PATH); else ``apptainer`` on PATH."""
    env = os.environ if env is None else env
    chosen = env.get(ENV_APPTAINER)
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise ToolNotFound(
                "apptainer", f"{ENV_APPTAINER}={chosen} is not an executable file; unset it or fix the path"
            )
        return chosen
    found = shutil.which("apptainer", path=env.get("PATH", os.defpath))
    if not found:
        raise ToolNotFound("apptainer", INSTALL_HINT)
    return found


@dataclass
class _Phases:
    """Turns Apptainer's INFO lines into step events; stages come from the def's headers."""

    stage_names: list[str | None]
    emit: EventCallback
    stage_index: int = -1
    phase: str | None = None
    step: int = 0
    started: float = 0.0
    timings: list[StepTiming] = field(default_factory=list)

    def feed(self, line: str) -> None:
        phase = _phase_of(line)
        if phase is not None and phase != self.phase:
            self.start(phase)
        self.emit(
            BuildEvent(
                "log", step=self.step or None, stage=self.stage, instruction=self.phase or "", line=line
            )
        )

    @property
    def stage(self) -> str | None:
        if 0 <= self.stage_index < len(self.stage_names):
            return self.stage_names[self.stage_index]
        return None

    def start(self, phase: str) -> None:
        self.finish()
        if phase == "bootstrap":
            self.stage_index += 1
        self.phase, self.step, self.started = phase, self.step + 1, time.monotonic()
        self.emit(BuildEvent("step_started", step=self.step, stage=self.stage, instruction=phase))

    def finish(self, failed: bool = False) -> None:
        if self.phase is None:
            return
        duration = time.monotonic() - self.started
        self.timings.append(StepTiming(self.phase, self.stage, self.step, None, False, duration, failed))
        self.emit(
            BuildEvent(
                "step_done",
                step=self.step,
                stage=self.stage,
                instruction=self.phase,
                duration=duration,
                failed=failed,
            )
        )
        self.phase = None

    def describe(self) -> str:
        where = f" of stage {self.stage}" if self.stage else ""
        return f"{self.phase or 'start of the build'}{where}"


@dataclass
class _Commands:
    """The apptainer commands of one build (`build`, then `test`) run alike: with the builder's
    environment, stopped by the same cancel, their lines fed to the phases and kept in one log."""

    env: Mapping[str, str]
    phases: _Phases
    cancel: threading.Event | None
    log: list[str] = field(default_factory=list)

    def run(self, argv: list[str], cwd: Path, what: str, left_behind: str) -> LineRun:
        """Run one command in `cwd`; `what` and `left_behind` complete its cancel message."""
        run = run_lines(
            argv,
            cwd=cwd,
            env=self.env,
            cancel=self.cancel,
            on_line=self.phases.feed,
            what=what,
            left_behind=left_behind,
        )
        self.log += run.lines
        return run


def _phase_of(line: str) -> str | None:
    if not line.startswith("INFO:"):
        return None
    message = line[len("INFO:") :].strip()
    for prefix, phase in _PHASES:
        if message.startswith(prefix):
            return phase
    return None


class ApptainerBuilder:
    """Builds definition files into SIF images with the ``apptainer`` CLI."""

    engine = "apptainer"

    def __init__(self, *, apptainer: str | None = None, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(os.environ if env is None else env)
        self._apptainer = apptainer

    @property
    def env(self) -> Mapping[str, str]:
        """The environment its commands run with."""
        return self._env

    def unpack(self, sif: Path, root: Path) -> None:
        """Unpack `sif` into the folder `root` (`apptainer build --sandbox`); BuildError if not."""
        run = run_lines(
            [self.apptainer, "build", "--force", "--sandbox", str(root), str(sif)],
            cwd=sif.parent,
            env=self._env,
            cancel=None,
            on_line=lambda line: None,
            what="Apptainer unpack",
            left_behind="the root was not kept",
        )
        if run.returncode != 0:
            raise BuildError(f"Unpacking {sif.name} failed: {_fatal(run.lines)}", list(run.tail))

    @property
    def apptainer(self) -> str:
        if self._apptainer is None:
            self._apptainer = find_apptainer(self._env)
        return self._apptainer

    def build(
        self,
        definition: Path | str,
        *,
        output: Path | str | None = None,
        build_args: Mapping[str, str] | None = None,
        force: bool = True,
        on_event: EventCallback | None = None,
        cancel: threading.Event | None = None,
        arch: str | None = None,
    ) -> BuildResult:
        """Build ``definition`` into ``output`` (default: the def's name with ``.sif``).

        ``force=False`` refuses to replace an existing SIF. Raises `ToolNotFound`,
        `BuildError` (naming the phase that failed, with the last log lines) or
        `BuildCancelled`; on any failure the target is left as it was.
        """
        definition = Path(definition).resolve()
        if not (definition.is_file() or (definition / ".singularity.d").is_dir()):
            raise OptionsError(f"No definition file at {definition}.")
        target = Path(output).resolve() if output else definition.with_suffix(".sif")
        if target.exists() and not force:
            raise OptionsError(f"{target} exists; pass force=True to replace it.")
        emit = on_event or ignore_event
        started = time.monotonic()
        # apptainer does not make the output's folder: without this a missing `sif_dir` fails
        # only when the SIF is written, minutes in, as "open ...partial...sif: no such file".
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.stem}.partial-{os.getpid()}.sif")
        partial.unlink(missing_ok=True)
        # A root file system folder (kit.engines.apptainer_reuse) is packed as it is: no stages.
        stages: list[str | None] = (
            [s.name or None for s in parse_def(definition.read_text()).stages]
            if definition.is_file()
            else [None]
        )
        phases = _Phases(stages, emit)
        commands = _Commands(self._env, phases, cancel)
        try:
            self._run_build(definition, partial, build_args, commands, arch)
            self._run_test(partial, commands)
            os.replace(partial, target)
        except BaseException:
            emit(BuildEvent("finished", failed=True, duration=time.monotonic() - started))
            raise
        finally:
            partial.unlink(missing_ok=True)
        duration = time.monotonic() - started
        emit(BuildEvent("finished", duration=duration))
        return BuildResult(
            "apptainer",
            str(target),
            (),
            target.stat().st_size,
            duration,
            tuple(phases.timings),
            tuple(commands.log),
        )

    def _run_build(
        self,
        definition: Path,
        partial: Path,
        build_args: Mapping[str, str] | None,
        commands: _Commands,
        arch: str | None = None,
    ) -> None:
        # `--arch arm64`: the base image is pulled for that architecture and %post runs under
        # emulation (binfmt_misc with QEMU) on another host.
        argv = [self.apptainer, "build", "--notest", *(["--arch", arch] if arch else [])]
        for key, value in (build_args or {}).items() if definition.is_file() else ():
            argv += ["--build-arg", f"{key}={value}"]
        argv += [str(partial), str(definition)]
        phases = commands.phases
        if definition.is_dir():
            phases.start("bootstrap")  # the kept root is the bootstrap: Apptainer says nothing until it packs
        run = commands.run(argv, definition.parent, "Apptainer build", "no SIF was written")
        if run.returncode != 0:
            step = phases.describe()
            phases.finish(failed=True)
            raise BuildError(
                f"Apptainer build failed at {step}: {_fatal(run.lines)}", list(run.tail), step=step
            )
        phases.finish()

    def _run_test(self, partial: Path, commands: _Commands) -> None:
        phases = commands.phases
        phases.start("%test")
        run = commands.run(
            [self.apptainer, "test", str(partial)], partial.parent, "Apptainer test", "the SIF was not kept"
        )
        if run.returncode != 0:
            phases.finish(failed=True)
            raise BuildError(
                f"The image's %test section failed (exit status {run.returncode}); the SIF was not kept.",
                list(run.tail),
                step="%test",
            )
        phases.finish()


def _fatal(lines: Sequence[str]) -> str:
    """Apptainer's own reason: its last FATAL/ERROR line, else the last line."""
    for line in reversed(lines):
        if line.startswith(("FATAL:", "ERROR:")):
            return line.split(":", 1)[1].strip()
    return next((line for line in reversed(lines) if line.strip()), "no output")

"""The kit's facade: what the CLI, the widgets and the notebooks call, taking a folder and options.

Each function is one job from start to end (load, resolve, render, check, write, build, probe);
front ends only collect options and show results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kit import schedulers
from kit.base import git
from kit.base.errors import OptionsError
from kit.base.names import local_image_name as local_image_name  # re-exported
from kit.base.names import relative_path
from kit.check import SHARED_FILES, Finding, check_dir, check_files
from kit.decide.options import BuildOptions, RenderOptions
from kit.decide.plan import default_environment as default_environment  # re-exported for the form
from kit.decide.plan import resolve
from kit.engines import DEFAULT_ENGINE, BuildRequest, emulation, engine_for_image, get_engine
from kit.engines import engine_status as status
from kit.engines.events import format_build as format_build
from kit.engines.gpu import GPU_MODES as GPU_MODES  # re-exported: the probe's GPU modes, for the CLI
from kit.engines.gpu import format_probe as format_probe
from kit.engines.gpu import parse_probe_output as parse_probe_output  # re-exported: and a probe's output
from kit.engines.makeup import Makeup as Makeup  # re-exported: front ends take the type from the facade
from kit.engines.makeup import format_side_by_side, to_dict
from kit.lesson import machine as lesson_machine
from kit.lesson.links import hub_link as make_link
from kit.lesson.machine import MachineItem
from kit.lesson.site import build_preview
from kit.lesson.sync import sync_lesson_files
from kit.lesson.template import write_template
from kit.model.deffile import parse_def as parse_def  # re-exported: the notebooks read a def file with it
from kit.model.deployfiles import workflow_files
from kit.model.discover import find_workspaces, is_workspace, slug_in
from kit.model.platforms import LinuxPlatform
from kit.model.repo import Location, locate
from kit.model.summary import EnvSummary as EnvSummary  # re-exported: inspect() returns these
from kit.model.summary import Summary as Summary
from kit.model.summary import format_summary as format_summary  # re-exported: text forms
from kit.model.summary import summarize as summarize  # re-exported: the studio summarises its workspace
from kit.model.workspace import Workspace, load_workspace
from kit.output import staging
from kit.output.prepared import Prepared as Prepared  # re-exported: what prepare() returns
from kit.output.render import GROUPS, RenderedFile
from kit.output.write import Change, apply_changes, plan_changes
from kit.schedulers import scheduler_names

if TYPE_CHECKING:
    from kit.engines.events import BuildResult
    from kit.engines.gpu import ProbeReport
    from kit.engines.status import EngineStatus
    from kit.schedulers import Submitted


# The file groups `generate(only=...)` takes: docker, apptainer, workflows, htcondor, slurm.
FILE_GROUPS: dict[str, tuple[str, ...]] = GROUPS


def inspect(directory: Path | str) -> Summary:
    return summarize(load_workspace(directory))


def prepare(
    directory: Path | str, options: RenderOptions | None = None, *, out: Path | None = None, **fields: Any
) -> Prepared:
    """Load the workspace, locate it in its repository, and resolve the options, once.

    `fields` are option fields by name (as the notebooks write them); they are checked like
    any other options, by `RenderOptions` itself. An empty `subdir` means "detect it".
    """

    base = options or RenderOptions()
    opts = replace(base, **fields) if fields else base
    ws = load_workspace(directory)
    home = locate(ws.root, None, opts.subdir or None)  # checks a given subdir against the real place
    location = home if out is None else locate(ws.root, out, home.subdir)
    if not opts.subdir:
        _check_detected_subdir(home.subdir)
    opts = replace(opts, subdir=home.subdir)
    # Every workspace of the repository (not of --out): with several, each gets its own workflows.
    neighbours = find_workspaces(home.root)
    return Prepared(ws, location, opts, resolve(ws, opts, neighbours))


def _check_detected_subdir(subdir: str) -> None:
    """The workspace's folder from the repository root, as found (not given): it goes into
    workflow paths and build contexts, so it must have the shape a given `--subdir` has; say
    that the folder itself is the problem, since the user passed no subdir."""

    try:
        relative_path(subdir, "subdir")
    except OptionsError:
        raise OptionsError(
            f"the workspace's folder {subdir!r} (from the repository root) has characters the kit "
            "does not put into workflow paths",
            field="subdir",
            fix="rename the folders on the way to letters, digits, '.', '_' and '-'",
        ) from None


@dataclass(frozen=True)
class GenerateResult:
    root: Path
    changes: list[Change]
    warnings: tuple[str, ...] = field(default=())


def generate(
    directory: Path | str,
    options: RenderOptions | None = None,
    *,
    out: Path | None = None,
    only: tuple[str, ...] = (),
    dry_run: bool = False,
    force: bool = False,
    **fields: Any,
) -> GenerateResult:
    """Render and write (unless `dry_run`) the deployment files; refuse to clobber hand edits."""
    prepared = prepare(directory, options, out=out, **fields)
    changes = plan_writes(prepared, only, force=force)
    if not dry_run:
        write_planned(prepared, changes)
    return GenerateResult(prepared.location.root, changes, prepared.warnings(only))


def plan_writes(prepared: Prepared, only: tuple[str, ...] = (), *, force: bool = False) -> list[Change]:
    """What writing the rendered files would do, file by file; nothing is touched."""
    location = prepared.location
    return plan_changes(prepared.render(only), location.root, force, prefix=location.prefix)


def write_planned(prepared: Prepared, changes: list[Change]) -> list[Change]:
    """Write planned changes, all or nothing (refused ones stop everything); those written."""
    return apply_changes(changes, prepared.location.root, prefix=prepared.location.prefix)


def open_workspace(
    directory: Path | str, *, out: Path | None = None, subdir: str | None = None
) -> tuple[Workspace, Location]:
    """The workspace and where it sits, before any option is checked: what a front end shows
    while its options are still being edited (the studio opens on invalid ones too)."""
    ws = load_workspace(directory)
    return ws, locate(ws.root, out, subdir or None)


def check(directory: Path | str, subdir: str | None = None) -> list[Finding]:
    """Check the deployment files on disk for the workspace in `directory`; for a folder with no
    manifest (a repository root), for every workspace found below it."""

    folder = Path(directory)
    if folder.is_dir() and not is_workspace(folder) and subdir is None:
        found = find_workspaces(folder)
        if found:
            here = locate(folder, None, None)
            # The repository's shared files (dependabot.yml) are read with every workspace:
            # their findings are kept from the first only.
            return [
                finding
                for index, rel in enumerate(found)
                for finding in check(folder / rel, (here.prefix + rel).strip("/"))
                if index == 0 or finding.file not in SHARED_FILES
            ]
    ws = load_workspace(directory)
    location = locate(ws.root, None, subdir)
    slug = slug_in(find_workspaces(location.root), location.subdir, ws.name)
    return check_dir(ws, location.root, location.prefix, workflow_files(slug))


def check_rendered(prepared: Prepared) -> list[Finding]:
    """Check freshly rendered files before they are written (the widgets' Check button)."""
    return check_texts(prepared, {p: f.text for p, f in prepared.render().items()})


def check_texts(prepared: Prepared, files: dict[str, str]) -> list[Finding]:
    """Check files given as text ({path from the repository root: text}) as `kit check` would
    on disk: a colleague's workflow in a notebook, or the freshly rendered files."""
    plan = prepared.plan
    return check_files(
        prepared.workspace, files, prepared.location.prefix, (plan.docker_workflow, plan.apptainer_workflow)
    )


# -- build and probe ----------------------------------------------------------------------------


def build_args(prepared: Prepared, engine: str = DEFAULT_ENGINE) -> dict[str, str]:
    """The build arguments `engine`'s recipe uses (see `Plan.build_args`), with the commit for
    the optimized Dockerfile's OCI labels."""
    commit = git_labels(prepared.workspace.root) if prepared.plan.labels_with_commit(engine) else {}
    return prepared.plan.build_args(engine, commit)


def git_labels(directory: Path) -> dict[str, str]:
    """REVISION and CREATED from the checked-out commit, so labels are the same on every rebuild
    of one commit (a wall-clock time would change the image each time); empty outside git."""
    return git.commit_labels(directory)


def primary_tag(prepared: Prepared) -> str:
    """The tag derived for the primary environment (from the lock where it can)."""
    return prepared.plan.primary.tag


def image_tag(prepared: Prepared, tag: str | None = None) -> str:
    """`<image name>:<tag>` (see `Plan.image_tag`)."""
    return prepared.plan.image_tag(tag)


def artifact_name(prepared: Prepared, engine: str, tag: str | None = None) -> str:
    """What a build of `prepared` with `engine` is called (see `Plan.artifact_name`)."""
    return prepared.plan.artifact_name(engine, tag)


def local_build(prepared: Prepared, engine: str, tag: str | None = None) -> tuple[str, LinuxPlatform]:
    """What a build here makes: its name and its platform (`Plan.build_platform` for this
    machine). An image for another platform than linux-64 is named as the workflows name its SIF
    (`gpu-noble-cuda-12-arm64`), so that it never replaces the linux-64 build of the same tag."""
    target = prepared.plan.build_platform(emulation.host_machine())
    suffix = prepared.plan.sif_suffix(target)
    return artifact_name(
        prepared, engine, tag or (prepared.plan.primary.tag + suffix if suffix else None)
    ), target


def engine_command(prepared: Prepared, engine: str, folder: str) -> str:
    """The engine's own command that makes what `kit build` would here (for elsewhere)."""
    name, target = local_build(prepared, engine)
    platform = target.oci if emulation.emulated(target) else None
    return get_engine(engine).build_command(folder, name, platform)


def build_prepared(
    prepared: Prepared,
    engine: str,
    workdir: Path,
    on_event: Callable[[Any], None] | None = None,
    cancel: Any = None,
    tag: str | None = None,
) -> BuildResult:
    """Build exactly what `prepared` renders, from a staged copy, named `artifact_name(...)`:
    Docker tags the image `image_tag(prepared, tag)`; Apptainer writes `<tag>.sif` into `workdir`.
    One platform per build (`Plan.build_platform`): the host's when the environment is built for
    it; another (`--platform linux/arm64`) through emulation, said first as a `notice` event, and
    without `tag` named with the platform's suffix (`<tag>-arm64`).
    """
    import tempfile

    chosen = get_engine(engine)
    if tag is not None:
        BuildOptions(engine=chosen.name, tag=tag)  # checks the tag's shape
    name, target = local_build(prepared, chosen.name, tag)
    foreign = emulation.emulated(target)
    if foreign and on_event is not None:
        from kit.engines.events import BuildEvent

        on_event(BuildEvent("notice", line=emulation.build_notice(target)))
    with tempfile.TemporaryDirectory(prefix="kit-build-") as tmp:
        context = staging.stage_build_context(prepared, Path(tmp) / "context", chosen.name)
        return chosen.build(
            BuildRequest(
                context,
                name,
                Path(workdir),
                build_args(prepared, chosen.name),
                on_event=on_event,
                cancel=cancel,
                platform=target.oci if foreign else None,
            )
        )


def build(
    directory: Path | str,
    options: RenderOptions | None = None,
    *,
    build: BuildOptions | None = None,
    on_event: Callable[[Any], None] | None = None,
    cancel: Any = None,
    sif_dir: Path | None = None,
    **fields: Any,
) -> BuildResult:
    """Render, stage and build the workspace's image; a SIF lands next to the workspace."""
    how = build or BuildOptions()
    prepared = prepare(directory, options, **fields)
    return build_prepared(prepared, how.engine, sif_dir or prepared.workspace.root, on_event, cancel, how.tag)


def copy_workspace(source: Path | str, dest: Path | str) -> Path:
    """A working copy of a workspace in `dest` (the notebooks' scratch copy), links followed,
    without `.pixi/`, `.git/` or SIFs."""
    return staging.copy_workspace(source, dest)


def engine_status() -> EngineStatus:
    """Which engines can build here, and why not (a few seconds: it asks Docker and Apptainer)."""

    return status()


def probe(image: str, *, engine: str | None = None, gpu: str = "auto") -> ProbeReport:
    """Run the GPU probe in a built image (a .sif path means Apptainer unless told otherwise)."""
    chosen = engine or engine_for_image(image)
    return get_engine(chosen).probe(image, gpu=gpu)  # type: ignore[arg-type]


def image_makeup(result: BuildResult, *, base_image: str | None = None, label: str = "") -> Makeup:
    """What a built image is made of: runtime, environment, app and overhead (kit.engines.makeup).

    Never fails for want of an engine: without one, the make-up is just the size the build
    reported, as `other`. `base_image` names the final stage's base when the log does not.
    """
    return get_engine(result.engine).makeup(result, base_image=base_image, label=label)


def format_makeup(makeups: Makeup | Sequence[Makeup], *, ascii_only: bool = False) -> str:
    """One or more make-ups as text bars on one scale, with their parts in MB."""

    shown = [makeups] if isinstance(makeups, Makeup) else list(makeups)
    return format_side_by_side(shown, ascii_only=ascii_only)


def makeup_dict(makeup: Makeup) -> dict[str, Any]:
    """A make-up as `--json` shows it: the parts by name, in bytes."""

    return to_dict(makeup)


# -- the lesson's tools (kit.lesson): the facade only forwards --------------------------------


def machine_report(root: Path | str = ".") -> list[MachineItem]:
    """What works on this machine before a workshop: lock, linters, engines, GPU, with fixes."""
    return lesson_machine.machine_report(root)


def format_machine_report(items: list[MachineItem]) -> str:
    return lesson_machine.format_machine_report(items)


def sync_lesson(root: Path | str = ".", write: bool = True) -> list[str]:
    """Refill the lesson's generated blocks and values from the kit's own output; what changed."""

    return sync_lesson_files(Path(root), write=write)


def make_template(root: Path | str, out: Path | str) -> list[str]:
    """The learners' template repository, made in `out` from the lesson's example; the paths."""

    return write_template(Path(root), Path(out))


# -- jobs on a cluster (kit.schedulers) -----------------------------------------------------


def job_files(prepared: Prepared, schedulers: tuple[str, ...] = scheduler_names()) -> dict[str, RenderedFile]:
    """The job files for `prepared` (what the studio's Jobs tab and the notebooks show); by
    default every scheduler's (htcondor, slurm)."""
    return prepared.render(schedulers)


def scheduler_available(scheduler: str) -> str:
    """'' when `scheduler` (htcondor or slurm) answers here, else why not, in one line."""
    return schedulers.available(scheduler)


def submit_job(directory: Path | str, scheduler: str, job_file: str | None = None) -> Submitted:
    """Submit the workspace's job file (default: the scheduler's own, jobs/htcondor.sub or
    jobs/slurm.sbatch) from the workspace folder, as a user would on the cluster's login node."""
    return schedulers.submit(scheduler, Path(directory), job_file)


# Following a submitted job is the schedulers module's own API, offered here under the facade's
# names: the same functions, not wrappers that repeat their signatures.
job_status = schedulers.status
wait_job = schedulers.wait
job_output = schedulers.output
cancel_job = schedulers.cancel
why_idle = schedulers.why_idle


def hub_link(hub: str, repo: str, *, branch: str | None = None, path: str = "notebooks/studio.ipynb") -> str:
    """An nbgitpuller link: `hub` clones `repo` for each learner and opens `path` in JupyterLab."""

    return make_link(hub, repo, branch=branch, path=path)


def preview_site(root: Path | str, out: Path | str) -> list[Path]:
    """The lesson's pages as HTML (pandoc) in `out`, for an instructor to open in a browser."""

    return build_preview(Path(root), Path(out))

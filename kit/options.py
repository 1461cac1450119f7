"""The one option schema: every choice a user makes, with how it is shown, typed and checked.

`RenderOptions` (what shapes the rendered files) and `BuildOptions` (how a build runs) are the
only lists of options. Each field carries an `OptionSpec` in its metadata; the CLI flags
(`kit.cli`), the studio's form (`kit.widgets.form`) and the printed command lines
(`kit.widgets.pipeline.build_commands`) are all generated from it, so an option added here
reaches every front end and cannot be forgotten by one.

Every value is checked for type and shape when the object is made (`__post_init__`): that is the
single point where options enter, whichever front end they came from. Checks that need the
workspace (does the environment exist, is the CUDA override high enough) live in
`kit.plan.resolve()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Literal, get_args

from kit import names
from kit.errors import OptionsError
from kit.jobs import shapes

Style = Literal["lesson", "optimized"]
Bootstrap = Literal["docker", "docker-daemon", "docker-archive", "oci-archive", "localimage"]
Engine = Literal["docker", "apptainer"]
# The optimized style's final stage: `image` is runtime_image with bash (an entrypoint script runs
# pixi's whole activation); `no-shell` is a runtime_image without a shell (distroless): the
# activation is set with ENV; `minimal` starts from scratch with only the system libraries the
# environment links against (and, for Apptainer, which needs /bin/sh, bash).
Runtime = Literal["image", "no-shell", "minimal"]
JobImageKind = Literal["oras", "docker", "sif"]
JobReference = Literal["commit", "tag"]
JOB_IMAGE_KINDS: tuple[str, ...] = get_args(JobImageKind)
JOB_REFERENCES: tuple[str, ...] = get_args(JobReference)
STYLES: tuple[str, ...] = get_args(Style)
BOOTSTRAPS: tuple[str, ...] = get_args(Bootstrap)
ENGINES: tuple[str, ...] = get_args(Engine)
RUNTIMES: tuple[str, ...] = get_args(Runtime)

# The pixi the rendered recipes start from. It must read the lock format a current pixi writes:
# pixi >= 0.68 writes format 7, which 0.67 and older refuse (see kit.pixi_versions).
# 0.70.2 verified as a released image: prefix-dev/pixi-docker commit 8e3c95e ("Bump pixi version
# to v0.70.2", Dockerfile `ARG PIXI_VERSION=0.70.2`), its git tag 0.70.2 (pushed by the release
# job, which runs only after the images were pushed), and .github/workflows/build.yml there
# building `ubuntu:noble` with the tag pattern `{{version}}-noble`.
# Why not newer: pixi 0.71.0 (prefix-dev/pixi #6178, "Rich Platform support") turns a legacy
# `[system-requirements]` table into synthesised platforms (`linux-64-cuda-12`) and locks the
# environments that use them under those platforms, with their virtual packages (0.76.1 names
# them `p1`, `p2`, ... in pixi.lock): a lock shape the kit's reader and the lab's stand-in do not
# follow yet. 0.70.2 is the
# newest release that reads format 7 and still locks every environment under its conda subdir.
PIXI_VERSION = "0.70.2"
DEFAULT_BASE_IMAGE = f"ghcr.io/prefix-dev/pixi:{PIXI_VERSION}-noble"
# The final stage of the optimized style needs no pixi: the same distribution as the base image.
DEFAULT_RUNTIME_IMAGE = "ubuntu:24.04"
DEFAULT_REGISTRY = "ghcr.io"
DISTRO_CODENAMES = ("noble", "jammy", "focal", "bookworm", "bullseye", "trixie", "alpine")
PROBE_SCRIPT = "torch_detect_GPU.py"


@dataclass(frozen=True)
class OptionSpec:
    """How one option is offered and checked: the metadata of a schema field."""

    help: str
    flag: str  # the CLI flag, e.g. "--base-image"
    label: str  # the widget's description
    check: Callable[[Any, str], object] | None = None  # shape check, raises OptionsError
    choices: tuple[str, ...] = ()
    widget: str = "text"  # text | choice | toggle | environment | environments | bool
    placeholder: str = ""
    # Whether `build_commands` prints it (the folder argument already says where the workspace is).
    on_command_line: bool = True


def option(
    default: Any,
    *,
    help: str,
    flag: str,
    label: str,
    check: Callable[[Any, str], object] | None = None,
    choices: tuple[str, ...] = (),
    widget: str = "text",
    placeholder: str = "",
    on_command_line: bool = True,
) -> Any:
    """A schema field: its default and its `OptionSpec`."""
    spec = OptionSpec(help, flag, label, check, choices, widget, placeholder, on_command_line)
    return field(default=default, metadata={"option": spec})


def _optional(check: Callable[[str, str], object]) -> Callable[[Any, str], object]:
    """A check that lets the empty value (the kit's default) through."""

    def checked(value: Any, field_name: str) -> object:
        return check(value, field_name) if value else value

    return checked


def _env_names(values: tuple[str, ...], field_name: str) -> object:
    return [names.environment_name(v, field_name) for v in values]


def _tags(values: tuple[str, ...], field_name: str) -> object:
    return [names.tag(v, field_name) for v in values]


def _registry(value: str, field_name: str) -> object:
    if not names.REGISTRY_HOST.match(value):
        raise OptionsError(
            f"registry {value!r} is not a host name", field=field_name, fix="use a host such as 'ghcr.io'"
        )
    return value


def _bootstrap_source(value: str, field_name: str) -> object:
    return names.file_path(value, field_name)


@dataclass(frozen=True)
class RenderOptions:
    """Every choice that shapes the rendered files. Defaults follow the lesson."""

    environment: str | None = option(
        None,
        help="environment to build (default: the first CUDA one)",
        flag="--env",
        label="environment",
        check=_optional(names.environment_name),
        widget="environment",
    )
    environments: tuple[str, ...] = option(
        (),
        help="an environment the workflows build (repeatable; default: every container "
        "environment, --env first)",
        flag="--matrix",
        label="matrix (none: all)",
        check=_env_names,
        widget="environments",
    )
    cuda: str | None = option(
        None,
        help="CUDA version for CONDA_OVERRIDE_CUDA (default: the requirement)",
        flag="--cuda",
        label="CUDA version",
        check=_optional(names.cuda_version),
    )
    style: Style = option(
        "lesson",
        help="lesson: the recipe the episodes teach; optimized: what you would ship",
        flag="--style",
        label="style",
        choices=STYLES,
        widget="toggle",
    )
    base_image: str = option(
        DEFAULT_BASE_IMAGE,
        help="image with pixi for the install stage",
        flag="--base-image",
        label="base image",
        check=names.image_reference,
    )
    runtime_image: str = option(
        DEFAULT_RUNTIME_IMAGE,
        help="image for the optimized final stage",
        flag="--runtime-image",
        label="runtime image",
        check=names.image_reference,
    )
    image_name: str = option(
        "",
        help="image name in workflows (default: ghcr.io/<owner>/<repo>)",
        flag="--image-name",
        label="image name",
        check=_optional(names.image_reference),
        placeholder="ghcr.io/<owner>/<repository>",
    )
    registry: str = option(
        DEFAULT_REGISTRY,
        help="registry the workflows publish to",
        flag="--registry",
        label="registry",
        check=_registry,
    )
    subdir: str = option(
        "",
        help="the workspace folder inside its git repository (default: detected)",
        flag="--subdir",
        label="subdirectory",
        check=names.relative_path,
        placeholder="(repository root)",
        on_command_line=False,
    )
    app_dir: str = option(
        "app",
        help="folder copied to /app/src ('' for none; default: app)",
        flag="--app-dir",
        label="app dir",
        check=names.relative_path,
        placeholder="(no code copied)",
    )
    tags: tuple[str, ...] = option(
        (),
        help="an image tag (repeatable; default: derived from the lock)",
        flag="--tags",
        label="tags",
        check=_tags,
    )
    bootstrap: Bootstrap = option(
        "docker",
        help="Apptainer bootstrap agent",
        flag="--bootstrap",
        label="Apptainer bootstrap",
        choices=BOOTSTRAPS,
        widget="choice",
    )
    bootstrap_source: str = option(
        "",
        help="archive or SIF for offline bootstrap agents",
        flag="--bootstrap-source",
        label="bootstrap source",
        check=_optional(_bootstrap_source),
        placeholder="archive or SIF (offline agents)",
    )
    keep_pixi: bool = option(
        False,
        help="optimized style: keep pixi in the final image for `pixi run`",
        flag="--keep-pixi",
        label="keep pixi",
        widget="bool",
    )
    runtime: Runtime = option(
        "image",
        help="optimized style, final stage: image (runtime image with bash), no-shell "
        "(runtime image without a shell; activation set with ENV), minimal (from scratch: only "
        "the system libraries the environment links against)",
        flag="--runtime",
        label="runtime",
        choices=RUNTIMES,
        widget="choice",
    )
    # -- job files (kit generate --only htcondor / --only slurm; see kit.jobs.files) ----------
    # Not on printed `kit build` lines: a build does not read them.
    job_image_kind: JobImageKind = option(
        "oras",
        help="what jobs run: oras (the SIF the Apptainer workflow publishes), docker (the "
        "Docker image) or sif (a SIF file on the cluster)",
        flag="--job-image-kind",
        label="job image",
        choices=JOB_IMAGE_KINDS,
        widget="toggle",
        on_command_line=False,
    )
    job_reference: JobReference = option(
        "commit",
        help="commit: the immutable <env>-sha-<short> tag of one commit; tag: the moving tag",
        flag="--job-reference",
        label="job image tag",
        choices=JOB_REFERENCES,
        widget="toggle",
        on_command_line=False,
    )
    job_commit: str = option(
        "",
        help="the commit whose image jobs run (default: the repository's HEAD)",
        flag="--job-commit",
        label="job commit",
        check=_optional(shapes.commit),
        placeholder="(HEAD)",
        on_command_line=False,
    )
    job_image_name: str = option(
        "",
        help="the published image jobs run (default: --image-name, else ghcr.io/<owner>/<repo> "
        "from the git remote origin)",
        flag="--job-image-name",
        label="job image name",
        check=_optional(names.image_reference),
        placeholder="ghcr.io/<owner>/<repository>",
        on_command_line=False,
    )
    job_sif: str = option(
        "",
        help="the SIF file on the cluster (default: <tag>.sif where you submit)",
        flag="--job-sif",
        label="job SIF",
        check=_optional(shapes.sif_path),
        placeholder="<tag>.sif",
        on_command_line=False,
    )
    job_command: str = option(
        "",
        help="the command jobs run in the image (default: the GPU probe)",
        flag="--job-command",
        label="job command",
        check=_optional(shapes.command),
        placeholder="python /app/src/...",
        on_command_line=False,
    )
    job_cpus: str = option(
        "1",
        help="CPUs per job",
        flag="--job-cpus",
        label="job CPUs",
        check=shapes.count,
        on_command_line=False,
    )
    job_gpus: str = option(
        "1",
        help="GPUs per job (CUDA environments only)",
        flag="--job-gpus",
        label="job GPUs",
        check=shapes.count,
        on_command_line=False,
    )
    job_memory: str = option(
        "4GB",
        help="memory per job (MB, GB or TB)",
        flag="--job-memory",
        label="job memory",
        check=shapes.size,
        on_command_line=False,
    )
    job_disk: str = option(
        "10GB",
        help="HTCondor: scratch disk per job, image included",
        flag="--job-disk",
        label="job disk",
        check=shapes.size,
        on_command_line=False,
    )
    job_time: str = option(
        "01:00:00",
        help="Slurm: wall-clock limit [days-]HH:MM:SS",
        flag="--job-time",
        label="job time",
        check=shapes.wall_time,
        on_command_line=False,
    )
    job_modules: str = option(
        "",
        help="Slurm: environment modules to load first, separated by spaces",
        flag="--job-modules",
        label="job modules",
        check=_optional(shapes.modules),
        placeholder="(none)",
        on_command_line=False,
    )

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class BuildOptions:
    """How a build runs, beside what it renders."""

    engine: Engine = option(
        "docker",
        help="the container engine",
        flag="--engine",
        label="engine",
        choices=ENGINES,
        widget="toggle",
    )
    tag: str | None = option(
        None,
        help="image tag (Docker) or SIF name stem (Apptainer)",
        flag="--tag",
        label="tag",
        check=_optional(names.tag),
    )

    def __post_init__(self) -> None:
        check_fields(self)


def schema(cls: type[Any]) -> Iterator[tuple[Field[Any], OptionSpec]]:
    """The fields of an options class with their specs, in declaration order."""
    for f in fields(cls):
        yield f, f.metadata["option"]


def default_of(f: Field[Any]) -> Any:
    return None if f.default is MISSING else f.default


def check_fields(obj: Any) -> None:
    """Type and shape of every field; lists become tuples (the widgets hand lists in)."""
    for f, spec in schema(type(obj)):
        value = getattr(obj, f.name)
        default = default_of(f)
        if isinstance(default, tuple):
            if isinstance(value, list):
                value = tuple(value)
                object.__setattr__(obj, f.name, value)
            if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                raise _wrong_type(f.name, value, "a list of strings")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise _wrong_type(f.name, value, "true or false")
        elif not (isinstance(value, str) or (value is None and default is None)):
            raise _wrong_type(f.name, value, "a string")
        if spec.choices and value not in spec.choices:
            raise OptionsError(
                f"{f.name.replace('_', ' ')} {value!r} is unknown",
                field=f.name,
                fix=f"use one of: {', '.join(spec.choices)}",
            )
        if spec.check is not None:
            spec.check(value, f.name)


def _wrong_type(name: str, value: Any, wanted: str) -> OptionsError:
    return OptionsError(
        f"{name} must be {wanted}, not {type(value).__name__}", field=name, fix=f"give {name} as {wanted}"
    )

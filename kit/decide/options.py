"""The one option schema: every choice a user makes, with how it is shown, typed and checked.

`RenderOptions` (what shapes the rendered files) and `BuildOptions` (how a build runs) are the
only lists of options. Each field carries an `OptionSpec` in its metadata; the CLI flags
(`kit.cli`), the studio's form (`kit.widgets.form`) and the printed command lines
(`kit.widgets.pipeline.build_commands`) are all generated from it, so an option added here
reaches every front end and cannot be forgotten by one.

Every value is checked for type and shape when the object is made (`__post_init__`): that is the
single point where options enter, whichever front end they came from. Checks that need the
workspace (does the environment exist, is the CUDA override high enough) live in
`kit.decide.plan.resolve()`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any, Literal, get_args

from kit.base import names
from kit.base.errors import OptionsError
from kit.decide import jobshapes as shapes
from kit.engines.registry import DEFAULT_ENGINE, ENGINE_NAMES
from kit.model.platforms import LINUX_PLATFORMS, linux_platform

Style = Literal["lesson", "optimized"]
Bootstrap = Literal["docker", "docker-daemon", "docker-archive", "oci-archive", "localimage"]
# The optimized style's final stage: `image` is runtime_image with bash (an entrypoint script runs
# pixi's whole activation); `no-shell` is a runtime_image without a shell (distroless): the
# activation is set with ENV; `minimal` starts from scratch with only the system libraries the
# environment links against (and, for Apptainer, which needs /bin/sh, bash).
Runtime = Literal["image", "no-shell", "minimal"]
# Where the Apptainer image's environment comes from: `recipe`, the def installs it itself;
# `docker-image`, the def starts from the Docker image built from the same commit (the workflow
# names it by digest), so the environment is installed once, by the Dockerfile.
ApptainerFrom = Literal["recipe", "docker-image"]
JobImageKind = Literal["oras", "docker", "sif"]
JobReference = Literal["commit", "tag"]
# Where the Docker and Apptainer workflows build linux-aarch64: on GitHub's Arm runners (native;
# free for public repositories) or on an amd64 runner through QEMU (private repositories, or
# where Arm runners are not offered; many times slower).
ArmRunner = Literal["native", "qemu"]
ARM_RUNNERS: tuple[str, ...] = get_args(ArmRunner)
JOB_IMAGE_KINDS: tuple[str, ...] = get_args(JobImageKind)
JOB_REFERENCES: tuple[str, ...] = get_args(JobReference)
STYLES: tuple[str, ...] = get_args(Style)
BOOTSTRAPS: tuple[str, ...] = get_args(Bootstrap)
ENGINES: tuple[str, ...] = ENGINE_NAMES  # the engine table's names (kit.engines.registry), in its order
RUNTIMES: tuple[str, ...] = get_args(Runtime)
APPTAINER_FROM: tuple[str, ...] = get_args(ApptainerFrom)

# The pixi the rendered recipes start from: the newest pixi with a published pixi-docker image.
# Verified 2026-12-05 by fetching prefix-dev/pixi-docker: its newest commit 4441f4c ("Bump pixi
# version to v0.76.1 (#178)", 2026-08-04) sets the Dockerfile's `ARG PIXI_VERSION=0.76.1`, and
# its git tag 0.76.1 is that commit (the tag is pushed by build.yml's release job, which runs only
# after the build job pushed the images). build.yml there pushes, for each base image in its
# matrix, `{{version}}-<tag>` for linux/amd64 and linux/arm64, `<tag>` being the Debian or Ubuntu
# codename (trixie, bookworm, bullseye with and without `-slim`; plucky, noble, jammy, focal) or
# `<codename>-cuda-<version>` for nvidia/cuda bases; `{{version}}` and `latest` alone are
# ubuntu:noble. No alpine image is built. The image digest is not in the repository (the build
# prints it to the run's log only), so the tag, not a digest, is what is pinned here.
# prefix-dev/pixi has newer releases (v0.76.2, v0.77.0) without a pixi-docker image yet.
# What 0.76.1 reads that 0.70 did not (kit.model.pixi_versions, checked by
# kit.model.pixi_support): rich platforms (0.71), locks with `p1`, `p2`, ... platforms (0.71),
# TOML 1.1 manifests (0.73). pixi 0.71+ installs a platform only where its virtual packages are
# met, so the recipes set CONDA_OVERRIDE_CUDA for CUDA environments (GPU-less builders).
PIXI_VERSION = "0.76.1"
PIXI_PIN_VERIFIED = "2026-12-05"
PIXI_PIN_HOW = (
    "fetched prefix-dev/pixi-docker; `git rev-parse refs/tags/0.76.1^{commit}` == HEAD == "
    "4441f4c392a286e82f4f42dbe0feb3be2bcc3eef, whose Dockerfile has ARG PIXI_VERSION=0.76.1; "
    "no newer tag there"
)
DEFAULT_BASE_IMAGE = f"ghcr.io/prefix-dev/pixi:{PIXI_VERSION}-noble"
# The final stage of the optimized style needs no pixi: the same distribution as the base image.
DEFAULT_RUNTIME_IMAGE = "ubuntu:24.04"
DEFAULT_REGISTRY = "ghcr.io"
# The distributions prefix-dev/pixi-docker publishes pixi images for (its build.yml, above): a
# base image's tag names one, and the image tags the kit derives carry it.
DISTRO_CODENAMES = ("noble", "jammy", "focal", "plucky", "bookworm", "bullseye", "trixie")
# The concerns options are grouped by, in the order the studio shows them, with their titles:
# `first` is what a learner changes first (kept in view); each other group folds away.
OPTION_GROUPS: dict[str, str] = {
    "first": "",
    "images": "Images",
    "publishing": "Publishing",
    "jobs": "Job file settings",
}


@dataclass(frozen=True)
class OptionSpec:
    """How one option is offered and checked: the metadata of a schema field."""

    help: str
    flag: str  # the CLI flag, e.g. "--base-image"
    label: str  # the widget's description
    # Shape check, raises OptionsError. Not run on an empty value where the default is empty too.
    check: Callable[[Any, str], object] | None = None
    choices: tuple[str, ...] = ()
    widget: str = "text"  # text | choice | toggle | environment | environments | bool
    placeholder: str = ""
    # Whether `build_commands` prints it (the folder argument already says where the workspace is).
    on_command_line: bool = True
    group: str = "images"  # its concern, one of OPTION_GROUPS (the studio groups its form by it)


def option(
    default: Any,
    help: str,
    *,
    flag: str = "",
    label: str = "",
    check: Callable[[Any, str], object] | None = None,
    choices: tuple[str, ...] = (),
    widget: str = "",
    placeholder: str = "",
    on_command_line: bool = True,
    group: str = "images",
) -> Any:
    """A schema field: its default and its `OptionSpec`.

    Most of a spec follows from the field, so that a field says only what is particular to it:
    the flag and the label come from the field's name (`schema` fills them in, as only it knows
    the name), choices make a drop-down and a boolean a checkbox unless `widget` says otherwise,
    and an empty default's placeholder is the "(default: ...)" its help gives.
    """
    widget = widget or ("choice" if choices else "bool" if isinstance(default, bool) else "text")
    # An empty text box shows what the kit decides instead, as the help says it.
    said = re.search(r"\(default: ([^)]*)\)", help)
    placeholder = placeholder or (said.group(1) if said and not default else "")
    if group not in OPTION_GROUPS:
        raise ValueError(f"option group {group!r} is not one of {', '.join(OPTION_GROUPS)}")
    spec = OptionSpec(help, flag, label, check, choices, widget, placeholder, on_command_line, group)
    return field(default=default, metadata={"option": spec})


def job_option(default: str, help: str, **spec: Any) -> Any:
    """A job-file setting (`kit generate --only htcondor|slurm`, see kit.output.jobfiles).

    A build does not read these, so printed `kit build` lines leave them out.
    """
    return option(default, help, on_command_line=False, group="jobs", **spec)


def _env_names(values: tuple[str, ...], field_name: str) -> object:
    return [names.environment_name(v, field_name) for v in values]


def _tags(values: tuple[str, ...], field_name: str) -> object:
    return [names.tag(v, field_name) for v in values]


def _registry(value: str, field_name: str) -> object:
    return names.registry_host(value, field_name)


def platform_names(values: tuple[str, ...]) -> tuple[str, ...]:
    """Each value split at commas (`--platform linux-64,linux/arm64`) and named as pixi names it
    (`linux/arm64` -> `linux-aarch64`), each once, in the order given."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            found = linux_platform(part.strip())
            if found is not None and found.subdir not in out:
                out.append(found.subdir)
    return tuple(out)


def _platforms(values: tuple[str, ...], field_name: str) -> object:
    for value in values:
        for part in value.split(","):
            if linux_platform(part.strip()) is None:
                known = ", ".join(f"{p.subdir} (or {p.oci})" for p in LINUX_PLATFORMS)
                raise OptionsError(
                    f"platform {part.strip()!r} is not a Linux platform the kit builds for",
                    field=field_name,
                    fix=f"use {known}",
                )
    return values


def _one_platform(value: str, field_name: str) -> object:
    if "," in value:
        raise OptionsError(
            f"{field_name.replace('_', ' ')} names one platform, not {value!r}",
            field=field_name,
            fix="give one, such as linux-aarch64",
        )
    return _platforms((value,), field_name)


def _slurm_feature(value: str, field_name: str) -> object:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
        raise OptionsError(
            f"{field_name.replace('_', ' ')} {value!r} is not a Slurm node feature name",
            field=field_name,
            fix="use letters, digits, '_', '.' and '-', such as 'aarch64'",
        )
    return value


def _bootstrap_source(value: str, field_name: str) -> object:
    return names.file_path(value, field_name)


def _pixi_version(value: str, field_name: str) -> str:
    """A released pixi's version, MAJOR.MINOR.PATCH, as pixi-docker tags its images."""
    if not re.fullmatch(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", value):
        raise OptionsError(
            f"pixi version {value!r} is not MAJOR.MINOR.PATCH",
            field=field_name,
            fix=f"give a released version such as {PIXI_VERSION}",
        )
    return value


def _base_image_for(version: str, base_image: str) -> str:
    """The base image `--pixi-version` picks: pixi-docker's noble image of that version, unless
    the base image was chosen too (then both must name the same pixi). The image's version is then
    checked like any base image's (kit.model.pixi_support): a pixi that cannot serve the
    workspace's lock or manifest is refused, naming both versions."""
    if base_image == DEFAULT_BASE_IMAGE:
        return f"ghcr.io/prefix-dev/pixi:{version}-noble"
    tag = base_image.split("@", 1)[0].rsplit(":", 1)[-1] if ":" in base_image.rsplit("/", 1)[-1] else ""
    if not re.fullmatch(re.escape(version) + r"(?:-[A-Za-z0-9][A-Za-z0-9._-]*)?", tag):
        raise OptionsError(
            f"--pixi-version {version} and --base-image {base_image} name different pixi images",
            field="pixi_version",
            fix="give one of them, or a base image whose tag starts with that version",
        )
    return base_image


@dataclass(frozen=True)
class RenderOptions:
    """Every choice that shapes the rendered files. Defaults follow the lesson."""

    environment: str | None = option(
        None,
        "environment to build (default: the first CUDA one)",
        flag="--env",
        check=names.environment_name,
        widget="environment",
        group="first",
    )
    environments: tuple[str, ...] = option(
        (),
        "an environment the workflows build (repeatable; default: every container environment, --env first)",
        flag="--matrix",
        label="matrix (none: all)",
        check=_env_names,
        widget="environments",
        group="publishing",
    )
    cuda: str | None = option(
        None,
        "CUDA version for CONDA_OVERRIDE_CUDA (default: the requirement)",
        label="CUDA version",
        check=names.cuda_version,
    )
    style: Style = option(
        "lesson",
        "lesson: the recipe the episodes teach; optimized: what you would ship",
        choices=STYLES,
        widget="toggle",
        group="first",
    )
    base_image: str = option(
        DEFAULT_BASE_IMAGE, "image with pixi for the install stage", check=names.image_reference
    )
    pixi_version: str = option(
        "",
        "the pixi the install stage runs: picks the base image ghcr.io/prefix-dev/pixi:<version>-noble "
        f"(default: {PIXI_VERSION}, the kit's pin)",
        check=_pixi_version,
    )
    runtime_image: str = option(
        DEFAULT_RUNTIME_IMAGE, "image for the optimized final stage", check=names.image_reference
    )
    image_name: str = option(
        "",
        "image name in workflows (default: ghcr.io/<owner>/<repo>)",
        check=names.image_reference,
        group="publishing",
    )
    registry: str = option(
        DEFAULT_REGISTRY, "registry the workflows publish to", check=_registry, group="publishing"
    )
    platforms: tuple[str, ...] = option(
        (),
        "a platform to build: linux-64 or linux-aarch64, or linux/amd64, linux/arm64 (repeatable, "
        "or comma-separated; default: every locked Linux platform that the base image serves)",
        flag="--platform",
        label="platforms",
        check=_platforms,
        placeholder="(every locked Linux platform the base image serves)",
    )
    arm_runner: ArmRunner = option(
        "native",
        "workflows, linux-aarch64: native (GitHub's Arm runners, public repositories) or qemu "
        "(emulated on an amd64 runner, many times slower)",
        label="Arm runner",
        choices=ARM_RUNNERS,
        widget="toggle",
    )
    subdir: str = option(
        "",
        "the workspace folder inside its git repository (default: detected)",
        label="subdirectory",
        check=names.relative_path,
        placeholder="(repository root)",
        on_command_line=False,
        group="publishing",
    )
    app_dir: str = option(
        "app",
        "folder copied to /app/src ('' for none; default: app)",
        check=names.relative_path,
        placeholder="(no code copied)",
    )
    tags: tuple[str, ...] = option(
        (), "an image tag (repeatable; default: derived from the lock)", check=_tags, group="publishing"
    )
    bootstrap: Bootstrap = option(
        "docker", "Apptainer bootstrap agent", label="Apptainer bootstrap", choices=BOOTSTRAPS
    )
    bootstrap_source: str = option(
        "",
        "archive or SIF for offline bootstrap agents",
        check=_bootstrap_source,
        placeholder="archive or SIF (offline agents)",
    )
    apptainer_from: ApptainerFrom = option(
        "recipe",
        "where the Apptainer image's environment comes from: recipe (apptainer.def installs it) or "
        "docker-image (the Docker image of the same commit, by digest: one recipe fewer to read, "
        "one registry more to trust)",
        label="Apptainer from",
        choices=APPTAINER_FROM,
    )
    keep_pixi: bool = option(False, "optimized style: keep pixi in the final image for `pixi run`")
    runtime: Runtime = option(
        "image",
        "optimized style, final stage: image (runtime image with bash), no-shell (runtime image "
        "without a shell; activation set with ENV), minimal (from scratch: only the system "
        "libraries the environment links against)",
        choices=RUNTIMES,
    )
    # -- job files (kit generate --only htcondor / --only slurm; see kit.output.jobfiles) ----------
    job_image_kind: JobImageKind = job_option(
        "oras",
        "what jobs run: oras (the SIF the Apptainer workflow publishes), docker (the Docker image) "
        "or sif (a SIF file on the cluster)",
        label="job image",
        choices=JOB_IMAGE_KINDS,
        widget="toggle",
    )
    job_reference: JobReference = job_option(
        "commit",
        "commit: the <env>-sha-<short> tag of one commit; tag: the moving tag",
        label="job image tag",
        choices=JOB_REFERENCES,
        widget="toggle",
    )
    job_commit: str = job_option(
        "",
        "the commit whose image jobs run (default: the repository's HEAD)",
        check=shapes.commit,
    )
    job_image_name: str = job_option(
        "",
        "the published image jobs run (default: --image-name, else ghcr.io/<owner>/<repo> from "
        "the git remote origin)",
        check=names.image_reference,
        placeholder="ghcr.io/<owner>/<repository>",
    )
    job_digest: bool = option(
        False,
        "ask the registry for the digest the job image's tag names and write the image by digest "
        "(a tag can be pushed again; a digest cannot). Needs the network: off, the files name the tag",
        label="job image by digest",
        on_command_line=False,
    )
    job_sif: str = job_option(
        "",
        "the SIF file on the cluster (default: <tag>.sif where you submit)",
        label="job SIF",
        check=shapes.sif_path,
    )
    job_command: str = job_option(
        "",
        "the command jobs run in the image (default: the GPU probe)",
        check=shapes.command,
    )
    job_cpus: str = job_option("1", "CPUs per job", label="job CPUs", check=shapes.count)
    job_gpus: str = job_option(
        "1", "GPUs per job (CUDA environments only)", label="job GPUs", check=shapes.count
    )
    job_memory: str = job_option("4GB", "memory per job (MB, GB or TB)", check=shapes.size)
    job_disk: str = job_option("10GB", "HTCondor: scratch disk per job, image included", check=shapes.size)
    job_time: str = job_option("01:00:00", "Slurm: wall-clock limit [days-]HH:MM:SS", check=shapes.wall_time)
    job_modules: str = job_option(
        "",
        "Slurm: environment modules to load first, separated by spaces",
        check=shapes.modules,
        placeholder="(none)",
    )
    job_platform: str = job_option(
        "",
        "the platform jobs run a SIF for, linux-64 or linux-aarch64 (default: the first one built)",
        check=_one_platform,
        placeholder="(the first platform built)",
    )
    job_arch_feature: str = job_option(
        "",
        "Slurm: the node feature (--constraint) that marks nodes of the job's architecture; Slurm "
        "has no standard one, so ask your site (default: the machine name, x86_64 or aarch64)",
        check=_slurm_feature,
        placeholder="(x86_64 or aarch64)",
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.pixi_version:
            object.__setattr__(self, "base_image", _base_image_for(self.pixi_version, self.base_image))
        # One spelling from here on: pixi's names, each once (the checks above refused others).
        object.__setattr__(self, "platforms", platform_names(self.platforms))
        if self.job_platform:
            object.__setattr__(self, "job_platform", platform_names((self.job_platform,))[0])


@dataclass(frozen=True)
class BuildOptions:
    """How a build runs, beside what it renders."""

    engine: str = option(
        DEFAULT_ENGINE, "the container engine", choices=ENGINES, widget="toggle", group="first"
    )
    tag: str | None = option(None, "image tag (Docker) or SIF name stem (Apptainer)", check=names.tag)

    def __post_init__(self) -> None:
        check_fields(self)


def schema(cls: type[Any]) -> tuple[tuple[Field[Any], OptionSpec], ...]:
    """The fields of an options class with their whole specs, in declaration order."""
    return tuple(
        (
            f,
            replace(
                spec,
                flag=spec.flag or "--" + f.name.replace("_", "-"),
                label=spec.label or f.name.replace("_", " "),
            ),
        )
        for f in fields(cls)
        for spec in [f.metadata["option"]]
    )


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
        # Where the default is empty (None, "", ()), empty means "the kit decides": nothing to check.
        if spec.check is not None and (value or default):
            spec.check(value, f.name)


def _wrong_type(name: str, value: Any, wanted: str) -> OptionsError:
    return OptionsError(
        f"{name} must be {wanted}, not {type(value).__name__}", field=name, fix=f"give {name} as {wanted}"
    )

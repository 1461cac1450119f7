"""What the job templates print: the image a job runs, its resources, and where its files go.

`job_plan()` turns a resolved `Plan` into a `JobPlan` for the plan's primary environment. The
image is by default the per-commit tag the workflows push (`<env>-sha-<short>`, see
`kit.decide.plan.immutable_tag`): a job then says which commit's build it ran, where the moving tag
would run whatever was built last. The tag can still be pushed again when the same commit is built
again, and the commit is the local HEAD, which no workflow may have published: the job files'
comments say so and what to do. With `job_digest` the registry is asked (kit.output.digests) and a
`Pin` comes back: the image is then named by digest, with the tag in a comment, or the files say
why they name the tag.

Job files name a published image, so they need two facts the other files do not: the image's
full name (the workflows can leave it to `${{ github.repository }}`) and the commit. Both come
from the options, which `fill_from_git()` completes from the repository when the user gave none;
`kit.api.Prepared.render` calls it only when job files are rendered, so no other file waits on git.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from kit.base import git, names
from kit.base.errors import OptionsError
from kit.decide.options import RenderOptions
from kit.decide.plan import Plan, immutable_tag, published_tag
from kit.engines.registry import engine_for_scheme, serves_several_platforms
from kit.model.deployfiles import PROBE_SCRIPT
from kit.model.platforms import BY_SUBDIR, LinuxPlatform
from kit.schedulers.htcondor import condor_arches

# The job files' names and templates are their schedulers' (kit.schedulers). The example list of
# inputs the submit file queues over: one job per line, each line a file sent with its job.
# pixi.toml is in every workspace, so the example runs anywhere.
EXAMPLE_INPUTS = ("pixi.toml",)
ENTRYPOINT = "/app/entrypoint.sh"  # both styles' images: activates the environment, then execs
# What the lesson's pages and notebooks show where a learner's own repository would give the
# values: an image name to replace with `ghcr.io/<you>/<repository>`, and a commit id.
EXAMPLE_IMAGE_NAME = "ghcr.io/your-name/cuda-lesson"
EXAMPLE_COMMIT = "3f2c1ab9d0e4c5b6a7f8e9d0c1b2a3f4e5d6c7b8"
GITHUB_REMOTE = re.compile(
    r"(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
    r"([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?"  # fullmatch
)


@dataclass(frozen=True)
class Pin:
    """What the registry said of the job image's tag (`kit generate --job-digest`, see
    kit.output.digests): the digest it names, or why the files name the tag instead."""

    state: Literal["pinned", "unpublished", "unreachable"]
    digest: str = ""  # sha256:<64 hex>, when pinned
    newest_commit: str = ""  # unpublished: the newest commit in HEAD's history whose image is there
    warning: str = ""  # what the user is told when the files name the tag


@dataclass(frozen=True)
class JobPlan:
    """Every value the two job templates print, each already shape-checked."""

    environment: str
    cuda: str | None  # the environment's CUDA requirement: GPUs are requested only then
    cuda_minimum: str  # as HTCondor's gpus_minimum_runtime wants it: MAJOR.MINOR
    name: str  # the job name (Slurm) and the output files' stem
    image_kind: str  # oras | docker | sif
    several_platforms: bool  # the image is a manifest list: each machine pulls its own platform
    container_image: str  # HTCondor: oras://..., docker://... or the SIF path
    sif: str  # Slurm: the SIF apptainer exec runs
    pull: str  # Slurm: the reference to pull the SIF from ("" for a local SIF)
    tag: str  # the tag in the reference ("" for a local SIF)
    immutable: bool  # whether that tag belongs to one commit
    command: str
    cpus: str
    gpus: str
    memory: str  # HTCondor: 4GB
    slurm_memory: str  # Slurm: 4G
    disk: str
    time: str
    modules: str
    inputs: tuple[str, ...] = EXAMPLE_INPUTS
    digest: str = ""  # sha256:..., when the image is named by digest (then `tag` is for the comment)
    pin: str = ""  # "", pinned, unpublished, unreachable: what resolving the tag gave
    newest_commit: str = ""  # unpublished: the newest published commit, for the comment
    # The architectures the job may run on: HTCondor's `Arch` values (() for none) and Slurm's
    # node feature (`--constraint`; "" for none). None where the workspace is built for linux-64
    # alone (as before it could be built for others); none in Slurm for a multi-platform Docker
    # image, which Apptainer pulls for the node it runs on.
    arches: tuple[str, ...] = ()
    constraint: str = ""
    machine: str = ""  # the architecture the constraint stands for (the comment names it)


def job_plan(plan: Plan, pin: Pin | None = None) -> JobPlan:
    """The job files' values for `plan`'s primary environment; OptionsError names what is missing.
    With a `pin` holding a digest, the image is named by that digest and the tag goes into a
    comment; a pulled SIF's default name then carries the digest's start too, so a SIF pulled
    from another digest is never taken for it."""
    o = plan.options
    env = plan.primary
    kind = o.job_image_kind
    pull = tag = digest = ""
    one = _job_platform(plan)
    # A SIF holds one architecture; a Docker image built for several is a manifest list.
    several = serves_several_platforms(kind)
    machines = tuple(p.machine for p in env.linux_platforms) if several else (one.machine,)
    if kind == "sif":
        suffix = plan.sif_suffix(one)
        container_image = sif = o.job_sif or f"{_tag(plan, None)}{suffix}.sif"  # a local file: the plain tag
        pin = None
    else:
        image_name, tag = published_image(plan)
        digest = pin.digest if pin is not None and pin.state == "pinned" else ""
        reference = f"{image_name}@{digest}" if digest else f"{image_name}:{tag}"
        names.image_reference(reference, "job_image_name")
        container_image = pull = f"{kind}://{reference}"
        # Nodes of several architectures may share the folder: each pulls a SIF of its own.
        per_node = "-$(uname -m)" if len(machines) > 1 else ""
        sif = o.job_sif or (f"{tag}-{digest[7:19]}{per_node}.sif" if digest else f"{tag}{per_node}.sif")
    default_command = f"python /app/src/{PROBE_SCRIPT}" if plan.app_dir else "python --version"
    return JobPlan(
        environment=env.name,
        cuda=env.cuda,
        cuda_minimum=_major_minor(env.cuda) if env.cuda else "",
        name=job_name(plan.workspace_name, env.name),
        image_kind=kind,
        several_platforms=several and len(machines) > 1,
        container_image=container_image,
        sif=sif,
        pull=pull,
        tag=tag,
        immutable=o.job_reference == "commit" and kind != "sif",
        command=o.job_command or default_command,
        cpus=o.job_cpus,
        gpus=o.job_gpus,
        memory=o.job_memory,
        slurm_memory=o.job_memory[:-1],
        disk=o.job_disk,
        time=o.job_time,
        modules=o.job_modules,
        digest=digest,
        pin=pin.state if pin is not None else "",
        newest_commit=pin.newest_commit if pin is not None else "",
        arches=condor_arches(machines) if plan.multi_platform else (),
        constraint=(o.job_arch_feature or one.machine) if plan.multi_platform and len(machines) == 1 else "",
        machine=one.machine,
    )


def published_image(plan: Plan) -> tuple[str, str]:
    """(image name, tag) of the published image the job runs (`job_image_kind` oras or docker):
    oras://: the SIF's tag (for a platform other than linux-64, with its suffix: `-arm64`),
    docker://: the image's (a manifest list holds every platform). OptionsError when no name is
    known."""
    o = plan.options
    image_name = o.job_image_name or o.image_name
    if not image_name:
        raise OptionsError(
            "the job files need the published image's name, and the git remote "
            "'origin' is not a GitHub repository",
            field="job_image_name",
            fix="pass --job-image-name ghcr.io/OWNER/REPOSITORY",
        )
    suffix = "" if serves_several_platforms(o.job_image_kind) else plan.sif_suffix(_job_platform(plan))
    tag = _tag(plan, engine_for_scheme(o.job_image_kind)) + suffix
    names.image_reference(f"{image_name}:{tag}", "job_image_name")
    return image_name, tag


def _job_platform(plan: Plan) -> LinuxPlatform:
    """The platform whose SIF a job runs: `--job-platform`, else the primary environment's first."""
    env = plan.primary
    chosen = plan.options.job_platform
    if not chosen:
        return env.linux_platforms[0]
    if chosen not in env.platforms:
        raise OptionsError(
            f"environment {env.name!r} is not built for {chosen} (built for: {', '.join(env.platforms)})",
            field="job_platform",
            fix=f"use one of: {', '.join(env.platforms)}, or add --platform {chosen}",
        )
    return BY_SUBDIR[chosen]


def _tag(plan: Plan, engine: str | None) -> str:
    """The tag jobs name: the commit's own one (default), or the moving one; with the tag
    prefix of `engine`, the engine whose published artifact the job pulls (None: none)."""
    o = plan.options
    if o.job_reference == "tag":
        return published_tag(plan.primary.tag, engine)
    if not o.job_commit:
        raise OptionsError(
            "no commit to name the image by: the workspace is not in a git repository with commits",
            field="job_commit",
            fix="commit and push first, pass --job-commit SHA, or use --job-reference tag",
        )
    return immutable_tag(plan.primary.name, o.job_commit, engine)


def job_name(workspace: str, environment: str) -> str:
    """`<workspace>-<environment>`, lower case, with only letters, digits, '.', '_' and '-'."""
    stem = re.sub(r"[^a-z0-9._-]+", "-", workspace.lower()).strip("-._") or "pixi"
    return f"{stem[:40]}-{environment}"


def _major_minor(cuda: str) -> str:
    parts = cuda.split(".")
    return f"{parts[0]}.{parts[1] if len(parts) > 1 else '0'}"


# -- the facts only the repository knows ---------------------------------------------------------


def fill_from_git(options: RenderOptions, directory: Path) -> RenderOptions:
    """`options` with `job_commit` (HEAD) and `job_image_name` (from a GitHub remote 'origin')
    filled in where the user left them empty and the repository knows them (kit.base.git)."""
    commit, image = options.job_commit, options.job_image_name
    if not commit:
        commit = git.head_commit(directory)
    if not image and not options.image_name:
        image = github_image(git.remote_url(directory, "origin"), options.registry)
    if (commit, image) == (options.job_commit, options.job_image_name):
        return options
    return replace(options, job_commit=commit, job_image_name=image)


def github_image(remote: str, registry: str) -> str:
    """`<registry>/<owner>/<repo>` in lower case for a GitHub remote URL, else ''. Lower case
    because registries refuse upper case, as the workflows' `${IMAGE,,}` knows."""
    match = GITHUB_REMOTE.fullmatch(remote.strip())
    if not match:
        return ""
    image = f"{registry}/{match.group(1)}/{match.group(2)}".lower()
    try:
        return names.image_reference(image, "job_image_name")
    except OptionsError:
        return ""

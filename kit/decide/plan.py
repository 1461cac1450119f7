"""The plan: the options checked against one workspace, and every fact the templates print.

`resolve()` turns `RenderOptions` (what a user chose) and a `Workspace` (what the manifest and the
lock say) into a `Plan`: CUDA version per environment, tags, paths, path filters, and each
stage's image. What a style changes comes from its row in `kit.decide.styles`, never from a
comparison with its name. Templates contain no decisions that are not in the plan and never see
the options (tests/test_styles.py holds them to that), so a test of the plan is a test of every
file.
It runs once per `Prepared` (see `kit.api.prepare`); everything downstream reads the plan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from kit.base import names
from kit.base.errors import OptionsError
from kit.decide import styles
from kit.decide.options import DISTRO_CODENAMES, ENGINES, PIXI_VERSION, RenderOptions
from kit.decide.styles import Style
from kit.engines.registry import ENGINES as ENGINE_TABLE
from kit.engines.registry import get_engine
from kit.model import deployfiles
from kit.model.deployfiles import workflow_files
from kit.model.discover import slug_in
from kit.model.pixi_support import unserved
from kit.model.pixi_versions import pixi_version_of_image
from kit.model.platforms import BY_SUBDIR, LINUX_PLATFORMS, LinuxPlatform
from kit.model.sources import build_sources, manifest_paths, outside
from kit.model.workspace import DEFAULT_ENV, LINUX, Workspace

# Runtime images known to have no shell: the entrypoint script of `runtime = "image"` cannot start.
SHELL_LESS_IMAGES = re.compile(r"gcr\.io/distroless/|cgr\.dev/chainguard/static")  # match: a prefix
# Apptainer bootstrap agents that start from an image reference (the others from a file).
IMAGE_BOOTSTRAPS = ("docker", "docker-daemon")
# The tags the workflows push, beside the descriptive one (`gpu-noble-cuda-12`, which moves to
# each new build): one per commit. Job files name that one, so that a job says which commit's
# build it ran; it is not fixed bits (building the same commit again, for a tag push, a release or
# a manual run, pushes it again with a new digest: only `@sha256:` cannot move).
# docker/metadata-action's `type=sha` writes the first SHORT_SHA_LENGTH hex digits of the commit.
# An engine whose artifacts share the repository with another's puts its own prefix before both
# (`ContainerEngine.tag_prefix`: the SIF pushed over ORAS has `apptainer-`).
SHORT_SHA_LENGTH = 7
IMMUTABLE_TAG = "{environment}-sha-{short_sha}"
# Base images known to be published for every platform in LINUX_PLATFORMS (the pixi-docker
# images are built for linux/amd64 and linux/arm64). Any other base image is assumed to serve
# linux-64 only, unless `--platform` names more: then the user has said what it serves.
# The GitHub-hosted runner each platform builds on natively. `ubuntu-24.04-arm` is GitHub's Arm
# runner (GitHub's changelog, 2025-01-16: public preview, free for public repositories; generally
# available for them from 2025-08-07; private repositories cannot use it, hence `--arm-runner
# qemu`, which builds on the amd64 runner through QEMU).
NATIVE_RUNNERS = {"linux-64": "ubuntu-latest", "linux-aarch64": "ubuntu-24.04-arm"}
EMULATING_RUNNER = "ubuntu-latest"
MULTI_ARCH_BASES = re.compile(r"^ghcr\.io/prefix-dev/pixi(:|@|$)")


@dataclass(frozen=True)
class EnvPlan:
    """One container environment: what the workflow matrix and the build args carry."""

    name: str
    cuda: str | None
    tag: str
    latest: bool
    # The pixi platforms its image is built for (kit.model.platforms.LINUX_PLATFORMS order).
    platforms: tuple[str, ...] = ("linux-64",)

    @property
    def linux_platforms(self) -> tuple[LinuxPlatform, ...]:
        return tuple(BY_SUBDIR[p] for p in self.platforms)


@dataclass(frozen=True)
class DefHeader:
    """A def stage's `Bootstrap:` agent and its `From:` (None: no From line, as for scratch)."""

    bootstrap: str
    source: str | None


@dataclass(frozen=True)
class Plan:
    options: RenderOptions
    workspace_name: str
    primary: EnvPlan
    matrix: tuple[EnvPlan, ...]
    any_cuda: bool
    prefix: str  # subdir + "/" or ""
    app_dir: str
    image_name: str
    manifest: str = "pixi.toml"  # or pyproject.toml ([tool.pixi])
    # Files the install reads besides the manifest and the lock (kit.model.sources.build_sources):
    # the project's own files when an environment installs it (a PyPI or conda path "."), the
    # activation scripts and the source packages the manifest names; () when there are none.
    project_sources: tuple[str, ...] = ()
    # "" when the workspace is alone in its repository; else the suffix of its workflow files.
    workflow_slug: str = ""
    docker_paths: tuple[str, ...] = field(default=())
    apptainer_paths: tuple[str, ...] = field(default=())
    # Every workspace folder of the repository ("" for the root), this one among them.
    repository_workspaces: tuple[str, ...] = field(default=())

    @property
    def context(self) -> str:
        return self.prefix.rstrip("/") or "."

    @property
    def platforms(self) -> tuple[str, ...]:
        """Every platform any environment is built for, in LINUX_PLATFORMS order."""
        wanted = {p for env in self.matrix for p in env.platforms}
        return tuple(p.subdir for p in LINUX_PLATFORMS if p.subdir in wanted)

    @property
    def multi_platform(self) -> bool:
        """The workflows build per platform and merge (Docker) or tag per architecture (SIF);
        a workspace built for linux-64 alone keeps the simple workflows."""
        return self.platforms != (LINUX,)

    @property
    def platform_matrix(self) -> tuple[tuple[EnvPlan, LinuxPlatform], ...]:
        """(environment, platform) for each image the workflows build."""
        return tuple((env, p) for env in self.matrix for p in env.linux_platforms)

    def build_platform(self, host_machine: str) -> LinuxPlatform:
        """The one platform a local build makes for the primary environment: the host's when the
        environment is built for it (no emulation), else the first. Several platforms named
        explicitly cannot go into one local image: kit build refuses them."""
        chosen = self.primary.linux_platforms
        if len(self.options.platforms) > 1:
            raise OptionsError(
                f"a local build makes one image for one platform, not {', '.join(self.options.platforms)}",
                field="platforms",
                fix="pass one --platform per build (the workflows build them all)",
            )
        host = next((p for p in chosen if p.machine == host_machine), None)
        return host or chosen[0]

    def emulated_in_workflow(self, platform: LinuxPlatform) -> bool:
        """Whether the workflows build `platform` on an amd64 runner through QEMU."""
        return platform.subdir != LINUX and self.options.arm_runner == "qemu"

    def runner(self, platform: LinuxPlatform) -> str:
        """The runner label the workflows build `platform` on."""
        return EMULATING_RUNNER if self.emulated_in_workflow(platform) else NATIVE_RUNNERS[platform.subdir]

    @property
    def any_emulated(self) -> bool:
        return any(self.emulated_in_workflow(p) for _, p in self.platform_matrix)

    @property
    def docker_platform_cache_scope(self) -> str:
        """One GitHub Actions cache scope per workspace, environment and platform: two
        platforms writing one scope would evict each other's layers."""
        return self.docker_cache_scope + "-${{ matrix.arch }}"

    def sif_suffix(self, platform: LinuxPlatform) -> str:
        """What the tags of a SIF for `platform` end with: nothing for linux-64 (the tags the
        Apptainer workflow pushed before it built other platforms stay the same), `-arm64` else."""
        return "" if platform.subdir == LINUX else f"-{platform.arch}"

    @property
    def local_image(self) -> str:
        """The image's repository name: `--image-name`, else the workspace's name as Docker
        allows it."""
        return self.image_name or names.local_image_name(self.workspace_name)

    def image_tag(self, tag: str | None = None) -> str:
        """`<image name>:<tag>`, the tag from the lock (the primary environment's) unless given."""
        return f"{self.local_image}:{tag or self.primary.tag}"

    def artifact_name(self, engine: str, tag: str | None = None) -> str:
        """What a build with `engine` is called, as the engine names its artifacts (Docker: the
        image tag; Apptainer: the SIF's stem, the tag)."""
        return get_engine(engine).artifact_name(self.local_image, tag or self.primary.tag)

    @property
    def docker_workflow(self) -> str:
        """`.github/workflows/docker.yaml`, or `docker-<slug>.yaml` beside other workspaces."""
        return workflow_files(self.workflow_slug)[0]

    @property
    def apptainer_workflow(self) -> str:
        return workflow_files(self.workflow_slug)[1]

    @property
    def dependabot_folders(self) -> tuple[str, ...]:
        """The folder of every workspace in the repository, as Dependabot names them (`/`,
        `/variants/gpu`), sorted: each gets its own docker entry in the one `dependabot.yml`, and
        every workspace renders the same list, so none replaces another's entries. A neighbour
        whose folder name the kit would not put into a path is left out (its own generate refuses
        that name too)."""
        own = self.prefix.rstrip("/")
        return tuple(
            "/" + folder for folder in sorted({*filter(_plain_folder, self.repository_workspaces), own})
        )

    @property
    def workflow_label(self) -> str:
        """Appended to the workflows' names, which must differ: the concurrency group uses them."""
        return f" ({self.workflow_slug})" if self.workflow_slug else ""

    @property
    def def_sources(self) -> tuple[tuple[str, str], ...]:
        """(host path, destination) for each project source in a def file's `%files`: a top-level
        one goes into /app/, a nested one to its own path, because Apptainer copies `src dest`
        as `cp` does and `./scripts/env.sh /app/` would land at /app/env.sh."""
        out = []
        for source in self.project_sources:
            path = source.rstrip("/")
            out.append((path, f"/app/{path}" if "/" in path else "/app/"))
        return tuple(out)

    @property
    def install_inputs(self) -> tuple[str, ...]:
        """What the install stage copies in: the manifest, the lock, the project's own files."""
        return (self.manifest, "pixi.lock", *self.project_sources)

    @property
    def style(self) -> Style:
        """The style's row (kit.decide.styles): its templates and what it decides."""
        return styles.style(self.options.style)

    @property
    def env_activation(self) -> bool:
        """The final stage carries the activation as ENV (no shell at run time in Docker)."""
        return self.style.separate_runtime and self.options.runtime != "image"

    @property
    def minimal(self) -> bool:
        return self.style.separate_runtime and self.options.runtime == "minimal"

    @property
    def runtime_without_shell(self) -> bool:
        """The runtime image has no shell (distroless): the activation is set with ENV."""
        return self.options.runtime == "no-shell"

    @property
    def keep_pixi(self) -> bool:
        """The final stage keeps pixi's manifest, lock and ignore files, so `pixi run` works in the
        image: always where it is the pixi image, on request where it has an image of its own."""
        return not self.style.separate_runtime or self.options.keep_pixi

    @property
    def base_image(self) -> str:
        """The image the install runs in: one with pixi."""
        return self.options.base_image

    @property
    def final_image(self) -> str:
        """The Dockerfile's final stage: the pixi image (for a style without a runtime of its own,
        or with --keep-pixi), scratch for the minimal runtime, else the runtime image."""
        if self.minimal:
            return "scratch"
        return self.base_image if self.keep_pixi else self.options.runtime_image

    @property
    def def_install_header(self) -> DefHeader:
        """The def's install (first) stage."""
        return self._def_header(self.base_image)

    @property
    def def_final_header(self) -> DefHeader:
        """The def's final stage: scratch where the Docker image has no shell (Apptainer runs its
        actions with /bin/sh, so that stage brings its own bash), else as the Dockerfile's."""
        if self.env_activation:
            return DefHeader("scratch", None)
        return self._def_header(self.base_image if self.keep_pixi else self.options.runtime_image)

    @property
    def def_from_image(self) -> bool:
        """The def starts from the Docker image built from the same commit (`--apptainer-from
        docker-image`) rather than installing the environment a second time."""
        return self.options.apptainer_from == "docker-image"

    @property
    def def_image_agent(self) -> str:
        """That def's agent: `docker` (a registry: the workflow passes the digest) or
        `docker-daemon` (the image `kit build --engine docker` tagged on this machine)."""
        return self.options.bootstrap

    def _def_header(self, image: str) -> DefHeader:
        o = self.options
        return DefHeader(o.bootstrap, image if o.bootstrap in IMAGE_BOOTSTRAPS else o.bootstrap_source)

    @property
    def registry(self) -> str:
        return self.options.registry

    @property
    def published_image(self) -> str:
        """The image the workflows push: the name given, else the repository's on the registry."""
        return self.image_name or self.registry + "/${{ github.repository }}"

    @property
    def docker_cache_scope(self) -> str:
        """The Docker workflow's GitHub Actions cache scope: one per workspace and environment."""
        return "docker-" + self.prefix.replace("/", "-") + "${{ matrix.environment }}"

    def labels_with_commit(self, engine: str) -> bool:
        """Only the optimized Dockerfile labels its image with the commit (REVISION, CREATED), so
        only its builds need git asked for them: the engine says which arguments its recipe
        takes from git (`ContainerEngine.commit_args`), the style whether it labels."""
        known = ENGINE_TABLE.get(engine)
        return known is not None and bool(known.commit_args) and self.style.labels_with_commit

    def build_args(self, engine: str, commit: Mapping[str, str] | None = None) -> dict[str, str]:
        """The build arguments `engine`'s recipe declares, and only those: Apptainer stops on
        an argument its def never uses. ENVIRONMENT always; CUDA_VERSION for a CUDA
        environment (a CPU one keeps the empty default); REVISION and CREATED (`commit`, from
        git) for the optimized Dockerfile's OCI labels."""
        if engine not in ENGINES:
            raise OptionsError(
                f"engine {engine!r} is unknown", field="engine", fix=f"use one of: {', '.join(ENGINES)}"
            )
        args = {"ENVIRONMENT": self.primary.name}
        if self.primary.cuda:
            args["CUDA_VERSION"] = self.primary.cuda
        if self.labels_with_commit(engine) and commit:
            args.update({k: commit[k] for k in ENGINE_TABLE[engine].commit_args if commit.get(k)})
        return args


def immutable_tag(environment: str, commit: str, engine: str | None = None) -> str:
    """The per-commit tag the workflows push for `environment` at `commit` (a hex commit id).

    `<env>-sha-<short>` as it stands (the Docker image's, a local SIF's stem), or with the tag
    prefix of `engine`'s published artifacts (`apptainer`: `apptainer-<env>-sha-<short>`, the
    SIF pushed over ORAS to the same repository).
    """
    if not re.fullmatch(rf"[0-9a-f]{{{SHORT_SHA_LENGTH},40}}", commit):
        raise OptionsError(
            f"commit {commit!r} is not a hex commit id",
            field="commit",
            fix=f"use `git rev-parse HEAD` (at least {SHORT_SHA_LENGTH} hex digits)",
        )
    tag = IMMUTABLE_TAG.format(environment=environment, short_sha=commit[:SHORT_SHA_LENGTH])
    return names.tag(published_tag(tag, engine))


def published_tag(tag: str, engine: str | None = None) -> str:
    """The moving tag as pushed: as it stands, or with `engine`'s tag prefix (the SIF's)."""
    return get_engine(engine).published_tag(tag) if engine else tag


def _plain_folder(folder: str) -> bool:
    try:
        return names.relative_path(folder, "subdir") == folder
    except OptionsError:
        return False


def resolve(
    workspace: Workspace, options: RenderOptions, repository_workspaces: tuple[str, ...] = ()
) -> Plan:
    """Check `options` against `workspace` and derive everything the templates need.

    `repository_workspaces` lists every workspace folder in the repository (see
    `kit.model.discover.find_workspaces`); with more than one, this workspace's workflows get names
    of their own.
    """
    # Types and shapes were checked when `options` was made (kit.decide.options); what is left here
    # needs the workspace, or several options together.
    _check_runtime(options)
    subdir = names.relative_path(options.subdir, "subdir")
    app_dir = names.relative_path(options.app_dir, "app_dir")
    _check_bootstrap(options)
    _check_apptainer_from(options)
    primary_name = options.environment or default_environment(workspace)
    workspace.environment(primary_name)
    selected = _unique((primary_name, *(options.environments or workspace.container_environments)))
    envs = tuple(_env_plan(workspace, options, name, index == 0) for index, name in enumerate(selected))
    _check_lock_covers_linux(workspace, selected)
    envs = tuple(replace(e, platforms=_env_platforms(workspace, options, e.name)) for e in envs)
    _check_manifest_paths(workspace, selected)
    _check_pixi_serves(workspace, options)
    prefix = f"{subdir}/" if subdir else ""
    sources = build_sources(workspace, selected, app_dir)
    if any(s == "src/" or s.startswith("src/") for s in sources) and app_dir:
        raise OptionsError(
            "the project's src/ folder and the application code would both land in /app/src",
            field="app_dir",
            fix="pass --app-dir '' (the project is installed from src/ anyway)",
        )
    plan = Plan(
        options=options,
        workspace_name=workspace.name,
        primary=envs[0],
        matrix=envs,
        any_cuda=any(e.cuda for e in envs),
        prefix=prefix,
        app_dir=app_dir,
        image_name=options.image_name,
        manifest=workspace.manifest_path.name,
        project_sources=sources,
        workflow_slug=slug_in(repository_workspaces, subdir, workspace.name),
        repository_workspaces=tuple(repository_workspaces),
    )
    return replace(
        plan,
        docker_paths=_paths(plan, deployfiles.in_group("docker"), plan.docker_workflow),
        apptainer_paths=_paths(plan, _def_reads(plan), plan.apptainer_workflow),
    )


# `scratch` is no image: Docker reserves the name for an empty final stage, which holds neither
# the loader nor the libraries the environment's programs need, nor pixi for an install.
SCRATCH_NAMES = frozenset({"scratch", "library/scratch", "docker.io/library/scratch"})


def _is_scratch(image: str) -> bool:
    name = image.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return name in SCRATCH_NAMES


def _def_reads(plan: Plan) -> tuple[str, ...]:
    """The deployment files a SIF depends on: the def and what it copies in, and, for a def made
    from the Docker image, the Docker recipe that image comes from."""
    if plan.def_from_image:
        return _unique((deployfiles.APPTAINER_DEF, *deployfiles.in_group("docker")))
    return (deployfiles.APPTAINER_DEF, *plan.style.def_reads)


def _check_runtime(options: RenderOptions) -> None:
    if _is_scratch(options.runtime_image):
        raise OptionsError(
            f"runtime image {options.runtime_image!r} is empty: nothing in it can run the environment "
            "(no loader, no system libraries)",
            field="runtime_image",
            fix="use --style optimized --runtime minimal, which starts from scratch and copies in the "
            "loader and the libraries the environment links against",
        )
    if _is_scratch(options.base_image):
        raise OptionsError(
            f"base image {options.base_image!r} is empty: the install stage needs pixi",
            field="base_image",
            fix="use an image with pixi, such as the default ghcr.io/prefix-dev/pixi image",
        )
    chosen = styles.style(options.style)
    if options.runtime not in chosen.runtimes:
        others = styles.styles_with_runtime(options.runtime)
        raise OptionsError(
            f"runtime {options.runtime!r} needs the {' or '.join(others)} style ({chosen.final_stage})",
            field="runtime",
            fix=f"add {' or '.join(f'--style {s}' for s in others)}, or drop --runtime",
        )
    if options.runtime != "image" and options.keep_pixi:
        raise OptionsError(
            "keep_pixi needs a final stage from the pixi image",
            field="keep_pixi",
            fix="drop --keep-pixi, or use --runtime image",
        )
    if (
        options.runtime == "image"
        and chosen.separate_runtime
        and not options.keep_pixi
        and SHELL_LESS_IMAGES.match(options.runtime_image)
    ):
        raise OptionsError(
            f"runtime image {options.runtime_image!r} has no shell, so the "
            "entrypoint script that activates the environment cannot start",
            field="runtime_image",
            fix="add --runtime no-shell (activation set with ENV), or use --runtime minimal",
        )


def _check_bootstrap(options: RenderOptions) -> None:
    needs_path = options.bootstrap in ("docker-archive", "oci-archive", "localimage")
    if needs_path and not options.bootstrap_source:
        raise OptionsError(
            f"bootstrap agent {options.bootstrap} needs a file to start from",
            field="bootstrap_source",
            fix="pass the archive or SIF path",
        )


def _check_apptainer_from(options: RenderOptions) -> None:
    """A def made from the Docker image needs an agent that starts from an image reference, and
    an image whose entrypoint script the runscript can call (a final stage with bash)."""
    if options.apptainer_from != "docker-image":
        return
    if options.bootstrap not in IMAGE_BOOTSTRAPS:
        raise OptionsError(
            f"apptainer_from docker-image starts from an image reference, which bootstrap agent "
            f"{options.bootstrap} cannot take",
            field="bootstrap",
            fix="use --bootstrap docker (a registry) or docker-daemon (this machine's Docker)",
        )
    if options.runtime != "image":
        raise OptionsError(
            f"the Docker image of runtime {options.runtime!r} has no entrypoint script for the "
            "SIF's runscript to call",
            field="apptainer_from",
            fix="use --runtime image, or --apptainer-from recipe",
        )


def default_environment(workspace: Workspace) -> str:
    """`default` when [environments] names it (the user chose what it installs), else the first
    container environment with a CUDA requirement, else the first one."""
    if workspace.explicit_default:
        return DEFAULT_ENV
    candidates = workspace.container_environments
    with_cuda = [n for n in candidates if workspace.environments[n].cuda]
    return (with_cuda or list(candidates))[0]


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _env_plan(workspace: Workspace, options: RenderOptions, name: str, primary: bool) -> EnvPlan:
    env = workspace.environment(name)
    cuda = env.cuda
    if primary and options.cuda is not None:
        cuda = _checked_cuda_override(name, env.cuda, options.cuda)
    tag = options.tags[0] if primary and options.tags else derive_tag(workspace, options, name, cuda)
    names.tag(tag)
    return EnvPlan(name=name, cuda=cuda, tag=tag, latest=primary)


def _checked_cuda_override(env: str, required: str | None, given: str) -> str:
    names.cuda_version(given)
    if required is None:
        raise OptionsError(
            f"environment {env!r} has no CUDA requirement, so it takes no CUDA override",
            field="cuda",
            fix="drop --cuda, or pick a CUDA environment",
        )
    if _major_minor(given) < _major_minor(required):
        raise OptionsError(
            f"CUDA {given} is older than the environment's requirement {required}",
            field="cuda",
            fix=f"use {required} or newer",
        )
    return given


def _major_minor(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def derive_tag(workspace: Workspace, options: RenderOptions, env: str, cuda: str | None) -> str:
    """`<env>[-<distro>][-cuda-<version>]`, the CUDA version being the environment's requirement
    (or the --cuda override), never the lock's `cuda-version`: a tag must not change when a
    learner locks or relocks, or the workflows committed before the lock, the lesson's pull
    commands and the job files would all name a tag nobody publishes. The exact build is what the
    per-commit tag (`immutable_tag`) names."""
    parts = [env]
    distro = base_distro(options.base_image)
    if distro:
        parts.append(distro)
    if cuda:
        parts.append(f"cuda-{cuda}")
    return "-".join(parts)


def base_distro(image: str) -> str:
    tag_part = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
    return next((c for c in DISTRO_CODENAMES if c in tag_part), "")


def _check_manifest_paths(workspace: Workspace, selected: tuple[str, ...]) -> None:
    """A path the install reads (an activation script, a source package) must lie in the
    workspace folder, the build context; one outside it cannot reach any image."""
    for path, what, where in manifest_paths(workspace, selected):
        if outside(path):
            raise OptionsError(
                f"{what} {path!r} lies outside the workspace folder, which is the build context",
                file=workspace.manifest_path,
                field=where,
                fix="move it into the workspace folder and name it from there",
            )


def _check_pixi_serves(workspace: Workspace, options: RenderOptions) -> None:
    """The pixi in the base image must read what the workspace uses (lock format and layout,
    rich platforms, TOML 1.1) and meet its `requires-pixi` (kit.model.pixi_support). The base
    image's tag is how a user picks an older pixi (`--base-image ghcr.io/prefix-dev/pixi:0.70.2-noble`);
    an image whose tag names no pixi version (a lab's, `latest`) cannot be checked here."""
    version = pixi_version_of_image(options.base_image)
    if version is None:
        return
    gaps = unserved(workspace, version, options.base_image, PIXI_VERSION)
    if gaps:
        gap = gaps[0]
        raise OptionsError(gap.message, file=gap.file, field=gap.field, fix=gap.fix)


def _check_lock_covers_linux(workspace: Workspace, selected: tuple[str, ...]) -> None:
    """The workspace must list linux-64 (containers run it), and a lock that exists must cover
    it for every selected environment (no lock: a warning)."""
    if LINUX not in workspace.platforms:
        raise OptionsError(
            f"the workspace lists no {LINUX} platform (listed: {', '.join(workspace.platforms) or 'none'}), "
            "so no container image can be built from it",
            file=workspace.manifest_path,
            field="workspace.platforms",
            fix=f'add "{LINUX}" to [workspace].platforms, then run `pixi lock`',
        )
    if workspace.lock is None:
        return
    for name in selected:
        locked = workspace.locked(name)
        if locked is None:
            raise OptionsError(
                f"environment {name!r} is not in the lock file",
                file=workspace.lock.path,
                field=f"environments.{name}",
                fix="run `pixi lock` and commit pixi.lock",
            )
        if not workspace.is_locked_for_linux(name):
            raise OptionsError(
                f"environment {name!r} is not locked for {LINUX} (locked: "
                f"{', '.join(locked.platforms) or 'none'})",
                file=workspace.lock.path,
                field=f"environments.{name}.packages",
                fix=f"add {LINUX} to [workspace] platforms, then run `pixi lock`",
            )


def base_platforms(options: RenderOptions) -> tuple[str, ...]:
    """The platforms the base image is taken to serve (see MULTI_ARCH_BASES)."""
    if MULTI_ARCH_BASES.match(options.base_image):
        return tuple(p.subdir for p in LINUX_PLATFORMS)
    return (LINUX,)


def locked_linux_platforms(workspace: Workspace, name: str) -> tuple[str, ...]:
    """The Linux platforms the kit builds for that environment `name` is locked for (without a
    lock: that its manifest solves it for), in LINUX_PLATFORMS order."""
    locked = workspace.locked(name)
    if locked is not None:
        have = set(locked.platforms)
    else:
        subdirs = {e.name: e.subdir for e in workspace.platform_entries}
        env = workspace.environment(name)
        have = {subdirs.get(p, p) for p in env.platforms} or set(workspace.platforms)
    return tuple(p.subdir for p in LINUX_PLATFORMS if p.subdir in have)


def _env_platforms(workspace: Workspace, options: RenderOptions, name: str) -> tuple[str, ...]:
    """The platforms environment `name` is built for: those asked for, each of which it must be
    locked for; by default every locked one the base image serves (linux-64 at least, which
    `_check_lock_covers_linux` has made sure of)."""
    locked = locked_linux_platforms(workspace, name)
    if options.platforms:
        for wanted in options.platforms:
            if wanted not in locked:
                where = workspace.lock.path if workspace.lock is not None else workspace.manifest_path
                raise OptionsError(
                    f"environment {name!r} is not locked for {wanted} "
                    f"(locked Linux platforms: {', '.join(locked) or 'none'})",
                    file=where,
                    field="platforms",
                    fix=f'add "{wanted}" to [workspace] platforms (and to the features that narrow '
                    f"them), run `pixi lock`, or drop --platform {wanted}",
                )
        return tuple(p.subdir for p in LINUX_PLATFORMS if p.subdir in options.platforms)
    served = base_platforms(options)
    return tuple(p for p in locked if p in served) or (LINUX,)


def _paths(plan: Plan, recipe_files: tuple[str, ...], workflow: str) -> tuple[str, ...]:
    """Workflow path filters: every file the build reads, plus the workflow itself."""
    p = plan.prefix
    paths = [f"{p}{plan.manifest}", f"{p}pixi.lock", *(f"{p}{name}" for name in recipe_files)]
    for source in plan.project_sources:
        paths.append(f"{p}{source}**" if source.endswith("/") else f"{p}{source}")
    if plan.app_dir:
        paths.append(f"{p}{plan.app_dir}/**")
    paths.append(workflow)
    return tuple(paths)

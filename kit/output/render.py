"""Render the deployment files of a workspace: Dockerfile, .dockerignore, apptainer.def, workflows.

`render()` returns text keyed by path (relative to the git repository root) and writes nothing,
so a preview, a diff, a check and a write all start from the same bytes. Templates live in
`kit/templates/` (Jinja2, `StrictUndefined`): `<style>/` holds a style's Dockerfile and def
(its folder is in the style's row, kit.decide.styles), `common/` the files both styles share,
`workflows/` the two GitHub workflows and Dependabot's configuration. Templates get the plan, never the options: every decision
is the plan's, and a template only prints it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import jinja2

from kit.base.errors import OptionsError
from kit.decide.actions import ACTIONS, APPTAINER, APPTAINER_PPA
from kit.decide.options import RenderOptions
from kit.decide.plan import Plan, resolve
from kit.model import deployfiles
from kit.model.deployfiles import PROBE_SCRIPT, DeployFile
from kit.model.deployfiles import FileKind as FileKind  # re-exported: the kinds of rendered files
from kit.model.workspace import Workspace
from kit.output import jobfiles
from kit.schedulers import SCHEDULERS, job_file_keys


@dataclass(frozen=True)
class RenderedFile:
    path: str
    text: str
    kind: FileKind = FileKind.MANAGED
    language: str = "text"


# The groups `only` takes, and those rendered only when named (kit.model.deployfiles's table).
GROUPS = deployfiles.GROUPS
JOB_GROUPS = deployfiles.ON_REQUEST_GROUPS
# The template of each file the table lists that is not a job file; `{style}` is the style's folder.
TEMPLATES = {
    deployfiles.DOCKERFILE: "{style}/Dockerfile.j2",
    deployfiles.DOCKERIGNORE: "common/dockerignore.j2",
    deployfiles.APPTAINER_DEF: "{style}/apptainer.def.j2",
    deployfiles.DOCKER_WORKFLOW: "workflows/docker.yaml.j2",
    deployfiles.APPTAINER_WORKFLOW: "workflows/apptainer.yaml.j2",
    deployfiles.DEPENDABOT: "workflows/dependabot.yml.j2",
    deployfiles.GITIGNORE: "common/gitignore.j2",
    deployfiles.GITATTRIBUTES: "common/gitattributes.j2",
}
# The def of `--apptainer-from docker-image`, the same for every style: it starts from the image
# the style's Dockerfile built.
DEF_FROM_IMAGE = "common/apptainer-from-image.def.j2"

# The workflows of a workspace built for several platforms (`Plan.multi_platform`): a job per
# environment and platform, then one manifest list (Docker) or a SIF per architecture
# (Apptainer). A workspace built for linux-64 alone keeps the simpler ones above.
PLATFORM_TEMPLATES = {
    deployfiles.DOCKER_WORKFLOW: "workflows/docker-platforms.yaml.j2",
    deployfiles.APPTAINER_WORKFLOW: "workflows/apptainer-platforms.yaml.j2",
}


# What no value printed into a recipe may hold: line breaks and other control characters (a new
# Dockerfile instruction, def section or YAML key), quotes and backslashes (leaving a quoted
# token), and shell punctuation. Values are shape-checked where they enter (kit.decide.options,
# kit.model.workspace); this is the second wall, at the only place values meet text.
UNSAFE_IN_TOKEN = re.compile(r"[\x00-\x1f\x7f\"'\\`;|&<>]")


def token(value: object) -> object:
    """Jinja's `finalize`: every `{{ ... }}` passes here, so a value can only fill its own token."""
    if isinstance(value, str) and UNSAFE_IN_TOKEN.search(value):
        raise OptionsError(
            f"the value {value!r} cannot be placed in a generated file",
            field="value",
            fix="use letters, digits and '.', '_', '-', '/', ':'",
        )
    return value


@cache
def jinja_env() -> jinja2.Environment:
    """The only Jinja set-up: package templates, strict variables, no autoescape (not HTML),
    and `token` as the finalizer of every printed value."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("kit", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        finalize=token,
    )


def probe_script_text() -> str:
    """The GPU probe shipped with the kit, as the learner places it in `app/`."""
    return resources.files("kit").joinpath("probe", PROBE_SCRIPT).read_text(encoding="utf-8")


def render(
    workspace: Workspace, options: RenderOptions | None = None, only: tuple[str, ...] = ()
) -> dict[str, RenderedFile]:
    """Every deployment file for `workspace`, keyed by path from the repository root."""
    return render_plan(resolve(workspace, options or RenderOptions()), only)


def render_plan(
    plan: Plan, only: tuple[str, ...] = (), pin: jobfiles.Pin | None = None
) -> dict[str, RenderedFile]:
    """Every deployment file of an already resolved plan (what `Prepared.render` calls); `pin`
    is what the registry said of the job image (kit.output.digests), when it was asked."""
    files = _all_files(plan, only)
    files += _job_files(plan, tuple(g for g in only if g in JOB_GROUPS), pin)
    return {f.path: f for f in sorted(files, key=lambda f: f.path)}


def _job_files(plan: Plan, groups: tuple[str, ...], pin: jobfiles.Pin | None = None) -> list[RenderedFile]:
    """The files of each scheduler named in `groups` (an HTCondor submit file with its list of
    inputs, a Slurm batch script), each printed by the template its scheduler names."""
    if not groups:
        return []

    context = {
        "job": jobfiles.job_plan(plan, pin),
        "entrypoint": jobfiles.ENTRYPOINT,
        "files": job_file_keys(),
    }
    p = plan.prefix
    return [
        RenderedFile(p + f.path, _job_template(f.template, context), language=f.language)
        for scheduler in SCHEDULERS.values()
        if scheduler.name in groups
        for f in scheduler.files
    ]


def _job_template(name: str, context: dict[str, object]) -> str:
    return jinja_env().get_template(name).render(**context)


def _template(name: str, plan: Plan) -> str:
    return (
        jinja_env()
        .get_template(name)
        .render(plan=plan, actions=ACTIONS, apptainer_release=APPTAINER, apptainer_ppa=APPTAINER_PPA)
    )


def _all_files(plan: Plan, only: tuple[str, ...]) -> list[RenderedFile]:
    """The table's files that are not job files: all of them, or those of the groups in `only`."""
    files = []
    for entry in deployfiles.FILES:
        if entry.on_request or (only and entry.group not in only):
            continue
        path = _path(plan, entry)
        if path is None:
            continue
        if entry.path == PROBE_SCRIPT:
            text = probe_script_text()
        elif entry.path == deployfiles.APPTAINER_DEF and plan.def_from_image:
            text = _template(DEF_FROM_IMAGE, plan)
        else:
            chosen = PLATFORM_TEMPLATES.get(entry.path) if plan.multi_platform else None
            text = _template((chosen or TEMPLATES[entry.path]).format(style=plan.style.templates), plan)
        files.append(RenderedFile(path, text, entry.kind, entry.language))
    return files


def _path(plan: Plan, entry: DeployFile) -> str | None:
    """Where `entry` goes for `plan`, from the repository root (None: not rendered for it)."""
    if entry.shared:  # one path for the whole repository (dependabot.yml)
        return entry.path
    if entry.place == "repository":  # the workflows, named after the workspace beside others
        return {
            deployfiles.DOCKER_WORKFLOW: plan.docker_workflow,
            deployfiles.APPTAINER_WORKFLOW: plan.apptainer_workflow,
        }[entry.path]
    if entry.place == "app":
        return f"{plan.prefix}{plan.app_dir}/{entry.path}" if plan.app_dir else None
    return plan.prefix + entry.path

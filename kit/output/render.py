"""Render the deployment files of a workspace: Dockerfile, .dockerignore, apptainer.def, workflows.

`render()` returns text keyed by path (relative to the git repository root) and writes nothing,
so a preview, a diff, a check and a write all start from the same bytes. Templates live in
`kit/templates/` (Jinja2, `StrictUndefined`): `<style>/` holds a style's Dockerfile, def and
.dockerignore, `workflows/` the two GitHub workflows, which are the same for both styles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import cache
from importlib import resources
from pathlib import Path

import jinja2

from kit.base.errors import OptionsError
from kit.decide.actions import ACTIONS, APPTAINER
from kit.decide.options import PROBE_SCRIPT, RenderOptions
from kit.decide.plan import Plan, resolve
from kit.model.workspace import Workspace
from kit.schedulers import SCHEDULERS, job_file_keys, scheduler_names


class FileKind(str, Enum):  # noqa: UP042  (str() and JSON of the values stay as they were)
    """How a rendered file meets what is on disk."""

    MANAGED = "managed"  # the kit owns the whole file; refuses to clobber hand edits
    LINES = "lines"  # the kit adds its lines to the user's file (.gitignore, .gitattributes)
    SEED = "seed"  # written only when missing (the probe script in app/)


@dataclass(frozen=True)
class RenderedFile:
    path: str
    text: str
    kind: FileKind = FileKind.MANAGED
    language: str = "text"


GROUPS: dict[str, tuple[str, ...]] = {
    "docker": ("Dockerfile", ".dockerignore"),
    "apptainer": ("apptainer.def",),
    "workflows": (),  # everything under .github/workflows/ (names depend on the repository)
    # Each scheduler's files (htcondor, slurm), as its entry in kit.schedulers names them.
    **{s.name: s.file_names for s in SCHEDULERS.values()},
}
WORKFLOW_DIR = ".github/workflows/"
# Rendered only when `only` names them: they name a published image (see kit.output.jobfiles).
JOB_GROUPS = scheduler_names()


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


def render_plan(plan: Plan, only: tuple[str, ...] = ()) -> dict[str, RenderedFile]:
    """Every deployment file of an already resolved plan (what `Prepared.render` calls)."""
    files = [f for f in _all_files(plan) if _selected(f, only)]
    files += _job_files(plan, tuple(g for g in only if g in JOB_GROUPS))
    return {f.path: f for f in sorted(files, key=lambda f: f.path)}


def _job_files(plan: Plan, groups: tuple[str, ...]) -> list[RenderedFile]:
    """The files of each scheduler named in `groups` (an HTCondor submit file with its list of
    inputs, a Slurm batch script), each printed by the template its scheduler names."""
    if not groups:
        return []
    from kit.output import jobfiles

    context = {"job": jobfiles.job_plan(plan), "entrypoint": jobfiles.ENTRYPOINT, "files": job_file_keys()}
    p = plan.prefix
    return [
        RenderedFile(p + f.path, _job_template(f.template, context), language=f.language)
        for scheduler in SCHEDULERS.values()
        if scheduler.name in groups
        for f in scheduler.files
    ]


def _job_template(name: str, context: dict[str, object]) -> str:
    return jinja_env().get_template(name).render(**context)


def _selected(f: RenderedFile, only: tuple[str, ...]) -> bool:
    if not only:
        return True
    if f.path.startswith(WORKFLOW_DIR):
        return "workflows" in only
    return any(Path(f.path).name in GROUPS[group] for group in only)


def _template(name: str, plan: Plan) -> str:
    return (
        jinja_env()
        .get_template(name)
        .render(plan=plan, actions=ACTIONS, apptainer_release=APPTAINER, options=plan.options)
    )


def _all_files(plan: Plan) -> list[RenderedFile]:
    style = plan.options.style
    p = plan.prefix
    files = [
        RenderedFile(f"{p}Dockerfile", _template(f"{style}/Dockerfile.j2", plan), language="dockerfile"),
        RenderedFile(f"{p}.dockerignore", _template("common/dockerignore.j2", plan)),
        RenderedFile(
            f"{p}apptainer.def", _template(f"{style}/apptainer.def.j2", plan), language="singularity"
        ),
        RenderedFile(plan.docker_workflow, _template("workflows/docker.yaml.j2", plan), language="yaml"),
        RenderedFile(
            plan.apptainer_workflow, _template("workflows/apptainer.yaml.j2", plan), language="yaml"
        ),
        RenderedFile(f"{p}.gitignore", _template("common/gitignore.j2", plan), FileKind.LINES),
        RenderedFile(f"{p}.gitattributes", _template("common/gitattributes.j2", plan), FileKind.LINES),
    ]
    if plan.app_dir:
        files.append(
            RenderedFile(
                f"{p}{plan.app_dir}/{PROBE_SCRIPT}", probe_script_text(), FileKind.SEED, language="python"
            )
        )
    return files

"""The kit's own checks: the facts linters cannot know because they need the workspace.

Each rule is a function `(ctx) -> findings`. `CheckContext` gives them the workspace, the
deployment files (from disk, or freshly rendered and not yet written) and parsed views of them.
Every rule takes any text: a file it cannot make sense of gives findings or nothing, never an
exception (workflows may be lists, matrices may be expressions, patterns may not compile).
"""

from __future__ import annotations

import posixpath
import re

from kit.check.context import CheckContext, Rule
from kit.check.findings import Finding, Problem, kit_finding
from kit.check.images import pixi_support_rule, runtime_shell_rule
from kit.check.patterns import (
    bad_dockerignore_patterns,
    bad_gitignore_patterns,
    bad_path_filters,
    dockerignore_excludes,
    gitignore_excludes,
    path_filter_matches,
)
from kit.check.workflow import as_mapping, matrix_entries
from kit.model import deffile, dockerfile
from kit.model.deployfiles import (
    APPTAINER_DEF,
    DOCKERFILE,
    DOCKERIGNORE,
    GITIGNORE,
    PROBE_SCRIPT,
)
from kit.model.sources import manifest_paths, outside
from kit.model.workspace import LINUX, cuda_requirement_gaps, system_requirements_deprecations

# -- which environment and CUDA version each file builds ----------------------------------------

Target = tuple[str, str | None, str, int | None]


def _targets(ctx: CheckContext) -> list[Target]:
    """(environment, CUDA override or None, file, line) for every build a file describes."""
    return [*_dockerfile_targets(ctx), *_def_targets(ctx), *_workflow_targets(ctx)]


def _dockerfile_targets(ctx: CheckContext) -> list[Target]:
    args = ctx.docker_args
    if ctx.text(DOCKERFILE) is None or "ENVIRONMENT" not in args:
        return []
    line = next(
        (i.line for i in ctx.docker_instructions if i.keyword == "ARG" and i.args.startswith("ENVIRONMENT")),
        None,
    )
    text = "\n".join(f"{i.keyword} {i.args}" for i in ctx.docker_instructions)
    return [(args["ENVIRONMENT"], _override(text, args), ctx.prefix + DOCKERFILE, line)]


def _def_targets(ctx: CheckContext) -> list[Target]:
    """The def's environment is the one its install stage (the stage running `pixi install`,
    else the first that names ENVIRONMENT) gets, with that stage's own arguments."""
    if ctx.text(APPTAINER_DEF) is None:
        return []
    named = [s for s in ctx.def_stages if "ENVIRONMENT" in s.arguments]
    installing = [
        s
        for s in named
        if any("pixi install" in raw for sec in s.sections_named("post") for raw, _ in sec.body)
    ]
    if not named:
        return []
    stage = (installing or named)[0]
    args = stage.arguments
    post = "\n".join(raw for sec in stage.sections_named("post") for raw, _ in sec.body)
    line = next((sec.line for sec in stage.sections_named("arguments")), None)
    return [(args["ENVIRONMENT"], _override(post, args), ctx.prefix + APPTAINER_DEF, line)]


def _workflow_targets(ctx: CheckContext) -> list[Target]:
    return [
        (str(entry.get("environment", "")), str(entry.get("cuda", "") or "") or None, path, None)
        for path in (ctx.docker_workflow, ctx.apptainer_workflow)
        for entry in matrix_entries(ctx.workflow(path))
        if "environment" in entry
    ]


def _override(text: str, args: dict[str, str]) -> str | None:
    """The CONDA_OVERRIDE_CUDA a recipe sets: a literal, or the CUDA_VERSION argument's default
    (`$CUDA_VERSION`, `${CUDA_VERSION}` in a Dockerfile, `{{ CUDA_VERSION }}` in a def file)."""
    match = re.search(
        r"CONDA_OVERRIDE_CUDA=\"?(\$\{?CUDA_VERSION\}?|\{\{\s*CUDA_VERSION\s*\}\}|[0-9.]*)", text
    )
    if not match:
        return None
    value = match.group(1)
    return (args.get("CUDA_VERSION") or None) if "CUDA_VERSION" in value else (value or None)


def environment_rules(ctx: CheckContext) -> list[Finding]:
    """Each built environment exists, is locked for linux-64, and gets the right CUDA override."""
    findings: list[Finding] = []
    ws = ctx.workspace
    for env, cuda, file, line in _targets(ctx):
        if env not in ws.environments:
            findings.append(
                kit_finding(
                    "env-exists",
                    "error",
                    file,
                    line,
                    f"environment {env!r} is not in {ws.manifest_path.name}",
                    f"use one of: {', '.join(sorted(ws.environments))}",
                )
            )
            continue
        findings.extend(_lock_findings(ctx, env, file, line))
        findings.extend(_cuda_findings(ws.environments[env].cuda, env, cuda, file, line))
    return findings


def _lock_findings(ctx: CheckContext, env: str, file: str, line: int | None) -> list[Finding]:
    ws = ctx.workspace
    if ws.lock is None:
        return [
            kit_finding(
                "env-locked",
                "warning",
                file,
                line,
                f"no pixi.lock: `pixi install --locked --environment {env}` will fail in the build",
                "run `pixi lock` and commit pixi.lock",
            )
        ]
    if not ws.is_locked_for_linux(env):
        return [
            kit_finding(
                "env-locked",
                "error",
                file,
                line,
                f"environment {env!r} is not locked for {LINUX}",
                f"add {LINUX} to the workspace platforms and run `pixi lock`",
            )
        ]
    return []


def _cuda_findings(
    required: str | None, env: str, given: str | None, file: str, line: int | None
) -> list[Finding]:
    """At most one `cuda-override` finding for the build at `file:line`: the rule only decides
    what is wrong (`_cuda_problem`), the place is the same whatever it is."""
    problem = _cuda_problem(required, env, given)
    if problem is None:
        return []
    severity, message, fix = problem
    return [kit_finding("cuda-override", severity, file, line, message, fix)]


def _cuda_problem(required: str | None, env: str, given: str | None) -> Problem | None:
    """(severity, message, fix) when the build's CONDA_OVERRIDE_CUDA does not fit the environment."""
    if required and not given:
        return (
            "error",
            f"environment {env!r} requires CUDA {required} but the build sets no CONDA_OVERRIDE_CUDA",
            f"set it to {required}",
        )
    if given and not required:
        return (
            "warning",
            f"environment {env!r} has no CUDA requirement but the build sets CONDA_OVERRIDE_CUDA={given}",
            "drop the override",
        )
    if given and required and _version(given) < _version(required):
        return (
            "error",
            f"CONDA_OVERRIDE_CUDA={given} is older than environment {env!r}'s requirement {required}",
            f"set it to {required}",
        )
    return None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:4])


# -- what the builds read -----------------------------------------------------------------------


def _build_inputs(ctx: CheckContext) -> list[tuple[str, str, int]]:
    """(source relative to the workspace, recipe file, line) for every host file a build copies."""
    out: list[tuple[str, str, int]] = []
    for src, line in dockerfile.copy_sources(ctx.docker_instructions):
        out.append((src, ctx.prefix + DOCKERFILE, line))
    for src, line in deffile.host_file_sources(ctx.def_stages):
        out.append((src, ctx.prefix + APPTAINER_DEF, line))
    return out


def _clean(src: str) -> str:
    return src[2:] if src.startswith("./") else src


def _outside_context(src: str, file: str) -> bool:
    """Whether a recipe's host source lies outside the build context (the workspace folder): any
    `..` past its top, and, in a def file, an absolute path (Apptainer copies it from the build
    machine; Docker reads `COPY /x` inside the context, so there it is not outside)."""
    if "://" in src:
        return False
    if src.startswith("/"):
        return not file.endswith(DOCKERFILE)
    return posixpath.normpath(src).split("/")[0] == ".."


def copy_source_rules(ctx: CheckContext) -> list[Finding]:
    """Every COPY / %files source exists and (for Docker) is not cut out by .dockerignore."""
    findings: list[Finding] = []
    for src, file, line in _build_inputs(ctx):
        rel = _clean(src)
        if _outside_context(src, file):
            findings.append(
                kit_finding(
                    "copy-outside",
                    "error",
                    file,
                    line,
                    f"{src} lies outside the build context (the workspace folder): the build copies "
                    "whatever the building machine has there into the image, or fails",
                    "copy the file into the workspace folder and name it from there, or remove the line",
                )
            )
            continue
        if any(c in rel for c in "$*?[{") or rel.startswith("/") or "://" in rel:
            continue
        if not ctx.exists(rel):
            rule = "app-dir" if _is_app(ctx, rel) else "copy-source"
            findings.append(
                kit_finding(
                    rule,
                    "error",
                    file,
                    line,
                    f"{src} does not exist in {ctx.workspace.root}",
                    f"create {rel} (for the probe: kit generate writes app/{PROBE_SCRIPT})"
                    if rule == "app-dir"
                    else f"create {rel} or remove the line",
                )
            )
        elif (
            file.endswith(DOCKERFILE)
            and rel not in ("", ".")
            and dockerignore_excludes(ctx.dockerignore, rel)
        ):
            findings.append(
                kit_finding(
                    "dockerignore",
                    "error",
                    file,
                    line,
                    f"{src} is excluded by .dockerignore, so the build cannot copy it",
                    f"add !{rel} to .dockerignore",
                )
            )
    return findings


def manifest_path_rule(ctx: CheckContext) -> list[Finding]:
    """Every path the manifest names for an image's environments (activation scripts, source
    packages) reaches the build: it lies in the workspace folder, exists, is not cut out by
    .dockerignore, and each recipe copies it (pixi reads it during the install or activation,
    so an image without it fails or silently lacks what it sets)."""
    ws = ctx.workspace
    manifest = ctx.prefix + ws.manifest_path.name
    findings: list[Finding] = []

    def missing(file: str, message: str, fix: str) -> None:
        findings.append(kit_finding("manifest-path", "error", file, None, message, fix))

    recipes = [
        (ctx.prefix + DOCKERFILE, ctx.text(DOCKERFILE)),
        (ctx.prefix + APPTAINER_DEF, ctx.text(APPTAINER_DEF)),
    ]
    inputs = _build_inputs(ctx)
    for path, what, _ in manifest_paths(ws, ws.container_environments):
        if path == ".":
            continue
        if outside(path):
            missing(
                manifest,
                f"{what} {path} lies outside the workspace folder, the build context",
                "move it into the workspace folder and name it from there",
            )
            continue
        if not ctx.exists(path):
            missing(manifest, f"{what} {path} does not exist", f"create {path}")
            continue
        if ctx.text(DOCKERFILE) is not None and dockerignore_excludes(ctx.dockerignore, path):
            missing(
                ctx.prefix + DOCKERIGNORE,
                f".dockerignore leaves {what} {path} out of the build context",
                f"add !{path} to .dockerignore (kit generate does)",
            )
        for recipe, text in recipes:
            copied = [_clean(src).rstrip("/") for src, file, _ in inputs if file == recipe]
            if text is None or any(c in ("", ".") or path == c or path.startswith(c + "/") for c in copied):
                continue
            missing(
                recipe,
                f"{what} {path} is not copied into the image",
                "run kit generate (it copies every path the manifest names), or copy it yourself",
            )
    return findings


def _is_app(ctx: CheckContext, rel: str) -> bool:
    return (
        any(i.keyword == "COPY" and "/app/src" in i.args and rel in i.args for i in ctx.docker_instructions)
        or rel == "app"
    )


def ignore_file_rules(ctx: CheckContext) -> list[Finding]:
    """pixi.lock must reach the build context and git; every ignore pattern must compile."""
    findings: list[Finding] = []
    dockerignore_file = ctx.prefix + DOCKERIGNORE
    if ctx.text(DOCKERIGNORE) is not None:
        for _, why, fix in bad_dockerignore_patterns(ctx.dockerignore):
            findings.append(
                kit_finding(
                    "dockerignore-pattern",
                    "error",
                    dockerignore_file,
                    None,
                    f"{why}; Docker refuses the build context (and so does `kit build`)",
                    fix,
                )
            )
        if dockerignore_excludes(ctx.dockerignore, "pixi.lock"):
            findings.append(
                kit_finding(
                    "lock-ignored",
                    "error",
                    dockerignore_file,
                    None,
                    "pixi.lock is excluded from the build context",
                    "add !pixi.lock",
                )
            )
    gitignore = ctx.text(GITIGNORE)
    if gitignore is not None:
        for pattern, why in bad_gitignore_patterns(gitignore.splitlines()):
            findings.append(
                kit_finding(
                    "gitignore-pattern",
                    "warning",
                    ctx.prefix + GITIGNORE,
                    None,
                    f"{pattern!r} is not a valid pattern ({why}); git matches nothing with it",
                    "fix the pattern or remove it",
                )
            )
        if gitignore_excludes(gitignore, "pixi.lock"):
            findings.append(
                kit_finding(
                    "lock-ignored",
                    "error",
                    ctx.prefix + GITIGNORE,
                    None,
                    "pixi.lock is ignored by git, so CI builds without it",
                    "remove the line that matches it",
                )
            )
    return findings


def path_filter_rule(ctx: CheckContext) -> list[Finding]:
    """Workflow path filters must fire on a change to any file the build reads."""
    findings: list[Finding] = []
    pairs = (
        (ctx.docker_workflow, DOCKERFILE, DOCKERIGNORE),
        (ctx.apptainer_workflow, APPTAINER_DEF, None),
    )
    inputs = _build_inputs(ctx)
    manifest = ctx.workspace.manifest_path.name
    for workflow_path, recipe, ignore in pairs:
        workflow = ctx.workflow(workflow_path)
        if not workflow:
            continue
        triggers = as_mapping(workflow.get("on"))
        read = {ctx.prefix + recipe, ctx.prefix + manifest, ctx.prefix + "pixi.lock"}
        if ignore:
            read.add(ctx.prefix + ignore)
        for src, file, _ in inputs:
            if _outside_context(src, file) or "://" in src:
                continue  # copy_source_rules flags it; no filter can follow a file outside the repository
            rel = posixpath.normpath(_clean(src).lstrip("/")) if src.strip("/") else ""
            if file.endswith(recipe) and rel not in ("", ".") and not any(c in rel for c in "$*?[{"):
                read.add(ctx.prefix + _sample(ctx, rel))
        for event in ("push", "pull_request"):
            filters = as_mapping(triggers.get(event)).get("paths")
            if not isinstance(filters, list) or not filters:
                continue
            filters = [str(f) for f in filters if isinstance(f, (str, int, float))]
            for pattern, why in bad_path_filters(filters):
                findings.append(
                    kit_finding(
                        "path-filter-pattern",
                        "error",
                        workflow_path,
                        None,
                        f"on.{event}.paths: {pattern!r} is not a valid pattern ({why})",
                        "fix the pattern (a class such as [a-z] runs from low to high) or remove it",
                    )
                )
            for path in sorted(read):
                if not path_filter_matches(filters, path):
                    shown = path.removesuffix(SAMPLE) + "**" if path.endswith(SAMPLE) else path
                    findings.append(
                        kit_finding(
                            "path-filters",
                            "error",
                            workflow_path,
                            None,
                            f"on.{event}.paths does not cover {shown}, which the build reads",
                            f"add '{shown}' to on.{event}.paths",
                        )
                    )
    return findings


SAMPLE = "/any-file"


def _sample(ctx: CheckContext, rel: str) -> str:
    """A path to test filters with: a copied folder stands for any file inside it."""
    rel = posixpath.normpath(rel)
    try:
        is_dir = (ctx.workspace.root / rel).is_dir()
    except (OSError, ValueError):
        is_dir = False
    is_dir = is_dir or any(p.startswith(ctx.prefix + rel + "/") for p in ctx.files)
    return rel + SAMPLE if is_dir else rel


# -- the def file -------------------------------------------------------------------------------


def def_parse_rule(ctx: CheckContext) -> list[Finding]:
    """The def file parses: headers, known sections, `%files from` naming an earlier stage."""
    if ctx.text(APPTAINER_DEF) is None:
        return []
    file = ctx.prefix + APPTAINER_DEF
    return [
        Finding("apptainer-def", p.rule, "error", file, p.line, p.message, p.fix)
        for p in ctx.def_file.problems
    ]


def def_stage_arguments_rule(ctx: CheckContext) -> list[Finding]:
    """Each stage defines, in its own `%arguments`, every `{{ NAME }}` it uses.

    Apptainer reads argument defaults per stage, so a stage relying on another stage's
    `%arguments` builds only when every such argument is passed with --build-arg; a plain
    `apptainer build X.sif apptainer.def` stops with "build var NAME is not defined".
    """
    if ctx.text(APPTAINER_DEF) is None:
        return []
    file = ctx.prefix + APPTAINER_DEF
    defaults: dict[str, str] = {}
    for stage in ctx.def_stages:
        for name, value in stage.arguments.items():
            defaults.setdefault(name, value)
    findings: list[Finding] = []
    for stage, name, line in deffile.undefined_stage_arguments(ctx.def_stages):
        findings.append(
            kit_finding(
                "stage-arguments",
                "error",
                file,
                line,
                f"stage {stage.key!r} uses {{{{ {name} }}}} but its %arguments does not define {name}, "
                f"so `apptainer build` without --build-arg {name}=... stops",
                f"add {name}={defaults.get(name, 'default')} under this stage's %arguments",
            )
        )
    for name in sorted(defaults):
        values = {s.arguments[name] for s in ctx.def_stages if name in s.arguments}
        if len(values) > 1:
            findings.append(
                kit_finding(
                    "stage-arguments",
                    "error",
                    file,
                    None,
                    f"the stages give {name} different defaults ({', '.join(sorted(values))})",
                    f"give {name} the same default in every stage",
                )
            )
    return findings


def cuda_requirement_rule(ctx: CheckContext) -> list[Finding]:
    """An environment whose lock holds CUDA builds needs a CUDA system requirement, or it is
    built and tagged as a CPU image (and installed without CONDA_OVERRIDE_CUDA)."""
    ws = ctx.workspace
    manifest = ctx.prefix + ws.manifest_path.name
    return [
        kit_finding("cuda-requirement", "warning", manifest, None, message, fix)
        for _, message, fix in cuda_requirement_gaps(ws.manifest_path, ws.environments, ws.lock)
    ]


def system_requirements_rule(ctx: CheckContext) -> list[Finding]:
    """`[system-requirements]` is deprecated since pixi 0.71: still read, so a warning, whose fix
    names the rich platform entry that replaces the table."""
    ws = ctx.workspace
    manifest = ctx.prefix + ws.manifest_path.name
    return [
        kit_finding("system-requirements", "warning", manifest, None, f"[{where}] {message}", fix)
        for where, message, fix in system_requirements_deprecations(ws.manifest_path, ws.pixi_table)
    ]


RULES: dict[str, Rule] = {
    "apptainer-def": def_parse_rule,
    "stage-arguments": def_stage_arguments_rule,
    "environments": environment_rules,
    "pixi-support": pixi_support_rule,
    "copy-sources": copy_source_rules,
    "manifest-paths": manifest_path_rule,
    "ignore-files": ignore_file_rules,
    "path-filters": path_filter_rule,
    "runtime-shell": runtime_shell_rule,
    "cuda-requirement": cuda_requirement_rule,
    "system-requirements": system_requirements_rule,
}

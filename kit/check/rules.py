"""The kit's own checks: the facts linters cannot know because they need the workspace.

Each rule is a function `(ctx) -> findings`. `CheckContext` gives them the workspace, the
deployment files (from disk, or freshly rendered and not yet written) and parsed views of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import yaml

from kit.check import parse
from kit.check.findings import Finding
from kit.check.patterns import dockerignore_excludes, path_filter_matches, read_dockerignore
from kit.workspace import LINUX, Workspace, cuda_requirement_gaps

DOCKER_WORKFLOW = ".github/workflows/docker.yaml"
APPTAINER_WORKFLOW = ".github/workflows/apptainer.yaml"


@dataclass
class CheckContext:
    workspace: Workspace
    prefix: str                      # the workspace folder from the repository root, "" or "x/"
    files: dict[str, str]            # deployment files by path from the repository root
    findings: list[Finding] = field(default_factory=list)
    # This workspace's workflows (named after its folder when the repository holds several).
    docker_workflow: str = DOCKER_WORKFLOW
    apptainer_workflow: str = APPTAINER_WORKFLOW

    def text(self, name: str) -> str | None:
        return self.files.get(self.prefix + name)

    def exists(self, relpath: str) -> bool:
        """Whether a path in the workspace exists on disk or among the files about to be written."""
        rel = relpath.strip("/")
        if rel in ("", "."):
            return True
        if (self.workspace.root / rel).exists():
            return True
        full = self.prefix + rel
        return any(p == full or p.startswith(full + "/") for p in self.files)

    @cached_property
    def dockerfile(self) -> list[parse.Instruction]:
        return parse.dockerfile_instructions(self.text("Dockerfile") or "")

    @cached_property
    def def_stages(self) -> list[parse.DefStage]:
        return parse.parse_def(self.text("apptainer.def") or "", self.prefix + "apptainer.def")[0]

    @cached_property
    def dockerignore(self) -> list[str]:
        return read_dockerignore(self.text(".dockerignore") or "")

    def workflow(self, path: str) -> dict[Any, Any]:
        text = self.files.get(path)
        if not text:
            return {}
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            return {}  # the schema check reports it
        return data if isinstance(data, dict) else {}


Rule = Callable[[CheckContext], list[Finding]]


def _kit(rule: str, severity: str, file: str, line: int | None, message: str, fix: str) -> Finding:
    return Finding("kit", rule, severity, file, line, message, fix)  # type: ignore[arg-type]


# -- which environment and CUDA version each file builds ----------------------------------------

Target = tuple[str, str | None, str, int | None]


def _targets(ctx: CheckContext) -> list[Target]:
    """(environment, CUDA override or None, file, line) for every build a file describes."""
    return [*_dockerfile_targets(ctx), *_def_targets(ctx), *_workflow_targets(ctx)]


def _dockerfile_targets(ctx: CheckContext) -> list[Target]:
    args = parse.arg_defaults(ctx.dockerfile)
    if ctx.text("Dockerfile") is None or "ENVIRONMENT" not in args:
        return []
    line = next((i.line for i in ctx.dockerfile if i.keyword == "ARG" and i.args.startswith("ENVIRONMENT")), None)
    text = "\n".join(f"{i.keyword} {i.args}" for i in ctx.dockerfile)
    return [(args["ENVIRONMENT"], _override(text, args), ctx.prefix + "Dockerfile", line)]


def _def_targets(ctx: CheckContext) -> list[Target]:
    args = parse.def_arguments(ctx.def_stages)
    if ctx.text("apptainer.def") is None or "ENVIRONMENT" not in args:
        return []
    post = "\n".join(raw for s in ctx.def_stages for n, _, _, body in s.sections if n == "post" for raw, _ in body)
    return [(args["ENVIRONMENT"], _override(post, args), ctx.prefix + "apptainer.def", None)]


def _workflow_targets(ctx: CheckContext) -> list[Target]:
    return [(str(entry.get("environment", "")), str(entry.get("cuda", "") or "") or None, path, None)
            for path in (ctx.docker_workflow, ctx.apptainer_workflow)
            for entry in _matrix_entries(ctx.workflow(path))]


def _override(text: str, args: dict[str, str]) -> str | None:
    """The CONDA_OVERRIDE_CUDA a recipe sets: a literal, or the CUDA_VERSION argument's default
    (`$CUDA_VERSION`, `${CUDA_VERSION}` in a Dockerfile, `{{ CUDA_VERSION }}` in a def file)."""
    match = re.search(r"CONDA_OVERRIDE_CUDA=\"?(\$\{?CUDA_VERSION\}?|\{\{\s*CUDA_VERSION\s*\}\}|[0-9.]*)", text)
    if not match:
        return None
    value = match.group(1)
    return (args.get("CUDA_VERSION") or None) if "CUDA_VERSION" in value else (value or None)


def _matrix_entries(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for job in (workflow.get("jobs") or {}).values():
        include = ((job or {}).get("strategy") or {}).get("matrix", {}).get("include", [])
        entries.extend(e for e in include if isinstance(e, dict))
    return entries


def environment_rules(ctx: CheckContext) -> list[Finding]:
    """Each built environment exists, is locked for linux-64, and gets the right CUDA override."""
    findings: list[Finding] = []
    ws = ctx.workspace
    for env, cuda, file, line in _targets(ctx):
        if env not in ws.environments:
            findings.append(_kit("env-exists", "error", file, line, f"environment {env!r} is not in "
                                 f"{ws.manifest_path.name}", f"use one of: {', '.join(sorted(ws.environments))}"))
            continue
        findings.extend(_lock_findings(ctx, env, file, line))
        findings.extend(_cuda_findings(ws.environments[env].cuda, env, cuda, file, line))
    return findings


def _lock_findings(ctx: CheckContext, env: str, file: str, line: int | None) -> list[Finding]:
    ws = ctx.workspace
    if ws.lock is None:
        return [_kit("env-locked", "warning", file, line, f"no pixi.lock: `pixi install --locked "
                     f"--environment {env}` will fail in the build", "run `pixi lock` and commit pixi.lock")]
    if not ws.is_locked_for_linux(env):
        return [_kit("env-locked", "error", file, line, f"environment {env!r} is not locked for {LINUX}",
                     f"add {LINUX} to the workspace platforms and run `pixi lock`")]
    return []


def _cuda_findings(required: str | None, env: str, given: str | None, file: str,
                   line: int | None) -> list[Finding]:
    if required and not given:
        return [_kit("cuda-override", "error", file, line, f"environment {env!r} requires CUDA "
                     f"{required} but the build sets no CONDA_OVERRIDE_CUDA", f"set it to {required}")]
    if given and not required:
        return [_kit("cuda-override", "warning", file, line, f"environment {env!r} has no CUDA "
                     f"requirement but the build sets CONDA_OVERRIDE_CUDA={given}", "drop the override")]
    if given and required and _version(given) < _version(required):
        return [_kit("cuda-override", "error", file, line, f"CONDA_OVERRIDE_CUDA={given} is older than "
                     f"environment {env!r}'s requirement {required}", f"set it to {required}")]
    return []


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


# -- what the builds read -----------------------------------------------------------------------

def _build_inputs(ctx: CheckContext) -> list[tuple[str, str, int]]:
    """(source relative to the workspace, recipe file, line) for every host file a build copies."""
    out: list[tuple[str, str, int]] = []
    for src, line in parse.copy_sources(ctx.dockerfile):
        out.append((src, ctx.prefix + "Dockerfile", line))
    for src, line in parse.def_file_sources(ctx.def_stages):
        out.append((src, ctx.prefix + "apptainer.def", line))
    return out


def _clean(src: str) -> str:
    return src[2:] if src.startswith("./") else src


def copy_source_rules(ctx: CheckContext) -> list[Finding]:
    """Every COPY / %files source exists and (for Docker) is not cut out by .dockerignore."""
    findings: list[Finding] = []
    for src, file, line in _build_inputs(ctx):
        rel = _clean(src)
        if "$" in rel or "*" in rel:
            continue
        if not ctx.exists(rel):
            rule = "app-dir" if _is_app(ctx, rel) else "copy-source"
            findings.append(_kit(rule, "error", file, line, f"{src} does not exist in {ctx.workspace.root}",
                                 f"create {rel} (for the probe: kit generate writes app/torch_detect_GPU.py)"
                                 if rule == "app-dir" else f"create {rel} or remove the line"))
        elif file.endswith("Dockerfile") and rel not in ("", ".") and dockerignore_excludes(ctx.dockerignore, rel):
            findings.append(_kit("dockerignore", "error", file, line, f"{src} is excluded by .dockerignore, "
                                 "so the build cannot copy it", f"add !{rel} to .dockerignore"))
    return findings


def _is_app(ctx: CheckContext, rel: str) -> bool:
    return any(i.keyword == "COPY" and "/app/src" in i.args and rel in i.args for i in ctx.dockerfile) or rel == "app"


def lock_ignored_rule(ctx: CheckContext) -> list[Finding]:
    """pixi.lock must reach the build context and git."""
    findings: list[Finding] = []
    if ctx.text(".dockerignore") is not None and dockerignore_excludes(ctx.dockerignore, "pixi.lock"):
        findings.append(_kit("lock-ignored", "error", ctx.prefix + ".dockerignore", None,
                             "pixi.lock is excluded from the build context", "add !pixi.lock"))
    gitignore = ctx.text(".gitignore")
    if gitignore is not None and dockerignore_excludes(read_dockerignore(gitignore), "pixi.lock"):
        findings.append(_kit("lock-ignored", "error", ctx.prefix + ".gitignore", None,
                             "pixi.lock is ignored by git, so CI builds without it", "remove the line that matches it"))
    return findings


def path_filter_rule(ctx: CheckContext) -> list[Finding]:
    """Workflow path filters must fire on a change to any file the build reads."""
    findings: list[Finding] = []
    pairs = ((ctx.docker_workflow, "Dockerfile", ".dockerignore"),
             (ctx.apptainer_workflow, "apptainer.def", None))
    inputs = _build_inputs(ctx)
    for workflow_path, recipe, ignore in pairs:
        workflow = ctx.workflow(workflow_path)
        if not workflow:
            continue
        triggers = workflow.get("on", workflow.get(True)) or {}
        read = {ctx.prefix + recipe, ctx.prefix + ctx.workspace.manifest_path.name,
                ctx.prefix + "pixi.lock"}
        if ignore:
            read.add(ctx.prefix + ignore)
        for src, file, _ in inputs:
            rel = _clean(src)
            if file.endswith(recipe) and rel not in ("", ".") and "$" not in rel:
                read.add(ctx.prefix + _sample(ctx, rel))
        for event in ("push", "pull_request"):
            filters = ((triggers.get(event) or {}) if isinstance(triggers, dict) else {}).get("paths")
            if not filters:
                continue
            for path in sorted(read):
                if not path_filter_matches(filters, path):
                    shown = path.removesuffix(SAMPLE) + "**" if path.endswith(SAMPLE) else path
                    findings.append(_kit("path-filters", "error", workflow_path, None,
                                         f"on.{event}.paths does not cover {shown}, which the build reads",
                                         f"add '{shown}' to on.{event}.paths"))
    return findings


SAMPLE = "/any-file"


def _sample(ctx: CheckContext, rel: str) -> str:
    """A path to test filters with: a copied folder stands for any file inside it."""
    is_dir = (ctx.workspace.root / rel).is_dir() or any(p.startswith(ctx.prefix + rel + "/") for p in ctx.files)
    return rel + SAMPLE if is_dir else rel


def def_parse_rule(ctx: CheckContext) -> list[Finding]:
    """The def file parses: headers, known sections, `%files from` naming an earlier stage."""
    text = ctx.text("apptainer.def")
    return [] if text is None else parse.parse_def(text, ctx.prefix + "apptainer.def")[1]


def cuda_requirement_rule(ctx: CheckContext) -> list[Finding]:
    """An environment whose lock holds CUDA builds needs a CUDA system requirement, or it is
    built and tagged as a CPU image (and installed without CONDA_OVERRIDE_CUDA)."""
    ws = ctx.workspace
    manifest = ctx.prefix + ws.manifest_path.name
    return [_kit("cuda-requirement", "warning", manifest, None, message, fix)
            for _, message, fix in cuda_requirement_gaps(ws.manifest_path, ws.environments, ws.lock)]


RULES: dict[str, Rule] = {
    "apptainer-def": def_parse_rule,
    "environments": environment_rules,
    "copy-sources": copy_source_rules,
    "lock-ignored": lock_ignored_rule,
    "path-filters": path_filter_rule,
    "cuda-requirement": cuda_requirement_rule,
}

"""Check deployment files: the real linters (hadolint, zizmor, the workflow schema) and the kit's
own rules. Works on files on disk (`check_dir`) or on rendered files not yet written
(`check_files`), so the widgets can check a preview before anything touches the disk.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from types import MappingProxyType

from kit.base.errors import UserError
from kit.base.files import MiB, read_optional_text
from kit.check.context import CheckContext, Rule
from kit.check.findings import Finding, Severity, errors
from kit.check.jobs import job_rules
from kit.check.linters import LINTERS, collect, one_line, start_linters
from kit.check.rules import RULES
from kit.model.deployfiles import APPTAINER_WORKFLOW, CHECKED_IN_WORKSPACE, DOCKER_WORKFLOW, SHARED
from kit.model.workspace import Workspace

__all__ = [
    "Finding",
    "Severity",
    "check_files",
    "check_dir",
    "errors",
    "DEPLOYMENT_FILES",
    "SHARED_FILES",
    "LINTERS",
]

# Paths (from the workspace folder, or from the repository root for workflows) the kit checks:
# those the table of deployment files marks as checked (kit.model.deployfiles).
DEPLOYMENT_FILES = CHECKED_IN_WORKSPACE
WORKFLOW_FILES: tuple[str, str] = (DOCKER_WORKFLOW, APPTAINER_WORKFLOW)
# The repository's shared files, read at its root whichever workspace is checked (dependabot.yml).
SHARED_FILES: tuple[str, ...] = SHARED
# The kit's own rules: kit.check.rules's, and the job files' (kit.check.jobs imports rules).
ALL_RULES: Mapping[str, Rule] = MappingProxyType({**RULES, "jobs": job_rules})
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2, "skipped": 3}
MAX_FILE_BYTES = 1 * MiB  # a deployment file is a few KiB; the linters need not see more


def _safe_relative(path: str) -> bool:
    """A path that stays inside the scratch folder the linters read (no `..`, not absolute)."""
    pure = PurePosixPath(path)
    return bool(path) and not pure.is_absolute() and ".." not in pure.parts


def check_files(
    workspace: Workspace,
    files: Mapping[str, str],
    prefix: str = "",
    workflows: tuple[str, str] = WORKFLOW_FILES,
) -> list[Finding]:
    """Run every linter and rule on `files` (text by path from the repository root);
    `workflows`: this workspace's Docker and Apptainer workflow paths."""
    findings: list[Finding] = []
    usable = {}
    for path, text in files.items():
        if _safe_relative(path):
            usable[path] = text
        else:
            findings.append(
                Finding(
                    "kit",
                    "file-path",
                    "error",
                    path,
                    None,
                    "not a path inside the repository; not checked",
                    "check files inside the repository",
                )
            )
    ctx = CheckContext(
        workspace=workspace,
        prefix=prefix,
        files=usable,
        docker_workflow=workflows[0],
        apptainer_workflow=workflows[1],
    )
    names = sorted(usable)
    with tempfile.TemporaryDirectory(prefix="kit-check-") as tmp:
        workdir = Path(tmp)
        for path, text in usable.items():
            target = workdir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", errors="replace")
        # The linters run while the kit's own rules do: `kit check` takes as long as the slower.
        with ThreadPoolExecutor(max_workers=len(LINTERS), thread_name_prefix="kit-lint") as pool:
            started = start_linters(pool, names, workdir)
            findings.extend(_run_rules(ctx))
            findings.extend(collect(started, names))
    return _ordered(findings)


def _ordered(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.file, f.line or 0, f.rule))


def _run_rules(ctx: CheckContext) -> list[Finding]:
    findings: list[Finding] = []
    for name, rule in ALL_RULES.items():
        try:
            findings.extend(rule(ctx))
        except Exception as error:  # a rule's own bug must not hide every other finding
            findings.append(
                Finding(
                    "kit",
                    name,
                    "error",
                    ctx.prefix or ".",
                    None,
                    one_line(f"the {name} check failed: {type(error).__name__}: {error}"),
                    "report this as a bug in pixi-deploy-kit",
                )
            )
    return findings


def _unreadable(error: UserError, file: str) -> Finding:
    """A deployment file the kit refuses to read (a FIFO, a folder, a link, a huge or non-UTF-8
    file): one error naming it, so every other file is still checked."""
    return Finding(
        "kit",
        "file-read",
        "error",
        file,
        None,
        one_line(f"{error.detail}; not checked"),
        error.fix or "replace it with a regular UTF-8 text file",
    )


def read_deployment_files(
    workspace: Workspace, repo_root: Path, prefix: str, workflows: tuple[str, str] = WORKFLOW_FILES
) -> tuple[dict[str, str], list[Finding]]:
    """The deployment files on disk by path from the repository root, and a finding for each
    one that is there but cannot be read as text (through `kit.base.files`: regular files only,
    never through a final link, never blocking on a FIFO, bounded, strict UTF-8)."""
    out: dict[str, str] = {}
    refused: list[Finding] = []
    places = [(workspace.root / name, prefix + name) for name in DEPLOYMENT_FILES]
    places += [(repo_root / rel, rel) for rel in (*workflows, *SHARED_FILES)]
    for path, rel in places:
        try:
            text = read_optional_text(path, limit=MAX_FILE_BYTES, field=rel)
        except UserError as error:
            refused.append(_unreadable(error, rel))
            continue
        if text is not None:
            out[rel] = text
    return out, refused


def check_dir(
    workspace: Workspace, repo_root: Path, prefix: str, workflows: tuple[str, str] = WORKFLOW_FILES
) -> list[Finding]:
    """Check what is on disk for `workspace` (its files and its workflows in the repository)."""
    files, refused = read_deployment_files(workspace, repo_root, prefix, workflows)
    return _ordered(refused + check_files(workspace, files, prefix, workflows))

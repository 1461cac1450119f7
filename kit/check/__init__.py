"""Check deployment files: the real linters (hadolint, zizmor, the workflow schema) and the kit's
own rules. Works on files on disk (`check_dir`) or on rendered files not yet written
(`check_files`), so the widgets can check a preview before anything touches the disk.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from kit.check.findings import Finding, Severity, errors
from kit.check.linters import LINTERS
from kit.check.rules import RULES, CheckContext
from kit.workspace import Workspace

__all__ = ["Finding", "Severity", "check_files", "check_dir", "errors", "DEPLOYMENT_FILES"]

# Paths (from the workspace folder, or from the repository root for workflows) the kit checks.
DEPLOYMENT_FILES = ("Dockerfile", ".dockerignore", "apptainer.def", ".gitignore")
WORKFLOW_FILES: tuple[str, str] = (".github/workflows/docker.yaml", ".github/workflows/apptainer.yaml")
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2, "skipped": 3}


def check_files(workspace: Workspace, files: Mapping[str, str], prefix: str = "",
                workflows: tuple[str, str] = WORKFLOW_FILES) -> list[Finding]:
    """Run every linter and rule on `files` (text by path from the repository root);
    `workflows`: this workspace's Docker and Apptainer workflow paths."""
    ctx = CheckContext(workspace=workspace, prefix=prefix, files=dict(files),
                       docker_workflow=workflows[0], apptainer_workflow=workflows[1])
    findings: list[Finding] = []
    for rule in RULES.values():
        findings.extend(rule(ctx))
    with tempfile.TemporaryDirectory(prefix="kit-check-") as tmp:
        workdir = Path(tmp)
        for path, text in files.items():
            target = workdir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        names = sorted(files)
        for linter in LINTERS.values():
            findings.extend(linter(names, workdir))
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.file, f.line or 0, f.rule))


def read_deployment_files(workspace: Workspace, repo_root: Path, prefix: str,
                          workflows: tuple[str, str] = WORKFLOW_FILES) -> dict[str, str]:
    """The deployment files that exist on disk, by path from the repository root."""
    out: dict[str, str] = {}
    for name in DEPLOYMENT_FILES:
        path = workspace.root / name
        if path.is_file():
            out[prefix + name] = path.read_text(encoding="utf-8")
    for rel in workflows:
        path = repo_root / rel
        if path.is_file():
            out[rel] = path.read_text(encoding="utf-8")
    return out


def check_dir(workspace: Workspace, repo_root: Path, prefix: str,
              workflows: tuple[str, str] = WORKFLOW_FILES) -> list[Finding]:
    """Check what is on disk for `workspace` (its files and its workflows in the repository)."""
    return check_files(workspace, read_deployment_files(workspace, repo_root, prefix, workflows),
                       prefix, workflows)

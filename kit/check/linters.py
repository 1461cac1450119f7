"""The external linters, each a function `(files, workdir) -> findings`, held in a plain registry.

A linter that is not installed yields one "skipped" finding that says how to install it: a check
run must never crash because a tool is missing (learners on Binder may lack them). The linters
run on real files in `workdir`, a folder laid out like the repository.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from kit.check.findings import Finding, Severity

Linter = Callable[[list[str], Path], list[Finding]]
INSTALL_HINT = "pip install 'pixi-deploy-kit[lint]'"
TIMEOUT_S = 120


def find_tool(name: str) -> str | None:
    """The tool next to this Python first (a venv's bin), then on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def _skipped(tool: str, files: list[str]) -> list[Finding]:
    return [Finding(tool, "not-installed", "skipped", files[0] if files else "", None,
                    f"{tool} is not installed, so this check did not run", INSTALL_HINT)]


def _run(argv: list[str], workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False)


def hadolint(files: list[str], workdir: Path) -> list[Finding]:
    dockerfiles = [f for f in files if Path(f).name == "Dockerfile"]
    exe = find_tool("hadolint")
    if not dockerfiles:
        return []
    if exe is None:
        return _skipped("hadolint", dockerfiles)
    findings: list[Finding] = []
    levels: dict[str, Severity] = {"error": "error", "warning": "warning"}
    for file in dockerfiles:
        result = _run([exe, "--no-fail", "--format", "json", file], workdir)
        for item in json.loads(result.stdout or "[]"):
            findings.append(Finding("hadolint", item["code"], levels.get(item["level"], "info"),
                                    file, item.get("line"), item["message"],
                                    f"see https://github.com/hadolint/hadolint/wiki/{item['code']}"
                                    if item["code"].startswith("DL") else "see the ShellCheck wiki"))
    return findings


def zizmor(files: list[str], workdir: Path) -> list[Finding]:
    workflows = [f for f in files if f.startswith(".github/workflows/")]
    exe = find_tool("zizmor")
    if not workflows:
        return []
    if exe is None:
        return _skipped("zizmor", workflows)
    result = _run([exe, "--offline", "--no-exit-codes", "--format", "json", *workflows], workdir)
    findings: list[Finding] = []
    severities: dict[str, Severity] = {"High": "error", "Medium": "error", "Low": "warning"}
    for item in json.loads(result.stdout or "[]"):
        location = item["locations"][0]
        local = location["symbolic"]["key"].get("Local", {})
        path = local.get("verbatim_path") or local.get("given_path") or workflows[0]
        row = location["concrete"]["location"]["start_point"]["row"] + 1
        severity = severities.get(item["determinations"]["severity"], "info")
        findings.append(Finding("zizmor", item["ident"], severity, path, row, item["desc"],
                                item.get("url", "")))
    return findings


def workflow_schema(files: list[str], workdir: Path) -> list[Finding]:
    workflows = [f for f in files if f.startswith(".github/workflows/")]
    exe = find_tool("check-jsonschema")
    if not workflows:
        return []
    if exe is None:
        return _skipped("check-jsonschema", workflows)
    findings: list[Finding] = []
    for file in workflows:
        result = _run([exe, "--builtin-schema", "vendor.github-workflows", "--output-format",
                       "json", file], workdir)
        report = json.loads(result.stdout or "{}")
        for error in report.get("errors", []):
            findings.append(Finding("schema", "github-workflow", "error", file, None,
                                    f"{error.get('path', '$')}: {error.get('message', '')}",
                                    "compare with the GitHub Actions workflow syntax reference"))
        for error in report.get("parse_errors", []):
            findings.append(Finding("schema", "yaml-parse", "error", file, None,
                                    str(error.get("message", error)), "fix the YAML syntax"))
    return findings


LINTERS: dict[str, Linter] = {
    "hadolint": hadolint,
    "zizmor": zizmor,
    "schema": workflow_schema,
}

"""The external linters, each a function `(files, workdir) -> findings`, held in a plain registry.

hadolint and zizmor run as programs on real files in `workdir` (a folder laid out like the
repository); the workflow schema is checked in-process (`kit.check.schema`), with the schema
and validator check-jsonschema uses. `run_linters` runs them side by side.

No linter reads configuration from the repository it checks (a cloned repository is
untrusted, and its settings could silence the very findings a check exists for): hadolint gets
the kit's own `hadolint.yaml` (`--config`, so no `.hadolint.yaml` from its folder or above) and
ignores inline `# hadolint ignore=` pragmas; zizmor gets `--no-config` (no `zizmor.yml` or
`.github/zizmor.yml`) and `--no-ignores` (no `# zizmor: ignore[...]` comments). The kit's own
templates carry no such pragma, so they hide nothing the kit wrote either. Both run in a folder
of copies that the kit lays out itself.

A linter never breaks a check run:
- not installed: one "skipped" finding that says how to install it (learners on Binder may lack
  them);
- over its time limit, crashed, or printing something that is not its JSON report: one error
  finding that says so (the files were not vouched for), never an exception.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kit.check import schema
from kit.check.findings import Finding, Severity
from kit.model.deployfiles import DEPENDABOT, DOCKERFILE, WORKFLOW_DIR

Linter = Callable[[list[str], Path], list[Finding]]
INSTALL_HINT = "pip install 'pixi-deploy-kit[lint]'"
TIMEOUT_S = 30.0
HADOLINT_CONFIG = Path(__file__).with_name("hadolint.yaml")
HADOLINT_FLAGS = ("--config", str(HADOLINT_CONFIG), "--disable-ignore-pragma")
ZIZMOR_FLAGS = ("--offline", "--no-config", "--no-ignores")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]|\x1b\[[0-9;]*[A-Za-z]")


class LinterFailed(Exception):
    """A linter ran but gave no usable report; the message says why, in one line."""


def find_tool(name: str) -> str | None:
    """The tool next to this Python first (a venv's bin), then on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def one_line(text: str, limit: int = 300) -> str:
    """Tool output made safe to print: no terminal escapes, one line, bounded."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _skipped(tool: str, files: list[str]) -> list[Finding]:
    return [
        Finding(
            tool,
            "not-installed",
            "skipped",
            files[0] if files else "",
            None,
            f"{tool} is not installed, so this check did not run",
            INSTALL_HINT,
        )
    ]


def _failed(tool: str, file: str, why: str) -> list[Finding]:
    return [
        Finding(
            tool,
            "linter-failed",
            "error",
            file,
            None,
            f"{tool} did not finish its check: {why}",
            f"run {tool} on {file} by hand to see why, or reinstall it ({INSTALL_HINT})",
        )
    ]


def stderr_reason(stderr: str) -> str:
    """The line of a tool's stderr that says what went wrong: an `error:` line, else the first
    line that is not progress chatter (`INFO`), else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    chosen = (
        next((line for line in lines if line.lower().startswith(("error", "fatal"))), None)
        or next((line for line in lines if not line.startswith("INFO")), None)
        or (lines[-1] if lines else "")
    )
    return one_line(chosen)


def _run_json(
    argv: list[str], workdir: Path, timeout: float, ok_codes: tuple[int, ...] = (0,)
) -> tuple[Any, str]:
    """Run a linter and return its parsed JSON report and its stderr; raise LinterFailed on
    anything else.

    The linter gets a process group of its own so that, past the time limit, it is ended with
    anything it started (a wrapper script's children would otherwise hold the pipes open)."""
    try:
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as error:
        raise LinterFailed(f"it could not be started ({error.strerror or error})") from None
    with proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _end_group(proc)
            raise LinterFailed(f"it ran longer than {timeout:g} s and was stopped") from None
        except BaseException:
            _end_group(proc)
            raise
    if proc.returncode not in ok_codes:
        detail = stderr_reason(stderr)
        raise LinterFailed(f"it exited with status {proc.returncode}" + (f": {detail}" if detail else ""))
    try:
        return json.loads(stdout or "null"), stderr
    except ValueError:
        raise LinterFailed(f"its output is not JSON: {one_line(stdout, 80)!r}") from None


def _end_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.communicate()


def hadolint(files: list[str], workdir: Path, timeout: float | None = None) -> list[Finding]:
    dockerfiles = [f for f in files if Path(f).name == DOCKERFILE]
    if not dockerfiles:
        return []
    exe = find_tool("hadolint")
    if exe is None:
        return _skipped("hadolint", dockerfiles)
    findings: list[Finding] = []
    levels: dict[str, Severity] = {"error": "error", "warning": "warning"}
    for file in dockerfiles:
        try:
            report, _ = _run_json(
                [exe, *HADOLINT_FLAGS, "--no-fail", "--format", "json", file], workdir, timeout or TIMEOUT_S
            )
            for item in report or []:
                code = str(item["code"])
                findings.append(
                    Finding(
                        "hadolint",
                        code,
                        levels.get(item["level"], "info"),
                        file,
                        item.get("line"),
                        one_line(str(item["message"])),
                        f"see https://github.com/hadolint/hadolint/wiki/{code}"
                        if code.startswith("DL")
                        else "see the ShellCheck wiki",
                    )
                )
        except LinterFailed as error:
            findings.extend(_failed("hadolint", file, str(error)))
        except (KeyError, TypeError, AttributeError):
            findings.extend(_failed("hadolint", file, "its report has an unexpected shape"))
    return findings


def zizmor(files: list[str], workdir: Path, timeout: float | None = None) -> list[Finding]:
    # zizmor audits Dependabot's configuration too (e.g. `dependabot-cooldown`).
    workflows = [f for f in files if f.startswith(WORKFLOW_DIR) or f == DEPENDABOT]
    if not workflows:
        return []
    exe = find_tool("zizmor")
    if exe is None:
        return _skipped("zizmor", workflows)
    severities: dict[str, Severity] = {"High": "error", "Medium": "error", "Low": "warning"}
    findings: list[Finding] = []
    try:
        report, stderr = _run_json(
            [exe, *ZIZMOR_FLAGS, "--no-exit-codes", "--format", "json", *workflows],
            workdir,
            timeout or TIMEOUT_S,
            ok_codes=(0, ZIZMOR_NO_INPUTS),
        )
        findings.extend(_not_audited(stderr, workflows))
        if report is None and not findings:
            return _failed("zizmor", workflows[0], stderr_reason(stderr) or "it printed no report")
        for item in report or []:
            location = item["locations"][0]
            local = location["symbolic"]["key"].get("Local", {})
            path = local.get("verbatim_path") or local.get("given_path") or workflows[0]
            row = location["concrete"]["location"]["start_point"]["row"] + 1
            severity = severities.get(item["determinations"]["severity"], "info")
            findings.append(
                Finding(
                    "zizmor",
                    str(item["ident"]),
                    severity,
                    str(path),
                    row,
                    one_line(str(item["desc"])),
                    str(item.get("url", "")),
                )
            )
    except LinterFailed as error:
        return _failed("zizmor", workflows[0], str(error))
    except (KeyError, TypeError, IndexError, AttributeError):
        return _failed("zizmor", workflows[0], "its report has an unexpected shape")
    return findings


# zizmor's exit status when no input could be audited (every workflow failed to parse or validate).
ZIZMOR_NO_INPUTS = 3
# On a line with `WARN ` before it (found with str.find, then one search: linear in the line).
_ZIZMOR_SKIPPED = re.compile(r"failed to (?:validate|parse|load)[^\n]*")


def _not_audited(stderr: str, workflows: list[str]) -> list[Finding]:
    """zizmor skips a workflow it cannot parse or validate, saying so only on stderr: one
    warning for each (the schema check reports the cause as an error)."""
    findings: list[Finding] = []
    reasons = [
        one_line(m.group(0))
        for line in stderr.splitlines()
        if (warn := line.find("WARN ")) >= 0 and (m := _ZIZMOR_SKIPPED.search(line, warn + 5))
    ]
    # The reason rarely names the file; zizmor reads its inputs in order and says which it completed.
    skipped = [w for w in workflows if not re.search(rf"completed {re.escape(w)}\s*$", stderr, re.M)]
    for index, reason in enumerate(reasons):
        named = [w for w in workflows if w in reason]
        file = (
            named[0]
            if named
            else skipped[index]
            if len(skipped) == len(reasons)
            else WORKFLOW_DIR.rstrip("/")
        )
        findings.append(
            Finding(
                "zizmor",
                "not-audited",
                "warning",
                file,
                None,
                f"zizmor did not audit this file: {reason}",
                "fix the errors the schema check reports, then check again",
            )
        )
    if not findings and "no inputs collected" in stderr:
        findings.append(
            Finding(
                "zizmor",
                "not-audited",
                "warning",
                workflows[0],
                None,
                "zizmor audited nothing: " + stderr_reason(stderr),
                "fix the errors the schema check reports, then check again",
            )
        )
    return findings


def workflow_schema(files: list[str], workdir: Path, timeout: float | None = None) -> list[Finding]:
    """The GitHub workflow schema, exactly as `check-jsonschema --builtin-schema
    vendor.github-workflows` judges it, without starting that program; and `dependabot.yml`
    against `vendor.dependabot`, the schema check-jsonschema ships for it (offline too)."""
    checked = [
        (f, schema.SCHEMA_NAME if f.startswith(WORKFLOW_DIR) else schema.DEPENDABOT_SCHEMA)
        for f in files
        if f.startswith(WORKFLOW_DIR) or f == DEPENDABOT
    ]
    if not checked:
        return []
    if not schema.available():
        return _skipped("check-jsonschema", [f for f, _ in checked])
    findings: list[Finding] = []
    for file, schema_name in checked:
        try:
            text = (workdir / file).read_text(encoding="utf-8", errors="replace")
            problems = schema.validate_workflow(text, schema_name)
        except Exception as error:  # a broken installation must not end the check run
            findings.extend(_failed("schema", file, one_line(f"{type(error).__name__}: {error}")))
            continue
        dependabot = schema_name == schema.DEPENDABOT_SCHEMA
        for problem in problems:
            if problem.path is None:
                findings.append(
                    Finding(
                        "schema",
                        "yaml-parse",
                        "error",
                        file,
                        None,
                        one_line(problem.message),
                        "fix the YAML so it parses as one mapping",
                    )
                )
            else:
                findings.append(
                    Finding(
                        "schema",
                        "dependabot" if dependabot else "github-workflow",
                        "error",
                        file,
                        None,
                        one_line(f"{problem.path}: {problem.message}", 600),
                        "compare with GitHub's dependabot.yml options reference"
                        if dependabot
                        else "compare with the GitHub Actions workflow syntax reference",
                    )
                )
    return findings


LINTERS: dict[str, Linter] = {
    "hadolint": hadolint,
    "zizmor": zizmor,
    "schema": workflow_schema,
}


def start_linters(pool: Executor, files: list[str], workdir: Path) -> list[tuple[str, Future[list[Finding]]]]:
    """Start every linter on `files` in `pool`; the caller does other work, then `collect`s.
    The programs wait on their own processes while the schema validates in this process."""
    return [(name, pool.submit(linter, files, workdir)) for name, linter in LINTERS.items()]


def collect(started: list[tuple[str, Future[list[Finding]]]], files: list[str]) -> list[Finding]:
    """The started linters' findings, in registry order; a linter's own bug becomes a finding."""
    findings: list[Finding] = []
    for name, future in started:
        try:
            findings.extend(future.result())
        except Exception as error:
            findings.extend(
                _failed(name, files[0] if files else "", one_line(f"{type(error).__name__}: {error}"))
            )
    return findings


def run_linters(files: list[str], workdir: Path) -> list[Finding]:
    """Every linter on `files`, side by side."""
    with ThreadPoolExecutor(max_workers=len(LINTERS), thread_name_prefix="kit-lint") as pool:
        return collect(start_linters(pool, files, workdir), files)

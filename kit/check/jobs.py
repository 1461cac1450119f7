"""Checks of the job files (jobs/htcondor.sub, jobs/slurm.sbatch): they parse, they run an image
the workflows publish, and they ask for GPUs only for an environment that needs CUDA.

Parsing uses the scheduler's own tool where one is installed (`condor_submit -dry-run`, which
needs no running pool) and the kit's own reading otherwise, so a laptop without HTCondor still
gets the image and GPU checks. The environment a file is for comes from its `# kit-environment:`
line, which the kit writes, or else from the image tag.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.check.findings import Finding, Problem, Severity, kit_finding
from kit.check.rules import CheckContext, _matrix_entries
from kit.engines import SIF_TAG_PREFIX
from kit.output.jobfiles import HTCONDOR_FILE, SLURM_FILE, github_image
from kit.output.jobfiles import _git as git_output
from kit.schedulers import find_client

ENV_LINE = re.compile(r"^#\s*kit-environment:\s*(\S+)\s*$", re.MULTILINE)
IMMUTABLE = re.compile(r"^(?P<env>[a-z0-9][a-z0-9-]*)-sha-[0-9a-f]{7,40}$")
DRY_RUN_TIMEOUT_S = 30


@dataclass(frozen=True)
class JobFile:
    """What the checks need from one job file, whichever parser read it."""

    path: str  # from the repository root
    environment: str | None
    image: str | None  # oras://..., docker://..., or a SIF path
    image_line: int | None
    gpu_requests: tuple[tuple[str, int], ...]  # (what, line) for each GPU request


def job_rules(ctx: CheckContext) -> list[Finding]:
    findings: list[Finding] = []
    for kind in JOB_KINDS:
        text = ctx.text(kind.file)
        if text is None:
            continue
        path = ctx.prefix + kind.file
        job, parse_findings = kind.read(ctx, path, text)
        findings += parse_findings
        if job.image is None:
            findings.append(_parse_finding(path, None, kind.no_image, _regenerate(kind.scheduler)))
        findings += _image_rule(ctx, job) + _gpu_rule(ctx, job)
    return findings


def _parse_finding(
    path: str, line: int | None, message: str, fix: str, severity: Severity = "error"
) -> Finding:
    """A `job-parse` finding: the scheduler would refuse the file, or the kit could read it only
    partly. Most are errors, so that is the default."""
    return kit_finding("job-parse", severity, path, line, message, fix)


def _regenerate(*schedulers: str) -> str:
    """The fix that rewrites the named job files as the kit means them."""
    return "regenerate with `kit generate " + " ".join(f"--only {s}" for s in schedulers) + "`"


# -- HTCondor ----------------------------------------------------------------------------------


def _read_submit_file(ctx: CheckContext, path: str, text: str) -> tuple[JobFile, list[Finding]]:
    """The kit's reading of an HTCondor submit file, and condor_submit's where it is installed."""
    commands, findings = _submit_commands(path, text)
    findings += _condor_dry_run(ctx, path, text)
    image = commands.get("container_image")
    gpus = [
        ("request_gpus", line)
        for key, (value, line) in commands.items()
        if key == "request_gpus" and value.strip() not in ("", "0")
    ]
    if commands.get("universe", ("", 0))[0].lower() != "container":
        line = commands.get("universe", ("", None))[1]
        findings.append(
            _parse_finding(
                path,
                line,
                "the job is not in the container universe, so HTCondor will not start the image",
                "set `universe = container`",
            )
        )
    return JobFile(
        path,
        _environment(text, image[0] if image else None),
        image[0] if image else None,
        image[1] if image else None,
        tuple(gpus),
    ), findings


def _submit_commands(path: str, text: str) -> tuple[dict[str, tuple[str, int]], list[Finding]]:
    """`key = value` commands (keys lower case) with their lines, and a finding per bad line.
    Enough of HTCondor's submit language for the kit's files: comments, continuations, one
    `queue` statement at the end."""
    commands: dict[str, tuple[str, int]] = {}
    findings: list[Finding] = []
    queued = False
    pending = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith("#"):
            continue
        if re.match(r"(?i)^queue\b", line):
            queued = True
            continue
        match = re.match(r"^([A-Za-z_+][A-Za-z0-9_.+]*)\s*=\s*(.*)$", line)
        if not match:
            findings.append(
                _parse_finding(
                    path,
                    number,
                    f"not a submit command: {line[:60]!r}",
                    "write `name = value`, or a `queue` statement",
                )
            )
            continue
        commands[match.group(1).lower()] = (match.group(2).strip(), number)
    if not queued:
        findings.append(
            _parse_finding(
                path,
                None,
                "no `queue` statement: condor_submit would submit nothing",
                "end the file with `queue`",
            )
        )
    return commands, findings


def _condor_dry_run(ctx: CheckContext, path: str, text: str) -> list[Finding]:
    """`condor_submit -dry-run` on a copy, when HTCondor's client is installed here."""
    tool = find_client("htcondor", "condor_submit")
    if tool is None:
        return [
            _parse_finding(
                path,
                None,
                "condor_submit is not installed here, so the kit read the submit file itself",
                "install HTCondor's client tools for the full check",
                severity="info",
            )
        ]
    with tempfile.TemporaryDirectory(prefix="kit-check-sub-") as tmp:
        root = Path(tmp)
        (root / "jobs").mkdir()
        (root / HTCONDOR_FILE).write_text(text, encoding="utf-8")
        inputs = ctx.text("jobs/inputs.txt")
        if inputs is not None:
            (root / "jobs/inputs.txt").write_text(inputs, encoding="utf-8")
        try:
            done = subprocess.run(
                [tool, "-dry-run", "-", HTCONDOR_FILE],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=DRY_RUN_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as error:
            return [
                _parse_finding(
                    path,
                    None,
                    f"condor_submit could not run: {error}",
                    "check HTCondor's client installation",
                    severity="warning",
                )
            ]
    if done.returncode == 0:
        return []
    said = " ".join(
        line.strip()
        for line in (done.stderr or done.stdout).splitlines()
        if line.strip() and not line.startswith("Submitting job")
    )
    return [
        _parse_finding(
            path,
            None,
            f"condor_submit -dry-run refused it: {said[:300]}",
            f"fix the command it names, or {_regenerate('htcondor')}",
        )
    ]


# -- Slurm -------------------------------------------------------------------------------------


def _read_batch_script(ctx: CheckContext, path: str, text: str) -> tuple[JobFile, list[Finding]]:
    """The kit's reading of a Slurm batch script (`ctx` unused: sbatch has no dry run to feed)."""
    findings: list[Finding] = []
    lines = text.splitlines()
    if not lines or not lines[0].startswith("#!"):
        findings.append(
            _parse_finding(
                path,
                1,
                "no #! line: sbatch refuses a script without one",
                "start the script with #!/bin/bash",
            )
        )
    gpus: list[tuple[str, int]] = []
    seen_command = False
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("#SBATCH"):
            if seen_command:
                findings.append(
                    _parse_finding(
                        path,
                        number,
                        "an #SBATCH line after the first command: sbatch ignores it",
                        "move every #SBATCH line above the first command",
                        severity="warning",
                    )
                )
            if re.search(r"--(gres=(\S*:)?gpu|gpus(-per-\w+)?=|gpus-per-node)", stripped):
                gpus.append(("#SBATCH GPU request", number))
        elif stripped and not stripped.startswith("#"):
            seen_command = True
        if re.search(r"\bapptainer\s+(exec|run)\b.*\s--nv\b", stripped):
            gpus.append(("apptainer --nv", number))
    findings += _bash_syntax(path, text)
    sif = re.search(r"(?m)^SIF=(\S+)$", text)
    pull = re.search(r"(?m)apptainer pull \"\$SIF\" (\S+)$", text)
    named = pull or sif
    image = named.group(1) if named else None
    image_line = text[: named.start()].count("\n") + 1 if named else None
    return JobFile(path, _environment(text, image), image, image_line, tuple(gpus)), findings


def _bash_syntax(path: str, text: str) -> list[Finding]:
    bash = shutil.which("bash")
    if bash is None:
        return []
    try:
        done = subprocess.run(
            [bash, "-n"], input=text, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode == 0:
        return []
    return [
        _parse_finding(
            path,
            None,
            f"bash -n: {done.stderr.strip()[:200]}",
            f"fix the shell syntax, or {_regenerate('slurm')}",
        )
    ]


@dataclass(frozen=True)
class JobKind:
    """One scheduler's job file: how the kit reads it, and what a file naming no image lacks.
    Everything after the reading (the image, the GPUs) is checked alike for both."""

    file: str  # from the workspace root
    scheduler: str  # as `kit generate --only` names it
    read: Callable[[CheckContext, str, str], tuple[JobFile, list[Finding]]]  # (ctx, path, text)
    no_image: str


JOB_KINDS = (
    JobKind(
        HTCONDOR_FILE,
        "htcondor",
        _read_submit_file,
        "no container_image: the job has nothing to run the environment in",
    ),
    JobKind(SLURM_FILE, "slurm", _read_batch_script, "no SIF=... line: the script names no image to run"),
)


# -- what both files must agree on -------------------------------------------------------------


def _environment(text: str, image: str | None) -> str | None:
    found = ENV_LINE.search(text)
    if found:
        return found.group(1)
    tag = _split_reference(image)[2] if image else ""
    match = IMMUTABLE.match(tag.removeprefix(SIF_TAG_PREFIX))
    return match.group("env") if match else None


def _split_reference(image: str) -> tuple[str, str, str]:
    """(scheme, name, tag) of `docker://name:tag` / `oras://name:tag`; ("", path, "") for a file."""
    scheme, sep, rest = image.partition("://")
    if not sep:
        return "", image, ""
    name, _, tag = rest.rpartition(":") if ":" in rest.rsplit("/", 1)[-1] else (rest, "", "")
    return scheme, name, tag


def _image_rule(ctx: CheckContext, job: JobFile) -> list[Finding]:
    """A registry reference must name the image and a tag the workflows push. Every finding
    points at the image line, so `_image_problems` only says what is wrong."""
    if job.image is None:
        return []
    return [
        kit_finding("job-image", severity, job.path, job.image_line, message, fix)
        for severity, message, fix in _image_problems(ctx, job.image, job.environment)
    ]


def _image_problems(ctx: CheckContext, image: str, environment: str | None) -> list[Problem]:
    """(severity, message, fix) for each way `image` differs from what the workflows publish."""
    scheme, name, tag = _split_reference(image)
    if not scheme:
        return []  # a SIF file on the cluster: nothing published to compare with
    if scheme not in ("docker", "oras"):
        return [
            (
                "error",
                f"{scheme}:// images are not what the kit's workflows publish",
                "use docker:// or oras://",
            )
        ]
    problems: list[Problem] = []
    wants_sif = scheme == "oras"
    if wants_sif != tag.startswith(SIF_TAG_PREFIX):
        problems.append(
            (
                "error",
                f"tag {tag!r} over {scheme}:// is not what the workflows push there (the SIF's tags "
                f"start with {SIF_TAG_PREFIX!r}, the Docker image's do not)",
                _regenerate("htcondor", "slurm"),
            )
        )
    bare = tag.removeprefix(SIF_TAG_PREFIX)
    moving = {str(e.get("tag", "")) for e in _matrix_entries(ctx.workflow(ctx.docker_workflow))}
    immutable = IMMUTABLE.match(bare)
    if immutable and environment and immutable.group("env") != environment:
        problems.append(
            (
                "error",
                f"the tag {tag!r} is the image of environment "
                f"{immutable.group('env')!r}, but the file is for {environment!r}",
                "regenerate the job files for one environment",
            )
        )
    elif not immutable:
        if moving and bare not in moving and bare != "latest":
            problems.append(
                (
                    "error",
                    f"no workflow pushes the tag {tag!r} (they push "
                    f"{', '.join(sorted(moving))} and <env>-sha-<commit>)",
                    _regenerate("htcondor", "slurm"),
                )
            )
        else:
            problems.append(
                (
                    "warning",
                    f"the tag {tag!r} moves with every build: HTCondor caches images "
                    "by name and may run an old copy",
                    "use the per-commit tag <env>-sha-<commit> (kit generate's default)",
                )
            )
    published = _published_names(ctx)
    if published and name not in published:
        problems.append(
            (
                "error",
                f"the workflows publish {', '.join(sorted(published))}, not {name}",
                _regenerate("htcondor", "slurm") + ", or pass --job-image-name",
            )
        )
    return problems


def _published_names(ctx: CheckContext) -> set[str]:
    """The image names the workflows push to, `${{ github.repository }}` filled from the remote."""
    found: set[str] = set()
    for path in (ctx.docker_workflow, ctx.apptainer_workflow):
        _collect(ctx.workflow(path), found)
    repository = ""
    if any("github.repository" in n for n in found):
        remote = git_output(ctx.workspace.root, "remote", "get-url", "origin")
        repository = github_image(remote, "x").removeprefix("x/")
    names = set()
    for raw in found:
        if "github.repository" in raw:
            if not repository:
                continue
            raw = re.sub(r"\$\{\{\s*github\.repository\s*\}\}", repository, raw)
        if "${{" not in raw:
            names.add(raw.lower())
    return names


def _collect(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("images", "IMAGE") and isinstance(value, str):
                out.update(v.strip() for v in value.splitlines() if v.strip())
            else:
                _collect(value, out)
    elif isinstance(node, list):
        for item in node:
            _collect(item, out)


def _gpu_rule(ctx: CheckContext, job: JobFile) -> list[Finding]:
    """GPUs only for an environment that needs CUDA; a CUDA environment without one is a warning."""

    def whole_job(severity: Severity, message: str, fix: str) -> list[Finding]:
        """A finding on the job as a whole: no one line of the file is at fault."""
        return [kit_finding("job-gpu", severity, job.path, None, message, fix)]

    if job.environment is None:
        return whole_job(
            "warning",
            "cannot tell which environment this job runs, so its GPU requests were not checked",
            "keep the `# kit-environment: NAME` line the kit writes",
        )
    env = ctx.workspace.environments.get(job.environment)
    if env is None:
        return whole_job(
            "error",
            f"environment {job.environment!r} is not in the workspace",
            "regenerate the job files with --env NAME",
        )
    if env.cuda is None:
        return [
            kit_finding(
                "job-gpu",
                "error",
                job.path,
                line,
                f"{what}: environment "
                f"{job.environment!r} needs no CUDA, so the job would wait for a GPU it "
                "never uses",
                f"remove the GPU request, or {_regenerate('htcondor', 'slurm')}",
            )
            for what, line in job.gpu_requests
        ]
    if not job.gpu_requests:
        return whole_job(
            "warning",
            f"environment {job.environment!r} needs CUDA {env.cuda}, but the job asks for no GPU",
            "add request_gpus = 1 (HTCondor) or #SBATCH --gres=gpu:1 and --nv (Slurm)",
        )
    return []

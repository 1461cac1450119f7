"""Checks of the job files (jobs/htcondor.sub, jobs/slurm.sbatch): they parse, they run an image
the workflows publish, and they ask for GPUs only for an environment that needs CUDA.

Each scheduler reads its own job file (`Scheduler.read_job_file` in kit.schedulers: with its own
tool where one is installed, such as `condor_submit -dry-run`, and the kit's own reading
otherwise, so a laptop without HTCondor still gets the image and GPU checks); what it says
becomes `job-parse` findings here. The image and GPU checks are the same for every scheduler.
The environment a file is for comes from its `# kit-environment:` line, which the kit writes, or
else from the image tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kit.base import git
from kit.check.context import CheckContext
from kit.check.findings import Finding, Problem, Severity, kit_finding
from kit.check.workflow import matrix_entries
from kit.engines import SIF_TAG_PREFIX, engine_for_scheme
from kit.output.jobfiles import github_image
from kit.schedulers import SCHEDULERS, Scheduler, regenerate, scheduler_names

ENV_LINE = re.compile(r"^#[ \t]*kit-environment:[ \t]*(\S+)[ \t]*$", re.MULTILINE)
# A file that names its image by digest keeps the tag it was resolved from here (kit generate
# --job-digest): the tag rules check that tag.
TAG_LINE = re.compile(r"^#[ \t]*kit-image-tag:[ \t]*(\S+)[ \t]*$", re.MULTILINE)
DIGEST_SUFFIX = re.compile(r"@(sha256:[0-9a-f]{64})\Z")
IMMUTABLE = re.compile(r"(?P<env>[a-z0-9][a-z0-9-]*)-sha-[0-9a-f]{7,40}")  # fullmatch


@dataclass(frozen=True)
class JobFile:
    """What the checks need from one job file, whichever scheduler read it."""

    path: str  # from the repository root
    environment: str | None
    image: str | None  # oras://..., docker://..., or a SIF path
    image_line: int | None
    gpu_requests: tuple[tuple[str, int], ...]  # (what, line) for each GPU request
    digest_tag: str = ""  # the `# kit-image-tag:` line's tag, for an image named by digest


def job_rules(ctx: CheckContext) -> list[Finding]:
    findings: list[Finding] = []
    for scheduler in SCHEDULERS.values():
        text = ctx.text(scheduler.job_file)
        if text is None:
            continue
        path = ctx.prefix + scheduler.job_file
        reading = scheduler.read_job_file(_own_files(ctx, scheduler))
        findings += [
            kit_finding("job-parse", r.severity, path, r.line, r.message, r.fix) for r in reading.remarks
        ]
        tag_line = TAG_LINE.search(text)
        job = JobFile(
            path,
            _environment(text, reading.image),
            reading.image,
            reading.image_line,
            reading.gpu_requests,
            tag_line.group(1) if tag_line else "",
        )
        findings += _image_rule(ctx, job) + _gpu_rule(ctx, job)
    return findings


def _own_files(ctx: CheckContext, scheduler: Scheduler) -> dict[str, str]:
    """The scheduler's files that are here, by path from the workspace folder."""
    found = {f.path: ctx.text(f.path) for f in scheduler.files}
    return {path: text for path, text in found.items() if text is not None}


def _regenerate_all() -> str:
    """The fix that rewrites every scheduler's job files as the kit means them."""
    return regenerate(*scheduler_names())


# -- what both files must agree on -------------------------------------------------------------


def _environment(text: str, image: str | None) -> str | None:
    found = ENV_LINE.search(text)
    if found:
        return found.group(1)
    tag = _split_reference(image)[2] if image else ""
    match = IMMUTABLE.fullmatch(tag.removeprefix(SIF_TAG_PREFIX))
    return match.group("env") if match else None


def _split_reference(image: str) -> tuple[str, str, str]:
    """(scheme, name, tag) of `docker://name:tag` / `oras://name:tag`; ("", path, "") for a file.
    A reference by digest (`name@sha256:...`) has no tag: ("scheme", name, "")."""
    scheme, sep, rest = image.partition("://")
    if not sep:
        return "", image, ""
    rest = DIGEST_SUFFIX.sub("", rest)
    name, _, tag = rest.rpartition(":") if ":" in rest.rsplit("/", 1)[-1] else (rest, "", "")
    return scheme, name, tag


def _image_rule(ctx: CheckContext, job: JobFile) -> list[Finding]:
    """A registry reference must name the image and a tag the workflows push. Every finding
    points at the image line, so `_image_problems` only says what is wrong."""
    if job.image is None:
        return []
    return [
        kit_finding("job-image", severity, job.path, job.image_line, message, fix)
        for severity, message, fix in _image_problems(ctx, job.image, job.environment, job.digest_tag)
    ]


def _image_problems(
    ctx: CheckContext, image: str, environment: str | None, digest_tag: str = ""
) -> list[Problem]:
    """(severity, message, fix) for each way `image` differs from what the workflows publish.
    An image named by digest cannot move; the tag it was resolved from (its `# kit-image-tag:`
    line) is checked as a tag would be, without the warning that it moves."""
    scheme, name, tag = _split_reference(image)
    if not scheme:
        return []  # a SIF file on the cluster: nothing published to compare with
    by_digest = bool(DIGEST_SUFFIX.search(image))
    if by_digest:
        tag = digest_tag
    if engine_for_scheme(scheme) is None:  # no engine publishes over it
        return [
            (
                "error",
                f"{scheme}:// images are not what the kit's workflows publish",
                "use docker:// or oras://",
            )
        ]
    problems: list[Problem] = []
    wants_sif = scheme == "oras"
    if (tag or not by_digest) and wants_sif != tag.startswith(SIF_TAG_PREFIX):
        problems.append(
            (
                "error",
                f"tag {tag!r} over {scheme}:// is not what the workflows push there (the SIF's tags "
                f"start with {SIF_TAG_PREFIX!r}, the Docker image's do not)",
                _regenerate_all(),
            )
        )
    bare = tag.removeprefix(SIF_TAG_PREFIX)
    if wants_sif:
        bare = _without_arch_suffix(ctx, bare)
    moving = {str(e.get("tag", "")) for e in matrix_entries(ctx.workflow(ctx.docker_workflow))}
    immutable = IMMUTABLE.fullmatch(bare)
    if immutable and environment and immutable.group("env") != environment:
        problems.append(
            (
                "error",
                f"the tag {tag!r} is the image of environment "
                f"{immutable.group('env')!r}, but the file is for {environment!r}",
                "regenerate the job files for one environment",
            )
        )
    elif not immutable and not (by_digest and not tag):
        if moving and bare not in moving and bare != "latest":
            problems.append(
                (
                    "error",
                    f"no workflow pushes the tag {tag!r} (they push "
                    f"{', '.join(sorted(moving))} and <env>-sha-<commit>)",
                    _regenerate_all(),
                )
            )
        elif not by_digest:
            problems.append(
                (
                    "warning",
                    f"the tag {tag!r} moves with every build: jobs submitted at different "
                    "times may run different images",
                    "use the per-commit tag <env>-sha-<commit> (kit generate's default), or "
                    "the image by digest (kit generate --job-digest)",
                )
            )
    published = _published_names(ctx)
    if published and name not in published:
        problems.append(
            (
                "error",
                f"the workflows publish {', '.join(sorted(published))}, not {name}",
                _regenerate_all() + ", or pass --job-image-name",
            )
        )
    return problems


def _without_arch_suffix(ctx: CheckContext, tag: str) -> str:
    """A SIF tag without the architecture suffix (`-arm64`) the Apptainer workflow adds to the
    tags of a SIF for a platform other than linux-64 (its matrix's `sif-suffix`)."""
    entries = matrix_entries(ctx.workflow(ctx.apptainer_workflow))
    suffixes = {str(e.get("sif-suffix") or "") for e in entries} - {""}
    return next((tag.removesuffix(s) for s in sorted(suffixes) if tag.endswith(s)), tag)


def _published_names(ctx: CheckContext) -> set[str]:
    """The image names the workflows push to, `${{ github.repository }}` filled from the remote."""
    found: set[str] = set()
    for path in (ctx.docker_workflow, ctx.apptainer_workflow):
        _collect(ctx.workflow(path), found)
    repository = ""
    if any("github.repository" in n for n in found):
        remote = git.remote_url(ctx.workspace.root, "origin")
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
                f"remove the GPU request, or {_regenerate_all()}",
            )
            for what, line in job.gpu_requests
        ]
    if not job.gpu_requests:
        return whole_job(
            "warning",
            f"environment {job.environment!r} needs CUDA {env.cuda}, but the job asks for no GPU",
            "add " + " or ".join(f"{s.gpu_request} ({s.title})" for s in SCHEDULERS.values()),
        )
    return []

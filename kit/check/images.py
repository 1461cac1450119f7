"""The kit's rules about images: the pixi a base image carries, and the shell a runtime has.

- pixi support: the pixi in the base image must read the workspace's `pixi.lock` (format and
  layout) and manifest (rich platforms, TOML 1.1), and meet its `requires-pixi`;
- runtime shell: the final stage's image must have the shell its entrypoint needs.

Images the kit does not know (a lab's, a site's own) give no finding: only what is known about
an image is reported.
"""

from __future__ import annotations

import posixpath
import re

from kit.base.scan import followed_by
from kit.check.context import CheckContext
from kit.check.findings import Finding, kit_finding
from kit.decide.options import DEFAULT_RUNTIME_IMAGE, PIXI_VERSION
from kit.model import deffile, dockerfile
from kit.model.deployfiles import APPTAINER_DEF, DOCKERFILE
from kit.model.pixi_support import unserved
from kit.model.pixi_versions import pixi_version_of_image

# -- the pixi image and what it must read --------------------------------------------------------

PIXI_IMAGE = re.compile(r"(?:docker://)?ghcr\.io/prefix-dev/pixi:(\d+\.\d+\.\d+)(?:[-@].*)?")  # fullmatch


def _pixi_images(ctx: CheckContext) -> list[tuple[str, str, int | None]]:
    """(file, image, line) for every stage built on the official pixi image."""
    out: list[tuple[str, str, int | None]] = []
    for stage in ctx.docker_stages:
        out.append((ctx.prefix + DOCKERFILE, dockerfile.resolve(stage.image, ctx.docker_args), stage.line))
    for def_stage in ctx.def_stages:
        if def_stage.header.get("bootstrap") in deffile.NAMED_IMAGE_AGENTS:
            out.append((ctx.prefix + APPTAINER_DEF, def_stage.image, def_stage.header_line))
    return [(f, image, line) for f, image, line in out if PIXI_IMAGE.fullmatch(image)]


def pixi_support_rule(ctx: CheckContext) -> list[Finding]:
    """The pixi in the base image must serve the workspace: read its lock's format and layout
    and its manifest's features, and meet its `requires-pixi` (kit.model.pixi_support, which
    `kit generate` asks too). pixi refuses a newer lock format ("found newer lockfile format
    version 7, but only up to including version 6 is supported"), cannot find the platforms of a
    lock keyed `p1`, `p2`, ... before 0.71, and stops on an unmet `requires-pixi`. One finding
    per kind of gap and file, on the line that names the image."""
    findings: list[Finding] = []
    reported: set[tuple[str, str]] = set()
    for file, image, line in _pixi_images(ctx):
        version = pixi_version_of_image(image.removeprefix("docker://"))
        if version is None:
            continue
        for gap in unserved(ctx.workspace, version, image.removeprefix("docker://"), PIXI_VERSION):
            if (file, gap.kind) in reported:
                continue
            reported.add((file, gap.kind))
            where = f"{ctx.prefix}{gap.file.name} [{gap.field}]"
            findings.append(kit_finding(gap.kind, "error", file, line, f"{where}: {gap.message}", gap.fix))
    return findings


# -- the runtime image and the entrypoint -------------------------------------------------------

# Images known to have no bash (the first group has no shell at all).
NO_SHELL = ("scratch", "gcr.io/distroless/", "cgr.dev/chainguard/static", "cgr.dev/chainguard/glibc-dynamic")
NO_BASH = (*NO_SHELL, "busybox", "alpine")
# A package manager, then `bash` later on the line (`apt-get install -y bash`): asked as two
# searches (kit.base.scan), since `manager.*bash` is quadratic on a long line of managers.
PACKAGE_MANAGER = re.compile(r"\b(?:apk|apt-get|apt|dnf|yum|microdnf)\b")
BASH_WORD = re.compile(r"\bbash\b")
BASH_SHEBANG = re.compile(r"#!\s*(?:/usr)?/bin/bash|#!\s*/usr/bin/env\s+bash")


def _split_image(image: str) -> tuple[str, str]:
    """`docker.io/library/python:3.12-alpine@sha256:...` -> ("python", "3.12-alpine")."""
    name = image.split("@", 1)[0]
    tag = ""
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    for prefix in ("docker://", "docker.io/library/", "docker.io/", "library/"):
        name = name.removeprefix(prefix)
    return name, tag


def _matches(image: str, known: tuple[str, ...]) -> bool:
    repo, _ = _split_image(image)
    return any(repo.startswith(k) if k.endswith("/") else repo == k or repo.endswith("/" + k) for k in known)


def lacks_shell(image: str) -> bool:
    """Known to have no /bin/sh at all (distroless `:debug` images carry busybox's sh)."""
    return _matches(image, NO_SHELL) and "debug" not in _split_image(image)[1]


def lacks_bash(image: str) -> bool:
    """Known to have no bash; alpine variants (`python:3.12-alpine`) have ash only."""
    return _matches(image, NO_BASH) or "alpine" in _split_image(image)[1].split("-")


def _bash_scripts(texts: list[str]) -> set[str]:
    """Paths that the recipe writes with a bash shebang (`echo "#!/bin/bash" > /app/entrypoint.sh`)."""
    scripts: set[str] = set()
    for text in texts:
        if BASH_SHEBANG.search(text):
            scripts.update(re.findall(r">\s*(/[\w./-]+)", text))
    return scripts


BIN_FOLDERS = ("", "/bin", "/usr", "/usr/bin", "/usr/local/bin")


def _copies_bash(sources: list[str], destination: str) -> bool:
    """A copy that may bring bash: bash itself, a bin folder, or a tree laid over `/`."""
    return destination.rstrip("/") in BIN_FOLDERS or any(
        s.rstrip("/").removesuffix("/*") in BIN_FOLDERS or s.endswith("/bash") for s in sources
    )


def _brings_bash(instructions: list[dockerfile.Instruction]) -> bool:
    """Whether a stage copies bash in or installs it (then the base image's lack does not matter)."""
    for ins in instructions:
        if ins.keyword in ("COPY", "ADD"):
            words = ins.exec_form or [w for w in ins.words if not w.startswith("--")]
            if len(words) >= 2 and _copies_bash(words[:-1], words[-1]):
                return True
        if ins.keyword == "RUN" and followed_by(PACKAGE_MANAGER, BASH_WORD, ins.args):
            return True
    return False


def _def_brings_bash(stage: deffile.DefStage) -> bool:
    for section in stage.sections_named("files"):
        for raw, _ in section.body:
            words = raw.split()
            if (
                words
                and not words[0].startswith("#")
                and _copies_bash(words[:1], words[-1] if len(words) > 1 else words[0])
            ):
                return True
    return any(
        followed_by(PACKAGE_MANAGER, BASH_WORD, raw)
        for section in stage.sections_named("post")
        for raw, _ in section.body
    )


def runtime_shell_rule(ctx: CheckContext) -> list[Finding]:
    """The final image must have the shell its entrypoint needs: a bash script cannot start on
    distroless, scratch, busybox or alpine, and a shell-form command needs /bin/sh."""
    return [*_docker_runtime_shell(ctx), *_def_runtime_shell(ctx)]


def _runtime_fix() -> str:
    return (
        f"use a runtime image with bash, such as {DEFAULT_RUNTIME_IMAGE} (the kit's default "
        "--runtime-image), or copy bash into the final stage"
    )


def _docker_runtime_shell(ctx: CheckContext) -> list[Finding]:
    if not ctx.docker_stages:
        return []
    final = ctx.docker_stages[-1]
    image = dockerfile.resolve(final.image, ctx.docker_args)
    if not lacks_bash(image) or _brings_bash(final.instructions):
        return []
    file = ctx.prefix + DOCKERFILE
    scripts = _bash_scripts([i.args + "\n" + "\n".join(i.heredocs) for i in ctx.docker_instructions])
    findings: list[Finding] = []
    for ins in final.instructions:
        problem = _start_problem(ins, image, scripts)
        if problem is not None:
            message, fix = problem
            findings.append(kit_finding("runtime-shell", "error", file, ins.line, message, fix))
    return findings


def _start_problem(ins: dockerfile.Instruction, image: str, scripts: set[str]) -> tuple[str, str] | None:
    """(message, fix) when `ins` is an ENTRYPOINT or CMD that needs a shell the final `image`
    lacks; the caller says where, so the two ways to need one differ only in what they say."""
    if ins.keyword not in ("ENTRYPOINT", "CMD"):
        return None
    form = ins.exec_form
    if form is None:
        if lacks_shell(image):
            return (
                f"{ins.keyword} in shell form runs /bin/sh, which {image} does not have",
                f'write {ins.keyword} in exec form (["..."]) or {_runtime_fix()}',
            )
        return None
    program = form[0] if form else ""
    if posixpath.basename(program) == "bash" or program in scripts:
        return (
            f"{ins.keyword} runs {program}, a bash script, but the final stage's image "
            f"{image} has no bash, so the container cannot start",
            _runtime_fix(),
        )
    return None


def _def_runtime_shell(ctx: CheckContext) -> list[Finding]:
    if not ctx.def_stages:
        return []
    final = ctx.def_stages[-1]
    agent = final.header.get("bootstrap", "")
    if not (agent in ("scratch", "busybox") or lacks_bash(final.image)) or _def_brings_bash(final):
        return []
    scripts = _bash_scripts(
        [raw for stage in ctx.def_stages for sec in stage.sections_named("post") for raw, _ in sec.body]
    )
    for name in ("runscript", "startscript", "test"):
        for section in final.sections_named(name):
            text = "\n".join(raw for raw, _ in section.body)
            script = next((s for s in sorted(scripts) if s in text), None)
            if BASH_SHEBANG.search(text) or script:
                image = final.image or agent
                what = f"runs {script}, a bash script" if script else "is a bash script"
                return [
                    kit_finding(
                        "runtime-shell",
                        "error",
                        ctx.prefix + APPTAINER_DEF,
                        section.line,
                        f"%{name} {what}, but the final stage's image {image} has no bash",
                        _runtime_fix(),
                    )
                ]
    return []

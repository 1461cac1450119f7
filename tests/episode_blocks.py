"""The lesson's shell blocks as a learner runs them, in order, in the offline lab.

Every ```bash block of `learners/setup.md` and `episodes/*.md` carries a marker on the line
above its fence (an HTML comment: the rendered lesson does not show it):

    <!-- run: [in=PLACE] [exit=N|nonzero] [output=REGEX] [local-equivalent=NAME[,NAME...]] -->
    <!-- run: show -->

- `in`: where the block starts: `lesson` (the learner's copy of this lesson's repository),
  `repository` (the learner's own repository, which the setup page fills with `cp -r`),
  `workspace` (its `cuda-exercise/`), `scratch` (the folder both sit in). Without `in`, a block
  starts where the previous block of the same page left off, as in a learner's terminal.
- `exit`: the status the episode expects (default 0); `nonzero` for a command the episode shows
  failing on purpose.
- `output`: a regular expression the block's output must match (for a block that fails on
  purpose, so that it fails for the reason the episode gives, not for any reason).
- `local-equivalent`: the block needs something the offline lab does not have (GitHub, a
  registry, pixi's solver, a GPU, a browser session); each NAME is a documented rewrite in
  `EQUIVALENTS` below, applied to the block's text before it runs.

A block that only shows a file (a `<!-- kit-file: -->` display of a batch script, say) is not a
command: `<!-- run: show -->` above it says so, and the runner leaves it out. `show` stands alone.

The job episodes (06 HTCondor, 07 Slurm) run against the lab's real schedulers
(tests/lab/schedulers.sh: single-node Slurm on the host, HTCondor in a sid root's mount
namespace). `PATH` carries the lab's HTCondor client wrappers (tests/lab/bin/htcondor) when no
real `condor_submit` is installed; `sbatch` passes the session's environment on, so the batch
script's `apptainer` is the lab's launcher. The lab's HTCondor sees only the host's /tmp, /work
and the lab cache, so the session's scratch folder (pytest's basetemp) must lie under one of
them. Their local equivalents:

- `github-merge`: the learner merges their pull requests on GitHub before bringing `main` up
  to date (`git switch main`, `git pull`); the session merges every pushed branch into
  `origin`'s `main` first, as GitHub's merge button would.
- `lab-jobs`: the job files name the SIF the learner built from their workspace in episode 04
  (`--job-image-kind sif --job-sif <that SIF>`), because the default image (`oras://` of the
  git HEAD's per-commit tag under the image name of a GitHub `origin`) needs GitHub and a
  registry; the session's `origin` is a local bare repository.
- `htcondor-no-gpu`: the lab's pool has no GPU, so a `gpu` environment's `request_gpus` would
  leave the job idle forever; `condor_submit` gets `-append 'request_gpus = 0'` (the submit
  file itself is unchanged). The lab's Slurm has a fake `gpu` gres, so its `--gres=gpu:1` and
  `--nv` run as written (the probe then reports no CUDA device).
- `lab-job-wait`: a learner waits for the job before reading its output; the block waits for
  it instead, at most `JOB_WAIT` seconds: `condor_wait -wait` on the job's log, or a poll of
  `scontrol show job` for Slurm. A job that has not ended by then is removed (`condor_rm`,
  `scancel`) and the block fails with the scheduler's own account (`condor_q -better-analyze`,
  `scontrol show job`). The submit command's output is kept (`tee`) to learn the job's id.
- `lab-job-id`: `<jobid>` in a later block (the number the learner reads off the screen) -> the
  id of the job the last `lab-job-wait` block submitted.

The blocks are found with Sybil (a kept doc-testing library): its Markdown fence lexer finds the
blocks, including those indented in list items, and each becomes a Sybil example evaluated by a
`LessonSession`. The session is one learner: one scratch folder, one `HOME`, one `PATH` on which
`docker` is Debian's BuildKit-capable client (with `DOCKER_BUILDKIT=1`, the default of Docker 23
and later), `apptainer` is the lab's launcher, and `kit` is this checkout's.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from servers import free_port, stop_group
from sybil import Document, Example, Region, Sybil
from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

from tests.lab import leftovers

REPO = Path(__file__).resolve().parent.parent
PAGES = (REPO / "learners" / "setup.md", *sorted((REPO / "episodes").glob("*.md")))
SHELLS = r"bash|sh|shell"
MARKER = re.compile(r"^[ \t]*<!--\s*run:(?P<args>[^>]*?)\s*-->[ \t]*$")
PLACES = ("lesson", "repository", "workspace", "scratch")
OWNER, REPOSITORY = "learner", "your-repository"
LEARNER_REPO = Path("path/to/your-repository")  # as the setup page names it, inside `lesson`
WORKSPACE = "cuda-exercise"
BLOCK_TIMEOUT = 1500  # seconds; a cold CUDA-environment build
JOB_WAIT = 600  # seconds a job may take, queue time included
LAB_HTCONDOR_BIN = REPO / "tests" / "lab" / "bin" / "htcondor"
SQUASHFS_ARGS = "-comp gzip -Xcompression-level 1"  # the same speed-up the engine tests use


class MarkerError(ValueError):
    """A run: marker that cannot be read; the message names the page, the line and the fix."""


@dataclass(frozen=True)
class RunBlock:
    page: Path
    line: int  # the fence's line, 1-based
    source: str
    start: str | None  # a PLACE, or None: where the previous block ended
    exit: int | None  # None: any non-zero status
    output: str | None  # a regex the output must match
    equivalents: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def parse_marker(text: str, where: str) -> dict[str, str]:
    """`key=value` pairs of one marker; unknown keys and values are refused."""
    pairs: dict[str, str] = {}
    words = shlex.split(text)
    if "show" in words:
        if words != ["show"]:
            raise MarkerError(
                f"{where}: run: marker: `show` (a block that only shows a file) stands "
                "alone; remove the other words or the `show`"
            )
        return {"show": ""}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or key not in ("in", "exit", "output", "local-equivalent") or key in pairs:
            raise MarkerError(
                f"{where}: run: marker: {word!r} is not in=, exit=, output= or local-equivalent= "
                "(each at most once), nor `show`; fix the marker"
            )
        pairs[key] = value
    if "in" in pairs and pairs["in"] not in PLACES:
        raise MarkerError(f"{where}: run: marker: in={pairs['in']} is not one of {', '.join(PLACES)}")
    if "exit" in pairs and not re.fullmatch(r"nonzero|[0-9]{1,3}", pairs["exit"]):
        raise MarkerError(f"{where}: run: marker: exit={pairs['exit']} is not a status or `nonzero`")
    for name in filter(None, pairs.get("local-equivalent", "").split(",")):
        if name not in EQUIVALENTS:
            raise MarkerError(
                f"{where}: run: marker: no local equivalent {name!r}; use one of "
                f"{', '.join(sorted(EQUIVALENTS))}"
            )
    return pairs


class RunBlockParser:
    """A Sybil parser: every shell fence, with the run: marker on the line above it."""

    def __init__(self) -> None:
        self.lexer = FencedCodeBlockLexer(SHELLS)

    def __call__(self, document: Document) -> Iterable[Region]:
        page = Path(document.path)
        for region in self.lexer(document):
            line = document.text.count("\n", 0, region.start) + 1
            where = f"{page.relative_to(REPO)}:{line}"
            before = _skip_kit_markers(document.text[: region.start].rstrip(" \t").splitlines())
            marker = MARKER.match(before[-1]) if before else None
            if marker is None:
                raise MarkerError(
                    f"{where}: a shell block without a `<!-- run: ... -->` marker on the "
                    "line above its fence; add one (see tests/episode_blocks.py)"
                )
            pairs = parse_marker(marker.group("args"), where)
            if "show" in pairs:
                continue  # a file on display, not a command
            code = str(region.lexemes["source"])
            status = pairs.get("exit", "0")
            block = RunBlock(
                page,
                line,
                code,
                pairs.get("in"),
                None if status == "nonzero" else int(status),
                pairs.get("output"),
                tuple(filter(None, pairs.get("local-equivalent", "").split(","))),
            )
            yield Region(region.start, region.end, block, evaluate_block)


def _skip_kit_markers(lines: list[str]) -> list[str]:
    """The lines above a fence without the `kit lesson sync` markers that must sit right above it
    (`<!-- kit-file: ... -->`, or a `<!-- kit-code:` ... `-->` comment): the run: marker goes
    above those."""
    if lines and lines[-1].lstrip().startswith("<!-- kit-file:"):
        return lines[:-1]
    if lines and lines[-1].strip() == "-->":
        for i in range(len(lines) - 2, -1, -1):
            if lines[i].lstrip().startswith("<!-- kit-code:"):
                return lines[:i]
    return lines


def lesson_blocks() -> list[tuple[Document, Example]]:
    """Every marked block of the setup page and the episodes, in the order a learner meets them."""
    sybil = Sybil(parsers=[RunBlockParser()], path=str(REPO))
    found: list[tuple[Document, Example]] = []
    for page in PAGES:
        document = sybil.parse(page)
        found.extend((document, example) for example in document)
    return found


# ---------------------------------------------------------------------------------- the learner


@dataclass
class Outcome:
    block: RunBlock
    status: int
    script: str
    log: Path

    @property
    def ok(self) -> bool:
        want = self.block.exit
        status_ok = self.status == want if want is not None else self.status not in (0, 124, 137)
        if not status_ok or self.block.output is None:
            return status_ok
        printed = self.log.read_text(errors="replace").split("# ---- output\n", 1)[-1]
        return re.search(self.block.output, printed) is not None


@dataclass
class LessonSession:
    """One learner's machine, made as the setup page says, in `scratch` (a fresh folder)."""

    scratch: Path
    logs: Path
    lab_cache: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: dict[Path, Path] = field(default_factory=dict)  # page -> where its last block ended
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    registry: subprocess.Popen[bytes] | None = None
    registry_host: str = ""
    published: set[str] = field(default_factory=set)
    images_before: dict[str, str] = field(default_factory=dict)  # reference -> image id, at the start

    @property
    def lesson(self) -> Path:
        return self.scratch / "lesson"

    @property
    def repository(self) -> Path:
        return self.lesson / LEARNER_REPO

    def place(self, name: str) -> Path:
        return {
            "lesson": self.lesson,
            "repository": self.repository,
            "workspace": self.repository / WORKSPACE,
            "scratch": self.scratch,
        }[name]

    # ------------------------------------------------------------------ setting the machine up
    def prepare(self) -> None:
        """The learner's copy of the lesson, and their repository made from the lesson's template
        (as the setup page says) with a remote standing in for GitHub."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.images_before = _image_references()
        for sub in ("home", "bin", "tmp"):
            (self.scratch / sub).mkdir(parents=True, exist_ok=True)
        copy_checkout(REPO, self.lesson)
        tools = {
            "docker": Path("/usr/bin/docker"),
            "apptainer": REPO / "tests" / "lab" / "bin" / "apptainer",
            "kit": Path(sys.executable).parent / "kit",
        }
        for name, target in tools.items():
            (self.scratch / "bin" / name).symlink_to(target)
        # HTCondor's clients: a real install on PATH, else the lab's wrappers (tests/lab/schedulers.sh).
        htcondor = [] if shutil.which("condor_submit") else [str(LAB_HTCONDOR_BIN)]
        self.env = {
            "HOME": str(self.scratch / "home"),
            "PATH": os.pathsep.join(
                [
                    str(self.scratch / "bin"),
                    *htcondor,
                    str(Path(sys.executable).parent),
                    "/usr/sbin",
                    "/usr/bin",
                    "/sbin",
                    "/bin",
                ]
            ),
            "LANG": "C.UTF-8",
            "TMPDIR": str(self.scratch / "tmp"),
            "DOCKER_BUILDKIT": "1",
            "KIT_LAB_CACHE": str(self.lab_cache),
            "APPTAINER_MKSQUASHFS_ARGS": SQUASHFS_ARGS,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
        }
        if os.environ.get(leftovers.ENV_LABEL):
            # The test session labels what it builds (tests/lab/leftovers.py): the learner's
            # `docker` and `kit build` do too, through the same labelling client, so their images
            # (and what the registry gives back: the same image) go with the session's even if
            # it is killed before close(). Nothing else about the learner's docker changes.
            (self.scratch / "bin" / "docker").unlink()
            (self.scratch / "bin" / "docker").symlink_to(leftovers.LABELLING_CLI)
            self.env[leftovers.ENV_REAL] = "/usr/bin/docker"
            self.env[leftovers.ENV_LABEL] = os.environ[leftovers.ENV_LABEL]
        self.git(self.scratch, "config", "--global", "user.name", "A Learner")
        self.git(self.scratch, "config", "--global", "user.email", "learner@example.org")
        self.git(self.scratch, "config", "--global", "init.defaultBranch", "main")
        origin = self.scratch / "origin.git"  # stands in for the learner's GitHub repository
        self.git(self.scratch, "init", "--bare", "-q", str(origin))
        # The instructor makes the template repository from the lesson (instructor notes), and
        # "Use this template" gives the learner a new repository whose first commit holds it.
        self.repository.parent.mkdir(parents=True, exist_ok=True)
        made = subprocess.run(
            ["kit", "lesson", "template", "--out", str(self.repository)],
            cwd=self.lesson,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert made.returncode == 0, made.stderr
        self.git(self.repository, "init", "-q")
        self.git(self.repository, "add", "-A")
        self.git(self.repository, "commit", "-qm", "Initial commit")
        self.git(self.repository, "remote", "add", "origin", origin.as_uri())
        self.git(self.repository, "push", "-q", "-u", "origin", "HEAD")

    def merge_pushed_branches(self) -> None:
        """Merge every branch pushed to `origin` into its `main`, oldest commit first (see
        `github_merge`)."""
        origin = self.scratch / "origin.git"
        clone = self.scratch / "tmp" / "github-merge"
        if clone.exists():
            shutil.rmtree(clone)
        self.git(self.scratch, "clone", "-q", origin.as_uri(), str(clone))
        refs = self.git(
            clone, "for-each-ref", "--sort=committerdate", "--format=%(refname)", "refs/remotes/origin/"
        ).split()
        branches = [
            r.removeprefix("refs/remotes/") for r in refs if r.rsplit("/", 1)[-1] not in ("main", "HEAD")
        ]
        for branch in branches:
            self.git(clone, "merge", "--no-ff", "-q", "-m", f"Merge pull request from {branch}", branch)
        self.git(clone, "push", "-q", "origin", "main")
        shutil.rmtree(clone)

    def git(self, where: Path, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=where, env=self.env, capture_output=True, text=True, timeout=120
        )
        if done.returncode:
            raise RuntimeError(f"git {' '.join(args)} in {where}: {done.stderr.strip()}")
        return done.stdout

    def close(self) -> None:
        """Stop the registry and remove what the learner's commands tagged: the example's images
        (`docker build`, `kit build`: every `cuda-exercise:*` tag that is new or names another
        image than before) and what they pulled from the session's registry. The learner's environment is a learner's, so
        these builds do not carry the test session's label (tests/lab/leftovers.py): they are
        removed here, by name."""
        if self.registry is not None:
            stop_group(self.registry)
        ours = [
            ref
            for ref, image_id in _image_references().items()
            if self.images_before.get(ref) != image_id
            and (
                ref.startswith("cuda-exercise:")
                or (self.registry_host and ref.startswith(f"{self.registry_host}/"))
            )
        ]
        for image in ours:
            subprocess.run(["/usr/bin/docker", "rmi", "-f", image], capture_output=True, timeout=120)

    # ------------------------------------------------------------------------- running blocks
    def run(self, block: RunBlock) -> Outcome:
        start = self.place(block.start) if block.start else self.cwd.get(block.page)
        if start is None:
            raise MarkerError(f"{block.name}: the first block of a page needs in=PLACE")
        script = block.source
        for name in block.equivalents:
            script = EQUIVALENTS[name](script, self)
        state = self.scratch / "tmp" / "cwd"
        wrapped = (
            f"trap 'pwd > {shlex.quote(str(state))}' EXIT\nset -euo pipefail\n"
            f"cd {shlex.quote(str(start))}\n{script}"
        )
        log = self.logs / f"{block.page.stem}-{block.line}.log"
        with log.open("wb") as out:
            out.write(f"# {block.name} in {start}\n{script}\n# ---- output\n".encode())
            out.flush()
            process = subprocess.Popen(
                ["bash", "-c", wrapped],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                status = process.wait(timeout=BLOCK_TIMEOUT)
            except subprocess.TimeoutExpired:
                stop_group(process)
                status = 124
        if state.exists():
            self.cwd[block.page] = Path(state.read_text().strip())
            state.unlink()
        outcome = Outcome(block, status, script, log)
        self.outcomes[block.name] = outcome
        return outcome

    # ----------------------------------------------------------------------- a local registry
    def start_registry(self) -> str:
        """Debian's docker-registry (the CNCF distribution registry) on a free loopback port."""
        if self.registry is not None:
            return self.registry_host
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        port = free_port()
        config = self.scratch / "registry.yml"
        config.write_text(
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {self.scratch / 'registry'}\n"
            f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
        )
        with (self.logs / "registry.log").open("wb") as out:
            self.registry = subprocess.Popen(
                [binary, "serve", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not port_open(port):
            if self.registry.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not start: see {self.logs / 'registry.log'}")
            time.sleep(0.2)
        self.registry_host = f"127.0.0.1:{port}"
        return self.registry_host

    def job_sif(self) -> Path:
        """The SIF the learner built from their workspace in episode 04 (`apptainer build
        <tag>.sif apptainer.def` in the workspace): the image the lab's jobs run."""
        sifs = sorted((self.repository / WORKSPACE).glob("*.sif"))
        if not sifs:
            raise RuntimeError(
                f"local-equivalent=lab-jobs: no SIF in {self.repository / WORKSPACE}; "
                "the blocks of episode 04 build one there (did they fail?)"
            )
        gpu = [sif for sif in sifs if sif.name.startswith("gpu")]
        return (gpu or sifs)[0]

    def workflow_tag(self) -> str:
        """The tag the generated workflow publishes for the primary environment (kit's plan with
        the default base image, as on GitHub)."""
        from kit import api

        return api.primary_tag(api.prepare(self.repository / WORKSPACE, environment="gpu"))

    def publish(self, script: str) -> None:
        """Do what the workflows would have done before the learner pulls: push the image the
        learner built from the repository's files (and its SIF) under the workflow's tags."""
        host = self.start_registry()
        image = f"{host}/{OWNER}/{REPOSITORY}"
        tag = self.workflow_tag()
        steps: list[list[str]] = []
        if "docker" not in self.published and ("docker://" in script or "docker pull" in script):
            steps += [
                ["docker", "tag", "cuda-exercise:gpu", f"{image}:{tag}"],
                ["docker", "push", "-q", f"{image}:{tag}"],
                ["docker", "rmi", f"{image}:{tag}"],
            ]
            self.published.add("docker")
        if "docker" in self.published and "oras://" in script and "oras" not in self.published:
            sifs = sorted(self.repository.glob(f"{WORKSPACE}/*.sif")) + sorted(self.repository.glob("*.sif"))
            if sifs:
                steps.append(
                    ["apptainer", "push", "--no-https", str(sifs[0]), f"oras://{image}:apptainer-{tag}"]
                )
            self.published.add("oras")
        with (self.logs / "publish.log").open("ab") as out:
            for step in steps:
                out.write(f"$ {shlex.join(step)}\n".encode())
                out.flush()
                done = subprocess.run(
                    step, env=self.env, stdout=out, stderr=subprocess.STDOUT, timeout=BLOCK_TIMEOUT
                )
                if done.returncode:
                    raise RuntimeError(
                        f"publishing for the local registry failed at {shlex.join(step)}; "
                        f"see {self.logs / 'publish.log'}"
                    )


def _image_references() -> dict[str, str]:
    """Every tagged image reference the daemon holds (REPOSITORY:TAG), and its image id."""
    listed = subprocess.run(
        ["/usr/bin/docker", "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    pairs = (line.split() for line in listed.stdout.splitlines())
    return {ref: image_id for ref, image_id in pairs if not ref.endswith(":<none>")}


def evaluate_block(example: Example) -> str | None:
    """Sybil's evaluator: run the block in the document's session; a message when it failed."""
    session: LessonSession = example.namespace["session"]
    return failure(session.run(example.parsed))


def failure(outcome: Outcome) -> str | None:
    """What went wrong in a block's run, as the test reports it; None when it did what the
    episode says."""
    if outcome.ok:
        return None
    block = outcome.block
    want = "a non-zero status" if block.exit is None else f"status {block.exit}"
    if block.output is not None:
        want += f" and output matching {block.output!r}"
    tail = "\n".join(outcome.log.read_text(errors="replace").splitlines()[-40:])
    return f"{block.name} exited {outcome.status}, the episode expects {want}:\n{tail}"


# ---------------------------------------------------------------------- the local equivalents


def lab_lock(script: str, session: LessonSession) -> str:
    """`pixi lock` -> the lab's locker (tests/lab/learner_lock.py): the manifest's channels point at
    the lab channel and its platforms at linux-64, then py-rattler solves and writes pixi.lock.
    No pixi binary and no conda-forge here."""
    locker = f"{shlex.quote(sys.executable)} {shlex.quote(str(REPO / 'tests' / 'lab' / 'learner_lock.py'))} ."
    return _replace_command(script, r"pixi lock", locker, "lab-lock")


def lab_images(script: str, session: LessonSession) -> str:
    """`kit generate|build` get the lab's images: the pixi stand-in image for the install stage,
    the lab runtime, and Apptainer's `docker-daemon` bootstrap (no registry to pull from)."""
    from tests.lab.settings import lab_settings

    s = lab_settings()
    extra = f" --base-image {s.base_image} --runtime-image {s.runtime_image} --bootstrap docker-daemon"
    out, n = re.subn(r"(?m)^(kit (?:generate|build) .*)$", lambda m: m.group(1) + extra, script)
    if not n:
        raise MarkerError("local-equivalent=lab-images on a block without `kit generate` or `kit build`")
    return out


def git_origin_local(script: str, session: LessonSession) -> str:
    """`git push` goes to `origin`, which here is a local bare repository standing in for the
    learner's GitHub repository (made by `LessonSession.prepare`). The text is unchanged."""
    if "git push" not in script:
        raise MarkerError("local-equivalent=git-origin-local on a block without `git push`")
    return script


def github_merge(script: str, session: LessonSession) -> str:
    """Pressing **Merge** on each pull request on GitHub: before the block runs, every branch the
    learner pushed to `origin` is merged into its `main`, oldest first, with a merge commit each
    (what GitHub's default merge button makes), in a scratch clone of `origin`. The text is
    unchanged: the learner's `git switch main` and `git pull` then run as written."""
    if "git pull" not in script:
        raise MarkerError("local-equivalent=github-merge on a block without `git pull`")
    session.merge_pushed_branches()
    return script


def lesson_clone_local(script: str, session: LessonSession) -> str:
    """`<this lesson's repository URL>` -> a local git repository holding this checkout."""
    source = session.scratch / "lesson-upstream"
    if not (source / ".git").exists():
        copy_checkout(REPO, source)
        session.git(source, "init", "-q")
        session.git(source, "add", "-A")
        session.git(source, "commit", "-qm", "The lesson as checked out")
    return _replace_command(
        script, r"<this lesson's repository URL>", shlex.quote(source.as_uri()), "lesson-clone-local"
    )


def dev_lab_version(script: str, session: LessonSession) -> str:
    """`./dev lab` serves JupyterLab until Ctrl-C: the lab runs the same first-run setup (the
    `.venv` with kit and everything the notebooks use) and asks that JupyterLab for its version
    instead of serving (the browser tests open JupyterLab itself)."""
    return _replace_command(script, r"\./dev lab$", "./dev lab --version", "dev-lab-version")


def no_gpu(script: str, session: LessonSession) -> str:
    """The lab has no NVIDIA GPU or container toolkit: `--gpus all` is dropped (the probe then
    reports no GPU, which is what the episode's next challenge discusses)."""
    return _replace_command(script, r" --gpus all", "", "no-gpu")


def local_registry(script: str, session: LessonSession) -> str:
    """ghcr.io -> a registry on loopback (Debian's docker-registry), filled first with what the
    workflows publish: the learner's image (and SIF) under the workflow's tag. Apptainer talks
    plain HTTP to it (`--no-https`)."""
    session.publish(script)
    host = session.start_registry()
    out = script.replace("ghcr.io/<owner>/<repository>", f"{host}/{OWNER}/{REPOSITORY}")
    out = re.sub(r"(?m)^apptainer (build|pull) ", r"apptainer \1 --no-https ", out)
    if out == script:
        raise MarkerError(
            "local-equivalent=local-registry on a block that names no ghcr.io/<owner>/<repository>"
        )
    return out


def private_tmp(script: str, session: LessonSession) -> str:
    """`/tmp/...` -> the session's own temporary folder (tests share the machine's /tmp)."""
    return _replace_command(script, r"/tmp/", str(session.scratch / "tmp") + "/", "private-tmp")


def lab_jobs(script: str, session: LessonSession) -> str:
    """`kit generate ... --only htcondor|slurm` -> the job files run the SIF the learner built in
    episode 04 (`--job-image-kind sif --job-sif PATH`): the default `oras://` image needs the
    image name of a GitHub `origin` and a registry holding the commit's image."""
    extra = f" --job-image-kind sif --job-sif {shlex.quote(str(session.job_sif()))}"
    out, n = re.subn(
        r"(?m)^(kit generate .*--only (?:htcondor|slurm)\b.*)$", lambda m: m.group(1) + extra, script
    )
    if not n:
        raise MarkerError(
            "local-equivalent=lab-jobs on a block without `kit generate ... --only htcondor|slurm`"
        )
    return out


def htcondor_no_gpu(script: str, session: LessonSession) -> str:
    """The lab's HTCondor pool has no GPU: `condor_submit` overrides the submit file's GPU request
    (`-append 'request_gpus = 0'`), which would otherwise keep the job idle forever."""
    return _replace_command(
        script, r"^condor_submit ", "condor_submit -append 'request_gpus = 0' ", "htcondor-no-gpu"
    )


HTCONDOR_WAIT = """
# lab-job-wait: until the job has left the queue, at most {limit} s
lab_cluster=$(sed -n 's/.*submitted to cluster \\([0-9]*\\)\\..*/\\1/p' "$TMPDIR/lab-submit.out")
lab_log=$(sed -n 's/^log *= *//p' {file})
if ! condor_wait -wait {limit} "$lab_log" "$lab_cluster"; then
    echo "lab-job-wait: job $lab_cluster did not end within {limit} s; removing it" >&2
    condor_q -better-analyze "$lab_cluster" >&2 || true
    condor_rm "$lab_cluster" >&2 || true
    exit 1
fi
"""

SLURM_WAIT = """
# lab-job-wait: until the job has ended, at most {limit} s
lab_job=$(sed -n 's/^Submitted batch job \\([0-9]*\\).*/\\1/p' "$TMPDIR/lab-submit.out")
lab_state() {{ scontrol show job "$lab_job" -o | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }}
lab_deadline=$((SECONDS + {limit}))
while case "$(lab_state)" in PENDING|CONFIGURING|RUNNING|COMPLETING|SUSPENDED) true;; *) false;; esac; do
    if [ "$SECONDS" -ge "$lab_deadline" ]; then
        echo "lab-job-wait: job $lab_job did not end within {limit} s; cancelling it" >&2
        scontrol show job "$lab_job" >&2 || true
        scancel "$lab_job" >&2 || true
        exit 1
    fi
    sleep 1
done
[ "$(lab_state)" = COMPLETED ] || {{ echo "lab-job-wait: job $lab_job ended $(lab_state)" >&2; exit 1; }}
"""


def lab_job_wait(script: str, session: LessonSession) -> str:
    """A learner waits for the job before reading its output: the block waits for it, bounded
    by `JOB_WAIT`, and removes a job that has not ended by then. The submit command's output is
    also written to `$TMPDIR/lab-submit.out` (`tee`) for the job's id."""
    keep = ' | tee "$TMPDIR/lab-submit.out"'
    submit = re.search(r"(?m)^(condor_submit|sbatch) .*?(\S+)$", script)
    if submit is None:
        raise MarkerError("local-equivalent=lab-job-wait on a block without `condor_submit` or `sbatch`")
    wait = HTCONDOR_WAIT if submit.group(1) == "condor_submit" else SLURM_WAIT
    kept = script[: submit.end()] + keep + script[submit.end() :]
    return kept.rstrip("\n") + "\n" + wait.format(limit=JOB_WAIT, file=shlex.quote(submit.group(2)))


def lab_job_id(script: str, session: LessonSession) -> str:
    """`<jobid>` (the number the submit command printed, which the learner reads off the screen)
    -> the id `lab-job-wait` kept from the last submit command's output."""
    kept = shlex.quote(str(session.scratch / "tmp" / "lab-submit.out"))
    job = (
        "$(sed -n -e 's/^Submitted batch job \\([0-9]*\\).*/\\1/p' "
        f"-e 's/.*submitted to cluster \\([0-9]*\\)\\..*/\\1/p' {kept})"
    )
    return _replace_command(script, r"<jobid>", job, "lab-job-id")


def _replace_command(script: str, pattern: str, replacement: str, name: str) -> str:
    out, n = re.subn(pattern, lambda _m: replacement, script, flags=re.MULTILINE)
    if not n:
        raise MarkerError(f"local-equivalent={name}: the block has nothing matching {pattern!r}")
    return out


EQUIVALENTS: dict[str, Callable[[str, LessonSession], str]] = {
    "lab-lock": lab_lock,
    "lab-images": lab_images,
    "git-origin-local": git_origin_local,
    "github-merge": github_merge,
    "lesson-clone-local": lesson_clone_local,
    "dev-lab-version": dev_lab_version,
    "no-gpu": no_gpu,
    "local-registry": local_registry,
    "private-tmp": private_tmp,
    "lab-jobs": lab_jobs,
    "htcondor-no-gpu": htcondor_no_gpu,
    "lab-job-wait": lab_job_wait,
    "lab-job-id": lab_job_id,
}


def block_schedulers(block: RunBlock) -> tuple[str, ...]:
    """The lab schedulers a block talks to (the test asks for their fixtures first)."""
    found = []
    if re.search(r"(?m)^\s*condor_", block.source):
        found.append("htcondor")
    if re.search(r"(?m)^\s*(sbatch|squeue|srun|scontrol|sacct|scancel)\b", block.source):
        found.append("slurm")
    return tuple(found)


# ------------------------------------------------------------------------------------ helpers


def copy_checkout(repo: Path, dest: Path) -> None:
    """The files git would check out (tracked and untracked-but-not-ignored), symlinks kept as
    links, as a clone of the lesson gives a learner."""
    listed = (
        subprocess.run(
            ["git", "-C", str(repo), "ls-files", "-z", "-co", "--exclude-standard"],
            capture_output=True,
            check=True,
            timeout=60,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        source, target = repo / name, dest / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def iter_names(blocks: Iterable[tuple[Document, Example]]) -> Iterator[str]:
    for _document, example in blocks:
        yield example.parsed.name

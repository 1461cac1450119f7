"""Every command a learner types, run in the offline lab (see tests/episode_blocks.py).

- `test_every_shell_block_is_marked`: each ```bash block of the setup page and the episodes has a
  readable `<!-- run: ... -->` marker (fast, no lab).
- `test_block[...]`: one learner, one scratch machine, the blocks in the order of the pages
  (setup, then episodes 01-07; the job episodes against the lab's HTCondor and Slurm); a block's failure fails its test, and later blocks still run (a
  learner would carry on) with the earlier failures named in their messages. A block run alone
  (`-k`) first runs the blocks before it. Each block's script and output are in
  `test-output/episode-blocks/`.
- `test_learner_path[lesson|optimized]`: the issue's definition of done, both styles: `cp -r` of the
  example, the lab's lock, `kit generate`, then plain `docker build` and plain `apptainer build` of
  the generated files, `apptainer test`, and the probe in each image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import EXAMPLE, OUTPUT, REPO, lab_image_flags, need
from episode_blocks import (
    SQUASHFS_ARGS,
    LessonSession,
    MarkerError,
    block_schedulers,
    copy_checkout,
    failure,
    lesson_blocks,
    parse_marker,
)

from tests.lab.settings import LabSettings

BLOCKS = lesson_blocks()
LOGS = OUTPUT / "episode-blocks"


def test_every_shell_block_is_marked() -> None:
    names = [example.parsed.name for _doc, example in BLOCKS]
    assert len(names) == len(set(names))
    pages = {Path(name.split(":")[0]).name for name in names}
    assert {"setup.md", "02-docker.md", "04-apptainer.md", "06-htcondor.md", "07-slurm.md"} <= pages, pages
    # `<!-- run: show -->`: the batch script on display in episode 07 is not a command.
    assert not [
        example.parsed.name for _doc, example in BLOCKS if example.parsed.source.startswith("#!/bin/bash")
    ]
    firsts = {}
    for _doc, example in BLOCKS:
        firsts.setdefault(example.parsed.page, example.parsed)
    assert all(b.start for b in firsts.values()), "the first block of each page must say in=PLACE"


def test_marker_errors_name_the_line_and_the_fix() -> None:
    with pytest.raises(MarkerError, match=r"page.md:3: .*'because=1'"):
        parse_marker("because=1", "page.md:3")
    with pytest.raises(MarkerError, match="no local equivalent 'teleport'"):
        parse_marker("local-equivalent=teleport", "page.md:3")
    with pytest.raises(MarkerError, match="in=home is not one of"):
        parse_marker("in=home", "page.md:3")
    assert parse_marker("in=workspace exit=nonzero", "p:1") == {"in": "workspace", "exit": "nonzero"}
    assert parse_marker("exit=nonzero output='python.*not found'", "p:1")["output"] == "python.*not found"
    assert parse_marker("show", "p:1") == {"show": ""}
    with pytest.raises(MarkerError, match="p:1: .*`show` .* stands alone"):
        parse_marker("show in=workspace", "p:1")


@pytest.fixture(scope="module")
def session(
    lab: LabSettings, docker_client: object, apptainer_path: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LessonSession]:
    need(
        shutil.which("docker-registry") is not None or Path("/usr/bin/docker-registry").exists(),
        "docker-registry is missing (tests/lab/hub.sh installs Debian's)",
    )
    if LOGS.exists():
        shutil.rmtree(LOGS)
    learner = LessonSession(tmp_path_factory.mktemp("learner"), LOGS, lab.cache_dir)
    learner.prepare()
    yield learner
    learner.close()


@pytest.mark.episode_blocks
@pytest.mark.docker
@pytest.mark.apptainer
@pytest.mark.slow
@pytest.mark.timeout(5400)
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[e.parsed.name for _d, e in BLOCKS])
def test_block(index: int, session: LessonSession, request: pytest.FixtureRequest) -> None:
    """The block runs as the episode says. The blocks before it run first when they have not yet
    (a block selected alone); a block that already ran (before a later block selected ahead of
    it) is judged by that run, not skipped."""
    for earlier in range(index + 1):
        document, example = BLOCKS[earlier]
        for scheduler in block_schedulers(example.parsed):
            request.getfixturevalue(scheduler)  # the lab's HTCondor or Slurm answers, or need() says why
        if earlier < index:
            if example.parsed.name not in session.outcomes:
                document.namespace["session"] = session
                session.run(example.parsed)  # run alone: the state the blocks before it leave
            continue
        failed = [n for n, o in session.outcomes.items() if not o.ok and n != example.parsed.name]
        done = session.outcomes.get(example.parsed.name)
        try:
            if done is not None:
                problem = failure(done)
                assert problem is None, problem
            else:
                document.namespace["session"] = session
                example.evaluate()
        except Exception as error:
            if failed:
                raise AssertionError(f"{error}\n(earlier blocks that failed: {', '.join(failed)})") from error
            raise


# --------------------------------------------------------------------- the definition of done


def run(
    args: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None, timeout: int = 1500
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    with log.open("a") as out:
        out.write(f"$ {' '.join(args)}  (in {cwd}) -> {done.returncode}\n{done.stdout}{done.stderr}\n")
    return done


def probe_failures(where: str, runner: list[str], cwd: Path, log: Path, env: dict[str, str]) -> list[str]:
    """The example's GPU probe run in an image (``runner``: the engine's command up to the
    image); what went wrong, for the learner path's list of failures (empty when it reported)."""
    probe = run([*runner, "python", "/app/src/torch_detect_GPU.py"], cwd, log, env, timeout=300)
    if probe.returncode or "PyTorch version" not in probe.stdout:
        return [f"probe in {where}: {probe.returncode} {probe.stderr.strip()[-300:]}"]
    return []


@pytest.mark.episode_blocks
@pytest.mark.docker
@pytest.mark.apptainer
@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("style", ["lesson", "optimized"])
def test_learner_path(
    style: str, lab: LabSettings, docker_client: object, apptainer_path: str, tmp_path: Path
) -> None:
    """cp -r, lab lock, kit generate, plain docker build, plain apptainer build/test, probes."""
    import os
    import sys

    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"learner-path-{style}.log"
    log.unlink(missing_ok=True)
    lesson = tmp_path / "lesson"
    copy_checkout(REPO, lesson)
    work = tmp_path / "W"
    assert (
        run(["cp", "-r", str(lesson / EXAMPLE.relative_to(REPO)), str(work)], tmp_path, log).returncode == 0
    )
    locked = run([sys.executable, str(REPO / "tests" / "lab" / "learner_lock.py"), str(work)], tmp_path, log)
    assert locked.returncode == 0, locked.stderr
    generated = run(
        [
            str(Path(sys.executable).parent / "kit"),
            "generate",
            str(work),
            "--style",
            style,
            *lab_image_flags(lab),
        ],
        tmp_path,
        log,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    env = dict(os.environ, DOCKER_BUILDKIT="1", APPTAINER_MKSQUASHFS_ARGS=SQUASHFS_ARGS)
    tag = f"kit-learner-path:{style}"
    failures: list[str] = []
    built = run(["/usr/bin/docker", "build", "--tag", tag, str(work)], tmp_path, log, env)
    if built.returncode:
        failures.append(f"docker build W: {built.stderr.strip().splitlines()[-3:]}")
    else:
        failures += probe_failures(
            "the Docker image", ["/usr/bin/docker", "run", "--rm", tag], tmp_path, log, env
        )
        subprocess.run(["/usr/bin/docker", "rmi", "-f", tag], capture_output=True, timeout=120)
    sif = tmp_path / "X.sif"
    app_built = run([apptainer_path, "build", str(sif), str(work / "apptainer.def")], work, log, env)
    if app_built.returncode:
        failures.append(
            f"apptainer build X.sif W/apptainer.def: {app_built.stderr.strip().splitlines()[-3:]}"
        )
    else:
        tested = run([apptainer_path, "test", str(sif)], tmp_path, log, env, timeout=300)
        if tested.returncode:
            failures.append(f"apptainer test X.sif: {tested.stderr.strip()[-300:]}")
        failures += probe_failures("the SIF", [apptainer_path, "run", str(sif)], tmp_path, log, env)
    assert not failures, "\n".join(failures) + f"\n(full log: {log})"
    print(json.dumps({"style": style, "log": str(log)}))

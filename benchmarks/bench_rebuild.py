"""Rebuild after editing application code only: each style against the other, and against the floor.

Why: the lesson's recipes copy the whole workspace before `pixi install`, so any edit under app/
re-runs the install; the optimized style installs from the manifest and the lock alone, so the
same edit should cost little more than the least work any engine must do for it. That least work
is the floor, measured here next to the styles:

- Docker: a build that only adds the changed app layer on top of the finished image
  (`FROM <finished image>` + `COPY app /app/src`), through the same builder and staging;
- Apptainer: packing the finished root file system once more (the optimized SIF unpacked once
  into a sandbox; each round copies the edited app/ into it and runs
  `apptainer build --notest X.sif <sandbox>`): a SIF is one squashfs, so every edit re-packs it.

With `--via-image` (and both engines) it also times `--apptainer-from docker-image`: the optimized
Docker rebuild, then a SIF made from that image (`Bootstrap: docker-daemon`), both together.

Measured on the lab workspace (real PyTorch, the pixi stand-in) with the real engines, in one
run: a cold build per style and engine, then ROUNDS rounds of "edit app/, rebuild", the styles and
the floor alternating within each round so all see the same machine load. Apptainer builds as
`kit build --engine apptainer` does (the def built in a staged context, then `apptainer test`;
for the optimized style, after an app/-only edit, the re-pack of the root kept from the last
build: kit.engines.apptainer_reuse), the bases through the Docker socket (`Bootstrap:
docker-daemon`), with one squashfs compression for every build, the floor's included
(`--squashfs-args`, default lz4: the default gzip takes minutes per SIF on two cores, the same
for every build, which would only hide the differences). The floor runs no `apptainer test`.

    .venv/bin/python benchmarks/bench_rebuild.py [--rounds 2] [--engines docker,apptainer] [--via-image]

Prints markdown tables; the last lines are the medians over rounds of
`rebuild speedup optimized vs lesson: <median>x` (Docker: lesson / optimized),
`docker rebuild vs floor: <median>x` (optimized / floor),
`apptainer rebuild speedup optimized vs lesson: <median>x` and
`apptainer rebuild vs floor: <median>x`. No assertions. Everything it makes goes at the end:
images and build cache through the labelling client (see _lab.py), SIFs and sandboxes with their
temporary folders.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from _lab import (
    REPO,
    BenchWorkspace,
    bench_workspaces,
    drop_replaced,
    lab_and_docker,
    markdown_table,
    remove_image,
    run_benchmark,
)

from kit import api
from kit.base.errors import BuildError, KitError
from kit.engines import DockerBuilder
from kit.engines.apptainer import find_apptainer
from kit.output import staging

ENGINES = ("docker", "apptainer")
LAB_APPTAINER = REPO / "tests" / "lab" / "bin" / "apptainer"
FLOOR = "floor"
# `--apptainer-from docker-image`: the Docker rebuild of the optimized style, then a SIF made from
# that image (its time is both together: that is what an app/ edit costs on this path).
VIA_IMAGE = "optimized, from the Docker image"


def edit_app(ws: BenchWorkspace, round_no: int) -> None:
    """An application-only change: a module under app/ with content never built before (a
    nonce: BuildKit would otherwise find an earlier run's identical context in its cache)."""
    module = ws.root / "app" / "bench_edit.py"
    module.parent.mkdir(exist_ok=True)
    module.write_text(f'"""Edited by bench_rebuild."""\nROUND = {round_no}\nNONCE = "{uuid.uuid4().hex}"\n')


def docker_floor(ws: BenchWorkspace, scratch: Path) -> float:
    """The least Docker can do for an app/ edit: one COPY layer on top of the finished image
    (`ws.tag`, which already holds the environment and the old app/), staged and built as the
    styles are. Seconds, staging included."""
    started = time.perf_counter()
    context = scratch / "docker-floor"
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(ws.root / "app", context / "app")
    (context / "Dockerfile").write_text(f"FROM {ws.tag}\nCOPY app /app/src\n")
    DockerBuilder().build(context, tags=[floor_tag(ws)])
    return time.perf_counter() - started


def floor_tag(ws: BenchWorkspace) -> str:
    return ws.tag.replace(f"kit-bench/{ws.style}:", "kit-bench/floor:")


class Apptainer:
    """`kit build --engine apptainer` (the def's build, or the re-pack of the root it kept), with
    one compression; the kept roots go to `roots`, removed with the benchmark's scratch folder.
    Sets its variables in os.environ, which bench_workspaces restores."""

    def __init__(self, squashfs_args: str, roots: Path) -> None:
        os.environ.update(APPTAINER_MKSQUASHFS_ARGS=squashfs_args, KIT_APPTAINER_ROOTS=str(roots))
        if not os.environ.get("KIT_APPTAINER") and not shutil.which("apptainer") and LAB_APPTAINER.exists():
            os.environ["KIT_APPTAINER"] = str(LAB_APPTAINER)
        self.env = dict(os.environ)
        self.path = find_apptainer(self.env)

    def run(self, argv: list[str], cwd: Path) -> None:
        done = subprocess.run([self.path, *argv], cwd=cwd, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            lines = (done.stdout + done.stderr).splitlines()
            raise BuildError(f"apptainer {argv[0]} failed (exit {done.returncode})", lines[-15:])

    def build_style(self, ws: BenchWorkspace, sif: Path, scratch: Path, from_image: bool = False) -> float:
        """Render, stage and `apptainer build` the style's def; seconds, staging included.
        `from_image`: the def of `--apptainer-from docker-image`, from the image `ws.tag`."""
        started = time.perf_counter()
        options = dict(ws.options, apptainer_from="docker-image") if from_image else ws.options
        prepared = api.prepare(ws.root, **options)
        context = scratch / f"context-{ws.style}{'-from-image' if from_image else ''}"
        shutil.rmtree(context, ignore_errors=True)
        if from_image:  # the def's IMAGE default is the image `kit build` tags; this one is ws.tag
            staging.stage_build_context(prepared, context, "apptainer")
            args = [f"--build-arg={k}={v}" for k, v in api.build_args(prepared, "apptainer").items()]
            self.run(
                ["build", "--force", f"--build-arg=IMAGE={ws.tag}", *args, str(sif), "apptainer.def"], context
            )
        else:
            api.build_prepared(prepared, "apptainer", sif.parent, tag=sif.stem)
        return time.perf_counter() - started

    def unpack(self, sif: Path, sandbox: Path) -> None:
        self.run(["build", "--force", "--sandbox", str(sandbox), str(sif)], sif.parent)

    def floor(self, ws: BenchWorkspace, sandbox: Path, sif: Path) -> float:
        """The least Apptainer can do for an app/ edit: the new app/ into the finished root file
        system, packed once more."""
        started = time.perf_counter()
        shutil.rmtree(sandbox / "app" / "src", ignore_errors=True)
        shutil.copytree(ws.root / "app", sandbox / "app" / "src")
        self.run(["build", "--notest", "--force", str(sif), str(sandbox)], sif.parent)
        return time.perf_counter() - started


def median_ratio(over: list[float], under: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(over, under, strict=True))


def table(title: str, cold: dict[str, float], rebuilds: dict[str, list[float]], rounds: int) -> str:
    header = (
        ["build", "cold build s"] + [f"rebuild {n} s" for n in range(1, rounds + 1)] + ["median rebuild s"]
    )
    rows = [
        [
            name,
            f"{cold[name]:.1f}" if name in cold else "-",
            *(f"{s:.1f}" for s in times),
            f"{statistics.median(times):.1f}",
        ]
        for name, times in rebuilds.items()
    ]
    return f"{title}\n\n{markdown_table(header, rows)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--engines", default=",".join(ENGINES), help="docker, apptainer or both")
    parser.add_argument("--squashfs-args", default="-comp lz4", help="APPTAINER_MKSQUASHFS_ARGS")
    parser.add_argument(
        "--via-image", action="store_true", help="also time --apptainer-from docker-image (needs docker)"
    )
    args = parser.parse_args(argv)
    engines = [e for e in args.engines.split(",") if e]
    if any(e not in ENGINES for e in engines):
        parser.error(f"--engines: use {', '.join(ENGINES)}")
    ready = lab_and_docker()
    if ready is None:
        return 0
    lab, client = ready
    cold: dict[str, dict[str, float]] = {e: {} for e in ENGINES}
    times: dict[str, dict[str, list[float]]] = {e: {} for e in ENGINES}
    last_id: dict[str, str | None] = {}
    with bench_workspaces(lab) as workspaces, tempfile.TemporaryDirectory(prefix="kit-bench-rb-") as tmp:
        scratch = Path(tmp)
        apptainer: Apptainer | None = None
        if "apptainer" in engines:
            try:
                apptainer = Apptainer(args.squashfs_args, scratch / "roots")
            except KitError as error:
                print(f"apptainer skipped: {error}")
        optimized = next(ws for ws in workspaces if ws.style == "optimized")
        sandbox, sifs = scratch / "sandbox", {ws.style: scratch / f"{ws.style}.sif" for ws in workspaces}
        try:
            if "docker" in engines:
                for ws in workspaces:
                    result, cold["docker"][ws.style] = ws.build(no_cache=True)
                    last_id[ws.style] = result.image_id
                    times["docker"][ws.style] = []
                times["docker"][FLOOR] = []
            if apptainer is not None:
                for ws in workspaces:
                    cold["apptainer"][ws.style] = apptainer.build_style(ws, sifs[ws.style], scratch)
                    times["apptainer"][ws.style] = []
                if args.via_image and "docker" in engines:
                    cold["apptainer"][VIA_IMAGE] = cold["docker"]["optimized"] + apptainer.build_style(
                        optimized, scratch / "via-image.sif", scratch, from_image=True
                    )
                    times["apptainer"][VIA_IMAGE] = []
                apptainer.unpack(sifs["optimized"], sandbox)
                times["apptainer"][FLOOR] = []
            for round_no in range(1, args.rounds + 1):
                for ws in workspaces:
                    edit_app(ws, round_no)
                if "docker" in engines:
                    for ws in workspaces:
                        result, seconds = ws.build()
                        drop_replaced(client, last_id[ws.style], result.image_id)
                        last_id[ws.style] = result.image_id
                        times["docker"][ws.style].append(seconds)
                    times["docker"][FLOOR].append(docker_floor(optimized, scratch))
                if apptainer is not None:
                    for ws in workspaces:
                        times["apptainer"][ws.style].append(
                            apptainer.build_style(ws, sifs[ws.style], scratch)
                        )
                    if args.via_image and "docker" in engines:
                        times["apptainer"][VIA_IMAGE].append(
                            times["docker"]["optimized"][-1]
                            + apptainer.build_style(
                                optimized, scratch / "via-image.sif", scratch, from_image=True
                            )
                        )
                    times["apptainer"][FLOOR].append(
                        apptainer.floor(optimized, sandbox, scratch / "floor.sif")
                    )
        finally:
            remove_image(client, floor_tag(optimized))
            shutil.rmtree(sandbox, ignore_errors=True)
    print(
        f"## rebuild after an app/ edit: lab workspace ({lab.mode}), environment cpu, {args.rounds} rounds\n"
    )
    lines = []
    if times["docker"]:
        d = times["docker"]
        print(table("### Docker (BuildKit)", cold["docker"], d, args.rounds) + "\n")
        lines += [
            f"rebuild speedup optimized vs lesson: {median_ratio(d['lesson'], d['optimized']):.1f}x",
            f"docker rebuild vs floor: {median_ratio(d['optimized'], d[FLOOR]):.1f}x",
        ]
    if times["apptainer"]:
        a = times["apptainer"]
        title = f"### Apptainer (APPTAINER_MKSQUASHFS_ARGS={args.squashfs_args!r})"
        print(table(title, cold["apptainer"], a, args.rounds) + "\n")
        lines += [
            f"apptainer rebuild speedup optimized vs lesson: {median_ratio(a['lesson'], a['optimized']):.1f}x",
            f"apptainer rebuild vs floor: {median_ratio(a['optimized'], a[FLOOR]):.1f}x",
        ]
        if VIA_IMAGE in a:
            print(
                "apptainer from the Docker image (--apptainer-from docker-image), speedup vs lesson: "
                f"{median_ratio(a['lesson'], a[VIA_IMAGE]):.1f}x, vs floor: {median_ratio(a[VIA_IMAGE], a[FLOOR]):.1f}x\n"
            )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    run_benchmark(main)

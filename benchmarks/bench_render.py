"""How long the kit's own work takes on a real-world workspace: load, render, check.

Why: the widgets re-render on every change of an option and the CLI renders on every run, so
load + render must stay far below what a person notices; `check` runs external linters
(hadolint, zizmor, the workflow schema) and is the part worth watching. The workspace is the
real-world fixture (a conda-forge lock of about 200 KB, CUDA and CPU environments), copied to a
temporary folder so nothing is written next to the original.

    .venv/bin/python benchmarks/bench_render.py [--rounds 7] [--check-rounds 3]

Prints a markdown table of the median (and min/max) over the rounds. No assertions on timings.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kit import api  # noqa: E402
from kit.workspace import load_workspace  # noqa: E402

REAL_WORLD = REPO.parent / "shared" / "fixtures" / "real-world" / "nvidia-gpu-ml-library-test"
STYLES = ("lesson", "optimized")
T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    step: str
    style: str
    seconds: tuple[float, ...]
    note: str = ""

    def row(self) -> str:
        ms = [s * 1000 for s in self.seconds]
        return (f"| {self.step} | {self.style} | {statistics.median(ms):.1f} | {min(ms):.1f} | "
                f"{max(ms):.1f} | {len(ms)} | {self.note} |")


def timed(action: Callable[[], T], rounds: int) -> tuple[tuple[float, ...], T]:
    """Run ``action`` ``rounds`` times; the durations and the last result."""
    durations = []
    result: T | None = None
    for _ in range(rounds):
        started = time.perf_counter()
        result = action()
        durations.append(time.perf_counter() - started)
    assert result is not None
    return tuple(durations), result


def copy_fixture(dest: Path) -> Path:
    """Only the manifest and the lock: all the kit reads of a workspace."""
    dest.mkdir()
    for name in ("pixi.toml", "pixi.lock"):
        shutil.copyfile(REAL_WORLD / name, dest / name)
    return dest


def bench_style(workspace: Path, style: str, rounds: int, check_rounds: int) -> list[Timing]:
    load_s, ws = timed(lambda: load_workspace(workspace), rounds)
    prepare_s, prepared = timed(lambda: api.prepare(workspace, style=style), rounds)
    render_s, files = timed(prepared.render, rounds)
    check_s, findings = timed(lambda: api.check_rendered(prepared), check_rounds)
    return [
        Timing("load (manifest + lock)", style, load_s,
               f"{len(ws.environments)} environments, lock v{ws.lock.version if ws.lock else '-'}"),
        Timing("prepare (load + resolve)", style, prepare_s),
        Timing("render", style, render_s, f"{len(files)} files"),
        Timing("check (linters + rules)", style, check_s, f"{len(findings)} findings"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--check-rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if not (REAL_WORLD / "pixi.lock").exists():
        print(f"skipped: the real-world fixture is absent ({REAL_WORLD})")
        return 0
    with tempfile.TemporaryDirectory(prefix="kit-bench-render-") as tmp:
        workspace = copy_fixture(Path(tmp) / REAL_WORLD.name)
        timings = [t for style in STYLES
                   for t in bench_style(workspace, style, args.rounds, args.check_rounds)]
    print(f"## render: {REAL_WORLD.name} (median of {args.rounds} rounds, "
          f"check: {args.check_rounds})\n")
    print("| step | style | median ms | min ms | max ms | rounds | note |")
    print("|---|---|---:|---:|---:|---:|---|")
    for timing in timings:
        print(timing.row())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

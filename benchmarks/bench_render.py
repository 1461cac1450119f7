"""How long the kit's own work takes on a real-world workspace: load, render, check.

Why: the widgets re-render on every change of an option and the CLI renders on every run, so
load + render must stay far below what a person notices; `check` runs external linters
(hadolint and zizmor side by side, the workflow schema in-process) and the kit's rules, and is
the part worth watching: the target is under a second. Its rows:

- `check (linters + rules)`: `kit.api.check_rendered` in this process (the widgets' Check);
- `  rules only` / `  linters only`: the two halves, which run side by side in a check;
- `kit check (CLI, new process)`: what a user types, Python start-up and imports included,
  on the files `kit generate` wrote.

The workspace is the real-world fixture (a conda-forge lock of about 200 KB, CUDA and CPU
environments), copied to a temporary folder so nothing is written next to the original.

    .venv/bin/python benchmarks/bench_render.py [--rounds 7] [--check-rounds 5]

Prints a markdown table of the median (and min/max) over the rounds. No assertions on timings.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
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
from kit.check import LINTERS, linters  # noqa: E402
from kit.check.rules import RULES, CheckContext  # noqa: E402
from kit.model.workspace import load_workspace  # noqa: E402

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
        return (
            f"| {self.step} | {self.style} | {statistics.median(ms):.1f} | {min(ms):.1f} | "
            f"{max(ms):.1f} | {len(ms)} | {self.note} |"
        )


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


def _rules_only(prepared: api.Prepared, files: dict[str, str]) -> int:
    ctx = CheckContext(workspace=prepared.workspace, prefix=prepared.location.prefix, files=files)
    return sum(len(rule(ctx)) for rule in RULES.values())


def _linters_only(files: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory(prefix="kit-bench-lint-") as tmp:
        for path, text in files.items():
            target = Path(tmp) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return len(linters.run_linters(sorted(files), Path(tmp)))


def _cli_check(workspace: Path) -> int:
    """`kit check DIR` in a new process, as a user runs it; its exit status."""
    return subprocess.run(
        [sys.executable, "-m", "kit.cli", "check", str(workspace)],
        cwd=REPO,
        capture_output=True,
        timeout=300,
        check=False,
    ).returncode


def bench_style(workspace: Path, style: str, rounds: int, check_rounds: int) -> list[Timing]:
    load_s, ws = timed(lambda: load_workspace(workspace), rounds)
    prepare_s, prepared = timed(lambda: api.prepare(workspace, style=style), rounds)
    render_s, rendered = timed(prepared.render, rounds)
    files = {p: f.text for p, f in rendered.items()}
    check_s, findings = timed(lambda: api.check_rendered(prepared), check_rounds)
    rules_s, rule_count = timed(lambda: _rules_only(prepared, files), check_rounds)
    linters_s, linter_count = timed(lambda: _linters_only(files), check_rounds)
    api.generate(workspace, style=style, force=True)
    cli_s, status = timed(lambda: _cli_check(workspace), check_rounds)
    return [
        Timing(
            "load (manifest + lock)",
            style,
            load_s,
            f"{len(ws.environments)} environments, lock v{ws.lock.version if ws.lock else '-'}",
        ),
        Timing("prepare (load + resolve)", style, prepare_s),
        Timing("render", style, render_s, f"{len(rendered)} files"),
        Timing("check (linters + rules)", style, check_s, f"{len(findings)} findings"),
        Timing("  rules only", style, rules_s, f"{len(RULES)} rules, {rule_count} findings"),
        Timing(
            "  linters only", style, linters_s, f"{', '.join(LINTERS)} side by side, {linter_count} findings"
        ),
        Timing("kit check (CLI, new process)", style, cli_s, f"exit status {status}"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--check-rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if not (REAL_WORLD / "pixi.lock").exists():
        print(f"skipped: the real-world fixture is absent ({REAL_WORLD})")
        return 0
    with tempfile.TemporaryDirectory(prefix="kit-bench-render-") as tmp:
        workspace = copy_fixture(Path(tmp) / REAL_WORLD.name)
        timings = [
            t for style in STYLES for t in bench_style(workspace, style, args.rounds, args.check_rounds)
        ]
    print(f"## render: {REAL_WORLD.name} (median of {args.rounds} rounds, check: {args.check_rounds})\n")
    print("| step | style | median ms | min ms | max ms | rounds | note |")
    print("|---|---|---:|---:|---:|---:|---|")
    for timing in timings:
        print(timing.row())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

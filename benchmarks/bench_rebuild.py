"""Rebuild after editing application code only: the optimized style against the lesson's.

Why: the lesson's Dockerfile copies the whole workspace before `pixi install`, so any edit under
app/ re-runs the install and re-copies the environment; the optimized style copies only the
manifest and the lock into its install stage, so the same edit rebuilds one COPY layer. This
measures that promise on the lab workspace (real PyTorch, the pixi stand-in) with the real
Docker engine, in one run: a cold build per style, then ROUNDS rounds of "edit app/, rebuild",
the two styles alternating so both see the same machine load.

    .venv/bin/python benchmarks/bench_rebuild.py [--rounds 3]

Prints a markdown table; the last line is `rebuild speedup optimized vs lesson: <median>x`
(the median over rounds of lesson rebuild time / optimized rebuild time). No assertions.
"""

from __future__ import annotations

import argparse
import statistics
import uuid

from _lab import (
    BenchWorkspace,
    bench_workspaces,
    drop_replaced,
    lab_and_docker,
    markdown_table,
    run_benchmark,
)


def edit_app(ws: BenchWorkspace, round_no: int) -> None:
    """An application-only change: a module under app/ with content never built before (a
    nonce: BuildKit would otherwise find an earlier run's identical context in its cache)."""
    module = ws.root / "app" / "bench_edit.py"
    module.parent.mkdir(exist_ok=True)
    module.write_text(f'"""Edited by bench_rebuild."""\nROUND = {round_no}\nNONCE = "{uuid.uuid4().hex}"\n')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    ready = lab_and_docker()
    if ready is None:
        return 0
    lab, client = ready
    cold: dict[str, float] = {}
    rebuilds: dict[str, list[float]] = {}
    cached: dict[str, str] = {}
    last_id: dict[str, str | None] = {}
    with bench_workspaces(lab) as workspaces:
        for ws in workspaces:
            result, cold[ws.style] = ws.build(no_cache=True)
            rebuilds[ws.style], last_id[ws.style] = [], result.image_id
        for round_no in range(1, args.rounds + 1):
            for ws in workspaces:
                edit_app(ws, round_no)
                result, seconds = ws.build()
                drop_replaced(client, last_id[ws.style], result.image_id)
                last_id[ws.style] = result.image_id
                rebuilds[ws.style].append(seconds)
                cached[ws.style] = f"{result.cache_hits}/{len(result.steps)}"
    ratios = [
        lesson / optimized
        for lesson, optimized in zip(rebuilds["lesson"], rebuilds["optimized"], strict=True)
    ]
    header = (
        ["style", "cold build s"]
        + [f"rebuild {n} s" for n in range(1, args.rounds + 1)]
        + ["median rebuild s", "steps cached (last rebuild)"]
    )
    rows = [
        [
            style,
            f"{cold[style]:.1f}",
            *(f"{s:.1f}" for s in rebuilds[style]),
            f"{statistics.median(rebuilds[style]):.1f}",
            cached[style],
        ]
        for style in cold
    ]
    print(
        f"## rebuild after an app/ edit: lab workspace ({lab.mode}), environment cpu, {args.rounds} rounds\n"
    )
    print(markdown_table(header, rows))
    print("\nper-round speedup (lesson / optimized): " + ", ".join(f"{r:.1f}x" for r in ratios))
    print(f"rebuild speedup optimized vs lesson: {statistics.median(ratios):.1f}x")
    return 0


if __name__ == "__main__":
    run_benchmark(main)

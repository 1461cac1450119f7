"""Image size overhead and cold build time of each style, on the lab workspace.

Why: the environment itself (Python, PyTorch, ...) is the same in both styles; what a style adds
on top is the base of its final stage, pixi, copies of the manifest and the lock, and any
layers it leaves behind. So the overhead reported is the image's size minus the size of the
environment inside it (`du -sb /app/.pixi/envs/<env>` run in the image). Cold builds use
`no_cache=True` on the builder (BuildKit's --no-cache), never a global `docker builder prune`,
which would empty the cache everybody else on the daemon relies on.

Three final stages are measured: the lesson's (the pixi image), the optimized style's default
(`runtime = image`: a runtime image with bash) and `runtime = minimal` (from scratch, with only
the system libraries the environment links against). The minimal image has no shell to run `du`
in, so its environment size is the one measured in the optimized image (the same stage copies the
same folder into both). Its runtime files are also split into glibc and the rest: like a
conda-forge environment, the lab's packages carry every other library (openssl, libffi, libstdcxx,
... in `<prefix>/lib`), so the rest should be nothing; whatever shows up there is a library some
package still takes from the install stage's system.

    .venv/bin/python benchmarks/bench_images.py [--environments cpu,gpu] [--rounds 1]

Prints a markdown table. No assertions.
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import tarfile
from dataclasses import dataclass
from typing import Any

from _lab import (
    BenchWorkspace,
    bench_workspaces,
    drop_replaced,
    lab_and_docker,
    markdown_table,
    run_benchmark,
)

from tests.lab.settings import LabSettings

MB = 1e6
VARIANTS = (("lesson", "image"), ("optimized", "image"), ("optimized", "minimal"))
# glibc's own files (Debian's libc6), as the minimal runtime copies them.
GLIBC = re.compile(r"^(ld-linux.*|lib(c|m|pthread|dl|rt|resolv|util|anl|BrokenLocale|mvec)\.so.*)$")


@dataclass(frozen=True)
class ImageFacts:
    style: str  # the style, and the runtime when it is not the default
    environment: str
    cold_seconds: tuple[float, ...]
    image_bytes: int
    env_bytes: int
    final_base: str
    layers: int

    def row(self) -> list[str]:
        overhead = self.image_bytes - self.env_bytes
        return [
            self.style,
            self.environment,
            f"{statistics.median(self.cold_seconds):.1f}",
            f"{self.image_bytes / MB:.0f}",
            f"{self.env_bytes / MB:.0f}",
            f"{overhead / MB:.0f}",
            f"{100 * overhead / self.image_bytes:.0f}%",
            str(self.layers),
            self.final_base,
        ]


def environment_bytes(client: Any, image: str, environment: str) -> int:
    """`du -sb` of the environment, run through the image's own entrypoint."""
    output = client.containers.run(image, ["du", "-sb", f"/app/.pixi/envs/{environment}"], remove=True)
    return int(output.decode().split()[0])


def runtime_file_bytes(client: Any, image: str) -> tuple[int, int]:
    """(all, glibc) bytes of the shared libraries under /lib and /lib64 of a minimal image,
    read from the image's files (it has no shell to run anything in)."""
    container = client.containers.create(image, ["none"])
    total = glibc = 0
    try:
        for folder in ("/lib", "/lib64"):
            stream, _ = container.get_archive(folder)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
                for member in archive.getmembers():
                    if member.isfile():
                        total += member.size
                        name = member.name.rsplit("/", 1)[-1]
                        glibc += member.size if GLIBC.match(name) else 0
    finally:
        container.remove()
    return total, glibc


def final_base(lab: LabSettings, style: str, runtime: str) -> str:
    """The image the final stage starts from (what the overhead mostly is)."""
    from kit import api

    text = (
        api.prepare(
            lab.workspace,
            style=style,
            base_image=lab.base_image,
            runtime_image=lab.runtime_image,
            runtime=runtime,
        )
        .render()["Dockerfile"]
        .text
    )
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    return froms[-1]


def measure(ws: BenchWorkspace, client: Any, rounds: int, env_bytes: int | None = None) -> ImageFacts:
    seconds, previous = [], None
    for _ in range(rounds):
        result, wall = ws.build(no_cache=True)
        drop_replaced(client, previous, result.image_id)
        previous = result.image_id
        seconds.append(wall)
    image = client.images.get(ws.tag)
    return ImageFacts(
        ws.label,
        ws.environment,
        tuple(seconds),
        int(image.attrs["Size"]),
        env_bytes if env_bytes is not None else environment_bytes(client, ws.tag, ws.environment),
        final_base(ws.lab, ws.style, ws.runtime),
        len(image.history()),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", default="cpu")
    parser.add_argument("--rounds", type=int, default=1, help="cold builds per image")
    args = parser.parse_args(argv)
    ready = lab_and_docker()
    if ready is None:
        return 0
    lab, client = ready
    facts: list[ImageFacts] = []
    split: list[str] = []
    for environment in args.environments.split(","):
        with bench_workspaces(lab, environment, VARIANTS) as workspaces:
            measured: dict[str, ImageFacts] = {}
            for ws in workspaces:
                # the minimal image has no shell for `du`: its environment is the optimized one's
                shared = measured["image"].env_bytes if ws.runtime == "minimal" else None
                fact = measure(ws, client, args.rounds, shared)
                if ws.style == "optimized":
                    measured[ws.runtime] = fact
                facts.append(fact)
                if ws.runtime == "minimal":
                    total, glibc = runtime_file_bytes(client, ws.tag)
                    split.append(
                        f"minimal runtime ({environment}): {total / MB:.1f} MB of system "
                        f"libraries, of which glibc {glibc / MB:.1f} MB and "
                        f"{(total - glibc) / MB:.1f} MB others the environment still "
                        "takes from the system (conda-forge packages carry them)"
                    )
    print(
        f"## image overhead and cold builds: lab workspace ({lab.mode}), "
        f"{args.rounds} cold build(s) each, median\n"
    )
    print(
        markdown_table(
            [
                "style",
                "env",
                "cold build s",
                "image MB",
                "env MB",
                "overhead MB",
                "overhead share",
                "layers",
                "final stage FROM",
            ],
            [f.row() for f in facts],
        )
    )
    if split:
        print("\n" + "\n".join(split))
    return 0


if __name__ == "__main__":
    run_benchmark(main)

"""What the engine benchmarks share: the lab, staged contexts, builds and clean-up.

The benchmarks build the lab's locked workspace (tests/lab: the pixi stand-in image, the runtime
image, real PyTorch) with the real Docker engine, exactly as `kit.api.build` does: render,
stage into a private folder, build with BuildKit. They keep what they make apart from everyone
else's (image names under ``kit-bench/``, the process id in every tag) and remove it at the end:
their images, and the build cache their builds added (tests/lab/leftovers.py), which is most of
the disk a benchmark takes (cold builds of real PyTorch).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kit import api  # noqa: E402
from kit.base.errors import KitError  # noqa: E402
from kit.engines import BuildResult, DockerBuilder, connect_docker, find_docker_cli  # noqa: E402
from kit.output import staging  # noqa: E402
from tests.lab import leftovers  # noqa: E402
from tests.lab.settings import LabSettings, copy_workspace, lab_settings, missing  # noqa: E402

STYLES = ("lesson", "optimized")
# (style, runtime) pairs a benchmark builds; the default is one per style.
Variant = tuple[str, str]
DEFAULT_VARIANTS: tuple[Variant, ...] = (("lesson", "image"), ("optimized", "image"))
RUN_ID = str(os.getpid())


def lab_and_docker() -> tuple[LabSettings, Any] | None:
    """The lab's settings and a Docker client, or None once it has printed why the engine
    benchmarks cannot run here (a skip, not a failure: they are run by hand)."""
    settings = lab_settings()
    gaps = missing(settings)
    if gaps:
        print("skipped: the lab is not provisioned: " + "; ".join(gaps))
        return None
    try:
        return settings, connect_docker()
    except KitError as error:
        print(f"skipped: {error}")
        return None


def render_options(lab: LabSettings, style: str, environment: str, runtime: str = "image") -> dict[str, Any]:
    # Apptainer starts from the lab's images through the Docker socket: nothing is pulled.
    return {
        "style": style,
        "environment": environment,
        "base_image": lab.base_image,
        "runtime_image": lab.runtime_image,
        "image_name": f"kit-bench/{style}",
        "runtime": runtime,
        "bootstrap": "docker-daemon",
    }


@dataclass
class BenchWorkspace:
    """A private copy of the lab workspace for one style, and the tag its builds get."""

    lab: LabSettings
    style: str
    environment: str
    root: Path
    runtime: str = "image"

    @property
    def label(self) -> str:
        return self.style if self.runtime == "image" else f"{self.style} ({self.runtime})"

    @property
    def options(self) -> dict[str, Any]:
        return render_options(self.lab, self.style, self.environment, self.runtime)

    @property
    def tag(self) -> str:
        return f"kit-bench/{self.style}:{self.environment}-{self.runtime}-{RUN_ID}"

    def build(self, *, no_cache: bool = False) -> tuple[BuildResult, float]:
        """Render, stage and build, as `kit.api.build` does (``no_cache``: a cold build);
        the result and the wall-clock seconds, staging included."""
        started = time.perf_counter()
        prepared = api.prepare(self.root, **self.options)
        with tempfile.TemporaryDirectory(prefix="kit-bench-") as tmp:
            context = staging.stage_build_context(prepared, Path(tmp) / "context")
            result = DockerBuilder().build(
                context, tags=[self.tag], no_cache=no_cache, build_args=api.build_args(prepared)
            )
        return result, time.perf_counter() - started


@contextmanager
def bench_workspaces(
    lab: LabSettings, environment: str = "cpu", variants: tuple[Variant, ...] = DEFAULT_VARIANTS
) -> Iterator[list[BenchWorkspace]]:
    """One workspace copy per (style, runtime); afterwards every image the benchmark made is
    removed, and the build cache its builds added (builds go through the labelling client of
    tests/lab/leftovers.py, as in a test session)."""
    client = connect_docker()
    run = leftovers.begin(client)
    saved = dict(os.environ)
    os.environ.update(run.cli_env(find_docker_cli().path))
    try:
        with tempfile.TemporaryDirectory(prefix="kit-bench-ws-") as tmp:
            workspaces = [
                BenchWorkspace(
                    lab, style, environment, copy_workspace(Path(tmp) / f"{style}-{runtime}", lab), runtime
                )
                for style, runtime in variants
            ]
            try:
                yield workspaces
            finally:
                for ws in workspaces:
                    remove_image(client, ws.tag)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        print(f"\nleft as found: {leftovers.end(client, run).summary()}", file=sys.stderr)


def remove_image(client: Any, reference: str) -> None:
    """Remove a tag, or an image id that no tag names any more; never another's image."""
    from docker.errors import APIError, ImageNotFound

    try:
        image = client.images.get(reference)
        if reference.startswith("sha256:") and image.tags:
            return
        client.images.remove(reference)
    except (ImageNotFound, APIError):
        pass


def drop_replaced(client: Any, old_id: str | None, new_id: str | None) -> None:
    """After a rebuild moved the tag, remove the image it moved from (if nothing names it)."""
    if old_id and old_id != new_id:
        remove_image(client, old_id)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def run_benchmark(main: Callable[[], int]) -> NoReturn:
    """A benchmark's entry point: its exit status, or for a failed build the kit's message and
    the log tail with exit status 1 (the user sees why, not a traceback)."""
    try:
        raise SystemExit(main())
    except KitError as error:
        print(f"failed: {error}")
        tail = getattr(error, "log_tail", None)
        if tail is not None and tail.lines:
            print("\n".join("    " + line for line in tail.lines[-15:]))
        raise SystemExit(1) from None

"""The one option schema: every choice a user makes (CLI flags, widget form, notebook parameters).

`RenderOptions` is the only list of options. `kit.plan.resolve()` checks them against a workspace
and derives the `Plan` the templates print.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Style = Literal["lesson", "optimized"]
Bootstrap = Literal["docker", "docker-daemon", "docker-archive", "oci-archive", "localimage"]
STYLES: tuple[str, ...] = get_args(Style)
BOOTSTRAPS: tuple[str, ...] = get_args(Bootstrap)

# The pixi the rendered recipes start from. It must read the lock format a current pixi writes:
# pixi >= 0.68 writes format 7, which 0.67 and older refuse (see kit.pixi_versions).
# 0.70.2 verified as a released image: prefix-dev/pixi-docker commit 8e3c95e ("Bump pixi version
# to v0.70.2", Dockerfile `ARG PIXI_VERSION=0.70.2`), its git tag 0.70.2 (pushed by the release
# job, which runs only after the images were pushed), and .github/workflows/build.yml there
# building `ubuntu:noble` with the tag pattern `{{version}}-noble`.
# Why not newer: pixi 0.71.0 (prefix-dev/pixi #6178, "Rich Platform support") turns a legacy
# `[system-requirements]` table into synthesised platforms (`linux-64-cuda-12`) and locks the
# environments that use them under those platforms, with their virtual packages (0.76.1 names
# them `p1`, `p2`, ... in pixi.lock): a lock shape the kit's reader and the lab's stand-in do not
# follow yet. 0.70.2 is the
# newest release that reads format 7 and still locks every environment under its conda subdir.
PIXI_VERSION = "0.70.2"
DEFAULT_BASE_IMAGE = f"ghcr.io/prefix-dev/pixi:{PIXI_VERSION}-noble"
# The final stage of the optimized style needs no pixi: the same distribution as the base image.
DEFAULT_RUNTIME_IMAGE = "ubuntu:24.04"
DEFAULT_REGISTRY = "ghcr.io"
DISTRO_CODENAMES = ("noble", "jammy", "focal", "bookworm", "bullseye", "trixie", "alpine")
PROBE_SCRIPT = "torch_detect_GPU.py"


@dataclass(frozen=True)
class RenderOptions:
    """Every choice that shapes the rendered files. Defaults follow the lesson."""

    environment: str | None = None          # None: the first CUDA environment, else the first one
    environments: tuple[str, ...] = ()      # the workflow matrix; (): every container environment
    cuda: str | None = None                 # None: the environment's own requirement
    style: Style = "lesson"
    base_image: str = DEFAULT_BASE_IMAGE
    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    image_name: str = ""                    # "" in workflows: ghcr.io/<owner>/<repo>
    registry: str = DEFAULT_REGISTRY
    subdir: str = ""                        # the workspace's folder inside its git repository
    app_dir: str = "app"                    # copied to /app/src; "" copies no code
    tags: tuple[str, ...] = ()              # () derives them from the lock
    bootstrap: Bootstrap = "docker"
    bootstrap_source: str = ""              # the archive or image path for offline agents
    keep_pixi: bool = False                 # optimized: keep pixi in the final image for `pixi run`

"""The one option schema: every choice a user makes (CLI flags, widget form, notebook parameters).

`RenderOptions` is the only list of options. `kit.plan.resolve()` checks them against a workspace
and derives the `Plan` the templates print.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Style = Literal["lesson", "optimized"]
Bootstrap = Literal["docker", "docker-daemon", "docker-archive", "oci-archive", "localimage"]
# The optimized style's final stage: `image` is runtime_image with bash (an entrypoint script runs
# pixi's whole activation); `no-shell` is a runtime_image without a shell (distroless): the
# activation is set with ENV; `minimal` starts from scratch with only the glibc files the
# environment links against (and, for Apptainer, which needs /bin/sh, bash).
Runtime = Literal["image", "no-shell", "minimal"]
STYLES: tuple[str, ...] = get_args(Style)
BOOTSTRAPS: tuple[str, ...] = get_args(Bootstrap)
RUNTIMES: tuple[str, ...] = get_args(Runtime)

PIXI_VERSION = "0.55.0"
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
    runtime: Runtime = "image"              # optimized: the final stage's kind (see Runtime)

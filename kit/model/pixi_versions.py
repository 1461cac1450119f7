"""Which pixi reads which `pixi.lock` format: the one table the pin, the checks and the lab share.

A pixi binary refuses a lock written in a newer format than it knows ("found newer lockfile
format version 7, but only up to including version 6 is supported"), so the pixi image a recipe
starts from must read the workspace's lock. pixi 0.68 was the first to write (and read) format 7.
"""

from __future__ import annotations

import re

# (first pixi version, newest lock format it reads), oldest first.
LOCK_FORMAT_READ_BY: tuple[tuple[tuple[int, int, int], int], ...] = (
    ((0, 0, 0), 6),
    ((0, 68, 0), 7),
)


# How a lock names its platforms (kit.model.workspace records it as `Lock.layout`):
# "subdir": every platform is keyed by its subdir (v6, and v7 as pixi <= 0.70 wrote it);
# "named": some entry has a name of its own (`p1`, `p2`, ...: pixi 0.71+ writes them whenever the
# workspace declares virtual packages). pixi <= 0.70 looks platforms up by name, so it cannot
# install a "named" lock although its `version:` (7) is one it reads.
LAYOUT_SUBDIR = "subdir"
LAYOUT_NAMED = "named"
# (first pixi version, lock layouts it installs), oldest first.
LOCK_LAYOUTS_READ_BY: tuple[tuple[tuple[int, int, int], tuple[str, ...]], ...] = (
    ((0, 0, 0), (LAYOUT_SUBDIR,)),
    ((0, 71, 0), (LAYOUT_SUBDIR, LAYOUT_NAMED)),
)
# Manifest features and the first pixi that reads them (Workspace fields in brackets):
# rich platforms [platform_entries with rich=True] (0.71.0, PR #6178); TOML 1.1 [toml_version] (0.73.0).
MANIFEST_FEATURE_SINCE: dict[str, tuple[int, int, int]] = {
    "rich-platforms": (0, 71, 0),
    "toml-1.1": (0, 73, 0),
}


def version_tuple(version: str) -> tuple[int, int, int]:
    """`0.55.0` -> (0, 55, 0); raises ValueError on anything else."""
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"not a pixi version: {version!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


def newest_lock_format(pixi_version: str) -> int:
    """The newest lock format `pixi_version` reads."""
    wanted = version_tuple(pixi_version)
    return max(fmt for first, fmt in LOCK_FORMAT_READ_BY if wanted >= first)


_IMAGE_TAG = re.compile(r"(?P<version>\d+\.\d+\.\d+)(?:-[A-Za-z0-9][A-Za-z0-9._-]*)?")  # fullmatch


def pixi_version_of_image(image: str) -> str | None:
    """The pixi version an image reference pins, or None when the tag does not say one.

    Reads the tags prefix-dev/pixi-docker publishes (`0.76.1`, `0.76.1-noble`,
    `0.76.1-noble-cuda-12.9.1`): `ghcr.io/prefix-dev/pixi:0.76.1-noble` -> `0.76.1`. A moving
    tag (`latest`, `noble`), a digest-only reference or another image gives None, because its
    pixi cannot be known without pulling it.
    """
    reference = image.split("@", 1)[0]
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    name, tag = reference.rsplit(":", 1)
    if name.rsplit("/", 1)[-1] != "pixi":
        return None
    match = _IMAGE_TAG.fullmatch(tag)
    return match.group("version") if match else None


def reads_lock_layout(pixi_version: str, layout: str) -> bool:
    """Whether `pixi_version` installs a lock of `layout` (LAYOUT_SUBDIR or LAYOUT_NAMED)."""
    wanted = version_tuple(pixi_version)
    layouts = [names for first, names in LOCK_LAYOUTS_READ_BY if wanted >= first][-1]
    return layout in layouts

"""What a given pixi cannot serve in a workspace: the one answer `kit generate` and `kit check` share.

The pixi in the base image installs the workspace, so it must read everything the workspace
uses: the lock's format and layout, the manifest's features (rich platforms, TOML 1.1) and the
workspace's own `requires-pixi`. The version table in kit.model.pixi_versions says which pixi
reads what; this module compares one workspace with one pixi version and says, for each gap,
where it is (file and field), both versions, and the fix. `kit generate` refuses on the first
(kit.decide.plan), `kit check` reports each on the recipe line that names the image
(kit.check.images), so the two cannot disagree.

`requires-pixi` is compared as pixi compares it: a conda version spec parsed strictly
(pixi's `check_requires_pixi_early`, crates/pixi_manifest/src/discovery.rs at v0.76.1, uses
rattler's `VersionSpec::from_str(.., ParseStrictness::Strict)`), here through py-rattler's
`VersionSpec(spec, strict=True)`, the same parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import rattler

from kit.model.pixi_versions import (
    LAYOUT_NAMED,
    LOCK_FORMAT_READ_BY,
    LOCK_LAYOUTS_READ_BY,
    MANIFEST_FEATURE_SINCE,
    newest_lock_format,
    reads_lock_layout,
    version_tuple,
)
from kit.model.workspace import Workspace

# The kinds of gap, as `kit check` names its findings.
LOCK_FORMAT = "lock-format"
LOCK_LAYOUT = "lock-layout"
MANIFEST_FEATURE = "manifest-feature"
REQUIRES_PIXI = "requires-pixi"


@dataclass(frozen=True)
class Unserved:
    """One thing in the workspace that the pixi `version` cannot serve."""

    kind: str
    file: Path
    field: str
    message: str
    fix: str


def _dotted(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))


def _first_reading_format(lock_format: int) -> str | None:
    versions = [first for first, fmt in LOCK_FORMAT_READ_BY if fmt >= lock_format]
    return _dotted(min(versions)) if versions else None


def _first_reading_layout(layout: str) -> str:
    return _dotted(min(first for first, layouts in LOCK_LAYOUTS_READ_BY if layout in layouts))


def image_with_version(image: str, version: str, new: str) -> str:
    """`ghcr.io/prefix-dev/pixi:0.70.2-jammy` with pixi `new` instead: the same distribution, so
    the fix changes one thing (a digest, which pins the old bits, is dropped)."""
    name, tag = image.split("@", 1)[0].rsplit(":", 1)
    return f"{name}:{tag.replace(version, new, 1)}"


def satisfies(requires_pixi: str, version: str) -> bool | None:
    """Whether pixi `version` meets `requires-pixi` as pixi checks it; None when pixi would not
    parse the spec at all (it refuses the manifest then)."""
    try:
        spec = rattler.VersionSpec(requires_pixi, strict=True)
    except Exception:  # rattler's InvalidVersionSpecError
        return None
    return bool(spec.matches(rattler.Version(version)))


def unserved(workspace: Workspace, version: str, image: str, pin: str) -> list[Unserved]:
    """Each lock format, lock layout, manifest feature or `requires-pixi` of `workspace` that the
    pixi `version` (carried by `image`) cannot serve; `pin` is the kit's pinned pixi, which the
    fixes name when it serves what `version` does not."""
    found: list[Unserved] = []
    have = version_tuple(version)
    carried = f"the pixi {version} in {image}"

    def fix_for(first: str, alternative: str) -> str:
        target = pin if version_tuple(pin) >= version_tuple(first) else first
        newer = image_with_version(image, version, target)
        return f"use pixi {first} or newer: --base-image {newer}" + (
            f", or {alternative}" if alternative else ""
        )

    lock = workspace.lock
    if lock is not None and lock.version > newest_lock_format(version):
        first = _first_reading_format(lock.version)
        found.append(
            Unserved(
                LOCK_FORMAT,
                lock.path,
                "version",
                f"pixi.lock is format v{lock.version}, but {carried} reads only up to "
                f"v{newest_lock_format(version)}, so `pixi install --locked` fails",
                fix_for(first, "") if first else "re-create the lock with the pixi version the image carries",
            )
        )
    elif lock is not None and not reads_lock_layout(version, lock.layout):
        first = _first_reading_layout(lock.layout)
        what = (
            "names its platforms p1, p2, ..."
            if lock.layout == LAYOUT_NAMED
            else f"uses the {lock.layout} layout"
        )
        found.append(
            Unserved(
                LOCK_LAYOUT,
                lock.path,
                "platforms",
                f"pixi.lock {what} (written by pixi {first} or newer), which {carried} cannot "
                "install: it looks platforms up by their subdir",
                fix_for(first, f"re-lock with pixi {version} (`pixi lock`)"),
            )
        )
    manifest = workspace.manifest_path
    rich = [i for i, p in enumerate(workspace.platform_entries) if p.rich]
    since = MANIFEST_FEATURE_SINCE["rich-platforms"]
    if rich and have < since:
        found.append(
            Unserved(
                MANIFEST_FEATURE,
                manifest,
                f"workspace.platforms[{rich[0]}]",
                f"a rich platform (an inline table) needs pixi {_dotted(since)} or newer, but "
                f"{carried} reads platforms as strings only",
                fix_for(
                    _dotted(since),
                    f'for pixi {version} write the platform as a string and its CUDA as [system-requirements] cuda = "..."',
                ),
            )
        )
    since = MANIFEST_FEATURE_SINCE["toml-1.1"]
    if workspace.toml_version == "1.1" and have < since:
        found.append(
            Unserved(
                MANIFEST_FEATURE,
                manifest,
                "toml",
                f"the manifest is TOML 1.1, which pixi reads from {_dotted(since)}, but {carried} "
                "reads TOML 1.0 only",
                fix_for(
                    _dotted(since), "rewrite it as TOML 1.0 (inline tables on one line, no trailing commas)"
                ),
            )
        )
    if workspace.requires_pixi is not None:
        met = satisfies(workspace.requires_pixi, version)
        where = "workspace.requires-pixi"
        if met is None:
            found.append(
                Unserved(
                    REQUIRES_PIXI,
                    manifest,
                    where,
                    f"requires-pixi {workspace.requires_pixi!r} is not a version specifier pixi "
                    "accepts, so pixi refuses the manifest",
                    'write it with an operator, e.g. requires-pixi = ">=0.74" (or "0.74.*")',
                )
            )
        elif not met:
            pin_meets = pin != version and bool(satisfies(workspace.requires_pixi, pin))
            suggestion = (
                f"use --base-image {image_with_version(image, version, pin)} (pixi {pin}, the kit's pin)"
                if pin_meets
                else f"use a pixi image whose version satisfies {workspace.requires_pixi!r}"
            )
            found.append(
                Unserved(
                    REQUIRES_PIXI,
                    manifest,
                    where,
                    f"this project requires pixi {workspace.requires_pixi!r}, but {carried} does "
                    "not satisfy it, so pixi refuses the manifest",
                    f"{suggestion}, or relax requires-pixi",
                )
            )
    return found

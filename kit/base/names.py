"""Validation of every user-supplied name that ends up in a Dockerfile, a def file, YAML or a shell.

The renderer pastes environment names, image names, tags and paths into files that a shell, a
Dockerfile parser or the GitHub expression engine will read. Rather than escaping for four
languages, the kit accepts only names that need no escaping in any of them, and says why when a
name is refused. The patterns follow the rules of the tools that own the names (pixi environment
names, OCI references), narrowed to what is safe everywhere.
"""

from __future__ import annotations

import re

from kit.base.errors import OptionsError

# Every pattern ends in \Z, not $: `$` also matches before a final newline, so "gpu\n" would pass.
# pixi: lowercase letters, digits and dashes for environment and feature names.
ENV_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\Z")
# OCI distribution spec: path components separated by '/', optional registry host[:port].
IMAGE_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*\Z")
REGISTRY_HOST = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?\Z")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
CUDA_VERSION = re.compile(r"^[0-9]{1,2}(?:\.[0-9]{1,2})?\Z")
# A relative POSIX path made of plain components (no '..', no leading '/', no shell metacharacters).
PATH_COMPONENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")


def port(value: str, field: str, where: str) -> int:
    """A TCP port: 1 to 65535 (0 is "any free port", which no client can connect to)."""
    number = int(value) if value.isdigit() and len(value) <= 5 else 0
    if not 1 <= number <= 65535:
        raise OptionsError(
            f"port {value!r} in {where!r} is not a port (1 to 65535)",
            field=field,
            fix="give a port from 1 to 65535, or none for the default",
        )
    return number


def registry_host(value: str, field: str = "registry") -> str:
    """A registry host with an optional port in range (`ghcr.io`, `localhost:5000`)."""
    if not REGISTRY_HOST.match(value):
        raise OptionsError(
            f"registry {value!r} is not a host name", field=field, fix="use a host such as 'ghcr.io'"
        )
    if ":" in value:
        port(value.rsplit(":", 1)[1], field, value)
    return value


def _refuse(kind: str, value: str, field: str, rule: str, example: str) -> OptionsError:
    return OptionsError(
        f"{kind} {value!r} is not allowed: {rule}",
        field=field,
        fix=f"use a name such as {example!r}",
    )


def environment_name(value: str, field: str = "environment") -> str:
    """A pixi environment name, safe to paste anywhere."""
    if not ENV_NAME.match(value):
        raise _refuse(
            "environment name",
            value,
            field,
            "pixi environment names use lowercase letters, digits and '-'",
            "gpu",
        )
    return value


def tag(value: str, field: str = "tag") -> str:
    """An OCI image tag."""
    if not TAG.match(value):
        raise _refuse(
            "tag",
            value,
            field,
            "tags use letters, digits, '_', '.' and '-' (at most 128)",
            "gpu-noble-cuda-12.9",
        )
    return value


def cuda_version(value: str, field: str = "cuda") -> str:
    """A CUDA version such as 12 or 12.9."""
    if not CUDA_VERSION.match(value):
        raise _refuse("CUDA version", value, field, "use MAJOR or MAJOR.MINOR", "12")
    return value


def image_reference(value: str, field: str = "image") -> str:
    """An image reference: [registry/]path[:tag][@sha256:digest], each part checked."""
    rest = value
    digest = ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not re.match(r"^sha256:[0-9a-f]{64}\Z", digest):
            raise _refuse(
                "image digest",
                value,
                field,
                "digests look like sha256:<64 hex digits>",
                "ghcr.io/prefix-dev/pixi:0.55.0-noble",
            )
    name, colon, tag_part = rest.rpartition(":") if ":" in rest.rsplit("/", 1)[-1] else (rest, "", "")
    if colon:  # "ubuntu:" has an empty tag, which no engine reads
        tag(tag_part, field)
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        if not REGISTRY_HOST.match(parts[0]):
            raise _refuse(
                "registry",
                value,
                field,
                "a registry is a host name with an optional port",
                "ghcr.io/owner/name",
            )
        registry_host(parts[0], field)
        parts = parts[1:]
    if not parts or not all(IMAGE_COMPONENT.match(p) for p in parts):
        raise _refuse(
            "image name",
            value,
            field,
            "image names use lowercase letters, digits and '.', '_', '-' between '/' parts",
            "ghcr.io/owner/name",
        )
    return value


def relative_path(value: str, field: str) -> str:
    """A relative path inside the repository; '' means the repository root."""
    if value.startswith("/"):
        raise OptionsError(
            f"path {value!r} is absolute: it must be relative to the repository",
            field=field,
            fix="give the folder relative to the repository root, such as 'cuda-exercise'",
        )
    cleaned = value.rstrip("/")
    if cleaned in ("", "."):
        return ""
    for part in cleaned.split("/"):
        if part in (".", "..") or not PATH_COMPONENT.match(part):
            raise OptionsError(
                f"path {value!r} is not allowed: use plain relative folder names without '..' "
                "or shell characters",
                field=field,
                fix="use a path such as 'cuda-exercise'",
            )
    return cleaned


FILE_PATH = re.compile(r"^[A-Za-z0-9_./-]+\Z")


def file_path(value: str, field: str) -> str:
    """A local file path a def file can hold as it is (no spaces, quotes or shell characters)."""
    if not FILE_PATH.match(value):
        raise OptionsError(
            f"path {value!r} has characters a def file cannot hold",
            field=field,
            fix="use a path of letters, digits, '.', '_', '-' and '/'",
        )
    return value


def local_image_name(workspace_name: str) -> str:
    """A workspace name as a Docker repository name (lower case, no spaces): the image's name
    when the options give none."""
    return re.sub(r"[^a-z0-9._-]+", "-", workspace_name.lower()).strip("-._") or "pixi-workspace"

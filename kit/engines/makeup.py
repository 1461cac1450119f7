"""An image's make-up: how many of its bytes are the runtime, the environment, the app, and overhead.

Why: a learner who sees one number ("1.2 GB") cannot tell what the optimized style saved. Split
into parts, the two styles differ visibly: the same environment, a smaller runtime, no pixi.

The parts:

* ``runtime``: the layers of the final stage's base image (the distribution the environment runs
  on), and files a final stage copies outside ``/app`` (a minimal runtime's glibc and bash).
* ``environment``: the layers that copy or install ``/app/.pixi/envs/<env>``.
* ``app``: the layer that copies the application code to ``/app/src``.
* ``overhead``: what serves none of those: pixi itself in the base image (the lesson style's
  final stage starts from the pixi image), the entrypoint, pixi's manifest and lock, labels and
  other metadata.
* ``other``: layers the kit cannot place (a ``RUN`` in a hand-edited final stage, bytes the
  history does not account for). Shown as such rather than guessed.

Layers are placed by what they do (the paths their instruction names), never by their position,
so edits to the templates keep working. The final stage's base is found by matching the base
image's own history against the image's oldest entries; where the base image is not at hand,
the final stage's instructions are recognised from the newest entry backwards and the rest is
taken as the base (`Makeup.method` says which happened).

A SIF has no layers. Its make-up is measured inside the image with ``du`` (through ``apptainer
exec``), so it is in unpacked bytes, which add up to what the image holds when mounted; the
compressed file's size is kept beside it (`Makeup.file_bytes`). Where the image cannot be
entered (no shell in it, no apptainer here), only the file's size is reported, as ``other``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kit.engines.apptainer import find_apptainer
from kit.engines.docker import connect_docker

if TYPE_CHECKING:
    from kit.engines.events import BuildResult

PartKind = Literal["runtime", "environment", "app", "overhead", "other"]
PART_KINDS: tuple[PartKind, ...] = ("runtime", "environment", "app", "overhead", "other")
PART_HELP: dict[PartKind, str] = {
    "runtime": "the final stage's base image",
    "environment": "the Pixi environment under /app/.pixi/envs",
    "app": "the application code in /app/src",
    "overhead": "pixi itself, the entrypoint, pixi's files, metadata",
    "other": "layers the kit could not place",
}
MB = 1_000_000  # the kit prints sizes in MB (10^6 bytes), as `docker images` does

_METADATA = {
    "ARG",
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
}
_PIXI = re.compile(r"pixi|rattler|/opt/kit-lab")  # pixi, or the lab's stand-in for it
_ENVIRONMENT = re.compile(r"/app/\.pixi/envs(/|\b)")
_APP = re.compile(r"/app/src(/|\b|$)")
_NOP = re.compile(r"^(\|\d+ .*?)?/bin/sh -c #\(nop\)\s*")
_SHELL = re.compile(r"^(\|\d+ .*?)?/bin/sh -c ")


@dataclass(frozen=True)
class Layer:
    """One history entry, oldest first, and the part it was put in (and why)."""

    created_by: str
    size_bytes: int
    part: PartKind
    why: str


@dataclass(frozen=True)
class Part:
    kind: PartKind
    size_bytes: int

    @property
    def mb(self) -> float:
        return self.size_bytes / MB


@dataclass(frozen=True)
class Makeup:
    """What an image is made of. `parts` always lists all five kinds, in `PART_KINDS` order,
    and their sizes add up to `total_bytes`."""

    label: str
    engine: str
    total_bytes: int
    parts: tuple[Part, ...]
    method: str
    layers: tuple[Layer, ...] = ()
    file_bytes: int | None = None  # a SIF's compressed size on disk; None for Docker

    def size(self, kind: PartKind) -> int:
        return next((p.size_bytes for p in self.parts if p.kind == kind), 0)

    def largest(self) -> PartKind:
        """The biggest part (the first in `PART_KINDS` order on a tie)."""
        return max(self.parts, key=lambda p: p.size_bytes).kind

    def relabel(self, label: str) -> Makeup:
        return replace(self, label=label)


def _parts(sizes: Mapping[PartKind, int]) -> tuple[Part, ...]:
    return tuple(Part(kind, max(0, int(sizes.get(kind, 0)))) for kind in PART_KINDS)


# -- Docker: from the image's history -----------------------------------------------------------


def instruction_of(created_by: str) -> tuple[str, str]:
    """(`COPY`, `/a /app/src`) from a history entry, as BuildKit or the classic builder wrote it."""
    text = created_by.strip()
    if text.endswith("# buildkit"):
        text = text[: -len("# buildkit")].rstrip()
    nop = _NOP.match(text)
    if nop:
        text = text[nop.end() :]
    elif _SHELL.match(text):
        return "RUN", text
    word, _, rest = text.partition(" ")
    if word.isupper() and word.isalpha():
        return word, rest.strip()
    return ("", text) if text else ("", "")


def _destination(rest: str) -> str:
    """The last path of a COPY/ADD (its target), ignoring `--from=`/`--chmod=` flags."""
    words = [w for w in rest.split() if not w.startswith("--")]
    return words[-1] if words else ""


def classify_final(created_by: str) -> tuple[PartKind, str]:
    """The part a final-stage history entry belongs to, and why."""
    word, rest = instruction_of(created_by)
    if _ENVIRONMENT.search(created_by):
        return "environment", "copies the Pixi environment"
    if _APP.search(created_by):
        return "app", "copies the application code"
    if word in ("COPY", "ADD"):
        target = _destination(rest)
        if target.startswith("/app") or not target.startswith("/"):  # relative: under WORKDIR /app
            return "overhead", "pixi's files or the entrypoint"
        if _PIXI.search(created_by):
            return "overhead", "pixi itself"
        return "runtime", "runtime files copied into the final stage"
    if word in _METADATA:
        return "overhead", "metadata"
    if word == "" and not created_by.strip():
        return "other", "an entry with no instruction"
    return "other", "not recognised"


def classify_base(created_by: str) -> tuple[PartKind, str]:
    """A base-image entry is runtime, except pixi itself (the lesson style's pixi image)."""
    if _PIXI.search(created_by):
        return "overhead", "pixi in the base image"
    return "runtime", "base image"


def _looks_final(created_by: str) -> bool:
    """Instructions the kit's final stages are made of (for the heuristic boundary)."""
    word, rest = instruction_of(created_by)
    if word in ("COPY", "ADD"):
        return _destination(rest).startswith("/app") or not _destination(rest).startswith("/")
    if word == "WORKDIR":
        return rest.startswith("/app")
    if word == "LABEL":
        return "org.opencontainers.image" in rest
    return word in ("ARG", "ENTRYPOINT", "CMD")


def _key(entry: Mapping[str, Any]) -> tuple[str, int, int]:
    return (str(entry.get("CreatedBy") or ""), int(entry.get("Size") or 0), int(entry.get("Created") or 0))


def base_boundary(
    history: Sequence[Mapping[str, Any]], base_history: Sequence[Mapping[str, Any]]
) -> int | None:
    """How many of the image's oldest entries are the base image's (both lists newest first, as
    the Docker API gives them), or None when the base's history is not a prefix of the image's."""
    image_old = [_key(e) for e in reversed(history)]
    base_old = [_key(e) for e in reversed(base_history)]
    if not base_old or len(base_old) > len(image_old) or image_old[: len(base_old)] != base_old:
        return None
    return len(base_old)


def guessed_boundary(history: Sequence[Mapping[str, Any]]) -> int:
    """Without the base image: the final stage is the newest run of entries that look like the
    kit's final-stage instructions; everything older is the base."""
    oldest_first = [str(e.get("CreatedBy") or "") for e in reversed(history)]
    start = len(oldest_first)
    while start > 0 and _looks_final(oldest_first[start - 1]):
        start -= 1
    return start


def from_history(
    history: Sequence[Mapping[str, Any]],
    *,
    total_bytes: int | None = None,
    base_history: Sequence[Mapping[str, Any]] | None = None,
    label: str = "",
    base_name: str = "",
) -> Makeup:
    """The make-up from an image's history (newest first, as `docker.models.images.Image.history()`
    returns it); bytes the history does not account for go to `other`."""
    boundary = base_boundary(history, base_history) if base_history else None
    if boundary is not None:
        method = f"layers matched against the base image {base_name}".rstrip()
    else:
        boundary = guessed_boundary(history)
        method = "base image recognised from the layer instructions (base image not at hand)"
    layers: list[Layer] = []
    sizes: dict[PartKind, int] = {}
    for index, entry in enumerate(reversed(history)):
        created_by, size, _ = _key(entry)
        part, why = classify_base(created_by) if index < boundary else classify_final(created_by)
        layers.append(Layer(created_by, size, part, why))
        sizes[part] = sizes.get(part, 0) + size
    counted = sum(sizes.values())
    total = counted if total_bytes is None else total_bytes
    if total > counted:
        sizes["other"] = sizes.get("other", 0) + total - counted
    return Makeup(label, "docker", max(total, counted), _parts(sizes), method, tuple(layers))


def base_candidates(result: BuildResult) -> tuple[str, ...]:
    """The images the build started from, as BuildKit's log names them (newest mention last)."""
    pattern = re.compile(r"(?:load metadata for|\] FROM)\s+(\S+)")
    found: list[str] = []
    for line in (*result.log, *(s.instruction for s in result.steps)):
        for match in pattern.finditer(line):
            ref = match.group(1)
            if ref not in found and not ref.startswith("["):
                found.append(ref)
    return tuple(found)


def docker_makeup(
    image: str, *, base_images: Sequence[str] = (), client: Any = None, label: str = ""
) -> Makeup:
    """Read the image (and the candidate bases) from the Docker daemon.

    Of the candidates, the one whose history is the longest prefix of the image's is the final
    stage's base (a lesson build and its pixi image; an optimized build and its runtime image).
    """
    from docker.errors import DockerException  # the SDK only when an image is read: start-up cost

    client = connect_docker(client)
    try:
        found = client.images.get(image)
        history = found.history()
        total = int(found.attrs.get("Size") or 0)
    except DockerException as error:
        return only_total(label or image, "docker", 0, f"cannot read the image: {error}")
    best: tuple[int, str, Sequence[Mapping[str, Any]]] | None = None
    for ref in base_images:
        try:
            base_history = client.images.get(ref).history()
        except DockerException:
            continue
        length = base_boundary(history, base_history)
        if length is not None and (best is None or length > best[0]):
            best = (length, ref.removeprefix("docker.io/"), base_history)
    name = label or (found.tags[0] if found.tags else image)
    if best is None:
        return from_history(history, total_bytes=total, label=name)
    return from_history(history, total_bytes=total, base_history=best[2], label=name, base_name=best[1])


def only_total(label: str, engine: str, total: int, why: str, file_bytes: int | None = None) -> Makeup:
    """A make-up that knows nothing but the size: all of it is `other`."""
    return Makeup(label, engine, total, _parts({"other": total}), why, (), file_bytes)


# -- Apptainer: measured inside the SIF ----------------------------------------------------------

# Top-level folders that are mounts or empty placeholders at run time, never the image's files.
_NOT_IMAGE = (
    "/proc",
    "/sys",
    "/dev",
    "/tmp",
    "/run",
    "/home",
    "/root",
    "/mnt",
    "/media",
    "/srv",
    "/app",
    "/var/tmp",
)
_PIXI_PATHS = ("/usr/local/bin/pixi", "/opt/pixi-standin", "/opt/kit-lab")
SIF_SCRIPT = (
    'for d in /* /.singularity.d; do case "$d" in '
    + "|".join(_NOT_IMAGE)
    + ') ;; *) [ -e "$d" ] && du -sk "$d" ;; esac; done; '
    "for d in /app /app/src /app/.pixi/envs/* "
    + " ".join(_PIXI_PATHS)
    + '; do [ -e "$d" ] && du -sk "$d"; done; true'
)


def from_du(text: str, *, label: str = "", file_bytes: int | None = None) -> Makeup:
    """The make-up from `SIF_SCRIPT`'s output (`KiB<TAB>path` lines), in unpacked bytes."""
    sizes_kib: dict[str, int] = {}
    for line in text.splitlines():
        kib, _, path = line.partition("\t")
        if kib.strip().isdigit() and path.startswith("/"):
            sizes_kib[path.strip()] = int(kib)
    if not sizes_kib:
        return only_total(
            label,
            "apptainer",
            file_bytes or 0,
            "nothing measured inside the SIF: only the file's size",
            file_bytes,
        )
    size = {path: kib * 1024 for path, kib in sizes_kib.items()}
    envs = sum(v for p, v in size.items() if p.startswith("/app/.pixi/envs/"))
    app = size.get("/app/src", 0)
    pixi = sum(size.get(p, 0) for p in _PIXI_PATHS)
    app_rest = max(0, size.get("/app", 0) - envs - app)
    top = [p for p in size if p.count("/") == 1 and p not in ("/app", "/.singularity.d")]
    runtime = max(0, sum(size[p] for p in top) - pixi)
    parts: dict[PartKind, int] = {
        "runtime": runtime,
        "environment": envs,
        "app": app,
        "overhead": app_rest + pixi + size.get("/.singularity.d", 0),
    }
    return Makeup(
        label,
        "apptainer",
        sum(parts.values()),
        _parts(parts),
        "measured inside the SIF with du: unpacked sizes (the file is compressed)",
        (),
        file_bytes,
    )


def sif_makeup(
    sif: Path | str, *, apptainer: str | None = None, label: str = "", timeout: float = 120
) -> Makeup:
    """Run `SIF_SCRIPT` in the SIF; fall back to the file's size when the image cannot be
    entered (no apptainer here, no shell in the image, a timeout)."""
    path = Path(sif)
    name = label or path.name
    try:
        file_bytes = path.stat().st_size
    except OSError as error:
        return only_total(name, "apptainer", 0, f"cannot read the SIF: {error.strerror}")
    try:
        if apptainer is None:
            apptainer = find_apptainer()
        done = subprocess.run(
            [apptainer, "exec", "--contain", "--cleanenv", str(path), "/bin/sh", "-c", SIF_SCRIPT],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except Exception as error:  # noqa: BLE001 - any failure here only loses the detail
        return only_total(
            name,
            "apptainer",
            file_bytes,
            f"only the file's size: cannot look inside ({type(error).__name__})",
            file_bytes,
        )
    return from_du(done.stdout, label=name, file_bytes=file_bytes)


# -- text charts ---------------------------------------------------------------------------------

BLOCKS: dict[PartKind, str] = {"runtime": "█", "environment": "▓", "app": "▒", "overhead": "░", "other": "·"}
ASCII_BLOCKS: dict[PartKind, str] = {
    "runtime": "#",
    "environment": "=",
    "app": "+",
    "overhead": "-",
    "other": ".",
}
_ANSI: dict[PartKind, str] = {
    "runtime": "34",
    "environment": "32",
    "app": "35",
    "overhead": "33",
    "other": "90",
}


def _cells(makeup: Makeup, width: int) -> list[tuple[PartKind, int]]:
    """How many of `width` cells each part gets: cumulative rounding, so the cells always add up
    to `width` and the same make-up always draws the same bar."""
    total = makeup.total_bytes
    if total <= 0 or width <= 0:
        return [(p.kind, 0) for p in makeup.parts]
    out, running, drawn = [], 0, 0
    for part in makeup.parts:
        running += part.size_bytes
        end = round(width * running / total)
        out.append((part.kind, end - drawn))
        drawn = end
    return out


def bar(makeup: Makeup, width: int, *, ascii_only: bool = False, color: bool = False) -> str:
    blocks = ASCII_BLOCKS if ascii_only else BLOCKS
    text = []
    for kind, n in _cells(makeup, width):
        if n:
            chunk = blocks[kind] * n
            text.append(f"\x1b[{_ANSI[kind]}m{chunk}\x1b[0m" if color else chunk)
    return "".join(text)


def legend(*, ascii_only: bool = False) -> str:
    blocks = ASCII_BLOCKS if ascii_only else BLOCKS
    return "  ".join(f"{blocks[k]} {k}" for k in PART_KINDS)


def format_makeup(makeup: Makeup, *, width: int = 50, ascii_only: bool = False, color: bool = False) -> str:
    """One image: its bar, then one line per part with MB and share."""
    return format_side_by_side([makeup], width=width, ascii_only=ascii_only, color=color)


def _printable(text: str) -> str:
    """Labels and notes come from tags and error messages: no control characters reach a terminal."""
    return "".join(c if c.isprintable() else "?" for c in text)


def format_side_by_side(
    makeups: Sequence[Makeup], *, width: int = 50, ascii_only: bool = False, color: bool = False
) -> str:
    """Several images on one scale (the largest fills `width`), then a table of the parts in MB.

    Deterministic: the same make-ups give the same text. `color` adds ANSI colours (for a
    terminal only); `ascii_only` draws with `#=+-.` where the output cannot take block characters.
    """
    if not makeups:
        return ""
    makeups = [m.relabel(_printable(m.label)) for m in makeups]
    largest = max(m.total_bytes for m in makeups) or 1
    name_width = max(len(m.label) for m in makeups)
    lines = [f"image make-up (MB; {legend(ascii_only=ascii_only)})"]
    for m in makeups:
        cells = round(width * m.total_bytes / largest)
        drawn = bar(m, cells, ascii_only=ascii_only, color=color)
        pad = " " * (width - cells)
        lines.append(f"  {m.label:<{name_width}}  {drawn}{pad}  {m.total_bytes / MB:8.1f} MB")
    head = "".join(f"{k:>12}" for k in PART_KINDS)
    lines.append(f"  {'':<{name_width}}{head}{'total':>12}")
    for m in makeups:
        row = "".join(f"{p.mb:12.1f}" for p in m.parts)
        lines.append(f"  {m.label:<{name_width}}{row}{m.total_bytes / MB:12.1f}")
    for m in makeups:
        note = _printable(m.method)
        if m.file_bytes is not None:
            note += f"; the SIF file is {m.file_bytes / MB:.1f} MB"
        lines.append(f"  {m.label}: {note}")
    return "\n".join(lines)


def to_dict(makeup: Makeup) -> dict[str, Any]:
    """The make-up as `--json` shows it: parts by name, in bytes, without the layer list."""
    return {
        "label": makeup.label,
        "engine": makeup.engine,
        "total_bytes": makeup.total_bytes,
        "file_bytes": makeup.file_bytes,
        "method": makeup.method,
        "parts": {p.kind: p.size_bytes for p in makeup.parts},
    }

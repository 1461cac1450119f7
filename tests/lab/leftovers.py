"""What a test session or a benchmark leaves in Docker, found and removed at its end.

Why: one clean-clone CI run and the benchmarks once left 48.5 GB of BuildKit cache (a later run
filled the disk). Images were mostly removed by the tests that tagged them; the build cache never
was. A run now leaves the daemon as it found it, apart from the lab's own images (``kit-lab/*``,
made by tests/lab/base_images.sh before any run) and the lab cache under /var/cache/kit-lab:

* **Images and containers by label.** Every build the kit makes during the run goes through
  ``tests/lab/bin/docker-labelled`` (``KIT_DOCKER_CLI``), which adds ``--label
  org.pixi-deploy-kit.test=RUN`` to it. A container inherits its image's labels. At the end both
  are removed by that label: only this run's, never another run's or a user's.
* **Build cache by record.** BuildKit has no cache scoped to one build (Debian's docker 20.10 has
  no buildx for a builder of our own, and the lab is offline, so no BuildKit image to run one),
  and ``docker builder prune --filter until=`` removes the OLD records, the opposite of what a
  run wants. So a run notes the cache records present when it starts and removes the ones it
  added, record by record (``--filter id=``). Records in use are never removed (BuildKit skips
  them), so a build running elsewhere keeps its cache.
* **Runs at the same time.** Each run registers in ``$TMPDIR/kit-docker-runs-UID/`` (under a
  lock). The last run to end removes the cache records none of the overlapping runs had at its
  start; one that ends while another is alive hands its starting point on instead, so it never
  takes cache from under a run still building. A run that was killed before its end leaves its
  entry behind, and the next run to end removes its images and the cache it added as well.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LABEL = "org.pixi-deploy-kit.test"
HERE = Path(__file__).resolve().parent
LABELLING_CLI = HERE / "bin" / "docker-labelled"
ENV_REAL = "KIT_TEST_DOCKER"  # the docker client the labelling one runs
ENV_LABEL = "KIT_TEST_LABEL"  # KEY=VALUE that it adds to every build
_IMAGE_PASSES = 4  # an image goes once the images built on it are gone: a few passes at most


def _runs_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"kit-docker-runs-{os.getuid()}"


@dataclass
class Swept:
    """What the end of a run removed (for the session's last lines)."""

    containers: int = 0
    images: int = 0
    image_bytes: int = 0
    cache_records: int = 0
    cache_bytes: int = 0
    kept_for_others: bool = False
    left: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"removed {self.containers} containers, {self.images} images ({_size(self.image_bytes)}), "
            f"{self.cache_records} build cache records ({_size(self.cache_bytes)})"
        )
        if self.kept_for_others:
            text += "; build cache left to a run still going (it removes it when it ends)"
        if self.left:
            text += "; could not remove: " + ", ".join(self.left)
        return text


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


@dataclass(frozen=True)
class DockerRun:
    """One run's mark on the daemon: the label its builds carry and its entry in the registry."""

    run_id: str
    baseline: frozenset[str]  # build cache records present when it started

    @property
    def label(self) -> str:
        return f"{LABEL}={self.run_id}"

    def cli_env(self, real_cli: str) -> dict[str, str]:
        """The variables that make the kit build through the labelling client."""
        return {"KIT_DOCKER_CLI": str(LABELLING_CLI), ENV_REAL: real_cli, ENV_LABEL: self.label}


def cache_records(client: Any) -> dict[str, dict[str, Any]]:
    """The daemon's build cache records by id."""
    return {str(r["ID"]): r for r in (client.df().get("BuildCache") or [])}


@contextmanager
def _registry() -> Iterator[Path]:
    folder = _runs_dir()
    folder.mkdir(mode=0o700, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _started(pid: int) -> str:
    """When a process started (clock ticks after boot, from /proc), so that a reused pid does not
    pass for a run still going; empty where /proc does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22; the name before ")" may hold spaces


def _alive(entry: Mapping[str, Any]) -> bool:
    pid = int(entry["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not entry.get("started") or _started(pid) == entry["started"]


def begin(client: Any) -> DockerRun:
    """Register a run and note the build cache it starts with."""
    run_id = f"{os.getpid()}-{time.time_ns()}"
    with _registry() as folder:
        run = DockerRun(run_id, frozenset(cache_records(client)))
        entry = {"pid": os.getpid(), "started": _started(os.getpid()), "baseline": sorted(run.baseline)}
        (folder / f"{run_id}.json").write_text(json.dumps(entry))
    return run


def end(client: Any, run: DockerRun) -> Swept:
    """Remove this run's containers and images (by label), then the build cache it added,
    unless an overlapping run is still going (that one inherits this run's starting point)."""
    swept = Swept()
    _remove_labelled(client, run, swept)
    with _registry() as folder:
        mine = folder / f"{run.run_id}.json"
        baseline = set(json.loads(mine.read_text())["baseline"]) if mine.exists() else set(run.baseline)
        mine.unlink(missing_ok=True)
        others = []
        for path in folder.glob("*.json"):
            entry = json.loads(path.read_text())
            if _alive(entry):
                others.append((path, entry))
            else:  # a run killed before its end (a timeout's SIGTERM): swept here as well
                _remove_labelled(client, DockerRun(path.stem, frozenset()), swept)
                baseline &= set(entry["baseline"])
                path.unlink()
        if others:
            for path, entry in others:
                entry["baseline"] = sorted(set(entry["baseline"]) & baseline)
                path.write_text(json.dumps(entry))
            swept.kept_for_others = True
        else:
            _prune_cache(client, baseline, swept)
    return swept


def _remove_labelled(client: Any, run: DockerRun, swept: Swept) -> None:
    from docker.errors import APIError, NotFound

    for container in client.containers.list(all=True, filters={"label": run.label}):
        try:
            container.remove(force=True)
            swept.containers += 1
        except NotFound:
            pass
        except APIError as error:
            swept.left.append(f"container {container.short_id} ({error.explanation})")
    for _ in range(_IMAGE_PASSES):  # an image another of ours was built on goes in a later pass
        images = client.images.list(all=True, filters={"label": run.label})
        if not images:
            return
        for image in images:
            try:
                client.images.remove(image.id, force=True)
                swept.images += 1
                swept.image_bytes += int(image.attrs.get("Size") or 0)
            except NotFound:
                pass
            except APIError:
                continue
    swept.left += [f"image {i.short_id}" for i in client.images.list(all=True, filters={"label": run.label})]


def _prune_cache(client: Any, baseline: set[str], swept: Swept) -> None:
    """Remove the records not in ``baseline``, record by record: the daemon's prune takes one
    value per filter, and a record goes only once no record built on it is left, so a chain of
    N build steps takes up to N passes (a fixed handful of passes once left the lower steps of
    every long build behind, run after run). Passes go on while one removes something; what a
    build still running holds stays (BuildKit skips records in use) and is named in the summary."""
    removed_any = True
    while removed_any:
        added = set(cache_records(client)) - baseline
        removed_any = False
        for record in sorted(added):
            done: Mapping[str, Any] = client.api.prune_builds(filters={"id": record}, all=True) or {}
            deleted = done.get("CachesDeleted") or []
            swept.cache_records += len(deleted)
            swept.cache_bytes += int(done.get("SpaceReclaimed") or 0)
            removed_any = removed_any or bool(deleted)
    left = set(cache_records(client)) - baseline
    if left:
        swept.left.append(f"{len(left)} build cache records in use")

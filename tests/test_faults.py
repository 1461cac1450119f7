"""What a learner sees when a real build or probe goes wrong, and what is left behind.

Every fault here must end as one of the kit's own errors (the CLI and the widgets print those
and never a traceback), name what broke, and leave nothing half-done: no tag on a failed or
cancelled image, no temporary folder. The faults are real ones: a broken step in the kit's own
rendered Dockerfile built by BuildKit, a GPU request on a host without GPUs, a Docker daemon
killed in the middle of a build (a second, private daemon, so the one everybody else uses is
never touched), and a cancel.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import LabWorkspace, need

from kit import api
from kit.base.errors import BuildCancelled, BuildError, EngineUnavailable, KitError
from kit.engines import BuildEvent, DockerBuilder
from kit.engines.gpu import docker_has_nvidia_runtime, host_has_nvidia_driver
from kit.output import staging
from tests.lab.settings import LabSettings

RUN_ID = str(os.getpid())
DOCKERD = shutil.which("dockerd")
UNSHARE = shutil.which("unshare")


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Route the kit's temporary folders into an empty folder of this test's own, and check
    that it is empty again afterwards: the shared /tmp has other sessions' folders in it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert list(folder.iterdir()) == [], "a build left temporary files behind"


def tags_of(client: Any, repository: str) -> list[str]:
    return [tag for image in client.images.list(repository) for tag in image.tags]


def staged_context(
    lab_workspace: LabWorkspace, dest: Path, style: str, environment: str, edit: Callable[[Path], None]
) -> tuple[Path, dict[str, str]]:
    """The kit's own staged build context for the lab workspace, then broken by ``edit``:
    what `kit.api.build` would hand the builder, with one fault in it."""
    lab = lab_workspace.settings
    prepared = api.prepare(
        lab_workspace.root,
        style=style,
        environment=environment,
        base_image=lab.base_image,
        runtime_image=lab.runtime_image,
    )
    context = staging.stage_build_context(prepared, dest)
    edit(context)
    return context, api.build_args(prepared)


def replace_once(file: str, old: str, new: str) -> Callable[[Path], None]:
    """An edit of one staged file: its first ``old`` becomes ``new`` (which must be there)."""

    def edit(context: Path) -> None:
        path = context / file
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))

    return edit


def add_step_before_entrypoint(step: str) -> Callable[[Path], None]:
    """An edit adding ``step`` to the final stage, after the (cached) install."""
    return replace_once("Dockerfile", "\nENTRYPOINT ", f"\n{step}\nENTRYPOINT ")


def add_dependency(name: str) -> Callable[[Path], None]:
    """An edit adding a dependency the lock does not have, as a learner who forgot `pixi lock`."""
    return replace_once("pixi.toml", "\n[dependencies]\n", f'\n[dependencies]\n{name} = "*"\n')


def remove_app_dir(context: Path) -> None:
    shutil.rmtree(context / "app")


# ---------------------------------------------------------------- a broken step


@dataclass(frozen=True)
class Fault:
    """A way to break the build, and what the error must then say."""

    edit: Callable[[Path], None]
    environment: str
    build_args: dict[str, str]
    step: str  # the failing step's instruction contains this
    log: str  # and a line of the log tail contains this


FAULTS = {
    "failing-run-step": Fault(
        add_step_before_entrypoint('RUN echo "kit-fault: about to fail" && false'),
        "cpu",
        {},
        'RUN echo "kit-fault: about to fail" && false',
        "kit-fault: about to fail",
    ),
    "missing-app-dir": Fault(remove_app_dir, "cpu", {}, "COPY ./app /app/src", "not found"),
    # A manifest edited after the lock: `pixi install --locked` refuses it. (A CUDA override below
    # the lock's CUDA was the fault here under pixi 0.70; pixi 0.71+ installs such a lock "by
    # accident" when none of its packages depends on __cuda, as none of the lab's does.)
    "lock-out-of-date": Fault(
        add_dependency("kit-fault-unlocked"), "cpu", {}, "pixi install", "not up-to-date"
    ),
}


@pytest.mark.docker
@pytest.mark.parametrize("name", sorted(FAULTS))
def test_broken_step_is_named_with_its_log_and_nothing_is_tagged(
    name: str, lab_workspace: LabWorkspace, docker_client: Any, private_tmp: Path, tmp_path: Path
) -> None:
    fault = FAULTS[name]
    context, args = staged_context(
        lab_workspace, tmp_path / "context", "lesson", fault.environment, fault.edit
    )
    repository = f"kit-test-faults/{name}"
    events: list[BuildEvent] = []
    with pytest.raises(BuildError) as caught:
        DockerBuilder().build(
            context,
            tags=[f"{repository}:{RUN_ID}"],
            build_args={**args, **fault.build_args},
            on_event=events.append,
        )
    error = caught.value
    assert not isinstance(error, BuildCancelled)
    assert error.step is not None and fault.step in error.step
    assert str(error) == f"Docker build failed at step: {error.step}"
    assert 0 < len(error.log_tail.lines) <= 30
    assert any(fault.log in line.lower() or fault.log in line for line in error.log_tail.lines), (
        error.log_tail.text()
    )
    failed = [e for e in events if e.failed]
    assert failed[-1].kind == "finished" and any(e.kind == "step_done" for e in failed)
    assert tags_of(docker_client, repository) == []


# ---------------------------------------------------------------- a GPU on a host without one


@pytest.mark.docker
def test_requiring_a_gpu_without_the_nvidia_runtime_is_refused(lab: LabSettings, docker_client: Any) -> None:
    need(
        not docker_has_nvidia_runtime(docker_client),
        "this Docker daemon has the NVIDIA runtime: a GPU request would work",
    )
    before = {c.id for c in docker_client.containers.list(all=True)}
    with pytest.raises(EngineUnavailable) as caught:
        api.probe(lab.runtime_image, gpu="require")
    message = str(caught.value)
    assert message.startswith("A GPU was required, but this Docker daemon has no NVIDIA runtime.")
    assert caught.value.instead and "NVIDIA Container Toolkit" in caught.value.instead
    assert {c.id for c in docker_client.containers.list(all=True)} <= before  # none started


@pytest.mark.apptainer
def test_requiring_a_gpu_on_a_host_without_a_driver_is_refused(tmp_path: Path, apptainer_path: str) -> None:
    need(not host_has_nvidia_driver(), "this host has an NVIDIA driver: a GPU request would work")
    with pytest.raises(EngineUnavailable, match="A GPU was required, but this host has no NVIDIA driver"):
        api.probe(str(tmp_path / "never-built.sif"), gpu="require")  # refused before running


# ---------------------------------------------------------------- the daemon dies mid-build


@dataclass
class PrivateDaemon:
    """A second dockerd of this test's own, in its own network and mount namespaces.

    Own network namespace: a dockerd started with ``--bridge none`` deletes the host's
    ``docker0`` (the shared daemon's bridge) at start-up; inside its own namespace there is
    none to delete. Own mount namespace: the mounts it makes die with it, even on SIGKILL.
    A short root under /tmp keeps containerd's socket path under the 108-byte limit.
    """

    root: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.root}/d.sock"

    def argv(self) -> list[str]:
        assert UNSHARE and DOCKERD
        return [
            UNSHARE,
            "--net",
            "--mount",
            "--propagation",
            "private",
            "--",
            DOCKERD,
            "--data-root",
            f"{self.root}/data",
            "--exec-root",
            f"{self.root}/exec",
            "--pidfile",
            f"{self.root}/dockerd.pid",
            "--host",
            self.host,
            "--bridge",
            "none",
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            "--storage-driver",
            "vfs",
            "--cgroup-parent",
            f"kit-test-faults-{RUN_ID}",
        ]

    def start(self, timeout: float = 30) -> Any:
        """Start it and return a pinged SDK client; raise RuntimeError with its log if not."""
        import docker

        log = (self.root / "dockerd.log").open("ab")
        self.process = subprocess.Popen(
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                client = docker.DockerClient(base_url=self.host, timeout=10)
                client.ping()
                return client
            except Exception:  # not up yet: the socket appears a second or two in
                time.sleep(0.5)
        self.stop()
        tail = (self.root / "dockerd.log").read_text(errors="replace").splitlines()[-3:]
        raise RuntimeError(" | ".join(tail) or "no output")

    def descendants(self) -> list[int]:
        """Its process tree (containerd and shims), to end only what this test started."""
        assert self.process is not None
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        tree, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would, then reap what it leaves running."""
        assert self.process is not None
        tree = self.descendants()
        self.process.kill()
        self.process.wait(timeout=30)
        _end_leftovers(tree[1:])

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        tree = self.descendants()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        _end_leftovers(tree[1:])


def _end_leftovers(pids: list[int], grace: float = 5.0) -> None:
    """Wait for the daemon's children to exit with it; SIGKILL any that do not, by pid."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def private_daemon(docker_client: Any) -> Iterator[PrivateDaemon]:
    """A second Docker daemon for this test only; everything of it is gone afterwards."""
    need(
        DOCKERD is not None and UNSHARE is not None,
        "a second, private dockerd needs dockerd and unshare (util-linux)",
    )
    daemon = PrivateDaemon(Path(tempfile.mkdtemp(prefix="kpd-", dir="/tmp")))
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(daemon.root, ignore_errors=True)


SHELL_BASE = "kit-test-faults/sh:host"


def start_with_shell_base(daemon: PrivateDaemon) -> Any:
    """Start the private daemon (a skip here, a failure under CI, where none can run) and give it
    SHELL_BASE: a tiny `docker import` of host files, so its builds need no registry."""
    from tests.lab.localbase import host_shell_image

    try:
        client = daemon.start()
    except RuntimeError as why:
        need(False, f"a second, private dockerd cannot run here: {why}")
        raise
    host_shell_image(client, SHELL_BASE)
    return client


def slow_context(directory: Path, base: str) -> Path:
    """A build whose context upload takes many seconds: a 2 GB sparse file (no disk used, no
    container run, so no network is needed in the private daemon)."""
    directory.mkdir()
    with (directory / "big").open("wb") as big:
        big.truncate(2 * 1024**3)
    (directory / "Dockerfile").write_text(f"FROM {base}\nCOPY big /big\n")
    return directory


@pytest.mark.docker
def test_daemon_killed_mid_build_is_a_clear_error_and_leaves_nothing(
    private_daemon: PrivateDaemon, private_tmp: Path, tmp_path: Path
) -> None:
    client = start_with_shell_base(private_daemon)
    context = slow_context(tmp_path / "context", SHELL_BASE)
    repository = "kit-test-faults/daemon-killed"
    builder = DockerBuilder(env={**os.environ, "DOCKER_HOST": private_daemon.host})
    uploading = threading.Event()
    outcome: dict[str, BaseException] = {}

    def on_event(event: BuildEvent) -> None:
        if "load build context" in event.line:
            uploading.set()

    def run() -> None:
        try:
            builder.build(context, tags=[f"{repository}:1"], on_event=on_event)
        except BaseException as error:  # handed to the test's thread to inspect
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert uploading.wait(60), "the build never started uploading its context"
    time.sleep(1.0)
    private_daemon.kill()
    thread.join(60)
    assert not thread.is_alive(), "the build did not notice its daemon had died"

    error = outcome.get("error")
    assert isinstance(error, KitError), repr(error)
    assert isinstance(error, EngineUnavailable)
    assert f"The Docker daemon at {private_daemon.host} stopped answering" in str(error)
    assert "nothing was tagged" in str(error)

    # Back up on the same data root: no tag, and nothing but the base image.
    client = private_daemon.start()
    assert tags_of(client, repository) == []
    assert [image.tags for image in client.images.list(all=True)] == [[SHELL_BASE]]


# ---------------------------------------------------------------- cancel (Ctrl-C, the widget's button)


@pytest.mark.docker
def test_cancel_stops_the_build_and_tags_nothing(
    lab_workspace: LabWorkspace, docker_client: Any, private_tmp: Path, tmp_path: Path
) -> None:
    marker = f"kit-fault-slow-{RUN_ID}"
    context, args = staged_context(
        lab_workspace,
        tmp_path / "context",
        "optimized",
        "cpu",
        add_step_before_entrypoint(f"RUN echo {marker} && sleep 60"),
    )
    repository = "kit-test-faults/cancelled"
    cancel = threading.Event()

    def on_event(event: BuildEvent) -> None:
        if event.line.endswith(f" {marker}"):  # the step's output, not its header
            cancel.set()

    started = time.monotonic()
    with pytest.raises(BuildCancelled, match="The Docker build was cancelled; nothing was tagged") as caught:
        DockerBuilder().build(
            context, tags=[f"{repository}:{RUN_ID}"], build_args=args, on_event=on_event, cancel=cancel
        )
    assert cancel.is_set() and time.monotonic() - started < 55
    assert any(marker in line for line in caught.value.log_tail.lines)
    assert tags_of(docker_client, repository) == []


# ---------------------------------------------------------------- what a run leaves in the build cache


@pytest.mark.docker
def test_a_run_removes_every_cache_record_of_a_long_build(
    private_daemon: PrivateDaemon, tmp_path: Path
) -> None:
    """A build of twelve steps makes a chain of twelve cache records, each built on the one
    before, and BuildKit removes a record only once none is built on it. The sweep at a run's
    end (tests/lab/leftovers.py) once stopped after four passes and left the lower steps of every
    long build behind, a few records more after each CI run. Own daemon: no other run's records."""
    from tests.lab import leftovers

    client = start_with_shell_base(private_daemon)
    context = tmp_path / "chain"
    context.mkdir()
    steps = [f"COPY step{i} /step{i}" for i in range(12)]
    for i in range(12):
        (context / f"step{i}").write_text(f"{i}\n")
    (context / "Dockerfile").write_text("\n".join([f"FROM {SHELL_BASE}", *steps]) + "\n")
    # The records before the build: not leftovers.begin, which would register this test as a run
    # in the shared registry with the session's own pid (alive when the session ends, so the
    # session would hand its sweep to it and leave its whole build cache behind).
    baseline = set(leftovers.cache_records(client))
    subprocess.run(
        [
            "/usr/bin/docker",
            "--host",
            private_daemon.host,
            "build",
            "-q",
            "-t",
            "kit-test-faults/chain:1",
            str(context),
        ],
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        check=True,
        capture_output=True,
        timeout=300,
    )
    client.images.remove("kit-test-faults/chain:1", force=True)
    assert len(set(leftovers.cache_records(client)) - baseline) >= 12

    swept = leftovers.Swept()
    leftovers._prune_cache(client, baseline, swept)

    assert set(leftovers.cache_records(client)) - baseline == set()
    assert swept.left == []

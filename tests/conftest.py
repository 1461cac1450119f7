"""Shared fixtures. Engine tests skip with a reason when an engine is missing, but fail under CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "cuda-exercise"
REAL_WORLD = REPO.parent / "shared" / "fixtures" / "real-world" / "nvidia-gpu-ml-library-test"
DATA = Path(__file__).resolve().parent / "data"
OUTPUT = REPO / "test-output"

# The one conda package (noarch, tiny) of the lock files tests write by hand: its URL and its
# `packages:` record, as pixi writes them.
TZDATA_URL = "https://conda.anaconda.org/conda-forge/noarch/tzdata-2025b-h78e105d_0.conda"
TZDATA_RECORD = f"""- conda: {TZDATA_URL}
  sha256: 5aaa366385d716557e365f0a4e9c3fca43ba196872abbbe3d56bb610d131e192
  md5: 4222072737ccff51314b5ece9c7d6f5a
  license: LicenseRef-Public-Domain
  size: 122968
  timestamp: 1742727099393
"""

sys.path.insert(0, str(REPO))  # `tests.lab` for the offline lab

from tests.lab.settings import LabSettings  # noqa: E402  (needs the path above)

# The hostile-input tests' fixtures (`tree`, `shared_tmp`) and helpers, loaded as a plugin so that
# pytest rewrites their asserts (tests/hostile_helpers.py).
pytest_plugins = ["hostile_helpers"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip when a real part is missing here; under CI=true that is a failure, not a skip."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def assert_lab_probe_report(text: str) -> None:
    """The probe's report from a job on the lab's pool, which has no GPU: the lab channel's CPU
    PyTorch (tests/lab/channel.py), imported, and no device."""
    from kit.engines.gpu import parse_probe_output
    from tests.lab.channel import TORCH_VERSION

    report = parse_probe_output(text)
    assert report.torch_version is not None and report.torch_version.split("+")[0] == TORCH_VERSION, text
    assert report.cuda_available is False and report.device_count == 0, text


def run_command(
    argv: list[str], *, cwd: Path | None = None, timeout: float = 120, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command as a user types it, for tests to judge: output captured as text, a failure
    returned (never raised) so the assertion can show its output, and always bounded."""
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def kit_cli(
    *args: str, cwd: Path | None = None, timeout: float = 120, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The `kit` command line in a process of its own (`python -m kit.cli ARGS`), as a user runs it."""
    return run_command([sys.executable, "-m", "kit.cli", *args], cwd=cwd, timeout=timeout, env=env)


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A private copy of the embedded example workspace."""
    target = tmp_path / "cuda-exercise"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".pixi", "__pycache__"))
    return target


@pytest.fixture
def real_world(tmp_path: Path) -> Path:
    """A private copy of the real-world workspace (read from ../shared, never copied into the repo)."""
    need((REAL_WORLD / "pixi.lock").exists(), f"real-world fixture absent: {REAL_WORLD}")
    target = tmp_path / "nvidia-gpu-ml-library-test"
    target.mkdir()
    for name in ("pixi.toml", "pixi.lock"):
        shutil.copyfile(REAL_WORLD / name, target / name)
    return target


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


# ---------------------------------------------------------------- another user (setpriv)

NOBODY = 65534


@dataclass(frozen=True)
class OtherUser:
    """A user other than the one running the tests, able to run the kit: `argv` starts
    `python -m kit.cli` as that user with an interpreter it can execute and a copy of the kit
    and its dependencies it can read (`site`), so the test does not depend on where the clone
    and its .venv sit (a root home folder or a `mktemp -d` is mode 700: the user cannot enter)."""

    uid: int
    python: str
    site: Path

    def argv(self, *args: str) -> list[str]:
        return [*_become(self.uid), self.python, "-m", "kit.cli", *args]

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(self.site),
            "PYTHONNOUSERSITE": "1",  # the caller's HOME is not that user's
            "PYTHONDONTWRITEBYTECODE": "1",
        }


def _become(uid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def _runtime_distributions() -> list[Any]:
    """The installed distributions the kit needs at run time: pyproject's [project]
    dependencies and theirs, markers evaluated, no extras (the kit's command line needs none)."""
    import importlib.metadata
    import tomllib

    from packaging.requirements import Requirement

    wanted = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    found: dict[str, Any] = {}
    todo = [Requirement(text) for text in wanted]
    while todo:
        requirement = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = requirement.name.lower().replace("_", "-")
        if name in found:
            continue
        dist = importlib.metadata.distribution(requirement.name)
        found[name] = dist
        todo.extend(Requirement(text) for text in dist.requires or [])
    return list(found.values())


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows one (a venv's packages: quick, no space), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _reachable_site(folder: Path) -> Path:
    """The kit (copied: tests may run on an edited tree) and its run-time dependencies (linked
    from this interpreter's site-packages) in `folder`, every level readable by everyone."""
    import kit

    site = folder / "site"
    shutil.copytree(Path(kit.__file__).parent, site / "kit", ignore=shutil.ignore_patterns("__pycache__"))
    for dist in _runtime_distributions():
        base = Path(dist.locate_file("")).resolve()
        for entry in dist.files or []:
            if ".." in entry.parts or "__pycache__" in entry.parts:  # scripts in bin/, byte code
                continue
            source = base / entry
            if source.is_file():
                _link_or_copy(source, site / entry)
    for dirpath, _dirnames, _filenames in os.walk(folder):
        os.chmod(dirpath, 0o755)
    return site


def _python_for(uid: int, site: Path) -> tuple[str | None, str]:
    """An interpreter `uid` can run the kit with, and what the last one tried said.

    This interpreter first, if that user reaches it whole (its own standard library: a
    pyenv under /root does not qualify), then the system's of the same minor version (the
    linked packages hold extension modules built for it)."""
    here = sys.version_info
    candidates = [(os.path.realpath(getattr(sys, "_base_executable", sys.executable)), sys.base_prefix)]
    for folder in ("/usr/bin", "/usr/local/bin"):
        candidates.append((f"{folder}/python{here.major}.{here.minor}", ""))
    said = "no interpreter tried"
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    for python, prefix in candidates:
        if not os.access(python, os.X_OK):
            continue
        check = (
            "import sys, kit.cli; "
            f"assert sys.version_info[:2] == {tuple(here[:2])!r}, sys.version; "
            f"assert {prefix!r} in ('', sys.base_prefix), sys.base_prefix"
        )
        done = run_command([*_become(uid), python, "-c", check], cwd=Path("/"), timeout=60, env=env)
        if done.returncode == 0:
            return python, ""
        said = f"{python}: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"
    return None, said


@pytest.fixture(scope="session")
def nobody() -> Iterator[OtherUser]:
    """The user `nobody`, able to run this kit wherever the clone sits (needs root and setpriv;
    skips with the reason otherwise, fails under CI=true). The copy is removed at session end."""
    need(os.geteuid() == 0, "running the kit as another user needs root (setpriv)")
    need(shutil.which("setpriv") is not None, "running the kit as another user needs setpriv (util-linux)")
    folder = Path(tempfile.mkdtemp(prefix="kit-other-user-"))
    try:
        folder.chmod(0o755)
        site = _reachable_site(folder)
        python, said = _python_for(NOBODY, site)
        need(
            python is not None,
            f"no Python {sys.version_info.major}.{sys.version_info.minor} that nobody can run ({said})",
        )
        assert python is not None
        # byte code compiled now, as root: nobody cannot write it, and would compile every module on every run
        compiled = run_command([python, "-m", "compileall", "-q", str(site)], timeout=300)
        assert compiled.returncode == 0, compiled.stdout + compiled.stderr
        yield OtherUser(NOBODY, python, site)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- the offline lab and Apptainer

LAB_LAUNCHER = REPO / "tests" / "lab" / "bin" / "apptainer"


def _lab_launcher_ready(environ: Mapping[str, str]) -> bool:
    """The launcher is usable once tests/lab/apptainer.sh has built its sid root (the same
    check the launcher itself makes, without starting a mount namespace)."""
    cache = Path(environ.get("KIT_LAB_CACHE") or "/var/cache/kit-lab")
    root = cache / "apptainer-root"
    return (
        os.access(LAB_LAUNCHER, os.X_OK)
        and (root / ".kit-lab-ready").is_file()
        and os.access(root / "usr" / "bin" / "apptainer", os.X_OK)
    )


@pytest.fixture(scope="session", autouse=True)
def apptainer_roots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The roots `kit build` keeps for Apptainer rebuilds (kit.engines.apptainer_reuse) go to a
    session folder, removed with it, not to the user's cache: a session leaves the machine as
    it found it."""
    folder = tmp_path_factory.mktemp("apptainer-roots")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KIT_APPTAINER_ROOTS", str(folder))
        yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def lab_apptainer() -> Iterator[str | None]:
    """The apptainer the kit will use this session, pointing KIT_APPTAINER at the lab launcher
    when none is configured or on PATH.

    Why: Debian 12 (the lab and CI machine kind) has no apptainer; the lab runs the real one
    from a sid root through tests/lab/bin/apptainer, which the kit only finds through
    KIT_APPTAINER. A real apptainer (KIT_APPTAINER set, or on PATH) always wins, and the
    variable is restored when the session ends.
    """
    chosen = os.environ.get("KIT_APPTAINER") or shutil.which("apptainer")
    if chosen or not _lab_launcher_ready(os.environ):
        yield chosen
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KIT_APPTAINER", str(LAB_LAUNCHER))
        yield str(LAB_LAUNCHER)


@pytest.fixture(scope="session")
def lab() -> LabSettings:
    """The lab's settings (KIT_LAB_MODE), once everything they name is in place.

    Skips with provision.sh's reasons when the lab is missing here (fails under CI=true).
    """
    from tests.lab.settings import lab_settings, missing

    settings = lab_settings()
    gaps = missing(settings)
    need(not gaps, "the lab is not provisioned: " + "; ".join(gaps))
    return settings


def lab_image_flags(lab: LabSettings, *, base_image: str | None = None) -> list[str]:
    """`kit generate`/`kit build` flags that point the files at the lab's own images, so that
    nothing is pulled: the pixi image (or ``base_image``, a test's variant of it), the runtime
    image, and Apptainer bootstrapping from the Docker daemon that holds them."""
    return [
        "--base-image",
        base_image or lab.base_image,
        "--runtime-image",
        lab.runtime_image,
        "--bootstrap",
        "docker-daemon",
    ]


@dataclass(frozen=True)
class LabWorkspace:
    """The lab's settings and a private copy of its locked workspace."""

    settings: LabSettings
    root: Path


@pytest.fixture
def lab_workspace(lab: LabSettings, tmp_path: Path) -> LabWorkspace:
    """A fresh copy of the lab's locked workspace (a test may edit or build it freely)."""
    from tests.lab.settings import copy_workspace

    return LabWorkspace(lab, copy_workspace(tmp_path / "workspace", lab))


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """A pinged Docker SDK client and a BuildKit-capable CLI, or `need()` says which is missing."""
    from kit.base.errors import EngineUnavailable, ToolNotFound
    from kit.engines import connect_docker, find_docker_cli

    try:
        client = connect_docker()
        find_docker_cli()
    except (EngineUnavailable, ToolNotFound) as error:
        need(False, str(error))
    return client


@pytest.fixture(scope="session")
def apptainer_path() -> str:
    """The apptainer the kit finds (KIT_APPTAINER or PATH), or `need()` says how to get one."""
    from kit.base.errors import ToolNotFound
    from kit.engines import find_apptainer

    try:
        return find_apptainer()
    except ToolNotFound as error:
        need(False, str(error))
        raise


# ---------------------------------------------------------------- leaving Docker as the session found it

# A session runs engines when one of its tests is marked so or asks for an engine fixture.
ENGINE_MARKERS = frozenset(
    {
        "docker",
        "apptainer",
        "episode_blocks",
        "htcondor",
        "slurm",
        "browser",
        "jupyterhub",
        "digest",
        "practice",
        "aarch64",
    }
)
ENGINE_FIXTURES = frozenset(
    {"docker_client", "lab", "lab_workspace", "lab_sif", "apptainer_path", "htcondor", "slurm"}
)


def _runs_engines(items: list[pytest.Item]) -> bool:
    for item in items:
        if ENGINE_MARKERS & {mark.name for mark in item.iter_markers()}:
            return True
        if ENGINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            return True
    return False


@pytest.fixture(scope="session", autouse=True)
def docker_leftovers(request: pytest.FixtureRequest) -> Iterator[object | None]:
    """The session's images, containers and build cache, removed when it ends.

    Why: the engine tests build many images, and BuildKit keeps every layer as build cache;
    nothing removed that cache, and one clean-clone CI run left 48.5 GB of it. Here the kit
    builds through tests/lab/bin/docker-labelled, which labels every image this session builds;
    at the end the images and containers with that label go, and so do the build cache records
    the session added (tests/lab/leftovers.py says how, and how runs at the same time share the
    daemon). The lab's images (kit-lab/*) and its cache under /var/cache/kit-lab predate the
    session and stay. A session with no engine test, or no daemon, changes nothing.
    """
    if not _runs_engines(request.session.items):
        yield None
        return
    from kit.base.errors import KitError
    from kit.engines import connect_docker, find_docker_cli
    from tests.lab import leftovers

    try:
        client = connect_docker()
        real_cli = find_docker_cli().path
    except KitError:
        yield None  # no daemon or no BuildKit client: the engine tests skip (fail under CI) on their own
        return
    run = leftovers.begin(client)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in run.cli_env(real_cli).items():
                patch.setenv(key, value)
            yield run
    finally:
        request.config.stash[_SWEPT] = leftovers.end(client, run).summary()


_SWEPT = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """What the session removed from Docker, after the results (a fixture's own output is captured)."""
    if _SWEPT in config.stash:
        terminalreporter.write_line(f"docker, this session's leftovers: {config.stash[_SWEPT]}")


LAB_HTCONDOR_BIN = REPO / "tests" / "lab" / "bin" / "htcondor"


# ---------------------------------------------------------------- the lab's schedulers (tests/lab/schedulers.sh)


@pytest.fixture(scope="session")
def htcondor() -> Iterator[str]:
    """HTCondor's clients (a real install on PATH, else the lab's), once the pool answers."""
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("KIT_HTCONDOR_BIN") and not _on_path("condor_submit"):
            patch.setenv("KIT_HTCONDOR_BIN", str(LAB_HTCONDOR_BIN))
        why = _api().scheduler_available("htcondor")
        need(not why, f"{why} (run tests/lab/schedulers.sh as root)")
        yield "htcondor"


@pytest.fixture(scope="session")
def slurm() -> str:
    why = _api().scheduler_available("slurm")
    need(not why, f"{why} (run tests/lab/schedulers.sh as root)")
    return "slurm"


def _on_path(name: str) -> bool:
    return shutil.which(name) is not None


def _api() -> Any:
    from kit import api

    return api


@pytest.fixture(scope="session")
def lab_sif(
    lab: LabSettings, apptainer_path: str, docker_client: object, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The lab workspace's cpu environment built into a SIF by the kit (once per session).
    KIT_LAB_JOB_SIF names an already built one, to iterate on these tests without a rebuild."""
    given = os.environ.get("KIT_LAB_JOB_SIF")
    if given and Path(given).is_file():
        return Path(given)
    from test_engines import build_lab_sif

    sif = Path(build_lab_sif(lab, tmp_path_factory.mktemp("scheduler-sif"), "optimized").image)
    assert sif.is_file()
    return sif

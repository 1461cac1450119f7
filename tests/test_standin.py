"""The lab's pixi stand-in behaves like the pixi it emulates.

Why: the lab builds every image on the stand-in, so a stand-in that accepts what the real pixi
refuses (a lock format too new for the pinned pixi, an out-of-date lock, a shell it cannot
hook) lets CI pass on recipes that fail for users. The unit tests call the stand-in's functions
(or run it with the host's Python) and need no Docker; the docker-marked ones run
`pixi install --locked` in both stand-in images, the kit's pin and pixi 0.55.0, against locks of
format 6 and 7 written by the lab.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REAL_WORLD, need

from kit.decide.options import DEFAULT_BASE_IMAGE, PIXI_VERSION
from kit.model.pixi_versions import newest_lock_format, pixi_version_of_image
from tests.lab import pixi_standin
from tests.lab.settings import CONNECTED_BASE_IMAGE, OLD_PIXI_VERSION, LabSettings, standin_images
from tests.lab.workspace import SUBDIR_LAYOUT_PIXI, lab_manifest, legacy_manifest, to_v6

STANDIN = Path(pixi_standin.__file__)
EXAMPLE_MANIFEST = Path(__file__).resolve().parents[1] / "examples" / "cuda-exercise" / "pixi.toml"


def run_standin(cwd: Path, *args: str, emulates: str = PIXI_VERSION) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIXI_STANDIN_EMULATES": emulates}
    return subprocess.run(
        [sys.executable, str(STANDIN), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def write_lock(ws: Path, version: int, env: str = "default") -> None:
    """A tiny lock in format `version` for `env`: enough for the checks before any install."""
    platforms = "platforms:\n- name: linux-64\n" if version >= 7 else ""
    (ws / "pixi.lock").write_text(
        f"version: {version}\n{platforms}environments:\n  {env}:\n    channels:\n"
        "    - url: file:///opt/kit-lab/channel/\n    packages: {}\npackages: []\n"
    )


@pytest.fixture
def small(tmp_path: Path) -> Path:
    (tmp_path / "pixi.toml").write_text(
        '[workspace]\nname = "small"\nchannels = ["file:///opt/kit-lab/channel"]\nplatforms = ["linux-64"]\n'
    )
    return tmp_path


# ---------------------------------------------------------------- the pin and the table


def test_the_pin_reads_the_current_lock_format() -> None:
    assert pixi_version_of_image(DEFAULT_BASE_IMAGE) == PIXI_VERSION
    assert newest_lock_format(PIXI_VERSION) == 7
    assert newest_lock_format(OLD_PIXI_VERSION) == 6
    assert CONNECTED_BASE_IMAGE == DEFAULT_BASE_IMAGE


@pytest.mark.parametrize(
    "image,version",
    [
        ("ghcr.io/prefix-dev/pixi:0.70.2-noble", "0.70.2"),
        ("ghcr.io/prefix-dev/pixi:0.55.0", "0.55.0"),
        ("ghcr.io/prefix-dev/pixi:0.70.2-noble-cuda-12.9.1", "0.70.2"),
        ("registry.example:5000/mirror/pixi:0.68.1-jammy@sha256:" + "a" * 64, "0.68.1"),
        ("ghcr.io/prefix-dev/pixi:latest", None),
        ("ghcr.io/prefix-dev/pixi", None),
        ("kit-lab/pixi:bookworm", None),
        ("ubuntu:24.04", None),
    ],
)
def test_pixi_version_of_image(image: str, version: str | None) -> None:
    assert pixi_version_of_image(image) == version


def test_kit_inspect_shows_the_lock_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kit.cli import main

    need((REAL_WORLD / "pixi.lock").exists(), f"real-world fixture absent: {REAL_WORLD}")
    ws = tmp_path / "ws"
    ws.mkdir()
    for name in ("pixi.toml", "pixi.lock"):
        shutil.copyfile(REAL_WORLD / name, ws / name)
    assert main(["inspect", str(ws)]) == 0
    assert "lock:      version 6" in capsys.readouterr().out
    assert main(["inspect", str(ws), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["result"]["lock_version"] == 6


# ---------------------------------------------------------------- the stand-in, without Docker


def test_version_prints_like_pixi(small: Path) -> None:
    for version in (PIXI_VERSION, OLD_PIXI_VERSION):
        done = run_standin(small, "--version", emulates=version)
        assert (done.returncode, done.stdout) == (0, f"pixi {version}\n")


@pytest.mark.parametrize("frozen", [False, True])
def test_old_pixi_refuses_a_v7_lock_with_its_own_message(small: Path, frozen: bool) -> None:
    write_lock(small, 7)
    done = run_standin(small, "install", "--frozen" if frozen else "--locked", emulates="0.55.0")
    assert done.returncode == 1
    assert f"Failed to load lock file from `{small / 'pixi.lock'}`" in done.stderr
    assert (
        "The lock file version is 7, but only up to including version 6 is supported by the current version."
    ) in done.stderr
    assert "Please update pixi to the latest version and try again." in done.stderr


def test_pixi_067_refuses_a_v7_lock_with_its_own_message(small: Path) -> None:
    write_lock(small, 7)
    done = run_standin(small, "install", "--locked", emulates="0.67.2")
    assert done.returncode == 1
    assert "Lock-file version 7 is newer than supported" in done.stderr
    assert "Maximum supported version: 6 (pixi v0.67.2)" in done.stderr


def test_shell_hook_refuses_a_v7_lock_on_an_old_pixi(small: Path) -> None:
    write_lock(small, 7)
    done = run_standin(small, "shell-hook", emulates="0.55.0")
    assert done.returncode == 1 and "only up to including version 6" in done.stderr


@pytest.mark.parametrize("shell", ["zsh", "fish", "powershell", "nushell"])
def test_shells_it_does_not_emulate_are_refused(small: Path, shell: str) -> None:
    done = run_standin(small, "shell-hook", "-s", shell)
    assert done.returncode == 2 and done.stdout == ""
    assert f"emulates `shell-hook` for bash only, not '{shell}'" in done.stderr


def test_unknown_shell_is_a_usage_error_as_in_pixi(small: Path) -> None:
    done = run_standin(small, "shell-hook", "--shell", "tcsh")
    assert done.returncode == 2 and done.stdout == ""
    assert "invalid value 'tcsh' for '--shell <SHELL>'" in done.stderr


def test_install_needs_locked_or_frozen(small: Path) -> None:
    done = run_standin(small, "install")
    assert done.returncode == 2 and "pass --locked or --frozen" in done.stderr


def _lab_copy(tmp_path: Path, legacy: bool = False) -> Path:
    """The lab's workspace manifest (channels and platforms as the lab locks them; `legacy`: in
    the `[system-requirements]` form a pixi older than 0.71 reads)."""
    ws = tmp_path / "lab"
    ws.mkdir()
    text = lab_manifest(EXAMPLE_MANIFEST.read_text())
    (ws / "pixi.toml").write_text(legacy_manifest(text) if legacy else text)
    return ws


def _locked(ws: Path, emulates: str | None = None) -> None:
    """Lock `ws` with the lab's own locker, against a tiny channel made here when the lab's
    channel is absent: the checks before the install only read the lock."""
    from tests.lab.workspace import _lock, default_cache

    channel = default_cache() / "channel"
    need(
        (channel / "noarch" / "repodata.json").exists(),
        f"the lab channel is not built ({channel}): run tests/lab/provision.sh",
    )
    import asyncio

    emulated = pixi_standin.Emulated(emulates) if emulates else None
    asyncio.run(_lock(pixi_standin.Workspace(ws / "pixi.toml", emulated), channel, ws / "pixi.lock"))


def _reasons(ws: Path, env: str) -> list[str]:
    from rattler import LockFile

    lock = LockFile.from_path(ws / "pixi.lock")
    return pixi_standin.out_of_date_reasons(
        pixi_standin.Workspace(ws / "pixi.toml"), env, lock.environment(env)
    )


def test_locked_lab_lock_is_up_to_date(tmp_path: Path) -> None:
    ws = _lab_copy(tmp_path)
    _locked(ws)
    assert [_reasons(ws, env) for env in ("default", "cpu", "gpu")] == [[], [], []]


@pytest.mark.parametrize(
    "edit,reason",
    [
        (
            lambda t: t.replace(
                'channels = ["file:///opt/kit-lab/channel"]',
                'channels = ["file:///opt/kit-lab/channel", "conda-forge"]',
            ),
            "channels were extended with additional lower-priority channels",
        ),
        (
            lambda t: t.replace('channels = ["file:///opt/kit-lab/channel"]', 'channels = ["conda-forge"]'),
            "the channels in the lock file do not match the environments channels",
        ),
        (
            lambda t: t.replace(
                'platforms = ["linux-64", {', 'platforms = ["linux-64", "osx-arm64", {'
            ).replace('platforms = ["linux-64"]', 'platforms = ["linux-64", "osx-arm64"]'),
            # a platform the lock lacks has no packages (pixi reads it so): its requirements fail
            "for platform 'osx-arm64': the requirement",
        ),
        (
            lambda t: t + '\n[feature.cpu.pypi-dependencies]\nrequests = ">=2"\n',
            "the requirement 'requests' could not be satisfied (required by 'cpu')",
        ),
        (
            lambda t: t.replace('pytorch-cpu = ">=2.5"', 'pytorch-cpu = ">=3"'),
            "the requirement 'pytorch-cpu >=3' could not be satisfied",
        ),
    ],
)
def test_locked_refuses_an_out_of_date_lock(tmp_path: Path, edit: object, reason: str) -> None:
    ws = _lab_copy(tmp_path)
    _locked(ws)
    manifest = ws / "pixi.toml"
    manifest.write_text(edit(manifest.read_text()))  # type: ignore[operator]
    reasons = _reasons(ws, "cpu")
    assert any(reason in r for r in reasons), reasons
    done = run_standin(ws, "install", "--locked", "-e", "cpu")
    assert done.returncode == 1
    assert "Error:   \u00d7 lock file not up-to-date with the workspace" in done.stderr
    manifest.write_text(legacy_manifest(manifest.read_text()))  # what 0.69 reads; its lock has p1
    old = run_standin(ws, "install", "--locked", "-e", "gpu", emulates="0.69.0")
    assert "lock-file not up-to-date with the workspace" in old.stderr  # the older wording


def test_system_requirements_merge_as_pixi_does(tmp_path: Path) -> None:
    """The union over the environment's features and its solve group; the highest version wins."""
    (tmp_path / "pixi.toml").write_text("""
[workspace]
name = "sysreq"
channels = ["conda-forge"]
platforms = ["linux-64"]

[system-requirements]
cuda = "12.4"
libc = { family = "glibc", version = "2.28" }

[feature.old.system-requirements]
cuda = "11.8"
linux = "5.10"

[feature.new.system-requirements]
cuda = "12.9"
libc = "2.34"

[feature.musl.system-requirements]
libc = { family = "musl", version = "1.2" }

[environments]
old = ["old"]
bare = { features = ["old"], no-default-feature = true }
new = ["new"]
grouped = { features = ["old"], solve-group = "g" }
partner = { features = ["new"], solve-group = "g" }
clash = ["musl"]
""")
    ws = pixi_standin.Workspace(tmp_path / "pixi.toml")
    assert ws.system_requirements("default") == {"cuda": "12.4", "libc": "2.28"}
    assert ws.system_requirements("old") == {"cuda": "12.4", "linux": "5.10", "libc": "2.28"}
    assert ws.system_requirements("bare") == {"cuda": "11.8", "linux": "5.10"}
    assert ws.system_requirements("new") == {"cuda": "12.9", "libc": "2.34"}
    assert ws.system_requirements("grouped") == {"cuda": "12.9", "linux": "5.10", "libc": "2.34"}
    with pytest.raises(SystemExit):
        ws.system_requirements("clash")


def test_pyproject_manifest_is_read_as_pixi_reads_it(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("""
[project]
name = "my-project"
version = "1.2.0"
requires-python = ">=3.11"
dependencies = ["rich>=13"]

[project.optional-dependencies]
test = ["pytest"]

[tool.pixi.workspace]
channels = ["conda-forge"]
platforms = ["linux-64"]

[tool.pixi.pypi-dependencies]
my-project = { path = ".", editable = true }

[tool.pixi.environments]
test = ["test"]
""")
    (tmp_path / "pixi.toml").unlink(missing_ok=True)
    found = pixi_standin.find_manifest(str(tmp_path))
    assert found == tmp_path / "pyproject.toml"
    ws = pixi_standin.Workspace(found)
    assert (ws.name, ws.version) == ("my-project", "1.2.0")
    assert ws.dependencies("default") == {"python": "python >=3.11"}
    assert ws.pypi_dependencies("test") == {
        "rich": ">=13",
        "my-project": {"path": ".", "editable": True},
        "pytest": "*",
    }


def test_a_pyproject_without_tool_pixi_is_not_a_workspace(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert pixi_standin.find_manifest(str(tmp_path)) is None


# ---------------------------------------------------------------- v6 locks written by the lab


def test_v6_lock_reads_back_and_has_the_real_v6_shape(tmp_path: Path) -> None:
    import yaml
    from rattler import LockFile

    ws = _lab_copy(tmp_path, legacy=True)
    _locked(ws, SUBDIR_LAYOUT_PIXI)  # the layout pixi <= 0.70 writes, which format 6 has too
    v7 = (ws / "pixi.lock").read_text()
    (ws / "pixi.lock").write_text(to_v6(v7))
    v6 = yaml.safe_load((ws / "pixi.lock").read_text())
    assert list(v6) == ["version", "environments", "packages"] and v6["version"] == 6
    need((REAL_WORLD / "pixi.lock").exists(), f"real-world fixture absent: {REAL_WORLD}")
    real = yaml.safe_load((REAL_WORLD / "pixi.lock").read_text())
    assert list(real) == list(v6)
    real_keys = {k for p in real["packages"] for k in p} | {"subdir"}  # subdir: beside a bare path
    assert {k for p in v6["packages"] for k in p} <= real_keys
    assert {k for e in v6["environments"].values() for k in e} <= {
        k for e in real["environments"].values() for k in e
    }
    (ws / "v7.lock").write_text(v7)
    old, new = LockFile.from_path(ws / "pixi.lock"), LockFile.from_path(ws / "v7.lock")
    for env in ("default", "cpu", "gpu"):
        a, b = old.environment(env), new.environment(env)
        assert [str(r) for r in a.conda_repodata_records_for_platform(a.platforms()[0])] == [
            str(r) for r in b.conda_repodata_records_for_platform(b.platforms()[0])
        ]
    assert _reasons(ws, "gpu") == []


# ---------------------------------------------------------------- each lock against each pin, in Docker


def _image_present(lab: LabSettings, image: str) -> bool:
    return (
        subprocess.run([lab.docker, "image", "inspect", image], capture_output=True, timeout=30).returncode
        == 0
    )


def _install(lab: LabSettings, image: str, ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            lab.docker,
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            f"{ws}:/w",
            "-w",
            "/w",
            image,
            "bash",
            "-c",
            " ".join(args),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def images(lab: LabSettings) -> dict[str, str]:
    need(lab.mode == "offline", "the stand-in images are the offline lab's")
    found = standin_images()
    for image in found.values():
        need(_image_present(lab, image), f"image {image} missing: run tests/lab/provision.sh")
    return found


@pytest.mark.docker
@pytest.mark.parametrize(
    "lock_format,pin,installs",
    [
        (6, OLD_PIXI_VERSION, True),
        (6, PIXI_VERSION, True),
        (7, PIXI_VERSION, True),
        (7, OLD_PIXI_VERSION, False),
    ],
)
def test_each_lock_against_each_pin(
    lab: LabSettings, images: dict[str, str], tmp_path: Path, lock_format: int, pin: str, installs: bool
) -> None:
    from tests.lab.workspace import hello_workspace

    ws = hello_workspace(tmp_path / "ws")  # locked in format 7, by rattler
    if lock_format == 6:
        (ws / "pixi.lock").write_text(to_v6((ws / "pixi.lock").read_text()))
    assert (ws / "pixi.lock").read_text().startswith(f"version: {lock_format}\n")
    done = _install(lab, images[pin], ws, 'pixi install --locked && eval "$(pixi shell-hook)" && kit-hello')
    if installs:
        assert done.returncode == 0, done.stderr
        assert ("older format (v6)" in done.stderr) == (lock_format == 6 and pin == PIXI_VERSION)
    else:
        assert done.returncode == 1
        assert (
            "The lock file version is 7, but only up to including version 6 is supported by "
            "the current version."
        ) in done.stderr
        assert not (ws / ".pixi" / "envs" / "default" / "conda-meta").exists()


@pytest.mark.docker
def test_v6_torch_workspace_installs_with_the_pin(
    lab: LabSettings, images: dict[str, str], tmp_path: Path
) -> None:
    from tests.lab.workspace import lab_workspace

    ws = lab_workspace(tmp_path / "ws", lock_format=6)
    done = _install(
        lab,
        images[PIXI_VERSION],
        ws,
        "CONDA_OVERRIDE_CUDA=12.9 pixi install --locked -e gpu && "
        "eval \"$(pixi shell-hook -e gpu)\" && python -c 'import torch; print(torch.__version__)'",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "2.13.0+cpu"


@pytest.mark.docker
def test_gpu_environment_needs_cuda_in_both_pins(
    lab: LabSettings, images: dict[str, str], tmp_path: Path
) -> None:
    from tests.lab.workspace import lab_workspace

    ws = lab_workspace(tmp_path / "ws", lock_format=6)  # [system-requirements] cuda = "12"
    old = _install(lab, images[OLD_PIXI_VERSION], ws, "pixi install --frozen -e gpu")
    assert old.returncode == 1 and "CONDA_OVERRIDE_CUDA=12" in old.stderr
    # pixi 0.71+ moves the requirement onto the platform: on this machine, without a driver, no
    # platform of gpu matches (install falls back to what the lab's packages need: none).
    new = _install(lab, images[PIXI_VERSION], ws, "pixi list -e gpu")
    assert new.returncode == 1
    assert "no platform supported by environment 'gpu' matches the current system" in new.stderr


@pytest.mark.docker
def test_the_pin_installs_the_p1_lock_of_the_example_with_the_override(
    lab: LabSettings, images: dict[str, str], tmp_path: Path
) -> None:
    from tests.lab.workspace import lab_workspace

    ws = lab_workspace(tmp_path / "ws")  # rich platforms, locked as pixi 0.71+ writes it
    assert "- name: p1\n" in (ws / "pixi.lock").read_text()
    done = _install(
        lab,
        images[PIXI_VERSION],
        ws,
        "CONDA_OVERRIDE_CUDA=12 pixi install --locked -e gpu && CONDA_OVERRIDE_CUDA=12 pixi list -e gpu "
        "&& pixi install --locked -e cpu && eval \"$(pixi shell-hook -e gpu)\" && python -c 'import torch; print(torch.__version__)'",
    )
    assert done.returncode == 0, done.stderr
    assert "pytorch-gpu" in done.stdout and done.stdout.strip().splitlines()[-1] == "2.13.0+cpu"
    old = _install(lab, images[OLD_PIXI_VERSION], ws, "pixi install --locked -e cpu")
    assert old.returncode == 1 and "expected a string, found table" in old.stderr


@pytest.mark.docker
def test_pyproject_workspace_installs_the_project_editable(
    lab: LabSettings, images: dict[str, str], tmp_path: Path
) -> None:
    from tests.lab.workspace import pyproject_workspace

    ws = pyproject_workspace(tmp_path / "ws")
    assert not (ws / "pixi.toml").exists()
    done = _install(
        lab,
        images[PIXI_VERSION],
        ws,
        'pixi install --locked && eval "$(pixi shell-hook)" && '
        "python -c 'import kit_pyproject; print(kit_pyproject.GREETING)' && "
        'echo "$PIXI_PROJECT_NAME"',
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-4:] == ["hello", "from", "kit-pyproject", "kit-pyproject"]
    # an edit to the source shows without reinstalling: the install is editable
    (ws / "src" / "kit_pyproject" / "__init__.py").write_text('GREETING = "edited"\n')
    again = _install(
        lab,
        images[PIXI_VERSION],
        ws,
        "eval \"$(pixi shell-hook)\" && python -c 'import kit_pyproject; print(kit_pyproject.GREETING)'",
    )
    assert again.returncode == 0 and again.stdout.strip().endswith("edited"), again.stderr


@pytest.mark.docker
def test_the_image_declares_what_it_emulates(
    lab: LabSettings, images: dict[str, str], tmp_path: Path
) -> None:
    for version, image in images.items():
        done = _install(lab, image, tmp_path, "pixi --version && pixi info")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == f"pixi {version}" and "STAND-IN" in lines[1]

"""The lab's stand-in emulates pixi 0.71+ (the kit's pin): rich platforms, locks keyed `p1`, ...,
the host's virtual packages (with CONDA_OVERRIDE_CUDA), TOML 1.1; and refuses them as 0.70 does.

Why: the lab builds every image on the stand-in. A stand-in that installs a CUDA platform on a
machine without a driver, or reads a rich manifest an old pin cannot, would let the lab pass
recipes that fail for users (issue 16). The tests run the stand-in with the host's Python
(`PIXI_STANDIN_EMULATES` picks the version) and stop before anything is installed, so they need
no Docker; they need the lab's channel to lock against (tests/lab/provision.sh).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLE, need

from kit.decide.options import PIXI_VERSION
from tests.lab import pixi_standin
from tests.lab.workspace import _lock, default_cache, lab_manifest, legacy_manifest

STANDIN = Path(pixi_standin.__file__)
SHAPES = Path(__file__).parent / "fixtures" / "pixi-shapes"
OLD_LAYOUT_PIXI = "0.70.2"  # the newest pixi without rich platforms


def run_standin(
    cwd: Path, *args: str, emulates: str = PIXI_VERSION, cuda: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDA_OVERRIDE_")}
    env["PIXI_STANDIN_EMULATES"] = emulates
    if cuda is not None:
        env["CONDA_OVERRIDE_CUDA"] = cuda
    return subprocess.run(
        [sys.executable, str(STANDIN), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def locked_example(tmp_path: Path, *, legacy: bool = False, emulates: str = PIXI_VERSION) -> Path:
    """The lab copy of the example (rich platforms; `legacy`: the `[system-requirements]` form),
    locked by the lab as pixi `emulates` writes a lock."""
    channel = default_cache() / "channel"
    need(
        (channel / "noarch" / "repodata.json").exists(),
        f"the lab channel is not built ({channel}): run tests/lab/provision.sh",
    )
    ws = tmp_path / "lab"
    ws.mkdir()
    text = lab_manifest((EXAMPLE / "pixi.toml").read_text())
    (ws / "pixi.toml").write_text(legacy_manifest(text) if legacy else text)
    workspace = pixi_standin.Workspace(ws / "pixi.toml", pixi_standin.Emulated(emulates))
    asyncio.run(_lock(workspace, channel, ws / "pixi.lock"))
    return ws


def reasons(ws: Path, emulates: str = PIXI_VERSION) -> dict[str, list[str]]:
    from rattler import LockFile

    workspace = pixi_standin.Workspace(ws / "pixi.toml", pixi_standin.Emulated(emulates))
    lock = LockFile.from_path(ws / "pixi.lock")
    return {
        env: pixi_standin.out_of_date_reasons(workspace, env, lock.environment(env))
        for env in workspace.environments
    }


# ---------------------------------------------------------------- the manifest


def test_the_pin_reads_rich_platforms_and_0_70_refuses_them(tmp_path: Path) -> None:
    ws = pixi_standin.Workspace(EXAMPLE / "pixi.toml", pixi_standin.Emulated(PIXI_VERSION))
    assert [(p.name, p.subdir, p.declared) for p in ws.platform_entries] == [
        ("linux-64", "linux-64", {}),
        ("cuda-linux-64", "linux-64", {"__cuda": "12"}),
        ("osx-arm64", "osx-arm64", {}),
    ]
    assert (ws.env_platforms("gpu"), ws.env_platforms("cpu")) == (
        ["cuda-linux-64"],
        ["linux-64", "osx-arm64"],
    )
    done = run_standin(EXAMPLE, "info", emulates=OLD_LAYOUT_PIXI)
    assert done.returncode == 1
    assert (
        f"failed to parse {EXAMPLE / 'pixi.toml'}" in done.stderr
        and "expected a string, found table" in done.stderr
    )


def test_derived_names_are_pixis() -> None:
    ws = pixi_standin.Workspace(SHAPES / "rich-platforms" / "pixi.toml", pixi_standin.Emulated(PIXI_VERSION))
    assert ws.platforms == ["linux-64", "cuda-linux-64", "osx-arm64-macos-13-5"]


def test_toml_1_1_reads_from_pixi_0_73(tmp_path: Path) -> None:
    manifest = SHAPES / "toml-1-1" / "pixi.toml"
    assert pixi_standin.Workspace(manifest, pixi_standin.Emulated("0.73.0")).name == "toml-one-one"
    done = run_standin(manifest.parent, "info", emulates="0.72.2")
    assert done.returncode == 1 and f"failed to parse {manifest}" in done.stderr


# ---------------------------------------------------------------- the lock


def test_the_lab_locks_as_the_pin_writes_p1_for_the_cuda_platform(tmp_path: Path) -> None:
    ws = locked_example(tmp_path)
    lock = yaml.safe_load((ws / "pixi.lock").read_text())
    assert lock["platforms"] == [
        {"name": "linux-64"},
        {
            "name": "p1",
            "subdir": "linux-64",
            "virtual-packages": [
                "__cuda=12",
                "__unix=0=0",
                "__linux=4.18",
                "__glibc=2.28",
                "__archspec=0=x86_64",
            ],
        },
    ]
    assert {env: sorted(e["packages"]) for env, e in lock["environments"].items()} == {
        "cpu": ["linux-64"],
        "default": ["linux-64", "p1"],
        "gpu": ["p1"],
    }
    assert reasons(ws) == {"default": [], "cpu": [], "gpu": []}


def test_a_0_70_lock_of_the_legacy_form_stays_subdir_named_and_the_pin_reads_it(tmp_path: Path) -> None:
    ws = locked_example(tmp_path, legacy=True, emulates=OLD_LAYOUT_PIXI)
    lock = yaml.safe_load((ws / "pixi.lock").read_text())
    assert lock["platforms"] == [{"name": "linux-64"}]
    assert reasons(ws, OLD_LAYOUT_PIXI) == {"default": [], "cpu": [], "gpu": []}
    assert reasons(ws) == {"default": [], "cpu": [], "gpu": []}


def test_0_70_cannot_find_the_platforms_of_a_p1_lock(tmp_path: Path) -> None:
    ws = locked_example(tmp_path, legacy=True)  # [system-requirements]: 0.71+ writes p1 for gpu
    assert "p1" in yaml.safe_load((ws / "pixi.lock").read_text())["environments"]["gpu"]["packages"]
    assert reasons(ws, OLD_LAYOUT_PIXI)["gpu"] == [
        "environment 'gpu' is out of date because platform(s) 'p1' present in the lock file but not in the environment"
    ]
    done = run_standin(ws, "install", "--locked", "-e", "gpu", emulates=OLD_LAYOUT_PIXI, cuda="12.9")
    assert done.returncode == 1 and "lock file not up-to-date with the workspace" in done.stderr


# ---------------------------------------------------------------- the host's virtual packages


@pytest.mark.parametrize(
    ("cuda", "gpu"),
    [(None, None), ("", None), ("11.8", None), ("12.0", "cuda-linux-64"), ("12.9", "cuda-linux-64")],
)
def test_a_platform_is_chosen_by_the_hosts_virtual_packages(
    monkeypatch: pytest.MonkeyPatch, cuda: str | None, gpu: str | None
) -> None:
    """CONDA_OVERRIDE_CUDA stands for the driver (an empty one removes `__cuda`); this machine
    has no GPU, so without it no CUDA platform is the host's."""
    monkeypatch.delenv("CONDA_OVERRIDE_CUDA", raising=False)
    if cuda is not None:
        monkeypatch.setenv("CONDA_OVERRIDE_CUDA", cuda)
    ws = pixi_standin.Workspace(EXAMPLE / "pixi.toml", pixi_standin.Emulated(PIXI_VERSION))
    chosen = {
        env: getattr(pixi_standin.best_declared_platform(ws, env), "name", None) for env in ("cpu", "gpu")
    }
    assert chosen == {"cpu": "linux-64", "gpu": gpu}


def test_list_refuses_a_cuda_platform_without_a_driver_in_pixis_words(tmp_path: Path) -> None:
    ws = locked_example(tmp_path)
    done = run_standin(ws, "list", "-e", "gpu")
    assert done.returncode == 1
    assert (
        done.stderr
        == "Error:   \u00d7 no platform supported by environment 'gpu' matches the current system\n"
    )
    listed = run_standin(ws, "list", "-e", "gpu", cuda="12")
    assert listed.returncode == 0 and "pytorch-gpu" in listed.stdout, listed.stderr


def test_install_refuses_when_the_locked_packages_need_the_missing_driver(tmp_path: Path) -> None:
    """pixi 0.71+ falls back to what the locked packages `depends` on; conda-forge's CUDA builds
    depend on `__cuda`, so without a driver (or CONDA_OVERRIDE_CUDA) the install stops."""
    ws = locked_example(tmp_path)
    lock = yaml.safe_load((ws / "pixi.lock").read_text())
    for package in lock["packages"]:
        if "/pytorch-gpu-" in package.get("conda", ""):
            package["depends"] = [*package.get("depends", []), "__cuda >=12"]
    (ws / "pixi.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    done = run_standin(ws, "install", "--locked", "-e", "gpu")
    assert done.returncode == 1
    assert done.stderr.startswith("Error:   \u00d7 Cannot install environment 'gpu'\n")
    for line in (
        "the environment 'gpu' does not support 'linux-64' on this machine.",
        "  - cuda-linux-64 (subdir linux-64): missing virtual packages: __cuda >= 12",
        "Unsatisfied requirements: __cuda >= 12",
        "help: Mock the missing virtual packages via the environment, e.g.:",
        "  CONDA_OVERRIDE_CUDA=12",
    ):
        assert line in done.stderr, done.stderr
    assert not (ws / ".pixi" / "envs" / "gpu").exists()


def test_install_without_a_driver_continues_when_no_locked_package_needs_it(tmp_path: Path) -> None:
    """The lab's packages depend on no `__cuda` (its PyTorch is the CPU build), so pixi's
    minimum-compatible fallback takes the CUDA platform, with pixi's warning; the install then
    goes on (and here, outside the image, stops at the channel's path, which only the image has)."""
    ws = locked_example(tmp_path)
    done = run_standin(ws, "install", "--locked", "-e", "gpu")
    assert (
        "The current machine is not one of the platforms declared for environment 'gpu', but the "
        "resolved dependencies are compatible with it, continuing."
    ) in done.stderr
    assert "Cannot install environment" not in done.stderr

"""Reading manifests and locks: pixi.toml and pyproject, [workspace] and [project], features."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.base.errors import WorkspaceError
from kit.model.workspace import load_workspace


def write(dir_: Path, name: str, text: str) -> Path:
    dir_.mkdir(parents=True, exist_ok=True)
    (dir_ / name).write_text(text)
    return dir_


def test_real_world_environments_and_cuda(real_world: Path) -> None:
    ws = load_workspace(real_world)
    assert set(ws.environments) == {"default", "cpu", "gpu", "inference", "cpu-jax", "gpu-jax"}
    assert ws.environments["gpu"].cuda == "12"
    assert ws.environments["inference"].cuda == "12"
    assert ws.environments["gpu-jax"].cuda == "12.6"
    assert ws.environments["cpu"].cuda is None
    assert ws.lock is not None and ws.lock.version == 6
    assert all(ws.is_locked_for_linux(name) for name in ws.environments)


def test_real_world_image_naming_versions(real_world: Path) -> None:
    gpu = load_workspace(real_world).locked("gpu")
    assert gpu is not None
    assert gpu.key_packages["pytorch"].build.startswith("cuda129")
    assert gpu.key_packages["cuda-version"].version == "12.9"
    assert gpu.key_packages["python"].version == "3.13.7"
    assert gpu.package_count["linux-64"] == 120


def test_example_has_no_lock_and_warns() -> None:
    from conftest import EXAMPLE

    ws = load_workspace(EXAMPLE)
    assert ws.lock is None
    assert any("no lock file" in w for w in ws.warnings)
    assert ws.environments["gpu"].cuda == "12"
    assert ws.container_environments == ("cpu", "gpu")


def test_pyproject_manifest_and_project_table(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pyproject.toml",
        """
[project]
name = "pkg"
[tool.pixi.project]
channels = ["conda-forge"]
platforms = ["linux-64"]
[tool.pixi.system-requirements]
cuda = "11.8"
[tool.pixi.feature.new.system-requirements]
cuda = "12.4"
[tool.pixi.environments]
new = { features = ["new"], solve-group = "x" }
bare = { features = [], no-default-feature = true }
""",
    )
    ws = load_workspace(tmp_path)
    assert ws.manifest_path.name == "pyproject.toml"
    assert ws.environments["default"].cuda == "11.8"
    assert ws.environments["new"].cuda == "12.4"  # the highest requirement wins
    assert ws.environments["bare"].cuda is None


@pytest.mark.parametrize(
    "text,field",
    [
        ("[workspace\nname='x'", "toml"),
        ("[dependencies]\npython='*'\n", "workspace"),
        ("[workspace]\nname='x'\nchannels='conda-forge'\n", "workspace.channels"),
        ("[workspace]\nname='x'\n[environments]\ngpu=['nope']\n", "environments.gpu"),
        ("[workspace]\nname='x'\n[environments]\n'Bad Name'=[]\n", "environments.Bad Name"),
    ],
)
def test_bad_manifests_name_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    write(tmp_path, "pixi.toml", text)
    with pytest.raises(WorkspaceError) as info:
        load_workspace(tmp_path)
    assert info.value.field == field
    assert "pixi.toml" in str(info.value) and "fix:" in str(info.value)


@pytest.mark.parametrize(
    "lock,expect",
    [
        ("version: 99\nenvironments: {}\npackages: []\n", "newer lockfile format version 99"),
        ("version: 6\nenvironments: [\n", "cannot be read"),
        ("hello\n", "version"),
    ],
)
def test_bad_locks(tmp_path: Path, lock: str, expect: str) -> None:
    from conftest import EXAMPLE

    write(tmp_path, "pixi.toml", (EXAMPLE / "pixi.toml").read_text())
    write(tmp_path, "pixi.lock", lock)
    with pytest.raises(WorkspaceError) as info:
        load_workspace(tmp_path)
    assert "pixi.lock" in str(info.value) and expect in str(info.value)


def test_empty_and_missing_directories(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="no pixi.toml"):
        load_workspace(tmp_path)
    with pytest.raises(WorkspaceError, match="not a readable directory"):
        load_workspace(tmp_path / "absent")

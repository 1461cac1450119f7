"""kit.model.sources, called directly: whether an environment installs the workspace's own project
(a PyPI dependency with `path = "."`), and which of the project's files the install needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.model.sources import installs_project, project_sources
from kit.model.workspace import Workspace, load_workspace

PIXI_TOML = """[workspace]
name = "demo"
channels = ["conda-forge"]
platforms = ["linux-64"]

[dependencies]
python = "3.12.*"
{default}
[feature.gpu.dependencies]
pytorch-gpu = "*"
{gpu}
[environments]
cpu = []
gpu = ["gpu"]
"""


def workspace(root: Path, default: str = "", gpu: str = "") -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pixi.toml").write_text(PIXI_TOML.format(default=default, gpu=gpu))
    return load_workspace(root)


def pyproject(root: Path, project: str) -> Workspace:
    """A pyproject.toml workspace whose `[project]` table is `project`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f"[project]\n{project}\n"
        '[tool.pixi.workspace]\nchannels = ["conda-forge"]\nplatforms = ["linux-64"]\n'
        '[tool.pixi.pypi-dependencies]\ndemo-pkg = { path = ".", editable = true }\n'
    )
    return load_workspace(root)


@pytest.mark.parametrize(
    "spec",
    [
        '{ path = "." }',
        '{ path = ".", editable = true }',
        '{ path = "./" }',
        '{ path = "" }',
    ],
)
def test_a_path_dependency_on_the_workspace_itself(tmp_path: Path, spec: str) -> None:
    ws = workspace(tmp_path / "ws", default=f"[pypi-dependencies]\ndemo = {spec}\n")
    assert installs_project(ws, ("cpu",)) and installs_project(ws, ("gpu",))


@pytest.mark.parametrize(
    "spec",
    [
        '{ path = "src/other" }',
        '{ path = "../demo" }',
        '{ git = "https://example.org/demo.git" }',
        '">=1.0"',
        '{ version = ">=1.0" }',
    ],
)
def test_other_dependencies_are_not_the_project(tmp_path: Path, spec: str) -> None:
    ws = workspace(tmp_path / "ws", default=f"[pypi-dependencies]\ndemo = {spec}\n")
    assert not installs_project(ws, ("cpu", "gpu"))


def test_only_the_environments_whose_features_install_it(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", gpu='[feature.gpu.pypi-dependencies]\ndemo = { path = "." }\n')
    assert installs_project(ws, ("gpu",)) and installs_project(ws, ("cpu", "gpu"))
    assert not installs_project(ws, ("cpu",))


def test_a_platform_target_counts(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path / "ws", gpu='[feature.gpu.target.linux-64.pypi-dependencies]\ndemo = { path = "." }\n'
    )
    assert installs_project(ws, ("gpu",)) and not installs_project(ws, ("cpu",))


def test_a_pyproject_workspace(tmp_path: Path) -> None:
    ws = pyproject(tmp_path / "ws", 'name = "demo-pkg"')
    assert installs_project(ws, ("default",))


def test_src_layout(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "src" / "demo_pkg").mkdir(parents=True)
    (root / "demo_pkg").mkdir()  # a package folder beside src/ is not taken: src/ is the layout
    (root / "demo_pkg" / "__init__.py").write_text("")
    (root / "README.md").write_text("# demo\n")
    (root / "setup.cfg").write_text("[metadata]\n")
    ws = pyproject(root, 'name = "demo-pkg"\nreadme = "README.md"')
    assert project_sources(ws, "app") == ("README.md", "setup.cfg", "src/")


def test_flat_layout(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    for folder in ("demo_pkg", "helpers", "app", "tests", "docs", ".hidden", "build", "data"):
        (root / folder).mkdir(parents=True)
        if folder != "data":  # a folder without __init__.py is not a package
            (root / folder / "__init__.py").write_text("")
    (root / "linked").symlink_to(root / "helpers")
    (root / "demo_pkg.py").write_text("")
    for name in ("setup.py", "MANIFEST.in", "LICENSE.txt"):
        (root / name).write_text("x\n")
    ws = pyproject(root, 'name = "Demo-Pkg"\nlicense = { file = "LICENSE.txt" }')
    assert project_sources(ws, "app") == (
        "LICENSE.txt",
        "MANIFEST.in",
        "demo_pkg.py",
        "demo_pkg/",
        "helpers/",
        "setup.py",
    )


def test_the_application_folder_is_left_to_the_app_stage(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "code").mkdir(parents=True)
    (root / "code" / "__init__.py").write_text("")
    ws = pyproject(root, 'name = "demo-pkg"')
    assert project_sources(ws, "code") == ()
    assert project_sources(ws, "app") == ("code/",)


@pytest.mark.parametrize(
    "project",
    [
        'name = "demo-pkg"\nreadme = "docs/README.md"',  # not at the top: not taken
        'name = "demo-pkg"\nreadme = "MISSING.md"',
        'name = "demo-pkg"\nlicense = "MIT"',  # a licence name, not a file
        'name = "demo-pkg"\nreadme = { file = "docs/README.md" }',
    ],
)
def test_named_files_that_are_not_taken(tmp_path: Path, project: str) -> None:
    root = tmp_path / "ws"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "README.md").write_text("# demo\n")
    (root / "MIT").write_text("x\n")
    assert project_sources(pyproject(root, project), "app") == ()


def test_readme_as_a_table(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "README.rst").write_text("demo\n")
    ws = pyproject(root, 'name = "demo-pkg"\nreadme = { file = "README.rst", content-type = "text/x-rst" }')
    assert project_sources(ws, "app") == ("README.rst",)

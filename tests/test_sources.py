"""kit.model.sources, called directly: whether an environment installs the workspace's own project
(a PyPI dependency with `path = "."`), and which of the project's files the install needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.base.errors import OptionsError
from kit.decide.options import RenderOptions
from kit.model.discover import find_workspaces
from kit.model.sources import (
    build_sources,
    installs_project,
    manifest_paths,
    package_manifest_paths,
    project_sources,
)
from kit.model.workspace import Workspace, load_workspace
from kit.output.render import render

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


# -- paths a source package's own manifest names (pixi-build reads them too) -------------------

PACKAGE = """[package]
name = "pkg"
version = "0.1.0"

[package.build]
backend = {{ name = "pixi-build-cmake", version = "*" }}
{source}
[package.host-dependencies]
helper = {{ path = "../helper" }}

[package.target.linux-64.run-dependencies]
tool = {{ path = "../../../escape" }}
"""


def source_package(root: Path, source: str) -> Workspace:
    """A workspace depending on the source package `build/pkg`, whose manifest names its source
    folder (`source`), a host dependency `build/helper` and a run dependency outside."""
    (root / "build" / "pkg").mkdir(parents=True)
    (root / "build" / "helper").mkdir()
    (root / "build" / "helper" / "pixi.toml").write_text('[package]\nname = "helper"\nversion = "1"\n')
    (root / "build" / "pkg" / "pixi.toml").write_text(PACKAGE.format(source=source))
    (root / "code").mkdir()
    return workspace(root, default='pkg = { path = "build/pkg" }\n')


def test_a_source_packages_manifest_names_more_build_inputs(tmp_path: Path) -> None:
    ws = source_package(tmp_path / "ws", 'source = { path = "../../code" }\n')
    where = "build/pkg/pixi.toml: package"
    assert package_manifest_paths(ws.root, "build/pkg") == [
        ("code", f"{where}.build.source.path"),
        ("build/helper", f"{where}.host-dependencies.helper.path"),
        ("../escape", f"{where}.target.linux-64.run-dependencies.tool.path"),
    ]
    assert [(p, what) for p, what, _ in manifest_paths(ws, ("cpu",))] == [
        ("build/pkg", "path dependency of environment 'cpu'"),
        ("code", "path named by source package 'build/pkg'"),
        ("build/helper", "path named by source package 'build/pkg'"),
        ("../escape", "path named by source package 'build/pkg'"),
    ]


def test_a_path_outside_named_by_a_source_package_is_refused(tmp_path: Path) -> None:
    ws = source_package(tmp_path / "ws", "")
    with pytest.raises(OptionsError) as info:
        render(ws, RenderOptions())
    assert (info.value.field, info.value.fix) == (
        "build/pkg/pixi.toml: package.target.linux-64.run-dependencies.tool.path",
        "move it into the workspace folder and name it from there",
    )


def test_the_build_copies_a_source_packages_out_of_tree_source(tmp_path: Path) -> None:
    """pixi's out-of-tree-source shape: the package folder holds only the manifest; the source
    it names beside it is copied in too (and pixi-build's folder is no workspace of its own)."""
    root = tmp_path / "ws"
    ws = source_package(root, 'source = { path = "../../code" }\n')
    (root / "build" / "pkg" / "pixi.toml").write_text(
        PACKAGE.format(source='source = { path = "../../code" }\n').split("[package.target")[0]
    )
    ws = load_workspace(root)
    assert build_sources(ws, ("cpu",), "app") == ("build/helper/", "build/pkg/", "code/")
    assert find_workspaces(root) == ("",)
    files = render(ws, RenderOptions(style="optimized"))
    assert "COPY code/ ./code/" in files["Dockerfile"].text
    assert (
        "./code /app/code" not in files["apptainer.def"].text
        and "./code /app/\n" in files["apptainer.def"].text
    )


def test_a_source_package_folder_is_no_workspace_of_its_own(tmp_path: Path) -> None:
    """pixi-build packages ([package] in pixi.toml, [tool.pixi.package] in pyproject.toml) without
    a workspace table belong to the workspace above them; a folder with both is a workspace."""
    root = tmp_path / "repo"
    workspace(root)
    (root / "pkgs" / "a").mkdir(parents=True)
    (root / "pkgs" / "a" / "pixi.toml").write_text('[package]\nname = "a"\nversion = "1"\n')
    (root / "pkgs" / "b").mkdir()
    (root / "pkgs" / "b" / "pyproject.toml").write_text(
        '[project]\nname = "b"\n[tool.pixi.package]\nname = "b"\nversion = "1"\n'
    )
    (root / "pkgs" / "c").mkdir()
    (root / "pkgs" / "c" / "pixi.toml").write_text(
        '[workspace]\nchannels = ["conda-forge"]\nplatforms = ["linux-64"]\n[package]\nname = "c"\nversion = "1"\n'
    )
    assert find_workspaces(root) == ("", "pkgs/c")

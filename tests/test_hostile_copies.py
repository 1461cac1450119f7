"""Hostile input, round two, class 3 (and class 7's links): what a repository names reaches
`COPY` and `%files` lines only as one token inside the workspace folder.

A `pyproject.toml` workspace that installs itself (`path = "."`) has its project's files copied
into the image. Each name source is checked where it is read (kit.model.sources): the one right
outcome for each case is stated below: a refusal (exit 2, one line naming the file and the field)
or, for a folder that is no Python package, the folder left out of every recipe.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from hostile_helpers import LOCK, PROBE, changed, kit, named_path, one_json, one_line, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SELF = 'demo-pkg = { path = ".", editable = true }'


def pyproject_repo(
    tmp_path: Path,
    project: str,
    files: dict[str, str] | None = None,
    pixi_name: str = 'name = "demo"',
    pypi: str = SELF,
) -> Path:
    """tmp/repo: a git repository whose root is a pyproject.toml workspace that installs itself;
    tmp/outside holds a file the repository must never reach."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "pyproject.toml").write_text(
        f"[project]\n{project}\n"
        f'[tool.pixi.workspace]\n{pixi_name}\nchannels = ["conda-forge"]\nplatforms = ["linux-64"]\n'
        f"[tool.pixi.pypi-dependencies]\n{pypi}\n",
        encoding="utf-8",
    )
    (repo / "pixi.lock").write_text(LOCK)
    (repo / "app").mkdir()
    (repo / "app" / "torch_detect_GPU.py").write_text(PROBE)
    for rel, text in (files or {}).items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "evil.py").write_text("stolen = True\n")
    (outside / "__init__.py").write_text("")
    return repo


def refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, repo: Path, file: Path, field: str) -> str:
    """`kit generate` (and `--json`) exits 2 with one line naming `file` and `field`; nothing under
    tmp changes."""
    before = snapshot(tmp_path)
    run = kit(capsys, "generate", repo)
    one_line(run, 2, f"{file} [{field}]: ")
    (error,) = one_json(kit(capsys, "generate", repo, "--json"), 2)["errors"]
    assert (error["file"], error["field"]) == (str(file), field), error
    assert changed(before, snapshot(tmp_path)) == set()
    return run.err


def recipes(repo: Path) -> str:
    return (repo / "Dockerfile").read_text() + (repo / "apptainer.def").read_text()


# == [project].name beside [tool.pixi.workspace].name ============================================


@pytest.mark.parametrize("name", ["../outside/evil", "../../outside/evil", "a*b", "a b", "$x", "-x", "x/"])
def test_a_project_name_that_is_no_package_name_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    """The workspace has a name of its own, so only the build backend reads `[project].name`; a
    name no backend accepts is refused (it would name `../outside/evil.py` as the module)."""
    repo = pyproject_repo(tmp_path, f'name = "{name}"\nversion = "1"')
    (tmp_path / "outside" / "evil.py").write_text("x")
    err = refused(capsys, tmp_path, repo, repo / "pyproject.toml", "project.name")
    assert "is not a package name" in err


def test_a_module_named_after_the_project_is_copied(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo = pyproject_repo(tmp_path, 'name = "Demo.Pkg-x"\nversion = "1"', {"demo_pkg_x.py": ""})
    assert kit(capsys, "generate", repo).code == 0
    assert "COPY demo_pkg_x.py ./demo_pkg_x.py" not in recipes(repo)  # lesson style: COPY . .
    assert "./demo_pkg_x.py /app/" in (repo / "apptainer.def").read_text()


# == package folders ===============================================================================


@pytest.mark.parametrize("folder", ["*", "my pkg", "$x", "a;b", "-x", "1abc", "a-b"])
def test_a_folder_that_is_no_python_package_is_not_copied(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, folder: str
) -> None:
    """No build backend finds a package whose name is not an identifier, so the folder is not a
    source of the install: generate succeeds and no recipe names it."""
    repo = pyproject_repo(tmp_path, 'name = "demo-pkg"\nversion = "1"', {f"{folder}/__init__.py": ""})
    run = kit(capsys, "generate", repo)
    assert run.code == 0, run
    assert folder not in recipes(repo).replace("/app/", "")


def test_a_real_package_folder_is_copied(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo = pyproject_repo(tmp_path, 'name = "demo-pkg"\nversion = "1"', {"demo_pkg/__init__.py": ""})
    assert kit(capsys, "generate", repo).code == 0
    assert "./demo_pkg /app/" in (repo / "apptainer.def").read_text()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(
        alphabet=string.printable.replace("/", "").replace("\x0b", "").replace("\x0c", ""),
        min_size=1,
        max_size=12,
    )
)
def test_any_folder_name_is_copied_only_as_one_plain_token(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    """Property: whatever a package folder is called, the sources the kit copies are each one
    token of plain characters (or the folder is left out)."""
    from kit.model.sources import one_token, project_sources
    from kit.model.workspace import load_workspace

    if name.strip() in ("", ".", "..") or name != name.strip() or "\n" in name or "\r" in name:
        return
    root = pyproject_repo(tmp_path_factory.mktemp("p"), 'name = "demo-pkg"\nversion = "1"')
    try:
        (root / name).mkdir()
    except OSError:
        return
    (root / name / "__init__.py").write_text("")
    sources = project_sources(load_workspace(root), "app")
    assert all(one_token(s.rstrip("/")) for s in sources), sources
    assert (name + "/" in sources) == name.isidentifier() and name.isascii()


# == readme, license, license-files ================================================================


@pytest.mark.parametrize(
    "project,file,field",
    [
        ('readme = "READ ME.md"', "READ ME.md", "project.readme"),
        ('readme = { file = "READ$ME.md", content-type = "text/markdown" }', "READ$ME.md", "project.readme"),
        ('license = { file = "LICENSE *" }', "LICENSE *", "project.license"),
        ('license-files = ["LIC*"]', "LIC ENSE", "project.license-files"),
    ],
    ids=["readme-space", "readme-dollar", "license-star", "license-files-space"],
)
def test_a_named_file_that_needs_quoting_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, project: str, file: str, field: str
) -> None:
    """Dockerfile could quote it, a def file's %files line cannot: refused, naming the field."""
    repo = pyproject_repo(tmp_path, f'name = "demo-pkg"\nversion = "1"\n{project}', {file: "text\n"})
    err = refused(capsys, tmp_path, repo, repo / "pyproject.toml", field)
    assert repr(file) in err and "one path" in err


def test_a_readme_of_plain_characters_is_copied(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo = pyproject_repo(
        tmp_path, 'name = "demo-pkg"\nversion = "1"\nreadme = "READ_ME.md"', {"READ_ME.md": "x"}
    )
    assert kit(capsys, "generate", repo).code == 0
    assert "./READ_ME.md /app/" in (repo / "apptainer.def").read_text()


# == links and paths that leave the workspace (class 7) ============================================


def test_a_src_folder_linked_outside_the_repository_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo = pyproject_repo(tmp_path, 'name = "demo-pkg"\nversion = "1"')
    os.symlink(tmp_path / "outside", repo / "src")
    before = snapshot(tmp_path)
    run = kit(capsys, "generate", repo, "--app-dir", "")
    one_line(run, 2, f"{repo / 'src'} [context]: is a link to ")
    assert named_path(run) == repo / "src" and "outside the workspace folder" in run.err
    assert changed(before, snapshot(tmp_path)) == set()


def test_a_readme_linked_outside_the_repository_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo = pyproject_repo(tmp_path, 'name = "demo-pkg"\nversion = "1"\nreadme = "README.md"')
    os.symlink(tmp_path / "outside" / "evil.py", repo / "README.md")
    refused(capsys, tmp_path, repo, repo / "README.md", "project.readme")


def test_a_src_folder_linked_inside_the_workspace_is_copied(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo = pyproject_repo(tmp_path, 'name = "demo-pkg"\nversion = "1"', {"code/demo_pkg/__init__.py": ""})
    os.symlink("code", repo / "src")
    assert kit(capsys, "generate", repo, "--app-dir", "").code == 0
    assert "./src /app/" in (repo / "apptainer.def").read_text()


@pytest.mark.parametrize("path", ["../..", "..", "../outside", "src/../.."])
def test_an_editable_path_outside_the_workspace_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, path: str
) -> None:
    repo = pyproject_repo(
        tmp_path,
        'name = "demo-pkg"\nversion = "1"',
        pypi=f'demo-pkg = {{ path = "{path}", editable = true }}',
    )
    err = refused(capsys, tmp_path, repo, repo / "pyproject.toml", "pypi-dependencies.demo-pkg.path")
    assert "lies outside the workspace folder" in err


# == kit check: a recipe source outside the build context ===========================================


@pytest.mark.parametrize(
    "line,recipe",
    [
        ("/etc/shadow /x", "apptainer.def"),
        ("../../etc/passwd /y", "apptainer.def"),
        ("COPY ../outside/evil.py /x", "Dockerfile"),
    ],
    ids=["def-absolute", "def-dotdot", "dockerfile-dotdot"],
)
def test_check_flags_a_source_outside_the_context_and_never_advises_a_filter_for_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, line: str, recipe: str
) -> None:
    repo = pyproject_repo(tmp_path, 'name = "demo-pkg"\nversion = "1"')
    assert kit(capsys, "generate", repo).code == 0
    text = (repo / recipe).read_text()
    if recipe == "apptainer.def":
        text = text.replace("%files\n", f"%files\n{line}\n", 1)
    else:
        text = text.replace("WORKDIR /app\n", f"WORKDIR /app\n{line}\n", 1)
    (repo / recipe).write_text(text)
    run = kit(capsys, "check", repo, "--json")
    found = run.json["result"]["findings"]  # type: ignore[index]
    source = line.removeprefix("COPY ").split()[0]
    outside = [f for f in found if source in f["message"]]
    assert [(f["rule"], f["severity"], f["file"]) for f in outside] == [("copy-outside", "error", recipe)], (
        found
    )
    assert run.code == 1

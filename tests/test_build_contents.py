"""Everything a build needs gets into the build, proven by building it (issue 16, item 5).

pixi reads more than the manifest and the lock at install and activation time: the manifest's
`[activation] scripts` (sourced by `pixi shell-hook`, which writes the image's entrypoint; a
missing one is only a warning, so an image without it silently lacks its variables) and, for a
PyPI dependency on the project itself (`path = "."`), the project's pyproject.toml, readme,
licence and package source (the build backend reads them). The shapes `activation/` (a script in
a subfolder and one two folders down, per feature) and `pypi-self/` (a pixi.toml installing the
src/-layout project beside it) are locked against the lab channel, generated as a user types it,
built with the engine's own command (`docker build W`, `apptainer build X.sif apptainer.def`)
in both styles, and the image is asked whether the files are there and the activation ran.

`apptainer test` runs in the caller's folder, so the lesson SIF's `%test` names the image's own
workspace: run from a folder that holds another pixi manifest, it still checks the image's.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import lab_image_flags
from test_shapes import LIMIT_S, RUN_ID, docker_build, images, kit, shape  # noqa: F401 (images: a fixture)

from tests.lab.settings import LabSettings

ACTIVATED = "KIT_HELLO_ACTIVATED=1"
# What each environment's activation sets: the package's activate.d script (kit-hello), the
# manifest's scripts (tools.sh only in `tools`) and its `env` table.
PRINT_ACTIVATION = 'echo "$KIT_HELLO_ACTIVATED $SHAPE_SCRIPT ${SHAPE_TOOLS:-none} $SHAPE_DATA_DIR"'
ACTIVATION_SEEN = {"default": "1 env.sh none /data", "tools": "1 env.sh tools.sh /data"}
ACTIVATION_FILES = ("/app/scripts/env.sh", "/app/scripts/tools/tools.sh")
PROJECT_FILES = (
    "/app/pyproject.toml",
    "/app/README.md",
    "/app/LICENSE",
    "/app/src/shape_pypi_self/__init__.py",
)
IMPORT_PROJECT = "import shape_pypi_self; print(shape_pypi_self.__file__)"


def generate(ws: Path, lab: LabSettings, *extra: str) -> None:
    done = kit("generate", str(ws), *lab_image_flags(lab), "--force", *extra)
    assert done.returncode == 0, done.stderr


def engine(argv: list[str], cwd: Path | None = None, timeout: int = LIMIT_S) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-3000:])
    return done.stdout


# (shape, style, kit generate's flags): each environment of the activation shape in one style,
# the project in both (src/ layout: the application code stays out, as `kit generate` asks).
CASES = [
    ("activation", "lesson", ("--env", "default")),
    ("activation", "optimized", ("--env", "tools")),
    ("pypi-self", "lesson", ("--app-dir", "")),
    ("pypi-self", "optimized", ("--app-dir", "")),
]


@pytest.mark.docker
@pytest.mark.parametrize("name,style,flags", CASES)
def test_docker_image_holds_what_the_install_read(
    lab: LabSettings,
    docker_client: Any,
    images: list[str],  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
    name: str,
    style: str,
    flags: tuple[str, ...],
) -> None:
    ws = shape(name, tmp_path)
    generate(ws, lab, "--style", style, *flags)
    tag = f"kit-test-contents/{name}:{style}-{RUN_ID}"
    images.append(tag)
    built = docker_build(lab, ws, tag)
    assert built.returncode == 0, built.stderr[-3000:]

    def run(*command: str) -> str:
        return engine([lab.docker, "run", "--rm", tag, *command], timeout=120)

    if name == "activation":
        env = flags[1]
        expected = [path for path in ACTIVATION_FILES if env == "tools" or "tools/" not in path]
        assert run("sh", "-c", PRINT_ACTIVATION).strip() == ACTIVATION_SEEN[env]
        assert run("ls", *expected).split() == sorted(expected)
    else:
        assert run("ls", *PROJECT_FILES).split() == sorted(PROJECT_FILES)
        assert run("python", "-c", IMPORT_PROJECT).strip() == "/app/src/shape_pypi_self/__init__.py"
        assert ACTIVATED in run("kit-hello")


OTHER_MANIFEST = """\
[workspace]
name = "another-workspace"
channels = ["conda-forge"]
platforms = ["linux-64"]
"""


@pytest.mark.apptainer
@pytest.mark.parametrize("name,style,flags", CASES)
def test_sif_holds_what_the_install_read(
    lab: LabSettings,
    docker_client: Any,
    apptainer_path: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    style: str,
    flags: tuple[str, ...],
) -> None:
    """Nested `%files` destinations (scripts/tools/tools.sh) land at their own path; `apptainer
    test` and `apptainer run` from a folder that holds another workspace's pixi.toml still use
    the image's own."""
    monkeypatch.setenv("APPTAINER_MKSQUASHFS_ARGS", "-comp lz4")
    ws = shape(name, tmp_path)
    generate(ws, lab, "--style", style, *flags)
    sif = tmp_path / f"{name}.sif"
    engine([apptainer_path, "build", str(sif), "apptainer.def"], cwd=ws)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "pixi.toml").write_text(OTHER_MANIFEST)
    tested = engine([apptainer_path, "test", str(sif)], cwd=elsewhere)
    if style == "lesson":  # its %test runs pixi info and pixi list on the image's workspace
        assert "Manifest file: /app/pixi.toml" in tested and "another-workspace" not in tested

    def run(*command: str) -> str:
        return engine([apptainer_path, "run", str(sif), *command], cwd=elsewhere, timeout=120)

    if name == "activation":
        env = flags[1]
        expected = [path for path in ACTIVATION_FILES if env == "tools" or "tools/" not in path]
        assert run("sh", "-c", PRINT_ACTIVATION).strip() == ACTIVATION_SEEN[env]
        assert run("ls", *expected).split() == sorted(expected)
    else:
        assert run("ls", *PROJECT_FILES).split() == sorted(PROJECT_FILES)
        assert run("python", "-c", IMPORT_PROJECT).strip() == "/app/src/shape_pypi_self/__init__.py"
        assert ACTIVATED in run("kit-hello")

"""Binder's view of the repository: a fresh environment from `binder/` alone runs every notebook.

repo2docker installs `binder/requirements.txt` from the repository root into a clean Python;
this test does the same with `python -m venv` (pip may use its cache), then runs the notebooks
with `build="never"` in that environment's own kernel, as a Binder user would (Binder has no
container engine). It needs PyPI and takes minutes, hence `slow`; without an index it skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import OUTPUT, REPO, need

BINDER = REPO / "binder"
NOTEBOOKS = REPO / "notebooks"
_NO_INDEX = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "No matching distribution found",
    "Could not find a version that satisfies",
    "Network is unreachable",
    "ProxyError",
)


def test_binder_configuration_is_minimal_and_installs_the_kit() -> None:
    lines = [
        line.strip()
        for line in (BINDER / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == ["-e .[lab]"]  # editable: the notebooks import the kit from the checkout
    runtime = (BINDER / "runtime.txt").read_text().strip()
    major, minor = (int(p) for p in runtime.removeprefix("python-").split("."))
    assert (major, minor) >= (3, 11), "pyproject.toml needs Python 3.11 or newer"


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment made from binder/ exactly as repo2docker would install it."""
    venv = tmp_path_factory.mktemp("binder") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-r", "binder/requirements.txt"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        if any(marker in line for line in tail for marker in _NO_INDEX):
            need(False, "no package index reachable: " + " | ".join(tail[-3:]))
        pytest.fail("pip install -r binder/requirements.txt failed:\n" + "\n".join(tail))
    return python


@pytest.mark.slow
def test_notebooks_run_in_a_fresh_binder_environment(binder_env: Path) -> None:
    out = OUTPUT / "notebooks-binder"
    out.mkdir(parents=True, exist_ok=True)
    script = (
        "import json, sys, papermill\n"
        "nb, out = sys.argv[1], sys.argv[2]\n"
        "papermill.execute_notebook(nb, out, parameters={'build': 'never'}, kernel_name='python3',\n"
        "                           cwd=sys.argv[3], progress_bar=False, execution_timeout=900)\n"
        "from jupyter_client.kernelspec import KernelSpecManager\n"
        "spec = KernelSpecManager().get_kernel_spec('python3')\n"
        "import kit; print(json.dumps({'kit': kit.__file__, 'python': sys.executable,\n"
        "                              'kernel': spec.argv[0], 'spec_dir': spec.resource_dir}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "JUPYTER_PATH")}
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        done = subprocess.run(
            [str(binder_env), "-c", script, str(notebook), str(out / notebook.name), str(NOTEBOOKS)],
            capture_output=True,
            text=True,
            env=env,
            cwd="/",
            timeout=900,
        )
        assert done.returncode == 0, f"{notebook.name}:\n{done.stderr[-3000:]}"
        where = json.loads(done.stdout.strip().splitlines()[-1])
        assert where["python"] == str(binder_env)
        # The kernel is the environment's own: ipykernel's spec says "python", which
        # jupyter_client turns into the running interpreter.
        assert where["kernel"] in ("python", "python3", str(binder_env)), where
        assert Path(where["kit"]).resolve().is_relative_to(REPO), "the editable install of this repo"

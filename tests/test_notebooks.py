"""Every notebook runs end to end under papermill, the way CI and a learner's "Run all" run it.

`build="never"` runs everywhere (no engine, no lock needed). The `docker` test runs the episode
notebooks with `build="require"` against the offline lab's locked workspace and base images,
so the build and probe cells really build and probe. Executed notebooks are kept under
`test-output/notebooks/` for a look at what a learner would see.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import OUTPUT, REPO
from tests.lab.settings import LabSettings

NOTEBOOKS = REPO / "notebooks"
ALL = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
EPISODES = [stem for stem in ALL if stem[:2].isdigit()]
KERNEL = "python3"


@pytest.fixture(scope="session")
def kernel() -> str:
    """The `python3` kernel, made to run this interpreter (so the notebooks import this kit)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(KERNEL).argv
    except NoSuchKernel:
        argv = []
    runs_us = bool(argv) and (argv[0] in ("python", "python3") or Path(argv[0]) == Path(sys.executable))
    if not runs_us:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL],
                       check=True, capture_output=True)
    return KERNEL


def run_notebook(stem: str, kernel: str, out_dir: Path, **parameters: Any) -> Path:
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{stem}.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / f"{stem}.ipynb"), str(output), parameters=parameters,
                               kernel_name=kernel, cwd=str(NOTEBOOKS), progress_bar=False,
                               execution_timeout=900)
    return output


def outputs_text(path: Path) -> str:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") or "".join(str(v) for v in out.get("data", {}).values()))
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("stem", ALL)
def test_notebook_runs_without_building(stem: str, kernel: str) -> None:
    output = run_notebook(stem, kernel, OUTPUT / "notebooks", build="never")
    text = outputs_text(output)
    if stem in EPISODES:
        assert "build='never': skipping the build" in text
        assert "kit-probe-table" in text          # the report is shown (the episode's example)


@pytest.mark.docker
@pytest.mark.parametrize("stem", EPISODES)
def test_notebook_builds_and_probes_in_the_lab(stem: str, kernel: str, lab: LabSettings) -> None:
    settings = lab
    output = run_notebook(stem, kernel, OUTPUT / "notebooks-lab", build="require", engine="docker",
                          workspace=str(settings.workspace), base_image=settings.base_image,
                          runtime_image=settings.runtime_image)
    text = outputs_text(output)
    assert "building with docker" in text
    assert "PyTorch" in text and "kit-probe-table" in text


# ---------------------------------------------------------------- episodes 06 and 07 on the lab's schedulers

def _run_cluster_notebook(stem: str, kernel: str, lab: LabSettings, sif: Path) -> str:
    output = run_notebook(stem, kernel, OUTPUT / "notebooks-lab", build="never", sif=str(sif),
                          environment="cpu", submit="require", workspace=str(lab.workspace),
                          timeout=300)
    return outputs_text(output)


@pytest.mark.htcondor
def test_htcondor_notebook_submits_and_reads_the_output(kernel: str, lab: LabSettings,
                                                        htcondor: str, lab_sif: Path) -> None:
    text = _run_cluster_notebook("06-htcondor", kernel, lab, lab_sif)
    assert "htcondor answers here: submitting." in text
    assert "htcondor job" in text and "completed (exit 0)" in text
    assert "kit-job-timeline" in text                      # the state display was drawn
    assert "PyTorch version: 2.13.0" in text and "kit-probe-table" in text


@pytest.mark.slurm
def test_slurm_notebook_submits_and_reads_the_output(kernel: str, lab: LabSettings, slurm: str,
                                                     lab_sif: Path, apptainer_path: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The batch script calls `apptainer`, as on a cluster: the kit's one goes first on PATH.
    import os

    monkeypatch.setenv("PATH", f"{Path(apptainer_path).parent}:{os.environ['PATH']}")
    text = _run_cluster_notebook("07-slurm", kernel, lab, lab_sif)
    assert "slurm answers here: submitting." in text
    assert "slurm job" in text and "completed (exit 0)" in text
    assert "kit-job-timeline" in text
    assert "PyTorch version: 2.13.0" in text and "kit-probe-table" in text

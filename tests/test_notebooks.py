"""Every notebook runs end to end under papermill, the way CI and a learner's "Run all" run it.

`build="never"` runs everywhere (no engine, no lock needed): on the unlocked example, every
notebook shows one lock notice and no error, and leaves no temporary folder behind. The tests
pass `solutions=True`, so the solution cells that "Run All" skips for a learner run here too. The `docker` test runs the episode
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
# Episodes 06 and 07 run a SIF on a scheduler: their lab tests are below (htcondor, slurm).
CLUSTER_EPISODES = ("06-htcondor", "07-slurm")
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
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL],
            check=True,
            capture_output=True,
        )
    return KERNEL


def run_notebook(stem: str, kernel: str, out_dir: Path, **parameters: Any) -> Path:
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{stem}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{stem}.ipynb"),
        str(output),
        parameters=parameters,
        kernel_name=kernel,
        cwd=str(NOTEBOOKS),
        progress_bar=False,
        execution_timeout=900,
    )
    return output


def outputs_text(path: Path) -> str:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") or "".join(str(v) for v in out.get("data", {}).values()))
    return "\n".join(parts)


def error_outputs(path: Path) -> list[str]:
    """Tracebacks, stderr, and error-level findings shown anywhere in an executed notebook."""
    import nbformat

    found = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        for out in cell.get("outputs", []):
            text = out.get("text", "") or "".join(str(v) for v in out.get("data", {}).values())
            if (
                out.get("output_type") == "error"
                or out.get("name") == "stderr"
                or "kit-severity-error" in text
            ):
                found.append(f"cell {index}: {text[:300] or out.get('ename')}")
    return found


def outputs_containing(path: Path, needle: str) -> int:
    """How many outputs (an HTML output with its text/plain twin counts once) show `needle`."""
    import nbformat

    return sum(
        1
        for cell in nbformat.read(path, as_version=4).cells
        for out in cell.get("outputs", [])
        if needle in (out.get("text", "") or "".join(str(v) for v in out.get("data", {}).values()))
    )


def solution_outputs(path: Path) -> list[str]:
    """What each solution cell printed, one string per cell that printed anything: a kernel
    under load may send one print as several stream messages, so a cell's pieces are joined."""
    import nbformat

    printed = [
        "".join(out.get("text", "") for out in cell.get("outputs", []))
        for cell in nbformat.read(path, as_version=4).cells
        if "solution" in cell.metadata.get("tags", [])
    ]
    return [text for text in printed if text]


@pytest.mark.slow
@pytest.mark.parametrize("stem", ALL)
def test_notebook_runs_without_building(
    stem: str, kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kit.widgets.pipeline import NO_LOCK_REASON

    assert not (REPO / "examples" / "cuda-exercise" / "pixi.lock").exists(), "the example is meant unlocked"
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's temporary folders land here
    output = run_notebook(stem, kernel, OUTPUT / "notebooks", build="never", solutions=True)
    text = outputs_text(output)
    assert error_outputs(output) == []
    assert outputs_containing(output, "kit-lock-notice") == 1, "say once what locking needs"
    assert NO_LOCK_REASON not in text and "no lock file" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "the notebook left temporary folders"
    if stem in EPISODES:
        assert "build='never': skipping the build" in text
        assert "kit-probe-table" in text  # the report is shown (the episode's example)
        assert all("Solution not run" not in s for s in solution_outputs(output))


@pytest.mark.slow
def test_run_all_leaves_the_solutions_alone(kernel: str) -> None:
    from kit.widgets.notebook import SOLUTION_HINT

    output = run_notebook("02-docker", kernel, OUTPUT / "notebooks-default", build="never")
    shown = solution_outputs(output)
    assert shown and all(s.strip() == SOLUTION_HINT for s in shown)


@pytest.mark.docker
@pytest.mark.parametrize("stem", [s for s in EPISODES if s not in CLUSTER_EPISODES])
def test_notebook_builds_and_probes_in_the_lab(stem: str, kernel: str, lab: LabSettings) -> None:
    settings = lab
    output = run_notebook(
        stem,
        kernel,
        OUTPUT / "notebooks-lab",
        build="require",
        engine="docker",
        workspace=str(settings.workspace),
        base_image=settings.base_image,
        runtime_image=settings.runtime_image,
    )
    text = outputs_text(output)
    assert "building with docker" in text
    assert "PyTorch" in text and "kit-probe-table" in text


# ---------------------------------------------------------------- episodes 06 and 07 on the lab's schedulers


def _run_cluster_notebook(stem: str, kernel: str, lab: LabSettings, sif: Path) -> str:
    output = run_notebook(
        stem,
        kernel,
        OUTPUT / "notebooks-lab",
        build="never",
        sif=str(sif),
        environment="cpu",
        submit="require",
        workspace=str(lab.workspace),
        timeout=300,
    )
    return outputs_text(output)


@pytest.mark.htcondor
def test_htcondor_notebook_submits_and_reads_the_output(
    kernel: str, lab: LabSettings, htcondor: str, lab_sif: Path
) -> None:
    text = _run_cluster_notebook("06-htcondor", kernel, lab, lab_sif)
    assert "htcondor answers here: submitting." in text
    assert "htcondor job" in text and "completed (exit 0)" in text
    assert "kit-job-timeline" in text  # the state display was drawn
    assert "PyTorch version: 2.13.0" in text and "kit-probe-table" in text


@pytest.mark.slurm
def test_slurm_notebook_submits_and_reads_the_output(
    kernel: str,
    lab: LabSettings,
    slurm: str,
    lab_sif: Path,
    apptainer_path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The batch script calls `apptainer`, as on a cluster: the kit's one goes first on PATH.
    import os

    monkeypatch.setenv("PATH", f"{Path(apptainer_path).parent}:{os.environ['PATH']}")
    text = _run_cluster_notebook("07-slurm", kernel, lab, lab_sif)
    assert "slurm answers here: submitting." in text
    assert "slurm job" in text and "completed (exit 0)" in text
    assert "kit-job-timeline" in text
    assert "PyTorch version: 2.13.0" in text and "kit-probe-table" in text

"""kit.model.deployfiles: the one table of deployment files, and the modules that read it."""

from __future__ import annotations

from conftest import EXAMPLE

from kit import check
from kit.decide.options import RenderOptions
from kit.model import deployfiles
from kit.model.deployfiles import FILES, FileKind
from kit.model.workspace import load_workspace
from kit.output.render import render

JOBS = RenderOptions(job_commit="0" * 40, job_image_name="ghcr.io/someone/lesson")


def expected_paths(prefix: str, app_dir: str, groups: tuple[str, ...] = ()) -> set[str]:
    """Where the table says each file of `groups` (all but the on-request ones when empty) goes."""
    out = set()
    for f in FILES:
        if (f.group not in groups) if groups else f.on_request:
            continue
        if f.place == "repository":
            out.add(f.path)
        elif f.place == "app":
            out.add(f"{prefix}{app_dir}/{f.path}")
        else:
            out.add(prefix + f.path)
    return out


def test_render_writes_what_the_table_lists_where_it_says() -> None:
    ws = load_workspace(EXAMPLE)
    files = render(ws, RenderOptions(subdir="cuda-exercise"))
    assert set(files) == expected_paths("cuda-exercise/", "app")
    for f in FILES:
        if f.on_request:
            continue
        path = (
            f.path
            if f.place == "repository"
            else f"cuda-exercise/{'app/' if f.place == 'app' else ''}{f.path}"
        )
        assert (files[path].kind, files[path].language) == (f.kind, f.language)


def test_each_group_renders_its_rows_and_jobs_only_when_named() -> None:
    ws = load_workspace(EXAMPLE)
    for group in deployfiles.GROUPS:
        assert set(render(ws, JOBS, (group,))) == expected_paths("", "app", (group,)), group
    assert not set(render(ws, JOBS)) & set(deployfiles.in_group("htcondor") + deployfiles.in_group("slurm"))


def test_the_probe_is_not_rendered_without_an_app_folder() -> None:
    files = render(load_workspace(EXAMPLE), RenderOptions(app_dir=""))
    assert not [p for p in files if p.endswith(deployfiles.PROBE_SCRIPT)]


def test_check_reads_the_checked_rows() -> None:
    checked = {f.path for f in FILES if f.checked}
    assert set(check.DEPLOYMENT_FILES) | set(check.WORKFLOW_FILES) | set(check.SHARED_FILES) == checked
    assert FileKind.SEED not in {f.kind for f in FILES if f.checked}


def test_the_groups_kit_generate_offers() -> None:
    assert list(deployfiles.GROUPS) == ["docker", "apptainer", "workflows", "htcondor", "slurm"]
    assert deployfiles.ON_REQUEST_GROUPS == ("htcondor", "slurm")
    assert deployfiles.workflow_files("gpu") == (
        ".github/workflows/docker-gpu.yaml",
        ".github/workflows/apptainer-gpu.yaml",
    )

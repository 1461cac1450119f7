"""The lesson says what the tools do: each claim a review found false (issue 18) and that a
machine can check stays corrected, in the episodes, the notebooks, the setup page, the
instructor notes and the comments of the files the kit generates.
"""

from __future__ import annotations

import re
import subprocess

import nbformat
import pytest
from conftest import REPO

from kit.lesson.sync import lesson_files, prose_files
from kit.schedulers import get_scheduler

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
TEMPLATES = sorted((REPO / "kit" / "templates").rglob("*.j2"))


def texts() -> dict[str, str]:
    """Every text a learner or instructor reads: the lesson's Markdown pages, the notebooks'
    Markdown cells, the kit's templates and the files they render for the lesson."""
    found = {str(p.relative_to(REPO)): p.read_text(encoding="utf-8") for p in prose_files(REPO)}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                found[f"{path.relative_to(REPO)} cell {i}"] = cell.source
    for path in TEMPLATES:
        found[str(path.relative_to(REPO))] = path.read_text(encoding="utf-8")
    for name, text in lesson_files(REPO).items():
        found[f"rendered {name}"] = text
    return found


def test_no_tag_is_said_never_to_move() -> None:
    """A per-commit tag is pushed again when the same commit is built again; only a digest is fixed."""
    said = {
        where: m.group(0)
        for where, text in texts().items()
        if (m := re.search(r"never (?:be )?mov(?:e|es|ed)|is never moved|(?i:immutable tags?)\b", text))
    }
    assert said == {}


def test_publishing_runs_are_not_said_to_always_finish() -> None:
    """A concurrency group keeps one pending run: a newer one cancels it."""
    assert {w for w, t in texts().items() if "always finish" in t} == set()
    triggers = (REPO / "kit" / "templates" / "workflows" / "_triggers.j2").read_text()
    assert "cancels it" in triggers and "never be published" in triggers


def test_nothing_says_htcondor_caches_images_by_name() -> None:
    assert {w for w, t in texts().items() if re.search(r"cach\w* (?:container )?images by name", t)} == set()


def condor_q_lines(text: str) -> list[str]:
    """Lines that run `condor_q` to list jobs (not `-better-analyze`, `-hold` or `-totals`)."""
    return [
        line
        for line in text.splitlines()
        for m in re.finditer(r"condor_q\b(?!`? -(?:better-analyze|hold|totals|nobatch))", line)
        if not re.search(r"(?:On its own|plain|only sums|summary line)", line)
    ]


def test_condor_q_lists_jobs_with_nobatch() -> None:
    """Plain `condor_q` prints one line per batch: each job's state needs `-nobatch`."""
    listed = {where: lines for where, text in texts().items() if (lines := condor_q_lines(text))}
    assert listed == {}
    episode = (REPO / "episodes" / "06-htcondor.md").read_text()
    assert "condor_submit jobs/htcondor.sub\ncondor_q -nobatch\n" in episode
    assert "condor_history" in episode


def test_the_commands_the_kit_prints_list_jobs_with_nobatch() -> None:
    """What the notebooks and the studio print for a login node (a scheduler's `login_commands`)
    and the notebooks' code cells follow jobs as the episode does: `condor_q -nobatch` for each
    job's state, `condor_history` for jobs that have left the queue."""
    printed = list(get_scheduler("htcondor").login_commands("demo-gpu"))
    assert (condor_q_lines("\n".join(printed)), "condor_q -nobatch" in printed) == ([], True)
    assert [c.split()[0] for c in printed if c.startswith("condor_history")] == ["condor_history"]
    code = {
        f"{path.relative_to(REPO)} cell {i}": lines
        for path in NOTEBOOKS
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells)
        if cell.cell_type == "code" and (lines := condor_q_lines(cell.source))
    }
    assert code == {}


def test_the_apptainer_exec_failure_is_quoted_as_apptainer_prints_it() -> None:
    fatal = 'FATAL:   "python": executable file not found in $PATH'
    episode = (REPO / "episodes" / "04-apptainer.md").read_text()
    assert f"```output\n{fatal}\n```" in episode
    marker = re.search(r"<!-- run: in=workspace exit=(\S+) output='([^']+)' -->", episode)
    assert marker and marker.group(1) == "255" and re.search(marker.group(2), fatal)
    notes = (REPO / "instructors" / "instructor-notes.md").read_text()
    assert "exit status 255" in notes and '"python": executable file not found in $PATH' in notes
    assert {w for w, t in texts().items() if "python: command not found" in t} == set()


def test_dockerignore_is_not_said_to_be_gitignore_syntax() -> None:
    episode = (REPO / "episodes" / "02-docker.md").read_text()
    assert "same\npattern language as `.gitignore`" not in episode
    assert "filepath.Match" in episode and "`**`" in episode


def test_job_files_say_their_commit_may_be_unpublished() -> None:
    """The job files name the sha tag of the local HEAD, which no workflow may have published."""
    for name in ("cuda-exercise/jobs/htcondor.sub", "cuda-exercise/jobs/slurm.sbatch"):
        text = lesson_files(REPO)[name]
        assert "no workflow run published it" in text and "--job-commit" in text, name
    submit = lesson_files(REPO)["cuda-exercise/jobs/htcondor.sub"]
    assert "docker_override_entrypoint" in submit and "with Docker" in submit
    for episode in ("06-htcondor.md", "07-slurm.md"):
        assert "--job-commit" in (REPO / "episodes" / episode).read_text(), episode


def test_setup_does_not_say_a_public_repository_makes_public_images() -> None:
    setup = (REPO / "learners" / "setup.md").read_text()
    assert "make the new repository **public**" not in setup
    assert "starts **private** even in a public" in setup


def test_setup_lists_every_notebook_and_what_the_cluster_episodes_need() -> None:
    setup = (REPO / "learners" / "setup.md").read_text()
    listed = set(re.findall(r"^\|[^|]*\| `(notebooks/[^`]+\.ipynb)` \|$", setup, re.M))
    assert listed == {str(p.relative_to(REPO)) for p in NOTEBOOKS}
    assert "Episodes 6 and 7" in setup and "Apptainer" in setup and "GPUs" in setup


def test_setup_leaves_the_lock_for_episode_1_at_the_repository_top() -> None:
    """One Git path: setup only makes the lock and goes back to the top; episode 1 commits it."""
    setup = (REPO / "learners" / "setup.md").read_text()
    block = setup.split("```bash\ncd cuda-exercise\n", 1)[1].split("```", 1)[0]
    assert "pixi lock\ncd ..\n" in block and "git commit" not in block and "git push" not in block
    episode = (REPO / "episodes" / "01-why-containers.md").read_text()
    assert "git add cuda-exercise/pixi.toml cuda-exercise/pixi.lock" in episode


# -- the schedule ------------------------------------------------------------------------------


def minutes(text: str) -> int:
    hours, mins = re.fullmatch(r"(\d+) h (\d+) min", text).groups()  # type: ignore[union-attr]
    return int(hours) * 60 + int(mins)


def test_session_totals_add_up_and_count_the_waits() -> None:
    notes = (REPO / "instructors" / "instructor-notes.md").read_text()
    episodes = {
        int(n): int(total)
        for n, total in re.findall(r"^\| (\d)\. .*?\| \d+ \| \d+ \| (\d+) \|$", notes, re.M)
    }
    sessions = re.findall(
        r"^\| \d: [^|]+\| ([\d, ]+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \((\d+ h \d+ min)\) \|$",
        notes,
        re.M,
    )
    assert len(sessions) == 2
    covered: list[int] = []
    for numbers, taught, waits, rest, total, spelled in sessions:
        chosen = [int(n) for n in numbers.split(",")]
        covered += chosen
        assert int(taught) == sum(episodes[n] for n in chosen), numbers
        assert int(waits) > 0, "the waits are part of the session"
        assert int(total) == int(taught) + int(waits) + int(rest) == minutes(spelled), numbers
    assert sorted(covered) == sorted(episodes)
    summary = re.search(r"That is (\d+) hours (\d+) minutes", notes)
    assert summary and int(summary.group(1)) * 60 + int(summary.group(2)) == sum(episodes.values())


@pytest.mark.parametrize("wait", ["first pull of a CUDA base image", "GitHub Actions runs", "Queue waits"])
def test_each_wait_has_a_plan(wait: str) -> None:
    notes = (REPO / "instructors" / "instructor-notes.md").read_text()
    assert wait in notes


# -- instructor notes for the cluster episodes ------------------------------------------------


def test_instructor_notes_cover_the_cluster_pitfalls() -> None:
    notes = (REPO / "instructors" / "instructor-notes.md").read_text()
    section = notes.split("## Pitfalls in the cluster episodes (6 and 7)", 1)[1]
    for needed in (
        "Held jobs",
        "condor_q -better-analyze",
        "(Resources)",
        "shared file systems",
        "Quotas",
        "condor_history",
    ):
        assert needed in section, needed


# -- the lesson site's .gitignore -------------------------------------------------------------

# sandpaper's check_lesson() compares the lesson's .gitignore with the non-comment lines of its
# own template (inst/templates/gitignore-template.txt in carpentries/sandpaper); each must be there
# as a line of its own.
SANDPAPER_GITIGNORE = (
    "episodes/*html",
    "site/*",
    "!site/README.md",
    ".Rhistory",
    ".Rapp.history",
    ".RData",
    ".Ruserdata",
    "*-Ex.R",
    "/*.tar.gz",
    "/*.Rcheck/",
    ".Rproj.user/",
    "vignettes/*.html",
    "vignettes/*.pdf",
    ".httr-oauth",
    "*_cache/",
    "/cache/",
    "*.utf8.md",
    "*.knit.md",
    ".Renviron",
    "docs/",
    "po/*~",
    "renv/sandbox",
)


def test_gitignore_has_what_sandpaper_requires() -> None:
    lines = {line.strip() for line in (REPO / ".gitignore").read_text().splitlines()}
    assert [entry for entry in SANDPAPER_GITIGNORE if entry not in lines] == []


def test_no_tracked_file_is_ignored() -> None:
    """The new entries must not hide a file the lesson keeps."""
    ignored = subprocess.run(
        ["git", "ls-files", "-i", "-c", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert ignored.stdout == ""

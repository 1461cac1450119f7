"""A workshop that runs: every value the lesson quotes comes from the kit, the errors an instructor
found stay fixed, the timings follow the content, the scaffolding is there, the learners'
template repository matches the kit, and notebooks leave no temporary folders behind.
"""

from __future__ import annotations

import gc
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import REPO

from kit.base.errors import UserError
from kit.decide.options import PIXI_VERSION
from kit.lesson.sync import (
    FILE_MARKER,
    PLACEHOLDER_PREFIX,
    config_placeholders,
    excerpt,
    lesson_files,
    lesson_values,
    prose_files,
    refill,
    sync_lesson_files,
    unmarked_values,
)
from kit.lesson.template import README as TEMPLATE_README
from kit.lesson.template import template_files

EPISODES = sorted((REPO / "episodes").glob("[0-9][0-9]-*.md"))
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# Values distinctive enough that any unmarked occurrence in prose is a copy that can drift.
DISTINCT = ("tag.", "sha.", "oras.", "image.base", "command.generate")


def all_prose() -> dict[str, str]:
    """Every prose text sync looks after: Markdown files and the notebooks' Markdown cells."""
    texts = {str(p.relative_to(REPO)): p.read_text(encoding="utf-8") for p in prose_files(REPO)}
    texts["the template's README"] = TEMPLATE_README.read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                texts[f"{path.relative_to(REPO)} cell {i}"] = cell.source
    return texts


def kit_lesson(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """`kit lesson ...` as an instructor types it."""
    return subprocess.run(
        [sys.executable, "-m", "kit.cli", "lesson", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# -- prose values from the kit ----------------------------------------------------------------


def test_lesson_is_in_step_with_the_kit() -> None:
    assert sync_lesson_files(REPO, write=False) == [], "run `kit lesson sync` and commit"


def test_no_kit_value_is_quoted_outside_a_marker() -> None:
    values = lesson_values(REPO)
    distinct = [v for k, v in values.items() if k.startswith(DISTINCT)]
    leaks = {
        where: found for where, text in all_prose().items() if (found := unmarked_values(text, distinct))
    }
    assert leaks == {}, "wrap these in <!-- kit: ... --> or a kit-code block"


def test_tags_in_prose_are_what_the_workflows_publish() -> None:
    files = lesson_files(REPO)
    matrix_tags = set(re.findall(r"tag: '([^']+)'", files[".github/workflows/docker.yaml"]))
    values = lesson_values(REPO, files)
    assert {values["tag.gpu"], values["tag.cpu"]} == matrix_tags
    assert values["tag.gpu"] == "gpu-noble-cuda-12"  # unlocked example: the requirement, not 12.9
    quoted = set()
    for text in all_prose().values():
        quoted |= set(re.findall(r"\b(?:gpu|cpu)-noble(?:-cuda-\d+(?:\.\d+)*)?", text))
    assert quoted <= matrix_tags, f"tags no workflow publishes: {quoted - matrix_tags}"


def test_sha_tags_carry_the_environment() -> None:
    values = lesson_values(REPO)
    assert values["sha.gpu"] == "gpu-sha-"
    for text in all_prose().values():
        assert not re.search(r"`sha-…`|[^-a-z<]sha-…", text)


def test_inline_and_code_markers_are_refilled() -> None:
    values = {"tag.gpu": "gpu-x", "probe.example": "A: 1\nB: 2\n"}
    text = (
        "Pull <!-- kit: `{tag.gpu}.sif` -->`old.sif`<!-- /kit --> now.\n"
        "<!-- kit-code:\ndocker pull r:{tag.gpu}\n-->\n```bash\nold\nlines\n```\n"
        "<!-- kit-code:\n{probe.example}\n-->\n```output\n```\n"
        "```bash\n<!-- kit: {tag.gpu} -->left<!-- /kit -->\n```\n"
    )
    assert refill(text, {}, "e.md", values) == (
        "Pull <!-- kit: `{tag.gpu}.sif` -->`gpu-x.sif`<!-- /kit --> now.\n"
        "<!-- kit-code:\ndocker pull r:{tag.gpu}\n-->\n```bash\ndocker pull r:gpu-x\n```\n"
        "<!-- kit-code:\n{probe.example}\n-->\n```output\nA: 1\nB: 2\n```\n"
        "```bash\n<!-- kit: {tag.gpu} -->left<!-- /kit -->\n```\n"
    )


@pytest.mark.parametrize(
    "text, field",
    [
        ("<!-- kit-file: a/Dockerfile -->\n```dockerfile\nold\n", "fence"),
        ("```bash\nnever closed\n", "fence"),
        ("<!-- kit-code:\n{tag.gpu}\n```bash\nx\n```\n", "kit-code"),
        ("<!-- kit-code:\n{tag.gpu}\n-->\nno fence here\n", "kit-code"),
        ("A <!-- kit: {tag.gpu} -->gpu\n", "kit"),
        ("A gpu<!-- /kit -->\n", "kit"),
        ("A <!-- kit: {tag.nope} -->x<!-- /kit -->\n", "kit"),
        ('<!-- kit-file: a/Dockerfile from="^FROM" -->\n```\nx\n```\n', "kit-file"),
    ],
)
def test_bad_markers_are_bad_input(text: str, field: str) -> None:
    with pytest.raises(UserError) as caught:
        refill(text, {"a/Dockerfile": "FROM y\n"}, "e.md", {"tag.gpu": "g"})
    assert caught.value.field == field and caught.value.file == "e.md" and caught.value.fix


def lesson_copy(tmp_path: Path) -> Path:
    """The parts of the lesson that sync reads, copied (links followed) into `tmp_path`."""
    root = tmp_path / "lesson"
    for name in ("episodes", "learners", "instructors", "profiles", "notebooks"):
        shutil.copytree(REPO / name, root / name)
    shutil.copytree(REPO / "examples", root / "examples", symlinks=False)
    for name in ("index.md", "config.yaml"):
        shutil.copy(REPO / name, root / name)
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_sync_exits_2_on_an_unclosed_fence_and_changes_nothing(tmp_path: Path) -> None:
    root = lesson_copy(tmp_path)
    stale = root / "episodes" / "02-docker.md"
    stale.write_text(stale.read_text().replace("gpu-noble-cuda-12\n", "gpu-noble-cuda-0\n", 1))
    broken = root / "episodes" / "05-apptainer-automation.md"
    broken.write_text(broken.read_text() + "\n```bash\nnever closed\n")
    before = snapshot(root)
    result = subprocess.run(
        [sys.executable, "-m", "kit.cli", "lesson", "sync", "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "05-apptainer-automation.md" in result.stderr and "never closed" in result.stderr
    assert snapshot(root) == before


def test_sync_refills_a_stale_value(tmp_path: Path) -> None:
    root = lesson_copy(tmp_path)
    episode = root / "episodes" / "03-docker-automation.md"
    good = episode.read_text()
    episode.write_text(good.replace("gpu-noble-cuda-12`<!-- /kit -->", "gpu-noble-cuda-12.9`<!-- /kit -->"))
    assert sync_lesson_files(root) == ["episodes/03-docker-automation.md"]
    assert episode.read_text() == good


# -- the reviewed errors stay fixed -------------------------------------------------------------


def test_v_tag_pushes_are_said_to_skip_path_filters() -> None:
    text = (REPO / "episodes" / "03-docker-automation.md").read_text()
    assert "does not apply path filters to tag pushes" in text
    assert "commit touches a filtered" not in text


def test_the_original_probe_is_quoted_as_it_prints() -> None:
    text = (REPO / "episodes" / "02-docker.md").read_text()
    blocks = re.findall(r"<!-- probe-fixture: (\S+) -->\n```output\n(.*?)```\n", text, re.S)
    assert blocks, "episode 2 quotes the original probe from a fixture"
    for name, body in blocks:
        assert body == (REPO / "tests" / "data" / "probe" / name).read_text()
    assert "PyTorch has active GPU: True" not in text
    no_gpu = (REPO / "tests" / "data" / "probe" / "lesson_850cc8c_cuda_no_gpu.txt").read_text()
    assert no_gpu.strip().endswith("PyTorch has no active GPU") and "`PyTorch has no active GPU`" in text


def test_the_def_excerpt_shows_every_file_the_prose_names() -> None:
    text = (REPO / "episodes" / "04-apptainer.md").read_text()
    marker = next(
        m
        for m in re.finditer(r"^<!-- kit-file: cuda-exercise/apptainer.def .*-->$", text, re.M)
        if 'from="^Bootstrap:"' in m.group(0)
    )
    parsed = FILE_MARKER.match(marker.group(0))
    assert parsed
    shown = excerpt(
        lesson_files(REPO)["cuda-exercise/apptainer.def"],
        parsed.group("start"),
        parsed.group("end"),
        "04",
        parsed.group("how") == "before",
    )
    build_stage = lesson_files(REPO)["cuda-exercise/apptainer.def"].split("Stage: final")[0]
    files_section = build_stage.split("%files\n", 1)[1].split("\n\n", 1)[0]
    for line in files_section.splitlines():
        assert line in shown
    assert "`.gitignore`" in text.split(marker.group(0), 1)[1].split("<!-- kit-file", 1)[0]


def without_generated_blocks(text: str) -> str:
    """Prose only: the kit's own file excerpts (kit-file fences) are the templates' business."""
    return re.sub(r"^<!-- kit-file: .*?-->\n(```|~~~).*?^\1\s*$", "", text, flags=re.S | re.M)


def test_no_reference_to_episodes_the_lesson_lacks() -> None:
    for where, text in all_prose().items():
        prose = without_generated_blocks(text)
        assert "Earlier you built" not in prose, where
        assert not re.search(r"--locked[^.\n]*solver|solver[^.\n]*--locked", prose), where


def test_instructor_notes_say_why_arguments_fail() -> None:
    notes = (REPO / "instructors" / "instructor-notes.md").read_text()
    assert "Apptainer older than 1.2" not in notes
    assert "per stage" in notes and "build var ENVIRONMENT is not defined" in notes


def test_notebook_02_says_the_cpu_dockerfile_keeps_the_override() -> None:
    source = "".join(
        c.source for c in nbformat.read(REPO / "notebooks" / "02-docker.ipynb", as_version=4).cells
    )
    assert "drops CONDA_OVERRIDE_CUDA" not in source
    cpu = lesson_files_for("cpu")["cuda-exercise/Dockerfile"]
    assert 'ARG CUDA_VERSION=""' in cpu and "ENV CONDA_OVERRIDE_CUDA=$CUDA_VERSION" in cpu


def lesson_files_for(environment: str) -> dict[str, str]:
    from kit.decide.options import RenderOptions
    from kit.model.workspace import load_workspace
    from kit.output.render import render

    options = RenderOptions(environment=environment, style="lesson", subdir="cuda-exercise")
    return {
        p: f.text for p, f in render(load_workspace(REPO / "examples" / "cuda-exercise"), options).items()
    }


# -- timings -----------------------------------------------------------------------------------


def front_matter(path: Path) -> dict[str, int]:
    head = path.read_text().split("---", 2)[1]
    return {k: int(v) for k, v in re.findall(r"^(teaching|exercises): (\d+)$", head, re.M)}


def content(path: Path) -> tuple[int, int, int]:
    """(prose words, code lines, challenges) of an episode."""
    text = path.read_text().split("---", 2)[2]
    code = re.findall(r"^(```|~~~).*?^\1\s*$", text, re.S | re.M)
    blocks = [m.group(0) for m in re.finditer(r"^(```|~~~).*?^\1\s*$", text, re.S | re.M)]
    prose = re.sub(r"^(```|~~~).*?^\1\s*$", "", text, flags=re.S | re.M)
    prose = re.sub(r"<!--.*?-->", "", prose, flags=re.S)
    del code
    return len(prose.split()), sum(len(b.splitlines()) for b in blocks), text.count("::: challenge")


BUILD_EPISODES = {"02-docker", "04-apptainer"}  # the first image build is waited for here


@pytest.mark.parametrize("episode", EPISODES, ids=lambda p: p.stem)
def test_timings_follow_the_content(episode: Path) -> None:
    words, code_lines, challenges = content(episode)
    times = front_matter(episode)
    teaching = words / 100 + code_lines / 15 + (10 if episode.stem in BUILD_EPISODES else 0)
    assert times["teaching"] >= math.ceil(teaching), (words, code_lines)
    assert times["exercises"] >= 5 * challenges


def test_instructor_schedule_matches_the_episodes() -> None:
    notes = (REPO / "instructors" / "instructor-notes.md").read_text()
    rows = re.findall(r"^\| (\d)\. .*?\| (\d+) \| (\d+) \| (\d+) \|$", notes, re.M)
    by_number = {int(n): (int(t), int(e), int(total)) for n, t, e, total in rows}
    for episode in EPISODES:
        times = front_matter(episode)
        t, e, total = by_number[int(episode.stem[:2])]
        assert (t, e) == (times["teaching"], times["exercises"]) and total == t + e, episode.stem
    total_row = re.search(
        r"^\| \*\*Total\*\* \| \*\*(\d+)\*\* \| \*\*(\d+)\*\* \| \*\*(\d+)\*\* \|$", notes, re.M
    )
    assert total_row
    sums = [sum(v[i] for v in by_number.values()) for i in range(3)]
    assert [int(x) for x in total_row.groups()] == sums
    assert {6, 7} <= set(by_number), "the schedule includes the HTCondor and Slurm episodes"


# -- scaffolding -------------------------------------------------------------------------------


def test_workbench_pages_exist_with_what_they_promise() -> None:
    index = (REPO / "index.md").read_text()
    assert "::: prereq" in index
    for needed in ("GitHub account", "Docker", "Apptainer", "Pixi", "Codespace"):
        assert needed in index
    license_text = (REPO / "LICENSE.md").read_text()
    assert "CC-BY 4.0" in license_text and "MIT" in license_text
    for page in ("index.md", "LICENSE.md", "README.md"):
        assert "matthewfeickert/reproducible-ml-workflows" in (REPO / page).read_text(), page
    assert "Code of Conduct" in (REPO / "CODE_OF_CONDUCT.md").read_text()
    assert re.search(r"^\[pixi\]: https://", (REPO / "links.md").read_text(), re.M)
    profiles = list((REPO / "profiles").glob("*.md"))
    assert profiles


def test_config_has_placeholders_not_invented_values() -> None:
    import yaml

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for key in ("source", "contact", "template"):
        assert config[key].startswith(PLACEHOLDER_PREFIX), key
    assert config["profiles"] == [p.name for p in sorted((REPO / "profiles").glob("*.md"))]
    assert {k for k, _ in config_placeholders(REPO)} == {"source", "contact", "template"}


def test_lesson_check_reports_every_item_and_reminds_the_instructor(tmp_path: Path) -> None:
    result = kit_lesson("check", "--root", str(REPO), "--json")
    items = {i["name"]: i for i in json.loads(result.stdout)["result"]["items"]}
    assert {"example workspace locked", "hadolint", "zizmor", "check-jsonschema"} <= set(items)
    assert all(i["status"] == "ok" or i["fix"] for i in items.values())
    for key in ("source", "contact", "template"):
        item = items[f"config.yaml {key}"]
        assert item["status"] == "warning" and key in item["fix"]
    assert items["lesson in step with kit"]["status"] == "ok"
    (tmp_path / "config.yaml").write_text("source: 'https://github.com/me/lesson'\n")
    assert config_placeholders(tmp_path) == []


# -- the learners' template repository and the browser routes -----------------------------------


def test_template_is_the_example_as_a_repository_root(tmp_path: Path) -> None:
    done = kit_lesson("template", "--out", str(tmp_path / "cuda-template"))
    assert done.returncode == 0, done.stderr
    template = tmp_path / "cuda-template"
    tree = template_files(REPO)
    made = sorted(p.relative_to(template).as_posix() for p in template.rglob("*") if p.is_file())
    assert made == sorted(tree)
    for path, text in tree.items():
        assert (template / path).read_text() == text, path
    assert ".github/workflows/docker.yaml" in tree and "cuda-exercise/Dockerfile" in tree
    assert "cuda-exercise/pixi.lock" not in tree
    example = REPO / "examples" / "cuda-exercise"
    assert tree["cuda-exercise/pixi.toml"] == (example / "pixi.toml").read_text()
    probe = "cuda-exercise/app/torch_detect_GPU.py"
    assert tree[probe] == (example / "app" / "torch_detect_GPU.py").read_text()
    assert tree[".github/workflows/docker.yaml"] == lesson_files(REPO)[".github/workflows/docker.yaml"]
    state = json.loads((template / ".kit-state.json").read_text())
    assert "cuda-exercise/Dockerfile" in state["files"]
    # The README quotes the lesson's values, filled when the template is made.
    values = lesson_values(REPO)
    assert values["tag.gpu"] in tree["README.md"] and values["pixi.version"] in tree["README.md"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".kit-tmp")]


def test_template_goes_only_into_a_new_or_empty_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert kit_lesson("template", "--out", str(empty)).returncode == 0
    assert (empty / "cuda-exercise" / "Dockerfile").is_file()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "file").write_text("mine\n")
    for out, field in (
        (empty, "out"),  # not empty any more
        (tmp_path / "link", "out"),
        (tmp_path / "file", "out"),
        (tmp_path / "no" / "parent", "out"),
    ):
        done = kit_lesson("template", "--out", str(out))
        assert done.returncode == 2, (out, done.stderr)
        assert done.stderr.count("\n") == 1 and f"[{field}]" in done.stderr and "fix:" in done.stderr
    assert list((tmp_path / "elsewhere").iterdir()) == []
    assert (tmp_path / "file").read_text() == "mine\n"
    done = kit_lesson("template")
    assert done.returncode == 2 and "--out" in done.stderr and "Traceback" not in done.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".kit-tmp")]


def test_devcontainers_carry_the_kits_pixi() -> None:
    for where, text in (
        ("lesson", (REPO / ".devcontainer" / "devcontainer.json").read_text()),
        ("template", template_files(REPO)[".devcontainer/devcontainer.json"]),
    ):
        config = json.loads(text)
        assert config["containerEnv"]["PIXI_VERSION"] == f"v{PIXI_VERSION}", where
        assert "pixi.sh/install.sh" in config["postCreateCommand"]
        assert "docker-in-docker" in "".join(config["features"])


def test_setup_page_is_honest_about_each_route() -> None:
    setup = (REPO / "learners" / "setup.md").read_text()
    assert "everything can be followed in a browser" not in setup
    assert "Binder cannot push" in setup and "Codespace" in setup and "pixi lock" in setup


# -- solutions and temporary folders ----------------------------------------------------------


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem[:2].isdigit()], ids=lambda p: p.stem)
def test_solution_cells_wait_for_the_parameter(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert re.search(r"^solutions = False\b", nb.cells[1].source, re.M)
    for cell in nb.cells:
        if cell.cell_type == "code" and "solution" in cell.metadata.get("tags", []):
            assert cell.source.startswith("if nb.solution(solutions):\n"), cell.get("id")
            assert cell.metadata["jupyter"]["source_hidden"] is True


def test_scratch_copy_goes_with_its_owner() -> None:
    from kit.widgets.notebook import scratch_copy

    class Owner:
        pass

    owner = Owner()
    copy = scratch_copy(REPO / "examples" / "cuda-exercise", owner=owner)
    assert (copy / "pixi.toml").is_file()
    del owner
    gc.collect()
    assert not copy.parent.exists()


def test_scratch_copy_goes_when_the_kernel_exits(tmp_path: Path) -> None:
    code = (
        "import sys; from kit.widgets.notebook import scratch_copy, temporary_folder; "
        f"print(scratch_copy({str(REPO / 'examples' / 'cuda-exercise')!r}).parent); "
        "print(temporary_folder('kit-build-'))"
    )
    env = {"TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    made = [Path(line) for line in result.stdout.split()]
    assert len(made) == 2 and all(str(p).startswith(str(tmp_path)) for p in made)
    assert list(tmp_path.iterdir()) == []


def test_sync_refills_a_notebook_cell_byte_for_byte(tmp_path: Path) -> None:
    root = lesson_copy(tmp_path)
    notebook = root / "notebooks" / "04-apptainer.ipynb"
    good = notebook.read_text()
    notebook.write_text(
        good.replace(
            "gpu-noble-cuda-12.sif apptainer.def`<!-- /kit -->",
            "gpu-noble-cuda-12.9.sif apptainer.def`<!-- /kit -->",
        )
    )
    assert notebook.read_text() != good
    assert sync_lesson_files(root) == ["notebooks/04-apptainer.ipynb"]
    assert notebook.read_text() == good


def test_readme_command_lines_are_the_kits() -> None:
    """Every `kit ...` line of the README's command table names a real command, action and flag,
    and every `--flag a|b` list is the flag's choices (the parser is what the `kit` script runs)."""
    import argparse

    from kit.cli import build_parser

    readme = (REPO / "README.md").read_text()
    block = readme.split("## The `kit` command line", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0] for line in block.splitlines() if line.startswith("kit ")]
    assert len(lines) >= 9
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for line in lines:
        words = line.split()
        parser = sub.choices[words[1]]
        positional = [a for a in parser._actions if not a.option_strings]
        if words[1] == "lesson":
            assert words[2] in positional[0].choices, line
        flags = {s: a for a in parser._actions for s in a.option_strings}
        for flag, listed in re.findall(r"(--[a-z-]+)(?: ([a-z-]+(?:\|[a-z-]+)+))?", line):
            assert flag in flags, (line, flag)
            if listed:
                assert set(listed.split("|")) <= set(flags[flag].choices or ()), (line, flag)

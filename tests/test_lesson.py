"""The marker machinery of `kit lesson sync` (excerpts, refills) and the episodes' use of it; the
whole lesson's drift test is tests/test_workshop.py::test_lesson_is_in_step_with_the_kit."""

from __future__ import annotations

from conftest import REPO

from kit.lesson.sync import excerpt, lesson_files, refill


def test_every_episode_uses_generated_blocks() -> None:
    for episode in sorted((REPO / "episodes").glob("*.md")):
        if "Dockerfile" in episode.read_text() or "apptainer.def" in episode.read_text():
            assert "<!-- kit-file:" in episode.read_text(), episode.name


def test_refill_replaces_only_marked_blocks() -> None:
    files = {"a/Dockerfile": "ARG X=1\nFROM y AS build\nRUN z\n"}
    text = (
        '```bash\nkit generate\n```\n<!-- kit-file: a/Dockerfile from="^FROM" to="^RUN" -->\n'
        "```dockerfile\nold\n```\n"
    )
    assert refill(text, files, "e.md") == (
        "```bash\nkit generate\n```\n<!-- kit-file: a/Dockerfile "
        'from="^FROM" to="^RUN" -->\n```dockerfile\nFROM y AS build\nRUN z\n```\n'
    )
    assert excerpt("a\nb\nc\n", None, None, "x") == "a\nb\nc\n"


def test_lesson_renders_the_learners_layout() -> None:
    files = lesson_files(REPO)
    assert "cuda-exercise/Dockerfile" in files and ".github/workflows/docker.yaml" in files


def test_example_carries_the_packaged_probe_in_app() -> None:
    from kit.output.render import probe_script_text

    probe = REPO / "examples" / "cuda-exercise" / "app" / "torch_detect_GPU.py"
    assert probe.read_text() == probe_script_text()

"""Styles as data (kit.decide.styles): the plan decides from a style's row, templates only print."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import jinja2.meta
import pytest
from conftest import EXAMPLE

from kit.base.errors import OptionsError
from kit.decide import plan as plan_module
from kit.decide import styles
from kit.decide.options import RUNTIMES, STYLES, RenderOptions
from kit.decide.plan import DefHeader, resolve
from kit.model.workspace import load_workspace
from kit.output.render import jinja_env

TEMPLATES = Path(str(resources.files("kit") / "templates"))
TEMPLATE_FILES = sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.j2"))


@pytest.mark.parametrize("name", TEMPLATE_FILES)
def test_no_template_reads_the_options(name: str) -> None:
    """Templates print what the plan decided: the options never reach them."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    assert not re.search(r"\boptions\s*[.\[]", text), f"{name} reads the options"
    used = jinja2.meta.find_undeclared_variables(jinja_env().parse(text))
    assert "options" not in used, name


def test_every_style_has_a_row_and_its_templates() -> None:
    assert tuple(styles.TABLE) == STYLES
    for style in styles.TABLE.values():
        assert set(style.runtimes) <= set(RUNTIMES) and "image" in style.runtimes
        for recipe in ("Dockerfile.j2", "apptainer.def.j2"):
            assert (TEMPLATES / style.templates / recipe).is_file(), (style.name, recipe)


def test_the_plan_compares_no_style_names() -> None:
    source = Path(plan_module.__file__).read_text(encoding="utf-8")
    for name in STYLES:
        assert f'"{name}"' not in source and f"'{name}'" not in source, name


def test_an_unknown_style_is_an_options_error() -> None:
    with pytest.raises(OptionsError) as refused:
        styles.style("fancy")
    assert refused.value.field == "style"


def plan_for(**fields: object) -> plan_module.Plan:
    return resolve(load_workspace(EXAMPLE), RenderOptions(**fields))


@pytest.mark.parametrize(
    ("fields", "final", "def_final"),
    [
        ({"style": "lesson"}, "base", DefHeader("docker", "base")),
        ({"style": "optimized"}, "ubuntu:24.04", DefHeader("docker", "ubuntu:24.04")),
        ({"style": "optimized", "keep_pixi": True}, "base", DefHeader("docker", "base")),
        ({"style": "optimized", "runtime": "no-shell"}, "ubuntu:24.04", DefHeader("scratch", None)),
        ({"style": "optimized", "runtime": "minimal"}, "scratch", DefHeader("scratch", None)),
    ],
)
def test_the_plan_decides_each_stages_image(
    fields: dict[str, object], final: str, def_final: DefHeader
) -> None:
    plan = plan_for(base_image="base", **fields)
    assert plan.final_image == final
    assert plan.def_install_header == DefHeader("docker", "base")
    assert plan.def_final_header == def_final


def test_a_file_bootstrap_starts_every_image_stage_from_the_file() -> None:
    plan = plan_for(style="lesson", bootstrap="docker-archive", bootstrap_source="pixi.tar")
    assert plan.def_install_header == plan.def_final_header == DefHeader("docker-archive", "pixi.tar")


def test_a_runtime_the_style_does_not_build_names_the_style_that_does() -> None:
    with pytest.raises(OptionsError) as refused:
        plan_for(style="lesson", runtime="minimal")
    assert refused.value.field == "runtime"
    assert "needs the optimized style (the lesson's final stage is the pixi image)" in str(refused.value)
    assert refused.value.fix == "add --style optimized, or drop --runtime"


def test_what_the_def_reads_joins_the_workflow_path_filter() -> None:
    assert "apptainer.def" in plan_for(style="optimized").apptainer_paths
    lesson = plan_for(style="lesson")
    assert {"apptainer.def", ".gitignore"} <= set(lesson.apptainer_paths)
    assert ".gitignore" not in plan_for(style="optimized").apptainer_paths

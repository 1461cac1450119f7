"""The styles as data: a template folder and the few facts about it that the plan decides with.

A style is not a subclass chain (repo2docker's buildpacks) nor a name the code compares against:
it is one row of `STYLES`. The plan (`kit.decide.plan`) reads the row to check the options and
to decide what the templates print; the templates in `kit/templates/<templates>/` only print.
Adding a style is a template folder and a row here.
"""

from __future__ import annotations

from dataclasses import dataclass

from kit.base.errors import OptionsError
from kit.decide.options import RUNTIMES
from kit.model.deployfiles import GITIGNORE


@dataclass(frozen=True)
class Style:
    name: str
    templates: str  # its folder under kit/templates/: Dockerfile.j2 and apptainer.def.j2
    # The --runtime values it builds. A style whose final stage is the image the install ran in
    # (the pixi image) has only `image`.
    runtimes: tuple[str, ...]
    # Whether the final stage starts from an image of its own (runtime_image, scratch, or the pixi
    # image with --keep-pixi) rather than from the pixi image the install ran in.
    separate_runtime: bool
    # Deployment files the def copies into the image besides the manifest, the lock and the
    # project's own files: a change to one must rebuild, so they join the workflow's path filter.
    def_reads: tuple[str, ...]
    # Whether its Dockerfile labels the image with the commit (REVISION, CREATED build args), so
    # that a build asks git for them (kit.base.git).
    labels_with_commit: bool
    # What its final stage is, for the message that refuses a runtime it does not build.
    final_stage: str


TABLE: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            name="lesson",
            templates="lesson",
            runtimes=("image",),
            separate_runtime=False,
            def_reads=(GITIGNORE,),  # the lesson's def copies .gitignore into the image
            labels_with_commit=False,
            final_stage="the lesson's final stage is the pixi image",
        ),
        Style(
            name="optimized",
            templates="optimized",
            runtimes=RUNTIMES,
            separate_runtime=True,
            def_reads=(),
            labels_with_commit=True,
            final_stage="the optimized style's final stage is the runtime image",
        ),
    )
}


def style(name: str) -> Style:
    """The row of style `name`; OptionsError for a name the table lacks."""
    try:
        return TABLE[name]
    except KeyError:
        raise OptionsError(
            f"style {name!r} is unknown", field="style", fix=f"use one of: {', '.join(TABLE)}"
        ) from None


def styles_with_runtime(runtime: str) -> tuple[str, ...]:
    """The names of the styles that build `runtime`."""
    return tuple(s.name for s in TABLE.values() if runtime in s.runtimes)

"""`Prepared`: a workspace, where it sits in its repository, the options and the plan, resolved once.

It lives with the output (not in the facade) because staging, which lays the rendered files over
the build context, needs it too, and staging sits below the facade: the facade's `prepare()` makes
one, and everything below only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kit.decide.options import RenderOptions
from kit.decide.plan import Plan
from kit.model.repo import Location
from kit.model.workspace import Workspace
from kit.output.render import RenderedFile, render_plan


@dataclass(frozen=True)
class Prepared:
    """A workspace, where it sits, the options, and the plan resolved from them: made once by
    `prepare()` and passed down, so nothing downstream resolves again."""

    workspace: Workspace
    location: Location
    options: RenderOptions
    plan: Plan

    def render(self, only: tuple[str, ...] = ()) -> dict[str, RenderedFile]:
        return render_plan(self.plan, only)

"""`Prepared`: a workspace, where it sits in its repository, the options and the plan, resolved once.

It lives with the output (not in the facade) because staging, which lays the rendered files over
the build context, needs it too, and staging sits below the facade: the facade's `prepare()` makes
one, and everything below only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from kit.decide.options import RenderOptions
from kit.decide.plan import Plan
from kit.model.repo import Location
from kit.model.workspace import Workspace
from kit.output.jobfiles import fill_from_git
from kit.output.render import JOB_GROUPS, RenderedFile, render_plan


@dataclass(frozen=True)
class Prepared:
    """A workspace, where it sits, the options, and the plan resolved from them: made once by
    `prepare()` and passed down, so nothing downstream resolves again."""

    workspace: Workspace
    location: Location
    options: RenderOptions
    plan: Plan

    def render(self, only: tuple[str, ...] = ()) -> dict[str, RenderedFile]:
        """The rendered files (`only`: those groups). Only job files name a commit and a
        published image, so only for them is the repository asked (kit.base.git), here and not
        in `prepare()`: the other files render without starting git."""
        plan = self.plan
        if any(group in JOB_GROUPS for group in only):
            plan = replace(plan, options=fill_from_git(plan.options, self.workspace.root))
        return render_plan(plan, only)

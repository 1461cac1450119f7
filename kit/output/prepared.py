"""`Prepared`: a workspace, where it sits in its repository, the options and the plan, resolved once.

It lives with the output (not in the facade) because staging, which lays the rendered files over
the build context, needs it too, and staging sits below the facade: the facade's `prepare()` makes
one, and everything below only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from kit.decide.options import RenderOptions
from kit.decide.plan import Plan
from kit.model.repo import Location
from kit.model.workspace import Workspace
from kit.output.digests import pin_job_image
from kit.output.jobfiles import Pin, fill_from_git
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
        published image, so only for them is the repository asked (kit.base.git), and the
        registry (kit.base.registry, with `job_digest`), here and not in `prepare()`: the other
        files render without starting git or touching the network."""
        if any(group in JOB_GROUPS for group in only):
            plan, pin = self.jobs
            return render_plan(plan, only, pin)
        return render_plan(self.plan, only)

    @cached_property
    def jobs(self) -> tuple[Plan, Pin | None]:
        """The plan with the repository's facts filled in for the job files, and what the
        registry said of their image when `job_digest` is on: asked once, however often the
        job files are rendered."""
        plan = replace(self.plan, options=fill_from_git(self.plan.options, self.workspace.root))
        pin = pin_job_image(plan, self.workspace.root) if plan.options.job_digest else None
        return plan, pin

    def warnings(self, only: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The workspace's warnings, and, once job files were rendered, the registry's."""
        pin = self.jobs[1] if "jobs" in self.__dict__ and any(g in JOB_GROUPS for g in only) else None
        extra = (pin.warning,) if pin is not None and pin.warning else ()
        return self.workspace.warnings + extra

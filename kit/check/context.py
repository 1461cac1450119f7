"""What every check rule reads: `CheckContext` (the workspace, its deployment files, their parsed
forms, each parsed once) and the `Rule` type, in a module of their own so that the rule modules
(rules, images, jobs) all stand on it and none has to import another to get it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from kit.check import schema
from kit.check.findings import Finding
from kit.check.patterns import read_dockerignore
from kit.model import deffile, dockerfile
from kit.model.workspace import Workspace

DOCKER_WORKFLOW = ".github/workflows/docker.yaml"
APPTAINER_WORKFLOW = ".github/workflows/apptainer.yaml"


@dataclass
class CheckContext:
    workspace: Workspace
    prefix: str  # the workspace folder from the repository root, "" or "x/"
    files: dict[str, str]  # deployment files by path from the repository root
    findings: list[Finding] = field(default_factory=list)
    # This workspace's workflows (named after its folder when the repository holds several).
    docker_workflow: str = DOCKER_WORKFLOW
    apptainer_workflow: str = APPTAINER_WORKFLOW

    def text(self, name: str) -> str | None:
        return self.files.get(self.prefix + name)

    def exists(self, relpath: str) -> bool:
        """Whether a path in the workspace exists on disk or among the files about to be written."""
        rel = relpath.strip("/")
        if rel in ("", "."):
            return True
        try:
            if (self.workspace.root / rel).exists():
                return True
        except (OSError, ValueError):
            return False
        full = self.prefix + rel
        return any(p == full or p.startswith(full + "/") for p in self.files)

    @cached_property
    def docker_instructions(self) -> list[dockerfile.Instruction]:
        return dockerfile.instructions(self.text("Dockerfile") or "")

    @cached_property
    def docker_stages(self) -> list[dockerfile.Stage]:
        return dockerfile.stages(self.docker_instructions)

    @cached_property
    def docker_args(self) -> dict[str, str]:
        return dockerfile.arg_defaults(self.docker_instructions)

    @cached_property
    def def_file(self) -> deffile.DefFile:
        return deffile.parse_def(self.text("apptainer.def") or "")

    @property
    def def_stages(self) -> list[deffile.DefStage]:
        return self.def_file.stages

    @cached_property
    def dockerignore(self) -> list[str]:
        return read_dockerignore(self.text(".dockerignore") or "")

    def workflow(self, path: str) -> dict[str, Any]:
        """The workflow as a mapping with string keys ({} when absent, unreadable or not a mapping;
        the schema check reports why)."""
        if path not in self._workflows:
            self._workflows[path] = read_workflow(self.files.get(path))
        return self._workflows[path]

    @cached_property
    def _workflows(self) -> dict[str, dict[str, Any]]:
        return {}


def read_workflow(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    data, _ = schema.load_workflow(text)  # bounded; the schema check reports why it is None
    return data if isinstance(data, dict) else {}


Rule = Callable[[CheckContext], list[Finding]]

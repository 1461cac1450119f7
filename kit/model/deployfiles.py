"""The deployment files: every file the kit renders, writes, checks, stages or finds, in one table.

Render, write, check, discover, the plan's path filters and staging all read the names, groups
and kinds from here, so a file added, renamed or moved to another group changes in one row and
not in seven places. The table is data about the files only: which template prints a file is
the renderer's business (`kit.output.render`), what a build reads of them the engines'.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal


class FileKind(str, Enum):  # noqa: UP042  (str() and JSON of the values stay as they were)
    """How a rendered file meets what is on disk."""

    MANAGED = "managed"  # the kit owns the whole file; refuses to clobber hand edits
    LINES = "lines"  # the kit adds its lines to the user's file (.gitignore, .gitattributes)
    SEED = "seed"  # written only when missing (the probe script in app/)


# Where a file lives: in the workspace folder, in the workspace's application folder (--app-dir,
# not rendered without one), or at the repository root (GitHub reads workflows only there).
Place = Literal["workspace", "app", "repository"]


@dataclass(frozen=True)
class DeployFile:
    path: str  # from its place
    # What `kit generate --only` names to get it; "" for a file rendered only with all of them.
    group: str
    kind: FileKind
    place: Place
    language: str = "text"  # how front ends highlight it
    checked: bool = False  # whether `kit check` reads it
    # Rendered only when `--only` names its group: job files name a published image and a
    # commit, which a repository without a GitHub remote or a commit cannot give.
    on_request: bool = False
    # One file for the whole repository that every workspace renders alike (it lists them all):
    # no workspace owns it, so one workspace's generate never refuses another's (kit.output.write).
    shared: bool = False


DOCKERFILE = "Dockerfile"
DOCKERIGNORE = ".dockerignore"
APPTAINER_DEF = "apptainer.def"
GITIGNORE = ".gitignore"
GITATTRIBUTES = ".gitattributes"
HTCONDOR_FILE = "jobs/htcondor.sub"
INPUTS_FILE = "jobs/inputs.txt"
SLURM_FILE = "jobs/slurm.sbatch"
# The GPU probe shipped with the kit (package data in kit/probe/), placed in the application folder.
PROBE_SCRIPT = "torch_detect_GPU.py"
GITHUB_DIR = ".github/"
WORKFLOW_DIR = GITHUB_DIR + "workflows/"
# Dependabot's configuration: GitHub reads it only from this path at the repository root.
DEPENDABOT = GITHUB_DIR + "dependabot.yml"
# The kit's own record of what it wrote (SHA-256 per managed file), at the repository root (or
# --out): not a deployment file, but written, skipped and refused beside them.
STATE_FILE = ".kit-state.json"


def workflow_files(slug: str) -> tuple[str, str]:
    """The Docker and Apptainer workflow paths for a workspace with this slug ("" when alone:
    beside other workspaces each gets its own, see kit.model.discover)."""
    suffix = f"-{slug}" if slug else ""
    return (f"{WORKFLOW_DIR}docker{suffix}.yaml", f"{WORKFLOW_DIR}apptainer{suffix}.yaml")


DOCKER_WORKFLOW, APPTAINER_WORKFLOW = workflow_files("")

FILES: tuple[DeployFile, ...] = (
    DeployFile(DOCKERFILE, "docker", FileKind.MANAGED, "workspace", "dockerfile", checked=True),
    DeployFile(DOCKERIGNORE, "docker", FileKind.MANAGED, "workspace", checked=True),
    DeployFile(APPTAINER_DEF, "apptainer", FileKind.MANAGED, "workspace", "singularity", checked=True),
    DeployFile(DOCKER_WORKFLOW, "workflows", FileKind.MANAGED, "repository", "yaml", checked=True),
    DeployFile(APPTAINER_WORKFLOW, "workflows", FileKind.MANAGED, "repository", "yaml", checked=True),
    DeployFile(DEPENDABOT, "workflows", FileKind.MANAGED, "repository", "yaml", checked=True, shared=True),
    DeployFile(GITIGNORE, "", FileKind.LINES, "workspace", checked=True),
    DeployFile(GITATTRIBUTES, "", FileKind.LINES, "workspace"),
    DeployFile(HTCONDOR_FILE, "htcondor", FileKind.MANAGED, "workspace", checked=True, on_request=True),
    DeployFile(INPUTS_FILE, "htcondor", FileKind.MANAGED, "workspace", checked=True, on_request=True),
    DeployFile(SLURM_FILE, "slurm", FileKind.MANAGED, "workspace", "bash", checked=True, on_request=True),
    DeployFile(PROBE_SCRIPT, "", FileKind.SEED, "app", "python"),
)


def in_group(group: str) -> tuple[str, ...]:
    """The paths of `group`'s files, in the table's order."""
    return tuple(f.path for f in FILES if f.group == group)


# The groups `kit generate --only` takes, in the table's order, with the names of their files in
# the workspace (workflows: none, their names depend on the repository; see workflow_files).
GROUPS: dict[str, tuple[str, ...]] = {
    f.group: tuple(g.path.rsplit("/", 1)[-1] for g in FILES if g.group == f.group and g.place != "repository")
    for f in FILES
    if f.group
}
# The groups rendered only when named.
ON_REQUEST_GROUPS: tuple[str, ...] = tuple(dict.fromkeys(f.group for f in FILES if f.on_request))
# What `kit check` reads from the workspace folder (the workflows it reads at the repository root).
CHECKED_IN_WORKSPACE: tuple[str, ...] = tuple(f.path for f in FILES if f.checked and f.place == "workspace")
# The repository's shared files (one path for every workspace), which `kit check` reads at the root.
SHARED: tuple[str, ...] = tuple(f.path for f in FILES if f.shared)

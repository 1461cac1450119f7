"""The instructor's check before a workshop: what works on this machine, each item with its fix.

It looks at a lesson repository (its example workspace, episodes, notebooks and `config.yaml`)
and at this machine (linters, engines, GPU), so it lives with the lesson tools, not the facade.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kit.base.errors import UnreadableFile, UserError
from kit.check.linters import INSTALL_HINT, find_tool
from kit.engines import engine_status
from kit.lesson.sync import EXAMPLE, config_placeholders, sync_lesson_files
from kit.model.workspace import load_workspace


@dataclass(frozen=True)
class MachineItem:
    name: str
    status: str  # ok | warning | error
    detail: str
    fix: str = ""


def machine_report(root: Path | str = ".") -> list[MachineItem]:
    """What works on this machine before a workshop: lock, linters, engines, GPU, with fixes."""

    items: list[MachineItem] = []
    example = Path(root) / EXAMPLE
    if example.is_dir():
        ws = load_workspace(example)
        items.append(
            MachineItem(
                "example workspace locked",
                "ok" if ws.lock else "warning",
                "pixi.lock present" if ws.lock else "no pixi.lock: build and probe cells will skip",
                "" if ws.lock else "run `pixi lock` in examples/cuda-exercise on a connected machine",
            )
        )
    if example.is_dir() and (Path(root) / "episodes").is_dir():
        try:
            stale = sync_lesson_files(Path(root), write=False)
            items.append(
                MachineItem(
                    "lesson in step with kit",
                    "warning" if stale else "ok",
                    ", ".join(stale) or "episodes and notebooks match the kit",
                    "run `kit lesson sync` and commit" if stale else "",
                )
            )
        except UnreadableFile:
            raise  # bad input (exit 2), not a finding: a page the kit cannot read at all
        except UserError as error:
            items.append(MachineItem("lesson in step with kit", "error", error.detail, error.fix or ""))
    for key, wanted in config_placeholders(Path(root)):
        items.append(
            MachineItem(
                f"config.yaml {key}",
                "warning",
                "still a placeholder",
                f"set `{key}` in config.yaml to {wanted}",
            )
        )
    for tool in ("hadolint", "zizmor", "check-jsonschema"):
        found = find_tool(tool)
        items.append(
            MachineItem(
                tool, "ok" if found else "warning", found or "not installed", "" if found else INSTALL_HINT
            )
        )
    for capability in engine_status().checks:
        items.append(
            MachineItem(
                capability.name,
                "ok" if capability.ok else "warning",
                capability.detail,
                "" if capability.ok else capability.fix,
            )
        )
    return items


def format_machine_report(items: list[MachineItem]) -> str:
    marks = {"ok": "ok  ", "warning": "warn", "error": "FAIL"}
    return "\n".join(
        f"{marks[i.status]} {i.name}: {i.detail}" + (f" (fix: {i.fix})" if i.fix else "") for i in items
    )

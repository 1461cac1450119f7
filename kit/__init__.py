"""pixi-deploy-kit: read a Pixi workspace, render, check, build and probe its containers.

`kit.api` is the facade (inspect, generate, check, build, probe); the modules named after each
concern (`kit.model.workspace`, `kit.output.render`, `kit.check`, `kit.engines`, `kit.engines.gpu`) hold the parts.
Only names that do not shadow those modules are re-exported here. They load on first use, so
`import kit.cli` (the `kit` command) starts without Jinja, py-rattler or the Docker SDK and can
install its signal handlers first.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kit.api import generate, inspect, prepare
    from kit.base.errors import KitError, UserError
    from kit.decide.options import RenderOptions
    from kit.model.workspace import load_workspace

__all__ = ["KitError", "RenderOptions", "UserError", "generate", "inspect", "load_workspace", "prepare"]
_WHERE = {
    "KitError": "kit.base.errors",
    "UserError": "kit.base.errors",
    "RenderOptions": "kit.decide.options",
    "generate": "kit.api",
    "inspect": "kit.api",
    "prepare": "kit.api",
    "load_workspace": "kit.model.workspace",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'kit' has no attribute {name!r}")

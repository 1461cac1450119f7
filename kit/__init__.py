"""pixi-deploy-kit: read a Pixi workspace, render, check, build and probe its containers.

`kit.api` is the facade (inspect, generate, check, build, probe); the modules named after each
concern (`kit.workspace`, `kit.render`, `kit.check`, `kit.build`, `kit.gpu`) hold the parts.
Only names that do not shadow those modules are re-exported here.
"""

from kit.api import generate, inspect, prepare
from kit.errors import KitError, UserError
from kit.options import RenderOptions
from kit.workspace import load_workspace

__all__ = ["KitError", "RenderOptions", "UserError", "generate", "inspect", "load_workspace", "prepare"]

"""pixi-deploy-kit: read a Pixi workspace, render, check, build and probe its containers.

The public API is these names; everything else is an implementation module.
"""

from kit.api import check, generate, inspect, prepare
from kit.errors import KitError, UserError
from kit.options import RenderOptions
from kit.render import render
from kit.workspace import load_workspace

__all__ = ["KitError", "RenderOptions", "UserError", "check", "generate", "inspect",
           "load_workspace", "prepare", "render"]

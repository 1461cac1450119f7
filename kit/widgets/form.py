"""The studio's form: one widget per rendering option, and the options dict it stands for.

Every widget starts at the value the kit would use anyway, so an untouched form renders the
same files as `kit generate` without flags. Blank text fields mean "the kit's default", which
keeps the form forgiving: clearing a field never produces an invalid option.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]  # ships no type information

from kit.options import BOOTSTRAPS, DEFAULT_BASE_IMAGE, DEFAULT_RUNTIME_IMAGE, STYLES
from kit.plan import default_environment
from kit.widgets.pipeline import ENGINES
from kit.workspace import Workspace

# Option name -> the CSS class a browser test finds its widget by.
FIELDS: tuple[str, ...] = ("environment", "environments", "cuda", "style", "base_image",
                           "runtime_image", "image_name", "subdir", "app_dir", "bootstrap",
                           "bootstrap_source", "engine")
_CSS = {"environment": "kit-env", "environments": "kit-matrix", "cuda": "kit-cuda",
        "style": "kit-style", "base_image": "kit-base-image", "runtime_image": "kit-runtime-image",
        "image_name": "kit-image-name", "subdir": "kit-subdir", "app_dir": "kit-app-dir",
        "bootstrap": "kit-bootstrap", "bootstrap_source": "kit-bootstrap-source",
        "engine": "kit-engine"}
_STYLE = {"description_width": "11em"}
_WIDE = w.Layout(width="36em")


class OptionsForm:
    """Widgets for every `RenderOptions` field a learner chooses, plus the build engine."""

    def __init__(self, workspace: Workspace, subdir: str, initial: Mapping[str, Any] | None = None) -> None:
        self.workspace = workspace
        envs = list(workspace.environments)
        self.environment = w.Dropdown(options=envs, value=default_environment(workspace),
                                      description="environment", style=_STYLE)
        self.environments = w.SelectMultiple(options=envs, value=(), rows=min(len(envs), 4),
                                             description="matrix (none: all)", style=_STYLE)
        self.cuda = w.Text(value="", description="CUDA version", style=_STYLE)
        self.style = w.ToggleButtons(options=list(STYLES), value="lesson", description="style",
                                     style=_STYLE)
        self.base_image = w.Text(value=DEFAULT_BASE_IMAGE, description="base image",
                                 style=_STYLE, layout=_WIDE)
        self.runtime_image = w.Text(value=DEFAULT_RUNTIME_IMAGE, description="runtime image",
                                    style=_STYLE, layout=_WIDE)
        self.image_name = w.Text(value="", placeholder="ghcr.io/<owner>/<repository>",
                                 description="image name", style=_STYLE, layout=_WIDE)
        self.subdir = w.Text(value=subdir, placeholder="(repository root)",
                             description="subdirectory", style=_STYLE, layout=_WIDE)
        self.app_dir = w.Text(value="app", placeholder="(no code copied)", description="app dir",
                              style=_STYLE)
        self.bootstrap = w.Dropdown(options=list(BOOTSTRAPS), value="docker",
                                    description="Apptainer bootstrap", style=_STYLE)
        self.bootstrap_source = w.Text(value="", placeholder="archive or SIF (offline agents)",
                                       description="bootstrap source", style=_STYLE, layout=_WIDE)
        self.engine = w.ToggleButtons(options=list(ENGINES), value="docker", description="engine",
                                      style=_STYLE)
        for name in FIELDS:
            self.control(name).add_class(_CSS[name])
        self._update_cuda_placeholder()
        self.environment.observe(lambda _: self._update_cuda_placeholder(), names="value")
        for name, value in (initial or {}).items():
            self.set(name, value)
        self.box = w.VBox([self.control(n) for n in FIELDS], layout=w.Layout(width="auto"))
        self.box.add_class("kit-form")

    def control(self, name: str) -> w.ValueWidget:
        """The widget for option `name` (one of `FIELDS`)."""
        if name not in FIELDS:
            raise KeyError(f"no option {name!r}; options: {', '.join(FIELDS)}")
        widget: w.ValueWidget = getattr(self, name)
        return widget

    def set(self, name: str, value: Any) -> None:
        """Set one option's widget; None and lists are turned into what the widget holds."""
        if name == "environments":
            value = tuple(value or ())
        elif name in ("cuda", "image_name", "bootstrap_source") and value is None:
            value = ""
        elif name in ("base_image", "runtime_image") and value is None:
            value = DEFAULT_BASE_IMAGE if name == "base_image" else DEFAULT_RUNTIME_IMAGE
        self.control(name).value = value

    def observe(self, callback: Callable[[], object]) -> None:
        """Call `callback` after any option changes."""
        for name in FIELDS:
            self.control(name).observe(lambda _: callback(), names="value")

    def options(self) -> dict[str, Any]:
        """Keyword arguments for `kit.api.prepare` (without `engine`, which is not rendering)."""
        primary = self.environment.value
        return {
            "environment": primary,
            "environments": tuple(self.environments.value),
            "cuda": self.cuda.value.strip() or None,
            "style": self.style.value,
            "base_image": self.base_image.value.strip() or DEFAULT_BASE_IMAGE,
            "runtime_image": self.runtime_image.value.strip() or DEFAULT_RUNTIME_IMAGE,
            "image_name": self.image_name.value.strip(),
            "subdir": self.subdir.value.strip().strip("/"),
            "app_dir": self.app_dir.value.strip().strip("/"),
            "bootstrap": self.bootstrap.value,
            "bootstrap_source": self.bootstrap_source.value.strip(),
        }

    def _update_cuda_placeholder(self) -> None:
        env = self.workspace.environments.get(self.environment.value)
        required = env.cuda if env else None
        self.cuda.placeholder = required or "(CPU environment: no CUDA)"


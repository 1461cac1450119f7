"""The studio's form: one widget per rendering option, and the options dict it stands for.

Every widget starts at the value the kit would use anyway, so an untouched form renders the
same files as `kit generate` without flags. Blank text fields mean "the kit's default", which
keeps the form forgiving: clearing a field never produces an invalid option.

Laid out by the schema's groups (`OptionSpec.group`, kit.decide.options.OPTION_GROUPS), not by
a list of fields here: the `first` group (environment, style, engine: what a learner changes
first) stays in view at the top; every other group folds away in an accordion under its title,
closed at the start. The job-file settings get an accordion of their own (`job_box`), which the
studio places in its Job files tab, beside the files they shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as w  # type: ignore[import-untyped]  # ships no type information

from kit import api
from kit.decide.options import OPTION_GROUPS, BuildOptions, OptionSpec, RenderOptions, default_of, schema
from kit.model.workspace import Workspace

# Rendering options, then the build's: every field of the schema has a widget.
SCHEMA: tuple[tuple[str, Any, OptionSpec], ...] = tuple(
    (f.name, default_of(f), spec) for cls in (RenderOptions, BuildOptions) for f, spec in schema(cls)
)
FIELDS: tuple[str, ...] = tuple(name for name, _, _ in SCHEMA)
RENDER_FIELDS: tuple[str, ...] = tuple(f.name for f, _ in schema(RenderOptions))
# The groups folded in the form itself, and the one shown beside the job files instead.
FIRST_GROUP, JOB_GROUP = "first", "jobs"
FORM_GROUPS: tuple[str, ...] = tuple(g for g in OPTION_GROUPS if g not in (FIRST_GROUP, JOB_GROUP))
_STYLE = {"description_width": "11em"}
_WIDE = w.Layout(width="36em")


def css_class(name: str) -> str:
    """The CSS class a browser test finds an option's widget by: `kit-` + the flag's name."""
    spec = next(spec for n, _, spec in SCHEMA if n == name)
    return "kit-" + spec.flag.lstrip("-")


class OptionsForm:
    """A widget for every option of the schema (`kit.decide.options`), plus the build engine."""

    def __init__(self, workspace: Workspace, subdir: str, initial: Mapping[str, Any] | None = None) -> None:
        self.workspace = workspace
        self._defaults = {name: default for name, default, _ in SCHEMA}
        self._defaults["subdir"] = subdir
        self._controls: dict[str, w.ValueWidget] = {}
        for name, _default, spec in SCHEMA:
            self._controls[name] = self._widget(name, spec, self._defaults[name])
            self._controls[name].add_class(css_class(name))
        self.environment.value = api.default_environment(workspace)
        self._update_cuda_placeholder()
        self.environment.observe(lambda _: self._update_cuda_placeholder(), names="value")
        for name, value in (initial or {}).items():
            self.set(name, value)
        self.first = _group_box(self._in_group(FIRST_GROUP), "kit-form-first")
        self.groups = _accordion(
            [_group_box(self._in_group(g), f"kit-group-{g}") for g in FORM_GROUPS],
            [OPTION_GROUPS[g] for g in FORM_GROUPS],
            "kit-form-groups",
        )
        self.job_box = _accordion(
            [_group_box(self._in_group(JOB_GROUP), f"kit-group-{JOB_GROUP}")],
            [OPTION_GROUPS[JOB_GROUP]],
            "kit-form-jobs",
        )
        self.box = w.VBox([self.first, self.groups], layout=w.Layout(width="auto"))
        self.box.add_class("kit-form")

    def _in_group(self, group: str) -> list[w.ValueWidget]:
        """The widgets of the options in `group`, in the schema's order."""
        return [self._controls[name] for name, _, spec in SCHEMA if spec.group == group]

    def group_of(self, name: str) -> str:
        """The group option `name` is shown in."""
        self.control(name)
        return next(spec.group for n, _, spec in SCHEMA if n == name)

    def _widget(self, name: str, spec: OptionSpec, default: Any) -> w.ValueWidget:
        envs = list(self.workspace.environments)
        if spec.widget == "environment":
            return w.Dropdown(options=envs, description=spec.label, style=_STYLE)
        if spec.widget == "environments":
            return w.SelectMultiple(
                options=envs, value=(), rows=min(len(envs), 4), description=spec.label, style=_STYLE
            )
        if spec.widget == "toggle":
            return w.ToggleButtons(
                options=list(spec.choices), value=default, description=spec.label, style=_STYLE
            )
        if spec.widget == "choice":
            return w.Dropdown(options=list(spec.choices), value=default, description=spec.label, style=_STYLE)
        if spec.widget == "bool":
            return w.Checkbox(value=bool(default), description=spec.label, style=_STYLE)
        text = ", ".join(default) if isinstance(default, tuple) else (default or "")
        return w.Text(
            value=text, placeholder=spec.placeholder, description=spec.label, style=_STYLE, layout=_WIDE
        )

    def __getattr__(self, name: str) -> w.ValueWidget:
        controls = self.__dict__.get("_controls", {})
        if name in controls:
            return controls[name]
        raise AttributeError(name)

    def control(self, name: str) -> w.ValueWidget:
        """The widget for option `name` (one of `FIELDS`)."""
        if name not in FIELDS:
            raise KeyError(f"no option {name!r}; options: {', '.join(FIELDS)}")
        return self._controls[name]

    def set(self, name: str, value: Any) -> None:
        """Set one option's widget; None means the option's default."""
        control = self.control(name)
        if value is None:
            value = self._defaults[name]
        if isinstance(control, w.Text):
            value = ", ".join(value) if isinstance(value, (tuple, list)) else (value or "")
        elif isinstance(control, w.SelectMultiple):
            value = tuple(value or ())
        control.value = value

    def observe(self, callback: Callable[[], object]) -> None:
        """Call `callback` after any option changes."""
        for name in FIELDS:
            self.control(name).observe(lambda _: callback(), names="value")

    def options(self) -> dict[str, Any]:
        """Keyword arguments for `kit.api.prepare`: every rendering option, blank text meaning
        the schema's default (clearing a field never produces an invalid option)."""
        return {name: self._value(name) for name in RENDER_FIELDS}

    def build_options(self) -> BuildOptions:
        return BuildOptions(engine=self.control("engine").value, tag=self._value("tag"))

    def _value(self, name: str) -> Any:
        value = self.control(name).value
        default = self._defaults[name]
        if isinstance(self.control(name), w.Text):
            text = str(value).strip()
            if name in ("subdir", "app_dir"):
                return text.strip("/") if text or name == "app_dir" else default
            if isinstance(default, tuple):
                return tuple(t.strip() for t in text.split(",") if t.strip())
            return text or default
        if isinstance(value, list):
            return tuple(value)
        return value

    def _update_cuda_placeholder(self) -> None:
        env = self.workspace.environments.get(self.environment.value)
        required = env.cuda if env else None
        self.cuda.placeholder = required or "(CPU environment: no CUDA)"


def _group_box(children: list[w.ValueWidget], css: str) -> w.VBox:
    box = w.VBox(children, layout=w.Layout(width="auto"))
    box.add_class(css)
    return box


def _accordion(children: list[w.VBox], titles: list[str], css: str) -> w.Accordion:
    """Folded groups: every section closed until the learner opens one."""
    accordion = w.Accordion(children=children, titles=tuple(titles), selected_index=None)
    accordion.add_class(css)
    return accordion

"""What the install stage reads from the workspace besides the manifest and the lock.

An environment may install the workspace's own Python project (a PyPI dependency with
`path = "."`, editable or not, as in pixi's docker example). Then `pixi install` builds that
project, so its source must be in the image before the install runs, and (for an editable
install, which points at the source) stay in the final image too. Everything else (the
application code in `app/`) still comes after the install, so editing it never re-runs it.

Which files a build backend reads cannot be known in general; the kit takes what the common
backends (hatchling, setuptools, flit, pdm) read: the package folders (`src/`, or the top-level
folders with an `__init__.py`), top-level modules named after the project, the files
`[project]` names (`readme`, `license`), and `setup.py`/`setup.cfg`/`MANIFEST.in`.
"""

from __future__ import annotations

from typing import Any

from kit.model.workspace import Workspace

SETUP_FILES = ("setup.py", "setup.cfg", "MANIFEST.in")
NEVER = frozenset({".pixi", ".git", ".github", "tests", "test", "docs", "app", "build", "dist"})


def installs_project(workspace: Workspace, environments: tuple[str, ...]) -> bool:
    """Whether any of `environments` has a PyPI dependency on the workspace itself (path ".")."""
    table = workspace.pixi_table
    features = table.get("feature", {}) if isinstance(table.get("feature"), dict) else {}
    for env in environments:
        for feature in workspace.environments[env].features:
            source = table if feature == "default" else features.get(feature, {})
            if isinstance(source, dict) and _has_self_dependency(source):
                return True
    return False


def project_sources(workspace: Workspace, app_dir: str) -> tuple[str, ...]:
    """The project's own files the install needs (see the module docstring), sorted, folders
    with a trailing '/'; the manifest and the lock are not included, nor the application folder."""
    root = workspace.root
    project = workspace.project_table
    found: set[str] = set()
    if (root / "src").is_dir():
        found.add("src/")
    else:
        for child in sorted(root.iterdir()):
            if (
                child.is_dir()
                and not child.is_symlink()
                and child.name not in NEVER
                and not child.name.startswith(".")
                and child.name != app_dir
                and (child / "__init__.py").is_file()
            ):
                found.add(child.name + "/")
        module = str(project.get("name", "")).replace("-", "_").lower()
        if module and (root / f"{module}.py").is_file():
            found.add(f"{module}.py")
    for name in SETUP_FILES:
        if (root / name).is_file():
            found.add(name)
    for key in ("readme", "license"):
        value = project.get(key)
        named = value.get("file") if isinstance(value, dict) else value if key == "readme" else None
        if isinstance(named, str) and "/" not in named and (root / named).is_file():
            found.add(named)
    return tuple(sorted(found))


def _has_self_dependency(feature: dict[str, Any]) -> bool:
    tables = [feature.get("pypi-dependencies", {})]
    targets = feature.get("target", {})
    if isinstance(targets, dict):
        tables += [t.get("pypi-dependencies", {}) for t in targets.values() if isinstance(t, dict)]
    for deps in tables:
        if not isinstance(deps, dict):
            continue
        for spec in deps.values():
            if isinstance(spec, dict) and str(spec.get("path", "")).rstrip("/") in (".", ""):
                if "path" in spec:
                    return True
    return False

"""What the install stage reads from the workspace besides the manifest and the lock.

An environment may install the workspace's own Python project (a PyPI dependency with
`path = "."`, editable or not, as in pixi's docker example). Then `pixi install` builds that
project, so its source must be in the image before the install runs, and (for an editable
install, which points at the source) stay in the final image too. Everything else (the
application code in `app/`) still comes after the install, so editing it never re-runs it.

Which files a build backend reads cannot be known in general; the kit takes what the common
backends (hatchling, setuptools, flit, pdm) read: the package folders (`src/`, or the top-level
folders with an `__init__.py`), top-level modules named after the project, the files
`[project]` names (`readme`, `license`, `license-files`), the usual licence files,
`setup.py`/`setup.cfg`/`MANIFEST.in`, and `pyproject.toml` itself when the manifest is a
`pixi.toml` beside it (the backend reads the project's metadata there).

pixi itself reads more files at install time, and those are named in the manifest, so they are
known exactly (kit.model.workspace reads them): `[activation] scripts` (pixi runs them when it
activates the environment, so an image without them fails or silently lacks their variables)
and conda source dependencies (`pkg = { path = "src/pkg" }`, built by pixi-build during the
install; `path = "."` or a `[package]` table makes the workspace itself a source package).
`build_sources` gathers all of them for the plan; `manifest_paths` lists the manifest's own for
`kit check`.

Every path found here is printed into a `COPY` and a `%files` line, so each must be one token
and stay inside the workspace folder (the build context), whoever named it (issue 19, class 3):

- a name the manifest or `[project]` gives (`readme`, `license`, `license-files` matches, the
  project's name as a module file) that needs quoting (a space, `$`, `*`, ...) is refused with
  the field that names it: Dockerfile's JSON form could quote it, but a def file's `%files` line
  cannot, and one recipe must not copy what the other leaves out;
- a `[project].name` that is no PEP 508 name (`../outside/evil`) is refused: no build backend
  accepts it, and it would name a file outside the workspace;
- a folder that is not a Python identifier (`*`, `my pkg`, `$x`) is not a package a backend
  finds, whatever it holds, so it is not copied;
- a path that leads outside the workspace through a link (`src -> /home/me/elsewhere`) is
  refused, naming the link: the image would get another machine's files, or none.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Any

from kit.base.errors import WorkspaceError
from kit.base.names import PATH_COMPONENT
from kit.model.workspace import WORKSPACE_NAME, Workspace, parse_manifest_toml

SETUP_FILES = ("setup.py", "setup.cfg", "MANIFEST.in")
LICENCE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "COPYING", "NOTICE")
# Recipes and build files pixi-build backends read from a source package's folder.
PACKAGE_BUILD_FILES = (
    "recipe.yaml",
    "CMakeLists.txt",
    "Cargo.toml",
    "Cargo.lock",
    "package.xml",
    "meson.build",
)
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


def manifest_paths(workspace: Workspace, environments: tuple[str, ...]) -> tuple[tuple[str, str, str], ...]:
    """(path, what it is, the manifest field that names it) for each path `environments` need
    that the manifest names: their activation scripts and path dependencies, relative to the
    workspace, in order."""
    out: dict[str, tuple[str, str]] = {}
    for env in environments:
        e = workspace.environments[env]
        for script in e.activation_scripts:
            out.setdefault(
                script, (f"activation script of environment {env!r}", e.path_fields.get(script, ""))
            )
        for source in e.source_paths:
            out.setdefault(source, (f"path dependency of environment {env!r}", e.path_fields.get(source, "")))
    # A source package's own manifest names paths pixi-build reads too: its source folder
    # (`[package.build] source = { path = "../src" }`, an out-of-tree build) and its path
    # dependencies; followed from each source package, each package once.
    queue = [path for path, (what, _) in out.items() if what.startswith("path dependency")]
    seen: set[str] = set()
    while queue:
        package = queue.pop(0)
        if package in seen or outside(package):
            continue
        seen.add(package)
        for path, field_name in package_manifest_paths(workspace.root, package):
            if path not in out:
                out[path] = (f"path named by source package {package!r}", field_name)
                queue.append(path)
    return tuple((path, what, where) for path, (what, where) in out.items())


PACKAGE_DEPENDENCY_TABLES = ("build-dependencies", "host-dependencies", "run-dependencies")


def package_manifest_paths(root: Path, package: str) -> list[tuple[str, str]]:
    """(path relative to the workspace, the field naming it) for the paths a source package's
    manifest (`<package>/pixi.toml` with `[package]`, or a pyproject.toml's `[tool.pixi.package]`)
    names: `package.build.source.path` and path dependencies, relative to the package folder."""
    folder = root / package
    for name, prefix in (("pixi.toml", ""), ("pyproject.toml", "tool.pixi.")):
        file = folder / name
        if not file.is_file() or file.is_symlink():
            continue
        try:
            data = parse_manifest_toml(file)
        except Exception:  # WorkspaceError: pixi-build will say what is wrong with it
            continue
        table: Any = data
        for key in prefix.split(".")[:-1]:
            table = table.get(key, {}) if isinstance(table, dict) else {}
        table = table.get("package") if isinstance(table, dict) else None
        if not isinstance(table, dict):
            continue
        found: list[tuple[str, str]] = []
        where = f"{package}/{name}: {prefix}package"
        build = table.get("build")
        source = build.get("source") if isinstance(build, dict) else None
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            found.append((source["path"], f"{where}.build.source.path"))
        blocks = [("", table)]
        targets = table.get("target")
        if isinstance(targets, dict):
            blocks += [(f".target.{t}", v) for t, v in targets.items() if isinstance(v, dict)]
        for at, block in blocks:
            for deps_name in PACKAGE_DEPENDENCY_TABLES:
                deps = block.get(deps_name)
                for dep, spec in deps.items() if isinstance(deps, dict) else ():
                    if isinstance(spec, dict) and isinstance(spec.get("path"), str):
                        found.append((spec["path"], f"{where}{at}.{deps_name}.{dep}.path"))
        return [
            (posixpath.normpath(posixpath.join(package, path)), field_name)
            for path, field_name in found
            if path and not path.startswith(("/", "~")) and "\\" not in path
        ]
    return []


def outside(path: str) -> bool:
    """Whether a manifest path leaves the workspace folder (`../x`), which is the build context."""
    return path.split("/")[0] == ".."


def build_sources(workspace: Workspace, environments: tuple[str, ...], app_dir: str) -> tuple[str, ...]:
    """Everything the install of `environments` reads besides the manifest and the lock, sorted,
    folders with a trailing '/': the project's own files when it installs itself (a PyPI or
    conda `path = "."` dependency, or a `[package]` table), activation scripts, source packages.
    Paths outside the workspace are left to the caller (see `outside`)."""
    found: set[str] = set()
    self_package = workspace.package or any(
        "." in workspace.environments[env].source_paths for env in environments
    )
    if self_package or installs_project(workspace, environments):
        found.update(project_sources(workspace, app_dir))
    if self_package:
        found.update(name for name in PACKAGE_BUILD_FILES if (workspace.root / name).is_file())
    for path, _, _ in manifest_paths(workspace, environments):
        if path == "." or outside(path):
            continue
        found.add(path + "/" if (workspace.root / path).is_dir() else path)
    # A path inside a folder already copied comes with it.
    folders = [f for f in found if f.endswith("/")]
    kept = tuple(sorted(p for p in found if not any(p != f and p.startswith(f) for f in folders)))
    for path in kept:
        copyable(workspace.root, path.rstrip("/"), workspace.manifest_path, "context")
    return kept


def one_token(path: str) -> bool:
    """Whether `path` (relative, '/'-separated) prints as one token in a `COPY` and a `%files`
    line: plain components, no `..`, nothing a shell or Dockerfile would read."""
    parts = path.split("/")
    return bool(path) and all(PATH_COMPONENT.match(p) for p in parts)


def copyable(root: Path, path: str, manifest: Path, field: str) -> str:
    """`path` if it is one token and, links followed, stays inside `root`; else WorkspaceError
    naming `field` of `manifest` (or the link that leaves)."""
    if not one_token(path):
        raise WorkspaceError(
            f"the build would copy {path!r}, which a COPY or %files line cannot hold as one "
            "path (spaces, quotes, '$', '*' and other shell characters, or '..')",
            file=manifest,
            field=field,
            fix="rename it with letters, digits, '.', '_' and '-' only, and name it so",
        )
    top = root.resolve()
    here = root
    for part in path.split("/"):
        here = here / part
        if os.path.islink(here):
            target = here.resolve()
            if target != top and top not in target.parents:
                raise WorkspaceError(
                    f"is a link to {os.readlink(here)!r}, outside the workspace folder (the build "
                    "context): the image would get another machine's files, or none",
                    file=here,
                    field=field,
                    fix="replace the link with the files themselves, inside the workspace folder",
                )
    return path


def project_sources(workspace: Workspace, app_dir: str) -> tuple[str, ...]:
    """The project's own files the install needs (see the module docstring), sorted, folders
    with a trailing '/'; the manifest and the lock are not included, nor the application folder."""
    root = workspace.root
    project = workspace.project_table
    found: set[str] = set()
    metadata = workspace.manifest_path
    if workspace.manifest_path.name == "pixi.toml" and (root / "pyproject.toml").is_file():
        # The backend reads the project's metadata from the pyproject.toml beside pixi.toml.
        found.add("pyproject.toml")
        metadata = root / "pyproject.toml"
        try:
            data = parse_manifest_toml(root / "pyproject.toml")
        except Exception:  # WorkspaceError: the build backend will say what is wrong with it
            data = {}
        project = data.get("project", {}) if isinstance(data.get("project"), dict) else {}
    if (root / "src").is_dir():
        found.add("src/")
    else:
        for child in _top_level(root, metadata):
            if (
                child.is_dir()
                and not child.is_symlink()
                and child.name not in NEVER
                and not child.name.startswith(".")
                and child.name != app_dir
                and child.name.isidentifier()  # else no backend finds it as a package
                and (child / "__init__.py").is_file()
            ):
                found.add(child.name + "/")
        module = _module_name(project.get("name"), metadata)
        if module and (root / f"{module}.py").is_file():
            found.add(f"{module}.py")
    for name in SETUP_FILES:
        if (root / name).is_file():
            found.add(name)
    for key in ("readme", "license"):
        value = project.get(key)
        named = value.get("file") if isinstance(value, dict) else value if key == "readme" else None
        if isinstance(named, str) and "/" not in named and (root / named).is_file():
            found.add(copyable(root, named, metadata, f"project.{key}"))
    patterns = project.get("license-files", [])
    for pattern in patterns if isinstance(patterns, list) else []:
        if isinstance(pattern, str) and "/" not in pattern and "**" not in pattern:
            found.update(
                copyable(root, p.name, metadata, "project.license-files")
                for p in _bounded_glob(root, pattern)
                if p.is_file() and not p.is_symlink()
            )
    found.update(name for name in LICENCE_FILES if (root / name).is_file())
    return tuple(sorted(found))


MAX_GLOB = 1000  # entries of the workspace folder a `license-files` pattern is matched against
MAX_TOP_LEVEL = 10_000  # entries of the workspace folder looked at for package folders


def _top_level(root: Path, metadata: Path) -> list[Path]:
    """The workspace folder's entries, sorted, for the package search; refused past MAX_TOP_LEVEL
    (each is looked into for an `__init__.py`), instead of reading a million of them."""
    from itertools import islice

    with os.scandir(root) as entries:
        names = [e.name for e in islice(entries, MAX_TOP_LEVEL + 1)]
    if len(names) > MAX_TOP_LEVEL:
        raise WorkspaceError(
            f"the workspace folder {root} holds more than {MAX_TOP_LEVEL} entries to search for "
            "the project's packages",
            file=metadata,
            field="project",
            fix="put the package under src/ (then only src/ is copied), or move the files into a folder",
        )
    return [root / n for n in sorted(names)]


def _bounded_glob(root: Path, pattern: str) -> list[Path]:
    """The top-level entries of `root` that `pattern` (no '/') matches, looking at no more than
    MAX_GLOB of them: a folder of a million files is not read to find a licence."""
    import fnmatch
    from itertools import islice

    try:
        with os.scandir(root) as entries:
            names = [e.name for e in islice(entries, MAX_GLOB)]
    except OSError:
        return []
    return [root / n for n in sorted(names) if fnmatch.fnmatchcase(n, pattern) and not n.startswith(".")]


def _module_name(name: Any, metadata: Path) -> str:
    """The module file a flat project named `name` may have (`my-pkg` -> `my_pkg`); '' when it
    names none. A name that is not a PEP 508 name is refused: no build backend accepts it, and
    `../outside/evil` would name a file outside the workspace."""
    if name is None or name == "":
        return ""
    if not isinstance(name, str) or not WORKSPACE_NAME.match(name):
        raise WorkspaceError(
            f"[project].name {name!r} is not a package name (letters, digits, '.', '_', '-', "
            "starting and ending with a letter or digit)",
            file=metadata,
            field="project.name",
            fix='rename the project, e.g. name = "my-package"',
        )
    module = re.sub(r"[-.]+", "_", name).lower()
    return module if module.isidentifier() else ""


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

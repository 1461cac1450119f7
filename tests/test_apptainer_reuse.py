"""Which Apptainer rebuilds `kit build` may do as a re-pack of the kept root (no engine needed).

The key must change with everything the root was made from except the application code, and a
def whose final stage runs commands (the lesson's) must always be built from the def.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import EXAMPLE

from kit import api
from kit.engines.apptainer_reuse import plan_reuse, refresh
from kit.output import staging


def _staged(tmp_path: Path, style: str, name: str = "context") -> Path:
    prepared = api.prepare(EXAMPLE, style=style, environment="cpu", subdir="")
    return staging.stage_build_context(prepared, tmp_path / name, "apptainer")


def _key(context: Path, args: dict[str, str] | None = None) -> str | None:
    env = {"KIT_APPTAINER_ROOTS": "/roots"}
    reuse = plan_reuse(context / "apptainer.def", args or {"ENVIRONMENT": "cpu"}, "cpu", env)
    return None if reuse is None else reuse.root.name


def test_optimized_rebuild_is_keyed_by_all_but_the_app(tmp_path: Path) -> None:
    context = _staged(tmp_path, "optimized")
    first = _key(context)
    assert first is not None and first.startswith("cpu-")
    (context / "app" / "edited.py").write_text("print('edited')\n")
    assert _key(context) == first
    (context / "pixi.toml").write_text((context / "pixi.toml").read_text() + "\n# relocked\n")
    assert _key(context) != first
    assert _key(context, {"ENVIRONMENT": "gpu"}) not in (first, _key(context))


def test_lesson_def_is_always_built_from_the_def(tmp_path: Path) -> None:
    """Its final stage has %post (chmod, pixi info): copying files again would skip it."""
    assert _key(_staged(tmp_path, "lesson")) is None


def test_refresh_replaces_the_app_as_files_copies_it(tmp_path: Path) -> None:
    context = _staged(tmp_path, "optimized")
    reuse = plan_reuse(context / "apptainer.def", {}, "cpu", {"KIT_APPTAINER_ROOTS": str(tmp_path / "roots")})
    assert reuse is not None and reuse.app_files == (("app", "/app/src"),)
    (reuse.root / "app" / "src").mkdir(parents=True)
    (reuse.root / "app" / "src" / "gone.py").write_text("")
    shutil.copy(context / "pixi.toml", context / "app" / "new.toml")
    refresh(reuse, context)
    assert sorted(p.name for p in (reuse.root / "app" / "src").iterdir()) == sorted(
        p.name for p in (context / "app").iterdir()
    )

#!/usr/bin/env python3
"""The lab's `pixi lock` for a learner's workspace, in place: `learner_lock.py [DIR]`.

What a learner's `pixi lock` does on a connected machine, done with the lab's parts: the manifest's
`channels` are pointed at the lab channel (as the lab's pixi image sees it) and its `platforms` at
linux-64 (tests/lab/workspace.py's `lab_manifest`), then py-rattler solves every environment
against the lab channel and writes `pixi.lock` beside the manifest. Nothing else in DIR changes.
The episode-block tests use it for the setup page's `pixi lock` (marker local-equivalent=lab-lock).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pixi_standin  # noqa: E402  (the path above)
import workspace  # noqa: E402


def lock_in_place(directory: Path, cache: Path | None = None) -> Path:
    manifest = directory / "pixi.toml"
    if not manifest.is_file():
        raise SystemExit(f"learner_lock: {manifest} is missing: run it in a pixi workspace folder")
    channel = (cache or workspace.default_cache()) / "channel"
    if not (channel / "noarch" / "repodata.json").is_file():
        raise SystemExit(f"learner_lock: no lab channel at {channel}: run tests/lab/provision.sh")
    text = manifest.read_text()
    if "kit-lab copy of" not in text:
        manifest.write_text(workspace.lab_manifest(text, origin=str(manifest)))
    asyncio.run(workspace._lock(pixi_standin.Workspace(manifest), channel, directory / "pixi.lock"))
    return directory / "pixi.lock"


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    print(f"locked {lock_in_place(target)}")
    # py-rattler's worker threads can abort the interpreter's teardown (seen once in CI: "Fatal
    # Python error: PyGILState_Release" after the lock was written); leave as the stand-in does.
    pixi_standin.exit_now(0)

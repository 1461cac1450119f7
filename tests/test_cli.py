"""The `kit` command line, run as a real process: outputs, exit codes, and the bad-input corpus."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import EXAMPLE, REPO, TZDATA_RECORD, TZDATA_URL
from conftest import kit_cli as kit


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_inspect_text_and_json(real_world: Path) -> None:
    text = kit("inspect", str(real_world))
    assert text.returncode == 0 and "gpu" in text.stdout and "CUDA 12" in text.stdout
    data = json.loads(kit("inspect", str(real_world), "--json").stdout)["result"]
    gpu = next(e for e in data["environments"] if e["name"] == "gpu")
    assert gpu["cuda"] == "12" and gpu["locked_for_linux"] is True


def test_generate_diff_writes_nothing_then_generate_writes(example: Path) -> None:
    before = snapshot(example)
    diff = kit("generate", str(example), "--diff")
    assert diff.returncode == 0 and "+++ b/Dockerfile" in diff.stdout
    assert snapshot(example) == before
    assert kit("generate", str(example)).returncode == 0
    assert (example / "Dockerfile").exists() and (example / ".github/workflows/docker.yaml").exists()
    again = kit("generate", str(example), "--json")
    assert {c["action"] for c in json.loads(again.stdout)["result"]["changes"]} == {"unchanged"}


def test_hand_edits_are_kept_unless_forced(example: Path) -> None:
    assert kit("generate", str(example)).returncode == 0
    dockerfile = example / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "# my note\n")
    refused = kit("generate", str(example), "--style", "optimized")
    assert refused.returncode == 2 and "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert dockerfile.read_text().endswith("# my note\n")
    assert kit("generate", str(example), "--style", "optimized", "--force").returncode == 0
    assert "AS install" in dockerfile.read_text()


def test_regenerating_with_new_options_replaces_own_files(example: Path) -> None:
    assert kit("generate", str(example)).returncode == 0
    assert kit("generate", str(example), "--style", "optimized").returncode == 0


def test_line_files_keep_user_lines(example: Path) -> None:
    (example / ".gitignore").write_text("data/\n.pixi/*\n")
    assert kit("generate", str(example)).returncode == 0
    text = (example / ".gitignore").read_text()
    assert text.startswith("data/\n.pixi/*\n") and text.count(".pixi/*") == 1 and "*.sif" in text


def test_out_and_only(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert kit("generate", str(example), "--out", str(out), "--only", "workflows").returncode == 0
    assert sorted(snapshot(out)) == [
        ".github/workflows/apptainer.yaml",
        ".github/workflows/docker.yaml",
        ".kit-state.json",
    ]


def test_check_exit_codes(real_world: Path, example: Path) -> None:
    assert kit("generate", str(real_world), "--env", "gpu").returncode == 0
    assert kit("check", str(real_world)).returncode == 0
    assert kit("generate", str(example)).returncode == 0
    assert kit("check", str(example)).returncode == 1  # no pixi.lock to copy


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
def test_bad_input_corpus(tmp_path: Path, case: str) -> None:
    files, flags, expected = CORPUS[case]
    root = write_workspace(tmp_path / "ws", **files)
    before = snapshot(root)
    result = kit("generate", str(root), *flags)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kit: error: "), result.stderr
    assert expected in lines[0] and "fix:" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert snapshot(root) == before


def test_unreadable_directory(tmp_path: Path) -> None:
    result = kit("inspect", str(tmp_path / "missing"))
    assert result.returncode == 2 and "not a readable directory" in result.stderr


def test_errors_as_json(tmp_path: Path) -> None:
    result = kit("inspect", str(tmp_path), "--json")
    assert result.returncode == 2 and "no pixi.toml" in json.loads(result.stdout)["errors"][0]["message"]


def test_workspace_in_a_repository_subfolder(example: Path) -> None:
    """Workflows go to the repository root, and their paths and contexts name the subfolder."""
    repo = example.parent
    (repo / ".git").mkdir()  # enough for the kit to find the root; no git needed
    assert kit("generate", str(example)).returncode == 0
    workflow = (repo / ".github" / "workflows" / "docker.yaml").read_text()
    assert "- 'cuda-exercise/pixi.lock'" in workflow and "context: cuda-exercise" in workflow
    assert (example / "Dockerfile").exists() and not (example / ".github").exists()
    assert kit("check", str(example)).returncode == 1  # the example has no lock; nothing else
    findings = json.loads(kit("check", str(example), "--json").stdout)["result"]["findings"]
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
def test_usage_errors_print_one_json_object(argv: list[str]) -> None:
    """With --json, even argparse's own complaints come back as the one JSON shape, exit 2."""
    result = kit(*argv)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    body = json.loads(result.stdout)
    assert body["ok"] is False and body["errors"][0]["fix"] and body["result"] is None


def test_every_command_has_the_same_json_shape(real_world: Path) -> None:
    for argv in (
        ["inspect", str(real_world)],
        ["check", str(real_world)],
        ["generate", str(real_world), "--diff"],
        ["lesson", "check", "--root", str(REPO)],
    ):
        body = json.loads(kit(*argv, "--json").stdout)
        assert set(body) == {"ok", "command", "result", "errors"}, argv


def test_flags_come_from_the_option_schema() -> None:
    """Every option field has its flag on generate and build; nothing else lists options."""
    from kit.cli import build_parser
    from kit.decide.options import BuildOptions, RenderOptions, schema

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "==SUPPRESS==" or a.choices)  # noqa: SLF001
    for command, classes in (("generate", (RenderOptions,)), ("build", (RenderOptions, BuildOptions))):
        flags = {s for a in sub.choices[command]._actions for s in a.option_strings}  # type: ignore[index]
        for cls in classes:
            for _field, spec in schema(cls):
                assert spec.flag in flags, (command, spec.flag)

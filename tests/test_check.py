"""The real linters and the kit's own rules, on rendered files and on hand-broken ones."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import TZDATA_RECORD, TZDATA_URL, need

from kit.api import check, generate, prepare
from kit.base.errors import UserError
from kit.check import check_files, linters, schema
from kit.check.findings import Finding
from kit.check.linters import find_tool
from kit.check.patterns import dockerignore_excludes, gitignore_excludes, path_filter_matches
from kit.cli import main
from kit.decide.options import PIXI_VERSION
from kit.model.deffile import def_arguments_used, parse_def
from kit.model.dockerfile import copy_sources, dockerfile_args_used, instructions
from kit.model.pixi_versions import newest_lock_format
from kit.model.workspace import load_workspace

LINTERS = ("hadolint", "zizmor", "check-jsonschema")
OLD_PIXI_IMAGE = "ghcr.io/prefix-dev/pixi:0.55.0-noble"  # reads lock format v6 only
NEW_PIXI_IMAGE = "ghcr.io/prefix-dev/pixi:0.68.0-noble"  # the first to read v7

# A workspace with a lock in format v7, written for these tests (one package, one platform).
V7_MANIFEST = """[workspace]
name = "tiny"
channels = ["conda-forge"]
platforms = ["linux-64"]

[dependencies]
tzdata = "*"
"""
V7_LOCK = f"""version: 7
platforms:
- name: linux-64
environments:
  default:
    channels:
    - url: https://conda.anaconda.org/conda-forge/
    packages:
      linux-64:
      - conda: {TZDATA_URL}
packages:
{TZDATA_RECORD}"""


def linters_present() -> None:
    missing = [t for t in LINTERS if find_tool(t) is None]
    need(not missing, f"linters not installed: {', '.join(missing)} (pip install 'pixi-deploy-kit[lint]')")


def run_check(directory: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, object]]]:
    """`kit check DIR --json` as a user runs it: the exit code and the findings."""
    capsys.readouterr()
    code = main(["check", str(directory), "--json"])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    report = json.loads(out.out)
    assert report["command"] == "check" and report["ok"] is (code == 0), report
    return code, report["result"]["findings"]


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings if f.tool in ("kit", "apptainer-def")}


@pytest.fixture
def tiny_v7(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    root.mkdir()
    (root / "pixi.toml").write_text(V7_MANIFEST)
    (root / "pixi.lock").write_text(V7_LOCK)
    return root


# -- the linters ------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["lesson", "optimized"])
def test_real_world_gpu_is_clean_with_every_linter(
    real_world: Path, style: str, capsys: pytest.CaptureFixture[str]
) -> None:
    linters_present()
    generate(real_world, environment="gpu", environments=("cpu",), style=style)
    findings = check(real_world)
    # its manifest still uses [feature.X.system-requirements] (deprecated since pixi 0.71): a
    # warning each, with the rich platform that replaces it; nothing else
    deprecated = [("system-requirements", "pixi.toml", f.message.split("]")[0] + "]") for f in findings]
    assert deprecated == [
        ("system-requirements", "pixi.toml", "[feature.gpu.system-requirements]"),
        ("system-requirements", "pixi.toml", "[feature.gpu-jax.system-requirements]"),
    ], "\n".join(f.one_line() for f in findings)
    assert {(f.rule, f.severity, f.file) for f in findings} == {
        ("system-requirements", "warning", "pixi.toml")
    }
    capsys.readouterr()
    assert main(["check", str(real_world), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "ok": True,
        "command": "check",
        "result": {"findings": [f.to_dict() for f in findings]},
        "errors": [],
    }


def test_zizmor_and_hadolint_really_run(real_world: Path) -> None:
    """A deliberately bad workflow and Dockerfile must produce the linters' own findings."""
    linters_present()
    ws = load_workspace(real_world)
    files = {
        "Dockerfile": "FROM ubuntu\nRUN apt-get install curl\n",
        ".github/workflows/docker.yaml": "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo ${{ github.event.head_commit.message }}\n",
    }
    found = {(f.tool, f.rule) for f in check_files(ws, files)}
    assert ("hadolint", "DL3006") in found
    assert ("zizmor", "unpinned-uses") in found and ("zizmor", "artipacked") in found


def test_missing_linter_is_a_skipped_finding(real_world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linters, "find_tool", lambda name: None)
    monkeypatch.setattr(schema, "available", lambda: False)
    ws = load_workspace(real_world)
    findings = check_files(
        ws, {"Dockerfile": "FROM ubuntu:24.04\n", ".github/workflows/docker.yaml": "on: push\n"}
    )
    skipped = sorted(f.tool for f in findings if f.severity == "skipped")
    assert skipped == ["check-jsonschema", "hadolint", "zizmor"]
    assert all("pip install" in f.fix for f in findings if f.severity == "skipped")


@pytest.mark.parametrize(
    "script,why",
    [
        ("sleep 30", "ran longer than"),
        ("echo 'hadolint: out of memory' >&2; exit 3", "exited with status 3: hadolint: out of memory"),
        ("echo 'this is not json'", "output is not JSON"),
        ("echo '[{\"unexpected\": 1}]'", "unexpected shape"),
    ],
)
def test_a_failing_linter_is_a_finding_not_a_traceback(
    real_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, why: str
) -> None:
    fake = tmp_path / "fake-hadolint"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(linters, "find_tool", lambda name: str(fake) if name == "hadolint" else None)
    monkeypatch.setattr(linters, "TIMEOUT_S", 1.0)
    found = [
        f
        for f in check_files(load_workspace(real_world), {"Dockerfile": "FROM ubuntu:24.04\n"})
        if f.tool == "hadolint"
    ]
    assert [(f.rule, f.severity) for f in found] == [("linter-failed", "error")]
    assert why in found[0].message and "\n" not in found[0].message and found[0].fix


def test_a_linter_that_cannot_start_is_a_finding(
    real_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_executable = tmp_path / "zizmor"
    not_executable.write_text("#!/bin/sh\n")
    monkeypatch.setattr(linters, "find_tool", lambda name: str(not_executable) if name == "zizmor" else None)
    found = [
        f
        for f in check_files(load_workspace(real_world), {".github/workflows/docker.yaml": "on: push\n"})
        if f.tool == "zizmor"
    ]
    assert [f.rule for f in found] == ["linter-failed"] and "could not be started" in found[0].message


# -- the workflow schema, in-process and exactly check-jsonschema's --------------------------------

ODD_WORKFLOWS = {
    "matrix-expression": "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    strategy:\n"
    "      matrix: ${{ fromJSON(vars.MATRIX) }}\n    steps:\n      - run: echo\n",
    "include-expression": "on: push\njobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n"
    "        include: ${{ fromJSON(vars.M) }}\n    steps:\n      - run: echo\n",
    "strategy-string": "on: push\njobs:\n  a:\n    runs-on: x\n    strategy: oops\n    steps: [{run: x}]\n",
    "a-list": "- a\n- b\n",
    "a-scalar": "just words\n",
    "empty": "",
    "no-jobs": "name: x\n",
    "jobs-list": "on: push\njobs: [a, b]\n",
    "on-list": "on: [push, pull_request]\njobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n",
    "paths-string": "on:\n  push:\n    paths: 'a/**'\njobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n",
    "bad-glob-class": "on:\n  push:\n    paths: ['[z-a]', '?x']\njobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n",
    "push-null": "on:\n  push:\njobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n",
    "bad-types": "on: push\njobs:\n  a:\n    runs-on: 5\n    timeout-minutes: abc\n    steps: {}\n    foo: bar\n",
    "pattern-keys": "on:\n  push:\n    tags: ['v[0-9]+']\njobs:\n  a-b_c:\n    runs-on: x\n    steps:\n"
    "      - run: x\n        id: '1bad id'\n",
    "broken-yaml": "on: [push\n",
    "numeric-keys": "on: push\njobs:\n  1:\n    runs-on: x\n    steps: [{run: x}]\n",
}


def test_schema_in_process_equals_check_jsonschema(tmp_path: Path, example: Path) -> None:
    """Same verdicts, paths and messages as the `check-jsonschema` command, on every odd workflow
    and on the kit's own (one run of the command for all of them)."""
    exe = find_tool("check-jsonschema")
    need(exe is not None and schema.available(), "check-jsonschema is not installed")
    cases = dict(ODD_WORKFLOWS)
    for style in ("lesson", "optimized"):
        for path, rendered in prepare(example, style=style).render().items():
            if path.startswith(".github/workflows/"):
                cases[f"kit-{style}-{Path(path).stem}"] = rendered.text
    for name, text in cases.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    result = subprocess.run(
        [
            str(exe),
            "--builtin-schema",
            schema.SCHEMA_NAME,
            "--output-format",
            "json",
            *sorted(f"{name}.yaml" for name in cases),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    unparsable = {e["filename"].removesuffix(".yaml") for e in report.get("parse_errors", [])}
    for name, text in cases.items():
        ours = schema.validate_workflow(text)
        if name in unparsable:
            assert len(ours) == 1 and ours[0].path is None, name
            continue
        expected = [
            (e["path"], schema._short(e["message"], 200))
            for e in report.get("errors", [])
            if e["filename"] == f"{name}.yaml"
        ]
        assert [(e.path, e.message.split(" (deepest cause: ")[0]) for e in ours] == expected, name


@pytest.mark.parametrize("name", sorted(ODD_WORKFLOWS))
def test_odd_workflows_give_findings_not_tracebacks(
    name: str, real_world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(real_world, environment="gpu")
    (real_world / ".github" / "workflows" / "docker.yaml").write_text(ODD_WORKFLOWS[name])
    code, findings = run_check(real_world, capsys)
    assert code == 1, findings  # every one of them has an error-level finding
    assert all(isinstance(f["message"], str) and "\n" not in f["message"] for f in findings)
    errors = {
        f["rule"]
        for f in findings
        if f["severity"] == "error" and f["file"] == ".github/workflows/docker.yaml"
    }
    assert ODD_WORKFLOW_ERRORS[name] in errors, findings


# The error each odd workflow must get: the schema's, the YAML reader's or the kit's own; zizmor's
# (its default permissions are too wide) for those that are valid workflows.
ODD_WORKFLOW_ERRORS = {
    "matrix-expression": "excessive-permissions",
    "include-expression": "excessive-permissions",
    "strategy-string": "github-workflow",
    "a-list": "github-workflow",
    "a-scalar": "github-workflow",
    "empty": "github-workflow",
    "no-jobs": "github-workflow",
    "jobs-list": "github-workflow",
    "on-list": "excessive-permissions",
    "paths-string": "github-workflow",
    "bad-glob-class": "path-filter-pattern",
    "push-null": "excessive-permissions",
    "bad-types": "github-workflow",
    "pattern-keys": "excessive-permissions",
    "broken-yaml": "yaml-parse",
    "numeric-keys": "github-workflow",
}


def test_huge_deep_and_alias_bomb_workflows_are_bounded(real_world: Path) -> None:
    ws = load_workspace(real_world)
    bomb = (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefg", "bcdefgh", strict=True)
        )
        + "on: push\njobs: *h\n"
    )
    cases = {
        "huge": "on: push\n" + "# padding\n" * 200_000,
        "deep": "on: push\njobs: " + "[" * 5000 + "]" * 5000 + "\n",
        "bomb": bomb,
    }
    for name, text in cases.items():
        found = [f for f in check_files(ws, {".github/workflows/docker.yaml": text}) if f.tool == "schema"]
        assert found and all(f.severity == "error" for f in found), name


# -- the kit's rules --------------------------------------------------------------------------


def test_kit_rules_catch_broken_files(real_world: Path) -> None:
    ws = load_workspace(real_world)
    files = {
        "Dockerfile": 'ARG CUDA_VERSION="11"\nARG ENVIRONMENT="gpu"\nFROM x:1 AS b\nARG CUDA_VERSION\n'
        "ENV CONDA_OVERRIDE_CUDA=$CUDA_VERSION\nCOPY pixi.toml pixi.lock ./\nCOPY ./app /app/src\n",
        ".dockerignore": "*\n!pixi.toml\n",
        ".gitignore": "pixi.lock\n",
        "apptainer.def": "Bootstrap: docker\nFrom: x:1\n%arguments\nENVIRONMENT=nope\n%files from elsewhere\n/a /b\n",
        ".github/workflows/docker.yaml": "on:\n  push:\n    paths: ['Dockerfile']\njobs: {}\n",
    }
    found = rules(check_files(ws, files))
    assert {
        "cuda-override",
        "dockerignore",
        "lock-ignored",
        "app-dir",
        "env-exists",
        "unknown-stage",
        "path-filters",
    } <= found


def test_unlocked_environment_is_an_error(real_world: Path) -> None:
    lock = real_world / "pixi.lock"
    lock.write_text(lock.read_text().replace("  gpu:\n", "  gpu-old:\n", 1))
    ws = load_workspace(real_world)
    files = {
        "Dockerfile": 'ARG CUDA_VERSION="12"\nARG ENVIRONMENT="gpu"\nFROM x:1\nARG CUDA_VERSION\nENV CONDA_OVERRIDE_CUDA=$CUDA_VERSION\n'
    }
    assert "env-locked" in rules(check_files(ws, files))


def test_example_without_lock_warns_and_errors_on_missing_lock(example: Path) -> None:
    generate(example, environment="gpu")
    found = check(example)
    assert any(f.rule == "env-locked" and f.severity == "warning" for f in found)
    assert any(f.rule == "copy-source" and "pixi.lock" in f.message for f in found)


def test_def_file_cuda_argument_is_checked(real_world: Path) -> None:
    ws = load_workspace(real_world)
    text = (
        "Bootstrap: docker\nFrom: x:1\nStage: build\n\n%arguments\nENVIRONMENT=gpu\nCUDA_VERSION=11\n\n"
        "%post\nexport CONDA_OVERRIDE_CUDA={{ CUDA_VERSION }}\n"
    )
    found = [f for f in check_files(ws, {"apptainer.def": text}) if f.rule == "cuda-override"]
    assert len(found) == 1 and "older than" in found[0].message
    fixed = text.replace("CUDA_VERSION=11", "CUDA_VERSION=12")
    assert not [f for f in check_files(ws, {"apptainer.def": fixed}) if f.rule == "cuda-override"]


# -- %arguments per stage ---------------------------------------------------------------------

TWO_STAGES = """Bootstrap: docker
From: ghcr.io/prefix-dev/pixi:0.68.0-noble
Stage: build

%arguments
ENVIRONMENT=gpu
CUDA_VERSION=12

%post
export CONDA_OVERRIDE_CUDA={{ CUDA_VERSION }}
pixi install --locked --environment {{ENVIRONMENT}}

Bootstrap: docker
From: ubuntu:24.04
Stage: final
{final_arguments}
%files from build
/app/.pixi/envs/{{ ENVIRONMENT }} /app/.pixi/envs/{{ ENVIRONMENT }}
"""


def test_a_stage_using_an_argument_it_does_not_define_is_an_error(
    real_world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(real_world, environment="gpu")
    definition = real_world / "apptainer.def"
    definition.write_text(TWO_STAGES.replace("{final_arguments}", ""))
    code, findings = run_check(real_world, capsys)
    stage_findings = [f for f in findings if f["rule"] == "stage-arguments"]
    assert code == 1 and len(stage_findings) == 1
    finding = stage_findings[0]
    assert finding["severity"] == "error" and finding["file"] == "apptainer.def" and finding["line"] == 18
    assert (
        "'final'" in str(finding["message"])
        and finding["fix"] == "add ENVIRONMENT=gpu under this stage's %arguments"
    )
    definition.write_text(TWO_STAGES.replace("{final_arguments}", "\n%arguments\nENVIRONMENT=gpu\n"))
    assert not [f for f in run_check(real_world, capsys)[1] if f["rule"] == "stage-arguments"]
    definition.write_text(TWO_STAGES.replace("{final_arguments}", "\n%arguments\nENVIRONMENT=cpu\n"))
    differ = [f for f in run_check(real_world, capsys)[1] if f["rule"] == "stage-arguments"]
    assert len(differ) == 1 and "different defaults" in str(differ[0]["message"])


def test_def_arguments_used_is_per_stage() -> None:
    text = TWO_STAGES.replace("{final_arguments}", "")
    assert def_arguments_used(text) == {"build": {"CUDA_VERSION", "ENVIRONMENT"}, "final": {"ENVIRONMENT"}}
    stages = parse_def(text).stages
    assert [s.arguments for s in stages] == [{"ENVIRONMENT": "gpu", "CUDA_VERSION": "12"}, {}]
    assert def_arguments_used("Bootstrap: docker\nFrom: {{ BASE }}\n") == {"stage 1": {"BASE"}}


def test_dockerfile_args_used_and_the_parser(tmp_path: Path) -> None:
    text = (
        '# escape=`\nARG ENVIRONMENT=gpu CUDA_VERSION\nFROM x:1 AS build\nARG REVISION=""\n'
        "RUN <<EOF\nCOPY not-an-instruction /x\nARG NOT_AN_ARG\nEOF\n"
        "COPY pixi.toml `\n     pixi.lock ./\nCOPY <<-X /etc/motd\n\thello\n\tX\n"
    )
    assert dockerfile_args_used(text) == {"ENVIRONMENT", "CUDA_VERSION", "REVISION"}
    parsed = instructions(text)
    assert [i.keyword for i in parsed] == ["ARG", "FROM", "ARG", "RUN", "COPY", "COPY"]
    assert parsed[3].heredocs == ("COPY not-an-instruction /x\nARG NOT_AN_ARG",)
    assert copy_sources(parsed) == [("pixi.toml", 9), ("pixi.lock", 9)]


# -- the lock format and the pixi image --------------------------------------------------------


def test_a_lock_newer_than_the_pinned_pixi_reads_is_an_error(
    tiny_v7: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for style in ("lesson", "optimized"):
        # kit generate refuses that image (tests/test_pixi_support.py); a hand edit puts it there.
        generate(tiny_v7, style=style, base_image=NEW_PIXI_IMAGE, force=True)
        for name in ("Dockerfile", "apptainer.def"):
            path = tiny_v7 / name
            path.write_text(path.read_text().replace(NEW_PIXI_IMAGE, OLD_PIXI_IMAGE))
        code, findings = run_check(tiny_v7, capsys)
        lock_findings = [f for f in findings if f["rule"] == "lock-format"]
        assert code == 1
        assert sorted(str(f["file"]) for f in lock_findings) == ["Dockerfile", "apptainer.def"]
        for finding in lock_findings:
            assert finding["severity"] == "error" and "v7" in str(finding["message"])
            assert "0.55.0" in str(finding["message"]) and "--base-image" in str(finding["fix"])
        generate(tiny_v7, style=style, base_image=NEW_PIXI_IMAGE, force=True)
        assert not [f for f in run_check(tiny_v7, capsys)[1] if f["rule"] == "lock-format"]


def test_the_default_pin_reads_the_lock_format_it_is_paired_with(
    tiny_v7: Path, real_world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = tiny_v7 if newest_lock_format(PIXI_VERSION) >= 7 else real_world
    generate(workspace)
    assert not [f for f in run_check(workspace, capsys)[1] if f["rule"] == "lock-format"]


def test_unknown_images_give_no_lock_format_finding(
    tiny_v7: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(tiny_v7, base_image="kit-lab/pixi:bookworm")
    assert not [f for f in run_check(tiny_v7, capsys)[1] if f["rule"] == "lock-format"]


# -- the runtime image and its shell -----------------------------------------------------------


# What the kit does with each shell-less runtime: refuse to render a bash entrypoint on an image
# it knows has no shell at all, or render it and let `kit check` find that it has no bash.
SHELL_LESS_RUNTIMES = {
    "gcr.io/distroless/base-debian12": "refused",
    "busybox:1.37": "checked",
    "alpine:3.21": "checked",
    "python:3.13-alpine": "checked",
}  # `scratch` is refused as no image at all, with --runtime minimal as the fix (test_hostile_shapes)


@pytest.mark.parametrize("runtime", list(SHELL_LESS_RUNTIMES))
def test_a_bash_entrypoint_on_a_runtime_without_bash_is_an_error(
    tiny_v7: Path, runtime: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A runtime with no shell at all is refused when rendering, naming the runtime image and the
    way out; one with a shell but no bash renders a final stage on that image whose entrypoint is
    the bash script, and `kit check` judges what the file does: one runtime-shell error."""
    if SHELL_LESS_RUNTIMES[runtime] == "refused":
        with pytest.raises(UserError) as refused:
            generate(tiny_v7, style="optimized", base_image=NEW_PIXI_IMAGE, runtime_image=runtime)
        assert refused.value.field == "runtime_image" and "has no shell" in str(refused.value)
        assert "--runtime no-shell" in (refused.value.fix or "")
        return
    generate(tiny_v7, style="optimized", base_image=NEW_PIXI_IMAGE, runtime_image=runtime)
    final = instructions((tiny_v7 / "Dockerfile").read_text())
    last_from = [i for i in final if i.keyword == "FROM"][-1]
    assert last_from.words[0] == runtime
    stage = final[final.index(last_from) :]
    assert [i.exec_form for i in stage if i.keyword == "ENTRYPOINT"] == [["/app/entrypoint.sh"]]
    assert "bash" not in " ".join(i.args for i in stage if i.keyword in ("COPY", "RUN"))
    code, findings = run_check(tiny_v7, capsys)
    shell = [f for f in findings if f["rule"] == "runtime-shell" and f["file"] == "Dockerfile"]
    assert code == 1 and len(shell) == 1 and "no bash" in str(shell[0]["message"])
    assert "ubuntu:24.04" in str(shell[0]["fix"])


def test_runtime_shell_rule_looks_at_what_the_file_does(tiny_v7: Path) -> None:
    ws = load_workspace(tiny_v7)
    base = (
        'FROM x AS install\nRUN echo "#!/bin/bash" > /app/entrypoint.sh\n'
        "FROM gcr.io/distroless/cc-debian12\n{extra}ENTRYPOINT {entry}\n"
    )

    def shell(extra: str = "", entry: str = '["/app/entrypoint.sh"]') -> list[Finding]:
        return [
            f
            for f in check_files(ws, {"Dockerfile": base.format(extra=extra, entry=entry)})
            if f.rule == "runtime-shell"
        ]

    assert len(shell()) == 1
    assert shell(extra="COPY --from=install /runtime/ /\n") == []  # a tree with bash laid over /
    assert shell(extra="COPY --from=install /bin/bash /bin/bash\n") == []
    assert shell(entry='["/app/probe"]') == []  # not a bash script
    assert "shell form" in shell(entry="/app/entrypoint.sh")[0].message
    scratch_def = (
        "Bootstrap: docker\nFrom: x\nStage: install\n%post\n"
        'echo "#!/bin/bash" > /app/entrypoint.sh\n\n'
        'Bootstrap: scratch\nStage: final\n{files}%runscript\nexec /app/entrypoint.sh "$@"\n'
    )
    found = [
        f
        for f in check_files(ws, {"apptainer.def": scratch_def.format(files="")})
        if f.rule == "runtime-shell"
    ]
    assert len(found) == 1 and found[0].line == 9
    with_bash = scratch_def.format(files="%files from install\n/runtime/* /\n")
    assert not [f for f in check_files(ws, {"apptainer.def": with_bash}) if f.rule == "runtime-shell"]


# -- the ignore files and the path filters -----------------------------------------------------


@pytest.mark.parametrize(
    "patterns,path,excluded",
    [
        (["*", "!pixi.toml", "!app/"], "app/x/y.py", False),
        (["*", "!pixi.toml"], "pixi.lock", True),
        ([".pixi"], ".pixi/envs/gpu/bin/python", True),
        (["**/*.sif"], "a/b/c.sif", True),
        (["*", "!app", "app/secret"], "app/secret", True),
        (["*.lock"], "sub/pixi.lock", False),  # Docker anchors patterns at the context root
        (["app", "!app/keep.py"], "app/keep.py", False),
        (["[z-a]", "*"], "pixi.lock", True),  # a pattern that cannot compile is left out
        (["\\*"], "*", True),
        (["\\*"], "a", False),  # Go's escapes and negated classes, as staging reads them
        (["[^a]"], "b", True),
        (["[^a]"], "a", False),
    ],
)
def test_dockerignore_semantics(patterns: list[str], path: str, excluded: bool) -> None:
    assert dockerignore_excludes(patterns, path) is excluded


@pytest.mark.parametrize(
    "patterns,path",
    [
        (["*", "!pixi.toml", "!app/"], "app/x.py"),
        (["\\*"], "*"),
        (["[^a]"], "b"),
        (["app", "!app/keep.py"], "app/keep.py"),
    ],
)
def test_check_and_staging_agree_on_dockerignore(patterns: list[str], path: str) -> None:
    from kit.engines.context import docker_admits, dockerignore_matcher

    staged = docker_admits(dockerignore_matcher("\n".join(patterns)))(path, False)
    assert dockerignore_excludes(patterns, path) is not staged


@pytest.mark.parametrize("kind", ["fifo", "folder", "link", "huge", "latin-1"])
def test_unreadable_deployment_files_are_findings(
    kind: str, real_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Dockerfile kit check cannot read as text: one error naming it; the other files are checked."""
    generate(real_world, environment="gpu")
    target = real_world / "Dockerfile"
    target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "folder":
        target.mkdir()
    elif kind == "link":
        (tmp_path / "secret").write_text("FROM private-key-material\n")
        target.symlink_to(tmp_path / "secret")
    elif kind == "huge":
        with target.open("wb") as handle:
            handle.truncate(8 * 1024 * 1024)
    else:
        target.write_bytes("FROM caf\xe9\n".encode("latin-1"))
    (real_world / ".gitignore").write_text("pixi.lock\n")
    code, findings = run_check(real_world, capsys)
    refused = [f for f in findings if f["rule"] == "file-read"]
    assert code == 1 and len(refused) == 1 and refused[0]["file"] == "Dockerfile", findings
    assert refused[0]["severity"] == "error" and refused[0]["fix"]
    assert any(f["rule"] == "lock-ignored" for f in findings)  # the rest is still checked
    assert "private-key-material" not in json.dumps(findings)


@pytest.mark.parametrize(
    "text,path,ignored",
    [
        ("pixi.lock\n", "pixi.lock", True),
        ("pixi.lock/\n", "pixi.lock", False),  # a folder-only pattern: git keeps the file
        ("*.lock\n!pixi.lock\n", "pixi.lock", False),
        ("sub/\n", "pixi.lock", False),
        ("[z-a]\n*.lock\n", "pixi.lock", True),
    ],
)
def test_gitignore_semantics(text: str, path: str, ignored: bool) -> None:
    assert gitignore_excludes(text, path) is ignored


def test_bad_patterns_in_ignore_files_are_findings(
    real_world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(real_world, environment="gpu")
    with (real_world / ".dockerignore").open("a") as handle:
        handle.write("[z-a]\n")
    (real_world / ".gitignore").write_text("[z-a]\npixi.lock/\n")
    code, findings = run_check(real_world, capsys)
    by_rule = {f["rule"]: f for f in findings}
    assert code == 1 and by_rule["dockerignore-pattern"]["severity"] == "error"
    assert by_rule["gitignore-pattern"]["severity"] == "warning"
    assert not [f for f in findings if f["rule"] == "lock-ignored"]


@pytest.mark.parametrize(
    "filters,path,hit",
    [
        (["cuda-exercise/app/**"], "cuda-exercise/app/a/b.py", True),
        (["cuda-exercise/*"], "cuda-exercise/app/a.py", False),
        (["**", "!docs/**"], "docs/x.md", False),
        (["[z-a]", "a/**"], "a/b", True),
        (["docs/*.mdx?"], "docs/a.md", True),  # GitHub: ? is "zero or one of the preceding"
    ],
)
def test_path_filter_semantics(filters: list[str], path: str, hit: bool) -> None:
    assert path_filter_matches(filters, path) is hit


def test_shutil_which_is_not_required_for_venv_tools() -> None:
    assert find_tool("python") is not None and shutil.which("definitely-not-a-tool") is None


def test_json_findings_carry_file_field_message_fix_severity(
    real_world: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    generate(real_world, environment="gpu")
    (real_world / ".gitignore").write_text("pixi.lock\n")
    code, findings = run_check(real_world, capsys)
    assert code == 1
    lock = next(f for f in findings if f["rule"] == "lock-ignored")
    assert {"file", "field", "message", "fix", "severity"} <= set(lock)
    assert lock["field"] == "lock-ignored" and lock["file"] == ".gitignore"


def test_check_files_refuses_paths_outside_the_repository(real_world: Path, tmp_path: Path) -> None:
    before = sorted(os.listdir(tmp_path))
    found = check_files(load_workspace(real_world), {"../escape/Dockerfile": "FROM x\n"})
    rules = [f.rule for f in found if f.rule != "system-requirements"]  # its manifest's own warnings
    assert rules == ["file-path"] and sorted(os.listdir(tmp_path)) == before

"""Workspace shapes users bring (tests/data/shapes/), rendered, checked and built the way users do.

The render tests run anywhere. The lab tests copy a shape, lock it against the lab channel
(tests/lab/shapes.py), run `kit generate` as a user types it, then the engine's own command on the
generated files: plain `docker build W` and `apptainer build X.sif apptainer.def` (no
--build-arg), `apptainer test`, and a command in the image. The shapes install `kit-hello`, whose
activation script sets KIT_HELLO_ACTIVATED=1, so every run also proves the activation ran.

Cost (2 cores): the kit-hello shapes build in seconds; only the minimal-runtime test installs
the lab's PyTorch. Every image and SIF made here is removed; tags carry the process id.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA, kit_cli, lab_image_flags, need

from kit import api
from kit.base.errors import OptionsError
from kit.decide.options import RenderOptions
from kit.model.deffile import parse_def, undefined_stage_arguments
from kit.model.discover import find_workspaces
from kit.model.dockerfile import instructions as dockerfile_instructions
from kit.model.workspace import load_workspace
from kit.output.render import render
from tests.lab.settings import LabSettings

SHAPES = DATA / "shapes"
RUN_ID = str(os.getpid())
ACTIVATED = "KIT_HELLO_ACTIVATED=1"
LIMIT_S = 600


def kit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The `kit` command line, as a user runs it, with this module's longer limit."""
    return kit_cli(*args, cwd=cwd, timeout=LIMIT_S)


def push_paths(workflow_text: str) -> list[str]:
    """`on.push.paths` of a workflow (PyYAML reads the key `on` as True)."""
    data = yaml.safe_load(workflow_text)
    return list(data.get("on", data.get(True))["push"]["paths"])


def shape(name: str, dest: Path, *, git: bool = False) -> Path:
    """A lab-locked copy of a shape (needs the lab's channel, not an engine)."""
    from tests.lab.shapes import lock_shape
    from tests.lab.workspace import default_cache

    need(
        (default_cache() / "channel" / "noarch" / "repodata.json").is_file(),
        "the lab channel is missing: run tests/lab/provision.sh",
    )
    return lock_shape(name, dest / name, git=git)


# ---------------------------------------------------------------- rendering, no engine


def test_pyproject_manifest_is_named_everywhere() -> None:
    ws = load_workspace(SHAPES / "pyproject")
    assert ws.name == "shape-pyproject" and ws.manifest_path.name == "pyproject.toml"
    for style in ("lesson", "optimized"):
        files = {p: f.text for p, f in render(ws, RenderOptions(style=style)).items()}
        assert not any("pixi.toml" in text for path, text in files.items() if not path.endswith(".py"))
        assert "!pyproject.toml" in files[".dockerignore"]
        assert {"!README.md", "!shape_pyproject/"} <= set(files[".dockerignore"].splitlines())
        assert "./pyproject.toml /app/" in files["apptainer.def"]
        assert "./shape_pyproject /app/" in files["apptainer.def"]
        paths = push_paths(files[".github/workflows/docker.yaml"])
        assert {"pyproject.toml", "pixi.lock", "README.md", "shape_pyproject/**", "app/**"} <= set(paths)
    assert api.local_image_name(ws.name) == "shape-pyproject"


def test_project_source_comes_before_the_install_and_app_code_after() -> None:
    """The environment installs the project (editable path dependency on '.'), so its files are
    copied before `pixi install`; app/ still comes after it, and the editable install keeps its
    source in the final image."""
    files = render(load_workspace(SHAPES / "pyproject"), RenderOptions(style="optimized"))
    lines = [f"{i.keyword} {i.args}" for i in dockerfile_instructions(files["Dockerfile"].text)]
    install = next(n for n, line in enumerate(lines) if "pixi install" in line)
    assert lines[install - 3 : install] == [
        "COPY pyproject.toml pixi.lock ./",
        "COPY README.md ./README.md",
        "COPY shape_pyproject/ ./shape_pyproject/",
    ]
    assert next(n for n, line in enumerate(lines) if line.startswith("COPY app ")) > install
    assert "COPY --from=install /app/shape_pyproject/ /app/shape_pyproject/" in lines


def test_a_pixi_toml_workspace_copies_no_project_source() -> None:
    files = render(load_workspace(SHAPES / "pixi-toml"), RenderOptions(style="optimized"))
    assert files["Dockerfile"].text.count("COPY ") == 4  # manifest+lock, env, entrypoint, app


def test_workspaces_are_found_in_a_repository() -> None:
    assert find_workspaces(SHAPES / "two-workspaces") == ("variant-a", "variant-b")
    assert find_workspaces(SHAPES / "subfolder") == ("deploy/hello",)
    assert find_workspaces(SHAPES / "pyproject") == ("",)


def test_two_workspaces_get_their_own_workflows(tmp_path: Path) -> None:
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(SHAPES / "two-workspaces", repo)
    (repo / ".git").mkdir()
    for variant in ("variant-a", "variant-b"):
        done = kit("generate", str(repo / variant))
        assert done.returncode == 0, done.stderr
    workflows = sorted(p.name for p in (repo / ".github" / "workflows").iterdir())
    assert workflows == [
        "apptainer-variant-a.yaml",
        "apptainer-variant-b.yaml",
        "docker-variant-a.yaml",
        "docker-variant-b.yaml",
    ]
    names = set()
    for name in workflows:
        data = yaml.safe_load((repo / ".github" / "workflows" / name).read_text())
        names.add(data["name"])
        variant = name.split("-", 1)[1].removesuffix(".yaml")
        assert all(
            p.startswith((f"{variant}/", ".github/workflows/" + name))
            for p in push_paths((repo / ".github" / "workflows" / name).read_text())
        )
    assert len(names) == 4  # the concurrency group is the workflow's name: they must differ


def test_a_single_workspace_in_a_subfolder_keeps_the_lesson_names(tmp_path: Path) -> None:
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(SHAPES / "subfolder", repo)
    (repo / ".git").mkdir()
    done = kit("generate", str(repo / "deploy" / "hello"))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (repo / ".github" / "workflows").iterdir()) == [
        "apptainer.yaml",
        "docker.yaml",
    ]
    workflow = yaml.safe_load((repo / ".github/workflows/docker.yaml").read_text())
    contexts = {
        step["with"]["context"]
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if "context" in step.get("with", {})
    }
    assert contexts == {"deploy/hello"}
    assert "deploy/hello/pixi.toml" in push_paths((repo / ".github/workflows/docker.yaml").read_text())


def test_check_on_a_repository_root_sees_every_workspace(tmp_path: Path) -> None:
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(SHAPES / "two-workspaces", repo)
    (repo / ".git").mkdir()
    for variant in ("variant-a", "variant-b"):
        assert kit("generate", str(repo / variant)).returncode == 0
    dockerfile = repo / "variant-b" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace('ENVIRONMENT="default"', 'ENVIRONMENT="nope"'))
    done = kit("check", str(repo), "--json")
    findings = json.loads(done.stdout)["result"]["findings"]
    assert done.returncode == 1
    assert [f["file"] for f in findings if f["rule"] == "env-exists"] == ["variant-b/Dockerfile"]
    # (unlocked copies: each workspace's def copies a pixi.lock that is not there)
    assert {f["file"] for f in findings if f["rule"] == "copy-source"} == {
        "variant-a/apptainer.def",
        "variant-b/apptainer.def",
    }


@pytest.mark.parametrize("style", ["lesson", "optimized"])
def test_every_def_stage_declares_the_arguments_it_uses(style: str) -> None:
    """Apptainer reads %arguments per stage: a plain `apptainer build` fails on a stage that uses
    {{ NAME }} without declaring it."""
    for shape_name, options in (("pixi-toml", {}), ("pyproject", {}), ("pixi-toml", {"runtime": "minimal"})):
        if style == "lesson" and options:
            continue
        text = render(load_workspace(SHAPES / shape_name), RenderOptions(style=style, **options))[
            "apptainer.def"
        ].text  # type: ignore[arg-type]
        parsed = parse_def(text)
        stages, problems = parsed.stages, parsed.problems
        assert problems == [] and len(stages) == 2
        assert all(stage.arguments_used for stage in stages)
        assert undefined_stage_arguments(stages) == []


@pytest.mark.parametrize("style", ["lesson", "optimized"])
def test_each_engine_gets_only_the_build_args_its_file_declares(tmp_path: Path, style: str) -> None:
    import shutil

    from tests.lab.shapes import commit

    repo = tmp_path / "repo"
    shutil.copytree(SHAPES / "pixi-toml", repo)
    commit(repo)
    prepared = api.prepare(repo, style=style)
    files = prepared.render()
    docker_args = api.build_args(prepared, "docker")
    declared = {
        i.args.split("=")[0].strip()
        for i in dockerfile_instructions(files["Dockerfile"].text)
        if i.keyword == "ARG"
    }
    assert set(docker_args) <= declared
    assert ("REVISION" in docker_args) == (style == "optimized")  # the commit, for the labels
    apptainer_args = api.build_args(prepared, "apptainer")
    used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", files["apptainer.def"].text))
    assert apptainer_args == {"ENVIRONMENT": "default"} and set(apptainer_args) <= used


@pytest.mark.parametrize(
    "options,field",
    [
        (RenderOptions(style="lesson", runtime="minimal"), "runtime"),
        (RenderOptions(style="optimized", runtime_image="gcr.io/distroless/base-debian12"), "runtime_image"),
        (RenderOptions(style="optimized", runtime="no-shell", keep_pixi=True), "keep_pixi"),
    ],
)
def test_runtime_choices_that_cannot_work_are_refused(options: RenderOptions, field: str) -> None:
    with pytest.raises(OptionsError) as info:
        render(load_workspace(SHAPES / "pixi-toml"), options)
    assert info.value.field == field and info.value.fix


def test_a_shell_less_runtime_is_activated_with_env() -> None:
    files = render(
        load_workspace(SHAPES / "pixi-toml"),
        RenderOptions(style="optimized", runtime="no-shell", runtime_image="gcr.io/distroless/base-debian12"),
    )
    instructions = dockerfile_instructions(files["Dockerfile"].text)
    final = instructions[max(n for n, i in enumerate(instructions) if i.keyword == "FROM") :]
    assert final[0].args.startswith("gcr.io/distroless/base-debian12")
    env = next(i.args for i in final if i.keyword == "ENV")
    assert 'PATH="/app/.pixi/envs/${ENVIRONMENT}/bin:${PATH}"' in env and "CONDA_PREFIX=" in env
    assert [i.args for i in final if i.keyword == "ENTRYPOINT"] == ["[]"]
    assert not any("entrypoint.sh" in i.args for i in final)


def test_cuda_packages_without_a_requirement_are_reported(tmp_path: Path) -> None:
    """`kit inspect`, `kit generate` and `kit check` each name the fix."""
    ws = shape("cuda-no-sysreq", tmp_path)
    fix = 'add [system-requirements] cuda = "12"'
    inspect = kit("inspect", str(ws))
    assert inspect.returncode == 0 and fix in inspect.stdout
    generate = kit("generate", str(ws))
    assert generate.returncode == 0 and fix in generate.stderr + generate.stdout
    check = kit("check", str(ws), "--json")
    findings = json.loads(check.stdout)["result"]["findings"]
    cuda = [f for f in findings if f["rule"] == "cuda-requirement"]
    assert [(f["severity"], f["file"], f["fix"]) for f in cuda] == [("warning", "pixi.toml", fix)]


# ---------------------------------------------------------------- the lab: plain engine commands


def generate_for_lab(ws: Path, lab: LabSettings, *extra: str, base_image: str | None = None) -> None:
    """`kit generate` against the lab's images (``base_image``: a variant of the pixi image)."""
    done = kit("generate", str(ws), *lab_image_flags(lab, base_image=base_image), "--force", *extra)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def images(docker_client: Any) -> Iterator[list[str]]:
    """Tags a test makes; removed afterwards (by tag, never by id)."""
    from docker.errors import ImageNotFound

    made: list[str] = []
    yield made
    for tag in made:
        try:
            docker_client.images.remove(tag)
        except ImageNotFound:
            pass


def docker_build(lab: LabSettings, context: Path, tag: str) -> subprocess.CompletedProcess[str]:
    """`docker build -t TAG CONTEXT`, nothing else (BuildKit through Debian's client)."""
    return subprocess.run(
        [lab.docker, "build", "-t", tag, str(context)],
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        check=False,
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
    )


def docker_run(lab: LabSettings, tag: str, *command: str) -> str:
    done = subprocess.run(
        [lab.docker, "run", "--rm", tag, *command], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


DOCKER_CASES = [
    ("pixi-toml", "lesson", "."),
    ("pixi-toml", "optimized", "."),
    ("pyproject", "lesson", "."),
    ("pyproject", "optimized", "."),
    ("subfolder", "optimized", "deploy/hello"),
    ("two-workspaces", "optimized", "variant-a"),
    ("two-workspaces", "lesson", "variant-b"),
]


@pytest.mark.docker
@pytest.mark.parametrize("name,style,folder", DOCKER_CASES)
def test_shape_builds_with_plain_docker(
    lab: LabSettings,
    docker_client: Any,
    images: list[str],
    tmp_path: Path,
    name: str,
    style: str,
    folder: str,
) -> None:
    ws = shape(name, tmp_path, git=True) / folder
    generate_for_lab(ws, lab, "--style", style)
    tag = f"kit-test-shapes/{name}:{style}-{RUN_ID}"
    images.append(tag)
    done = docker_build(lab, ws, tag)
    assert done.returncode == 0, done.stderr[-3000:]
    assert ACTIVATED in docker_run(lab, tag, "kit-hello")
    assert docker_run(lab, tag, "cat", "/app/src/data.txt").startswith("application data")
    if name == "pyproject":  # installed (editable, by the stand-in) from its source in the image
        where = docker_run(
            lab, tag, "python", "-c", "import shape_pyproject; print(shape_pyproject.__file__)"
        )
        assert where.strip() == "/app/shape_pyproject/__init__.py"


APPTAINER_CASES = [("pixi-toml", "lesson"), ("pixi-toml", "optimized"), ("pyproject", "optimized")]


@pytest.mark.apptainer
@pytest.mark.parametrize("name,style", APPTAINER_CASES)
def test_shape_builds_with_plain_apptainer(
    lab: LabSettings,
    docker_client: Any,
    apptainer_path: str,
    tmp_path: Path,
    name: str,
    style: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`apptainer build X.sif apptainer.def` with no --build-arg, then `apptainer test`."""
    monkeypatch.setenv("APPTAINER_MKSQUASHFS_ARGS", "-comp lz4")
    ws = shape(name, tmp_path)
    generate_for_lab(ws, lab, "--style", style)
    sif = tmp_path / "shape.sif"
    for argv in ([apptainer_path, "build", str(sif), "apptainer.def"], [apptainer_path, "test", str(sif)]):
        done = subprocess.run(argv, cwd=ws, capture_output=True, text=True, timeout=LIMIT_S, check=False)
        assert done.returncode == 0, (argv, done.stderr[-3000:])
    run = subprocess.run(
        [apptainer_path, "run", str(sif), "kit-hello"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0 and ACTIVATED in run.stdout, run.stderr
    if name == "pyproject":
        run = subprocess.run(
            [apptainer_path, "run", str(sif), "python", "-c", "import shape_pyproject"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stderr


@pytest.mark.apptainer
def test_kit_build_apptainer_in_a_repository_with_commits(
    lab: LabSettings, docker_client: Any, apptainer_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The optimized Dockerfile's REVISION/CREATED must not reach Apptainer, which stops on a
    build argument its def does not use."""
    monkeypatch.setenv("APPTAINER_MKSQUASHFS_ARGS", "-comp lz4")
    ws = shape("pixi-toml", tmp_path, git=True)
    done = kit(
        "build",
        str(ws),
        "--engine",
        "apptainer",
        "--style",
        "optimized",
        "--tag",
        "commit",
        *lab_image_flags(lab),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (ws / "commit.sif").is_file()


# ---------------------------------------------------------------- a failing shell-hook

BROKEN_HOOK = """\
FROM {base}
RUN mv /usr/local/bin/pixi /usr/local/bin/pixi-real && \\
    printf '#!/bin/sh\\ncase "$1" in shell-hook) echo "hook broke" >&2; exit 3;; esac\\nexec /usr/local/bin/pixi-real "$@"\\n' \\
      > /usr/local/bin/pixi && chmod 0755 /usr/local/bin/pixi
"""


@pytest.fixture(scope="module")
def broken_hook_image(
    lab: LabSettings, docker_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The lab's pixi image whose `pixi shell-hook` fails (exit 3); everything else works."""
    context = tmp_path_factory.mktemp("broken-hook")
    (context / "Dockerfile").write_text(BROKEN_HOOK.format(base=lab.base_image))
    tag = f"kit-test-shapes/broken-hook:{RUN_ID}"
    done = docker_build(lab, context, tag)
    assert done.returncode == 0, done.stderr
    yield tag
    docker_client.images.remove(tag)


@pytest.mark.docker
@pytest.mark.parametrize("style", ["lesson", "optimized"])
def test_failing_shell_hook_fails_the_docker_build(
    lab: LabSettings, broken_hook_image: str, images: list[str], tmp_path: Path, style: str
) -> None:
    ws = shape("pixi-toml", tmp_path)
    generate_for_lab(ws, lab, "--style", style, base_image=broken_hook_image)
    tag = f"kit-test-shapes/hook:{style}-{RUN_ID}"
    images.append(tag)
    built = docker_build(lab, ws, tag)
    assert built.returncode != 0 and "hook broke" in built.stderr


@pytest.mark.apptainer
@pytest.mark.parametrize("style", ["lesson", "optimized"])
def test_failing_shell_hook_fails_the_apptainer_build(
    lab: LabSettings, broken_hook_image: str, apptainer_path: str, tmp_path: Path, style: str
) -> None:
    ws = shape("pixi-toml", tmp_path)
    generate_for_lab(ws, lab, "--style", style, base_image=broken_hook_image)
    built = subprocess.run(
        [apptainer_path, "build", str(tmp_path / "x.sif"), "apptainer.def"],
        cwd=ws,
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
        check=False,
    )
    assert built.returncode != 0 and "hook broke" in built.stdout + built.stderr
    assert not (tmp_path / "x.sif").exists()


# ---------------------------------------------------------------- runtimes without a shell


@pytest.mark.docker
def test_minimal_runtime_runs_pytorch_without_a_shell(
    lab_workspace: Any, docker_client: Any, images: list[str]
) -> None:
    """FROM scratch plus the libraries the environment links against: the probe runs, and
    there is no shell in the image."""
    lab = lab_workspace.settings
    tag = f"minimal-{RUN_ID}"
    options = RenderOptions(
        style="optimized",
        runtime="minimal",
        environment="cpu",
        base_image=lab.base_image,
        runtime_image=lab.runtime_image,
        image_name="kit-test-shapes/minimal",
    )
    from kit.decide.options import BuildOptions

    result = api.build(lab_workspace.root, options, build=BuildOptions(tag=tag))
    image = result.tags[0]
    images.append(image)
    report = api.probe(image)
    assert report.torch_version is not None and report.torch_version.startswith("2.13.0")
    assert report.cuda_available is False
    for shell in ("sh", "bash"):
        done = subprocess.run(
            [lab.docker, "run", "--rm", image, shell, "-c", "true"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode != 0  # no shell: "executable file not found"
    history = docker_client.images.get(image).history()
    runtime_layer = next(h for h in history if "COPY /runtime/ /" in h["CreatedBy"])
    assert runtime_layer["Size"] < 10_000_000  # glibc only: the lab's packages carry the rest


@pytest.mark.docker
def test_shell_less_runtime_refuses_activation_scripts(
    lab: LabSettings, docker_client: Any, images: list[str], tmp_path: Path
) -> None:
    """kit-hello's activation script sets a variable ENV cannot carry: the build says so."""
    ws = shape("pixi-toml", tmp_path)
    done = kit(
        "generate", str(ws), "--style", "optimized", "--runtime", "minimal", "--base-image", lab.base_image
    )
    assert done.returncode == 0, done.stderr
    tag = f"kit-test-shapes/refused:{RUN_ID}"
    images.append(tag)
    built = docker_build(lab, ws, tag)
    assert built.returncode != 0
    assert "KIT_HELLO_ACTIVATED" in built.stderr and "--runtime image" in built.stderr


@pytest.mark.apptainer
def test_minimal_runtime_in_apptainer_carries_bash(
    lab: LabSettings, docker_client: Any, apptainer_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apptainer runs its actions with /bin/sh: the minimal def carries bash, so the whole
    activation (kit-hello's script included) runs."""
    monkeypatch.setenv("APPTAINER_MKSQUASHFS_ARGS", "-comp lz4")
    ws = shape("pixi-toml", tmp_path)
    generate_for_lab(ws, lab, "--style", "optimized", "--runtime", "minimal")
    sif = tmp_path / "minimal.sif"
    for argv in (
        [apptainer_path, "build", str(sif), "apptainer.def"],
        [apptainer_path, "test", str(sif)],
        [apptainer_path, "run", str(sif), "kit-hello"],
    ):
        done = subprocess.run(argv, cwd=ws, capture_output=True, text=True, timeout=LIMIT_S, check=False)
        assert done.returncode == 0, (argv, done.stderr[-3000:])
    assert ACTIVATED in done.stdout
    assert sif.stat().st_size < 20_000_000

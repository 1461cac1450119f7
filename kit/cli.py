"""The `kit` command line: a thin layer that maps flags to the API and errors to exit codes.

Exit codes: 0 fine, 1 error-level findings (or a failed build or probe), 2 bad input. Every
command takes `--json` for machines (CI, notebooks); the text form is for people.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from kit import api
from kit.errors import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK, KitError
from kit.options import BOOTSTRAPS, STYLES


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    with handle_errors(args.json) as outcome:
        outcome.code = args.func(args)
    return outcome.code


class _Outcome:
    code = EXIT_OK


@contextmanager
def handle_errors(as_json: bool) -> Iterator[_Outcome]:
    """Print a KitError as one line (or a JSON object) and set its exit code; no traceback."""
    outcome = _Outcome()
    try:
        yield outcome
    except KitError as exc:
        outcome.code = exc.exit_code
        if as_json:
            print(json.dumps({"error": str(exc), "type": type(exc).__name__}))
        else:
            print(f"kit: error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        outcome.code = 130
        print("kit: interrupted", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kit", description="Deploy locked Pixi environments in Linux containers.")
    sub = parser.add_subparsers(title="commands")

    def command(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
        p.set_defaults(func=func)
        return p

    p = command("inspect", cmd_inspect, "summarise a Pixi workspace: environments, platforms, CUDA, lock")
    p.add_argument("dir", type=Path)

    p = command("generate", cmd_generate, "render the Dockerfile, .dockerignore, apptainer.def and workflows")
    p.add_argument("dir", type=Path)
    _render_flags(p)
    p.add_argument("--only", action="append", choices=("docker", "apptainer", "workflows"),
                   help="render only these groups (repeatable)")
    p.add_argument("--out", type=Path, help="write under this folder instead of the repository")
    p.add_argument("--diff", action="store_true", help="show what would change; write nothing")
    p.add_argument("--force", action="store_true", help="replace files edited since the kit wrote them")

    p = command("check", cmd_check, "lint the deployment files and run the kit's own checks")
    p.add_argument("dir", type=Path)
    p.add_argument("--subdir", help="the workspace folder inside its git repository (default: detected)")

    p = command("build", cmd_build, "build the image with a real engine (Docker with BuildKit, or Apptainer)")
    p.add_argument("dir", type=Path)
    p.add_argument("--engine", choices=("docker", "apptainer"), default="docker")
    _render_flags(p)
    p.add_argument("--tag", help="image tag (Docker) or SIF name stem (Apptainer)")

    p = command("probe", cmd_probe, "run the GPU probe in a built image")
    p.add_argument("image", help="Docker image reference, or a .sif path for Apptainer")
    p.add_argument("--engine", choices=("docker", "apptainer"), default=None,
                   help="default: apptainer for a .sif path, else docker")
    p.add_argument("--gpu", choices=("auto", "require", "never"), default="auto")

    p = command("lesson", cmd_lesson, "instructor tools: check this machine, or sync the episodes' code")
    p.add_argument("action", choices=("check", "sync"))
    p.add_argument("--root", type=Path, default=Path("."), help="the lesson repository (default: .)")
    return parser


def _render_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", dest="environment", help="environment to build (default: the first CUDA one)")
    p.add_argument("--matrix", action="append", default=[], metavar="ENV",
                   help="an environment the workflows build (repeatable; default: every "
                        "container environment, --env first)")
    p.add_argument("--cuda", help="CUDA version for CONDA_OVERRIDE_CUDA (default: the requirement)")
    p.add_argument("--style", choices=STYLES, default="lesson")
    p.add_argument("--base-image", help="image with pixi for the install stage")
    p.add_argument("--runtime-image", help="image for the optimized final stage")
    p.add_argument("--image-name", help="image name in workflows (default: ghcr.io/<owner>/<repo>)")
    p.add_argument("--subdir", help="the workspace folder inside its git repository (default: detected)")
    p.add_argument("--app-dir", help="folder copied to /app/src ('' for none; default: app)")
    p.add_argument("--bootstrap", choices=BOOTSTRAPS, help="Apptainer bootstrap agent (default: docker)")
    p.add_argument("--bootstrap-source", help="archive or SIF for offline bootstrap agents")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Only the flags the user gave, so the API's defaults stay the only defaults."""
    names = ("environment", "cuda", "style", "base_image", "runtime_image", "image_name", "subdir",
             "app_dir", "bootstrap", "bootstrap_source")
    out = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    if getattr(args, "matrix", None):
        out["environments"] = tuple(args.matrix)
    return out


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print(json.dumps(_jsonable(data), indent=2, sort_keys=True))
    elif text:
        print(text)


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
    result = api.generate(args.dir, out=args.out, only=tuple(args.only or ()), dry_run=args.diff,
                          force=args.force, **_options(args))
    if args.json:
        _emit(args, {"root": result.root, "changes": [
            {"path": c.path, "action": c.action, "diff": c.diff()} for c in result.changes],
            "warnings": result.warnings}, "")
    else:
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for change in result.changes:
            if args.diff and change.action not in ("unchanged",):
                sys.stdout.write(change.diff())
            print(f"{change.action:>9}  {change.path}", file=sys.stderr if args.diff else sys.stdout)
    refused = [c for c in result.changes if c.action == "refused"]
    return EXIT_BAD_INPUT if refused and not args.diff else EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    findings = api.check(args.dir, subdir=args.subdir)
    _emit(args, {"findings": [f.to_dict() for f in findings]},
          "\n".join(f.one_line() for f in findings) or "no findings")
    return EXIT_FINDINGS if any(f.severity == "error" for f in findings) else EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    result = api.build(args.dir, engine=args.engine, tag=args.tag,
                       on_event=None if args.json else print_progress, **_options(args))
    _emit(args, result, api.format_build(result))
    return EXIT_OK


def progress_bar(step: int | None, total: int | None, width: int = 12) -> str:
    """`#####-------` for step of total; engines that do not number their steps get no bar."""
    if not step or not total:
        return " " * width
    done = round(width * min(step, total) / total)
    return "#" * done + "-" * (width - done)


def print_progress(event: Any) -> None:
    """One stderr line per finished step: `[build 3/7] ####-------- CACHED   0.0s RUN ...`."""
    if event.kind != "step_done":
        return
    where = f"[{event.stage or ''} {event.step or '?'}/{event.total or '?'}]".replace("[ ", "[")
    state = "FAILED" if event.failed else ("CACHED" if event.cached else "done  ")
    print(f"{where:<16} {progress_bar(event.step, event.total)} {state} {event.duration or 0:6.1f}s "
          f"{event.instruction[:80]}", file=sys.stderr)


def cmd_probe(args: argparse.Namespace) -> int:
    report = api.probe(args.image, engine=args.engine, gpu=args.gpu)
    _emit(args, report, api.format_probe(report))
    problem = report.problem(require_gpu=args.gpu == "require")
    if problem:  # a CI step must be able to fail on "no framework" and "no GPU"
        print(f"kit: error: {problem}", file=sys.stderr)
        return EXIT_FINDINGS
    return EXIT_OK


def cmd_lesson(args: argparse.Namespace) -> int:
    if args.action == "sync":
        changed = api.sync_lesson(args.root)
        _emit(args, {"changed": changed}, "\n".join(f"updated {p}" for p in changed) or "episodes up to date")
        return EXIT_OK
    report = api.machine_report(args.root)
    _emit(args, report, api.format_machine_report(report))
    return EXIT_FINDINGS if any(item.status == "error" for item in report) else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())

"""The GitHub workflow schema check, in-process, as `check-jsonschema --builtin-schema
vendor.github-workflows` does it; and Dependabot's configuration against `vendor.dependabot`.

Why in-process: the `check-jsonschema` command spent 7 of the 8 seconds a `kit check` took,
almost all of it starting up. The result stays the command's own because every part is taken
from the installed check_jsonschema package: its vendored schema (`BuiltinSchemaLoader`), its
validator set-up (ECMAScript `pattern`s through `regress`, its format checker, no default
filling) and its YAML reader (ruamel, YAML 1.2, timestamps kept as strings, keys as strings).

One more second went to `import jsonschema` itself, which builds an RFC 3987 grammar (the
optional `rfc3987_syntax` package) for the `iri` format alone. The vendored workflow schema uses
no `format` keyword, so when jsonschema is not imported yet, it is imported without that optional
package; if a future vendored schema asks for an `iri` format, the grammar is loaded as usual.

Bounded work: a workflow over `MAX_BYTES`, nested deeper than `MAX_DEPTH` brackets or
`MAX_INDENT` spaces, or expanding (through YAML aliases) past `MAX_NODES` values is reported, not
validated. The kit's own rules read workflows through `load_workflow` too, so no YAML the checker
reads escapes these bounds.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_NAME = "vendor.github-workflows"
DEPENDABOT_SCHEMA = "vendor.dependabot"
MAX_BYTES = 1_000_000
MAX_NODES = 50_000  # a large real workflow holds a few thousand values
MAX_DEPTH = 100  # flow brackets ([{) open at once
MAX_INDENT = 400  # spaces before a line's content
_IRI_FORMATS = frozenset({"iri", "iri-reference"})
_lock = threading.Lock()
_validators: dict[str, Any] = {}


@dataclass(frozen=True)
class SchemaError:
    """One problem with one workflow: a YAML error (`path` is None) or a schema violation."""

    path: str | None  # JSON path such as `$.jobs.docker`, None for a YAML problem
    message: str


def available() -> bool:
    """Whether the check_jsonschema package (and its vendored schema) is installed."""
    return importlib.util.find_spec("check_jsonschema") is not None


def _vendored_schema_path(name: str = SCHEMA_NAME) -> Path | None:
    spec = importlib.util.find_spec("check_jsonschema")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = (
        Path(list(spec.submodule_search_locations)[0])
        / "builtin_schemas"
        / "vendor"
        / (name.removeprefix("vendor.") + ".json")
    )
    return path if path.is_file() else None


def _formats(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["format"]} if isinstance(node.get("format"), str) else set()
        for value in node.values():
            found |= _formats(value)
        return found
    if isinstance(node, list):
        return set().union(*(_formats(v) for v in node)) if node else set()
    return set()


def _import_jsonschema() -> None:
    """Import jsonschema without its RFC 3987 grammar when no schema the kit uses can need it."""
    if "jsonschema" in sys.modules:
        return
    paths = [_vendored_schema_path(name) for name in (SCHEMA_NAME, DEPENDABOT_SCHEMA)]
    if any(
        path is None or _formats(json.loads(path.read_text(encoding="utf-8"))) & _IRI_FORMATS
        for path in paths
    ):
        return
    had = "rfc3987_syntax" in sys.modules
    if not had:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # makes its import fail
    try:
        importlib.import_module("jsonschema")
    finally:
        if not had:
            del sys.modules["rfc3987_syntax"]


def _get_validator(name: str = SCHEMA_NAME) -> Any:
    with _lock:
        if name not in _validators:
            _import_jsonschema()
            from check_jsonschema.formats import FormatOptions
            from check_jsonschema.regex_variants import RegexImplementation, RegexVariantName
            from check_jsonschema.schema_loader import BuiltinSchemaLoader

            regex = RegexImplementation(RegexVariantName.default)
            _validators[name] = BuiltinSchemaLoader(name).get_validator(
                name, {}, FormatOptions(regex_impl=regex), regex, False
            )
        return _validators[name]


def _load_yaml(text: str) -> Any:
    """check-jsonschema's YAML reading: the C loader, then the pure one if that fails."""
    import warnings

    from check_jsonschema.parsers.yaml import ParseError, construct_yaml_implementation
    from ruamel.yaml.error import ReusedAnchorWarning

    error: Exception | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReusedAnchorWarning)
        for pure in (False, True):
            try:
                return construct_yaml_implementation(pure=pure).load(text.encode("utf-8"))
            except ParseError as exc:
                error = exc
    assert error is not None
    raise error


def _short(text: str, limit: int = 400) -> str:
    """One line, at most `limit` characters: messages quote the instance, which may be huge."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _TooBig(Exception):
    pass


def _normalize(data: Any, budget: list[int]) -> Any:
    """Keys as strings (check-jsonschema's normalisation), counting values against `MAX_NODES`."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig
    if isinstance(data, dict):
        return {str(k): _normalize(v, budget) for k, v in data.items()}
    if isinstance(data, list):
        return [_normalize(v, budget) for v in data]
    return data


def nesting_depth(text: str) -> int:
    """How deep the YAML's flow brackets nest. Reading a document nested thousands deep takes
    seconds before the parser gives up, so it is refused before parsing (block nesting needs a
    line indented that deep: `MAX_INDENT` bounds it)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def _pyyaml_load(text: str) -> Any:
    """PyYAML's reading, for when check_jsonschema is not installed. It reads YAML 1.1, where a
    bare `on` key is the boolean True: put it back under "on"."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _Unreadable(" ".join(str(exc).split())) from None
    if isinstance(data, dict) and True in data and "on" not in data:
        data["on"] = data.pop(True)
    return data


class _Unreadable(Exception):
    pass


def _jsonschema_load(text: str) -> Any:
    from check_jsonschema.parsers.yaml import ParseError

    try:
        return _load_yaml(text)
    except ParseError as exc:
        raise _Unreadable(" ".join(str(exc).split())) from None


def load_workflow(text: str) -> tuple[Any, SchemaError | None]:
    """The workflow as check-jsonschema reads it (PyYAML when it is not installed), or None and
    the reason it cannot be read. Every YAML the checker reads comes through here, within the
    bounds above: size, bracket depth, indentation, and values after alias expansion."""
    if len(text) > MAX_BYTES:
        return None, SchemaError(None, f"the file is larger than {MAX_BYTES} bytes; not checked")
    indent = max((len(line) - len(line.lstrip(" -")) for line in text.splitlines()), default=0)
    if nesting_depth(text) > MAX_DEPTH or indent > MAX_INDENT:
        return None, SchemaError(
            None, f"the YAML is nested too deeply to check (over {MAX_DEPTH} brackets or {MAX_INDENT} spaces)"
        )
    load = _pyyaml_load
    if available():
        with _lock:
            _import_jsonschema()  # before check_jsonschema, which imports jsonschema
        load = _jsonschema_load
    try:
        return _normalize(load(text), [MAX_NODES]), None
    except _Unreadable as exc:
        return None, SchemaError(None, str(exc))
    except ImportError as exc:  # installed, but broken
        return None, SchemaError(None, f"check_jsonschema cannot be loaded: {exc}")
    except RecursionError:
        return None, SchemaError(None, "the YAML is nested too deeply to read")
    except _TooBig:
        return None, SchemaError(None, f"the YAML expands to more than {MAX_NODES} values")


def validate_workflow(text: str, schema_name: str = SCHEMA_NAME) -> list[SchemaError]:
    """Every problem check-jsonschema would report for this workflow text (empty: valid); with
    `schema_name` DEPENDABOT_SCHEMA, for a `dependabot.yml` (read within the same bounds)."""
    data, problem = load_workflow(text)
    if problem is not None:
        return [problem]
    validator = _get_validator(schema_name)
    from check_jsonschema.reporter import find_best_deep_match

    errors: list[SchemaError] = []
    try:
        for error in validator.iter_errors(data):
            message = _short(error.message, 200)
            if error.context:
                deep = find_best_deep_match(error)
                message += f" (deepest cause: {deep.json_path}: {_short(deep.message, 200)})"
            errors.append(SchemaError(error.json_path, message))
    except RecursionError:
        errors.append(SchemaError(None, "the YAML is nested too deeply to validate"))
    return errors

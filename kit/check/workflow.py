"""What the checks read from a parsed GitHub workflow, for any rule that needs it.

Workflows arrive as whatever YAML gave (`CheckContext.workflow` makes the top a mapping);
everything below may be a list, a string or an expression, so each step here takes any value
and gives an empty answer where the shape is not what a workflow's would be.
"""

from __future__ import annotations

from typing import Any


def as_mapping(value: Any) -> dict[str, Any]:
    """`value` when it is a mapping, else an empty one."""
    return value if isinstance(value, dict) else {}


def matrix_entries(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    """The `include` entries of every job's matrix. A matrix given as an expression
    (`${{ fromJSON(vars.MATRIX) }}`) is only known at run time: it contributes nothing."""
    entries: list[dict[str, Any]] = []
    for job in as_mapping(workflow.get("jobs")).values():
        matrix = as_mapping(as_mapping(as_mapping(job).get("strategy")).get("matrix"))
        include = matrix.get("include")
        if isinstance(include, list):
            # A build job and a publish job share one matrix: count each entry once.
            entries.extend(e for e in include if isinstance(e, dict) and e not in entries)
    return entries

"""Read a YAML file that came with a repository (a lesson's `config.yaml`), bounded.

`yaml.safe_load(path.read_text())` on an untrusted file hangs on a FIFO, reads a file of any size,
raises a raw `UnicodeDecodeError` on Latin-1, and accepts an alias bomb: ten anchors, each a list
of ten aliases of the one before, compose in microseconds into a structure of ten billion leaves,
which the first `str()` or walk over it turns into gigabytes and minutes. Here the text comes
through the bounded reader (kit.base.files: regular files only, a size limit, strict UTF-8), and
the loader counts every node as the document would be expanded: an alias costs the size of the
subtree it stands for, and a document over the budget is refused before it is constructed.
Every failure is a UserError with file, field and fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kit.base.errors import UnreadableFile, UserError
from kit.base.files import MiB, read_text

YAML_LIMIT = 1 * MiB  # a lesson's config.yaml is a few KiB
NODE_BUDGET = 100_000  # nodes, aliases expanded: a config.yaml has a few hundred


class _BudgetExceeded(Exception):
    pass


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting nodes with aliases expanded."""

    def __init__(self, stream: str, budget: int = NODE_BUDGET) -> None:
        super().__init__(stream)
        self.budget = budget
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401  (PyYAML's own signature)
        cost = 1
        if self.check_event(yaml.AliasEvent):
            target = self.anchors.get(self.peek_event().anchor)  # type: ignore[no-untyped-call]
            cost = self._size(target) if target is not None else 1
        self.budget -= cost
        if self.budget < 0:
            raise _BudgetExceeded
        return super().compose_node(parent, index)

    def _size(self, node: yaml.Node) -> int:
        """The node's subtree, aliases expanded (each distinct node is measured once)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._size(k) + self._size(v) for k, v in node.value)
        self._sizes[id(node)] = size
        return size


def load_yaml(path: Path, *, field: str = "yaml", limit: int = YAML_LIMIT, budget: int = NODE_BUDGET) -> Any:
    """The YAML document in `path`, bounded in bytes and in nodes; UserError naming the file
    (UnreadableFile when the file cannot be read as text at all)."""
    text = read_text(path, limit=limit, field=field, error=UnreadableFile)
    loader = BoundedLoader(text, budget)
    try:
        return loader.get_single_data()
    except _BudgetExceeded:
        raise UserError(
            f"expands to more than {budget} YAML nodes (anchors and aliases counted as they expand)",
            file=path,
            field=field,
            fix="write the values out without nested aliases",
        ) from None
    except yaml.YAMLError as error:
        raise UserError(
            f"is not valid YAML: {' '.join(str(error).split())}",
            file=path,
            field=field,
            fix="correct the YAML at the line given",
        ) from None
    except RecursionError:
        raise UserError(
            "nests too deeply to read", file=path, field=field, fix="flatten the nesting"
        ) from None
    finally:
        loader.dispose()

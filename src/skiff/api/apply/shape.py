"""How a value at a schema position takes part in field ownership.

Ownership granularity follows the schema: objects and maps are granular unless
marked atomic, lists are owned whole unless their list type is `set` (items by
value) or `map` (items by key fields). Without a schema (custom resources with no
structural schema, or fields it preserves as unknown) maps stay granular and lists
are atomic, as upstream's deduced type does.
"""

from __future__ import annotations

from typing import Any

from skiff.api.apply.fieldset import PathElement, key, value
from skiff.api.schema.node import SchemaNode

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
"""Marks an absent field, distinct from an explicit null."""


class SchemaMismatch(ValueError):
    """A value that cannot be placed in its schema (a list item without its key)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


def child(node: SchemaNode | None, name: str) -> SchemaNode | None:
    """The schema of field or map key `name`."""
    return node.field(name) if node is not None else None


def declared(node: SchemaNode | None, name: str) -> bool:
    """Whether `name` is a named field of a structure, rather than a map key.

    Named fields whose value has children are not owned themselves (only their
    leaves are); map keys are, which is why labels carry `f:app` but not `f:labels`.
    """
    return node is not None and name in node.properties


def atomic_map(node: SchemaNode | None) -> bool:
    """Whether an object at this position is replaced and owned as a whole."""
    return node is not None and node.map_type == "atomic"


def list_type(node: SchemaNode | None) -> str:
    """`atomic`, `set` or `map` for a list at this position."""
    if node is None:
        return "atomic"
    lt = node.list_type
    if lt == "map" and not node.list_map_keys:
        return "atomic"
    return lt if lt in ("set", "map") else "atomic"


def items(node: SchemaNode | None) -> SchemaNode | None:
    """The schema of a list's items."""
    return node.items() if node is not None else None


def item_element(node: SchemaNode | None, item: Any, where: str = "") -> PathElement:
    """The path element naming `item` in the granular list described by `node`."""
    assert node is not None
    if list_type(node) == "map":
        if not isinstance(item, dict):
            raise SchemaMismatch(where, "associative list with keys may not have non-map elements")
        item_node = node.items()
        fields: dict[str, Any] = {}
        for name in node.list_map_keys:
            if name in item:
                fields[name] = item[name]
                continue
            # A key field the item leaves out still names it when the schema
            # defaults it (ports are keyed by containerPort and protocol=TCP).
            fnode = item_node.field(name) if item_node is not None else None
            if fnode is not None and "default" in fnode.raw:
                fields[name] = fnode.raw["default"]
        if not fields:
            keys = ", ".join(f'"{k}"' for k in node.list_map_keys)
            raise SchemaMismatch(
                where,
                f"associative list with keys has an element that omits all key fields [{keys}]"
                " (and doesn't have default values for any key fields)",
            )
        return key(fields)
    if isinstance(item, dict):
        raise SchemaMismatch(
            where, "associative list without keys has an element that's a map type"
        )
    if isinstance(item, list):
        raise SchemaMismatch(where, "not supported: associative list with lists as elements")
    return value(item)


def step(node: SchemaNode | None, pe: PathElement) -> SchemaNode | None:
    """The schema one path element further down."""
    if pe.kind == "f":
        return child(node, pe.text)
    return items(node)


def same(a: Any, b: Any) -> bool:
    """Equality that, unlike `==`, tells `true` from `1` and `1` from `"1"`."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def index_items(
    node: SchemaNode | None, lst: list[Any], where: str, first_wins: bool = True
) -> dict[PathElement, Any]:
    """List items by path element; a repeated element keeps its first item."""
    out: dict[PathElement, Any] = {}
    for i, item in enumerate(lst):
        pe = item_element(node, item, f"{where}: element {i}" if where else f"element {i}")
        if pe not in out or not first_wins:
            out[pe] = item
    return out


__all__ = [
    "MISSING",
    "SchemaMismatch",
    "atomic_map",
    "child",
    "declared",
    "index_items",
    "item_element",
    "items",
    "list_type",
    "same",
    "step",
]

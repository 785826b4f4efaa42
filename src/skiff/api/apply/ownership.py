"""Which paths an object's content amounts to, for ownership.

An applier owns exactly what its configuration sets: every scalar, every item of a
granular list, every key of a map, every atomic list or map as a whole, and every
explicit null or empty object. Named fields with content are not listed themselves;
their leaves stand for them.
"""

from __future__ import annotations

from typing import Any

from skiff.api.apply import shape
from skiff.api.apply.fieldset import FieldSet, Path, field, path_string
from skiff.api.schema.node import SchemaNode


def to_field_set(obj: dict[str, Any], node: SchemaNode | None) -> FieldSet:
    """The set of paths `obj` sets; raises SchemaMismatch for unplaceable list items."""
    out: set[Path] = set()
    _walk(obj, node, (), out)
    return FieldSet(out)


def _walk(v: Any, node: SchemaNode | None, path: Path, out: set[Path]) -> None:
    if isinstance(v, dict):
        if shape.atomic_map(node):
            out.add(path)
            return
        for k, val in v.items():
            p = (*path, field(k))
            _walk(val, shape.child(node, k), p, out)
            if val is None or (isinstance(val, dict) and not val) or not shape.declared(node, k):
                out.add(p)
        return
    if isinstance(v, list):
        if shape.list_type(node) == "atomic":
            out.add(path)
            return
        item_node = shape.items(node)
        for i, item in enumerate(v):
            pe = shape.item_element(node, item, f"{path_string(path)}: element {i}")
            p = (*path, pe)
            _walk(item, item_node, p, out)
            out.add(p)
        return
    out.add(path)


def ensure_named_fields(s: FieldSet, node: SchemaNode | None) -> FieldSet:
    """`s` plus every named field that has members below it.

    Pruning works on members only; adding the named fields on the way to owned
    leaves lets a structure whose last owned field goes away go away with it.
    """
    out = set(s.paths)
    nodes: dict[Path, SchemaNode | None] = {}
    for p in s.paths:
        parent = node
        for i in range(len(p) - 1):
            pe = p[i]
            prefix = p[: i + 1]
            if pe.kind == "f" and shape.declared(parent, pe.text):
                out.add(prefix)
            if prefix not in nodes:
                nodes[prefix] = shape.step(parent, pe)
            parent = nodes[prefix]
    return FieldSet(out)

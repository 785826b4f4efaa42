"""Merging an applied configuration into a live object, and removing owned paths.

Merging follows the schema's granularity: scalars, atomic lists and atomic maps
from the configuration replace the live value; granular maps merge key by key;
`map` and `set` lists merge item by item, keeping live items the configuration does
not mention in place and the configuration's own items in its order.
"""

from __future__ import annotations

import copy
from typing import Any

from skiff.api.apply import shape
from skiff.api.apply.compare import granularity
from skiff.api.apply.fieldset import FieldSet, Path, PathElement, field, path_string
from skiff.api.schema.node import SchemaNode


def merge(live: dict[str, Any], config: dict[str, Any], node: SchemaNode | None) -> dict[str, Any]:
    """`config` merged over `live` (neither is modified)."""
    return _merge(live, config, node, ())


def _merge(a: Any, b: Any, node: SchemaNode | None, path: Path) -> Any:
    kind = granularity(a, b, node)
    if kind == "leaf":
        return copy.deepcopy(b)
    if kind == "map":
        live = a if isinstance(a, dict) else {}
        # Copy only what the configuration leaves alone; the rest is rebuilt below.
        out = {k: v if k in b else copy.deepcopy(v) for k, v in live.items()}
        for k, bv in b.items():
            if bv is None:
                # An explicit null asks for the field to be unset (the applier still
                # owns it, so it is removed from other owners too).
                out.pop(k, None)
                continue
            out[k] = _merge(out.get(k, shape.MISSING), bv, shape.child(node, k), (*path, field(k)))
        return out
    return _merge_list(a if isinstance(a, list) else [], b, node, path)


def _merge_list(a: list[Any], b: list[Any], node: SchemaNode | None, path: Path) -> list[Any]:
    where = path_string(path)
    a_pes = [shape.item_element(node, x, f"{where}: element {i}") for i, x in enumerate(a)]
    b_pes = [shape.item_element(node, x, f"{where}: element {i}") for i, x in enumerate(b)]
    a_items: dict[PathElement, Any] = {}
    for pe, x in zip(a_pes, a, strict=True):
        a_items.setdefault(pe, x)
    b_items: dict[PathElement, Any] = {}
    for i, (pe, x) in enumerate(zip(b_pes, b, strict=True)):
        if pe in b_items:
            raise shape.SchemaMismatch(f"{where}: element {i}", f"duplicate entries for key {pe}")
        b_items[pe] = x
    item_node = shape.items(node)
    shared = [pe for pe in b_pes if pe in a_items]
    out: list[Any] = []
    emitted: set[PathElement] = set()
    bi = 0

    def emit_from_config(upto: PathElement | None) -> None:
        nonlocal bi
        while bi < len(b_pes):
            pe = b_pes[bi]
            bi += 1
            out.append(_merge(a_items.get(pe, shape.MISSING), b_items[pe], item_node, (*path, pe)))
            emitted.add(pe)
            if pe == upto:
                return

    for pe, x in zip(a_pes, a, strict=True):
        if pe not in b_items:
            if pe not in emitted:
                out.append(copy.deepcopy(x))
                emitted.add(pe)
            continue
        if pe in emitted:
            continue
        # A live item the configuration also has is placed where the configuration
        # puts it; live-only items keep their position relative to shared ones.
        next_shared = next((s for s in shared if s not in emitted), None)
        if pe == next_shared:
            emit_from_config(pe)
    emit_from_config(None)
    return out


def remove_items(obj: dict[str, Any], paths: FieldSet, node: SchemaNode | None) -> dict[str, Any]:
    """A copy of `obj` without the fields and items whose paths are in `paths`.

    A structure emptied by the removal goes too, as it would after decoding the
    null that upstream leaves behind.
    """
    if not paths:
        return copy.deepcopy(obj)
    result = _remove(obj, node, (), paths.paths, paths.prefixes())
    return result if result is not shape.MISSING else {}


def _remove(
    v: Any, node: SchemaNode | None, path: Path, members: frozenset[Path], below: frozenset[Path]
) -> Any:
    if isinstance(v, dict) and v and not shape.atomic_map(node):
        out: dict[str, Any] = {}
        for k, val in v.items():
            p = (*path, field(k))
            if p in members:
                continue
            if p in below:
                val = _remove(val, shape.child(node, k), p, members, below)
                if val is shape.MISSING:
                    continue
            else:
                val = copy.deepcopy(val)
            out[k] = val
        return out if out else shape.MISSING
    if isinstance(v, list) and v and shape.list_type(node) != "atomic":
        items_out: list[Any] = []
        item_node = shape.items(node)
        for i, item in enumerate(v):
            pe = shape.item_element(node, item, f"{path_string(path)}: element {i}")
            p = (*path, pe)
            if p in members:
                continue
            if p in below:
                item = _remove(item, item_node, p, members, below)
                if item is shape.MISSING:
                    continue
            else:
                item = copy.deepcopy(item)
            items_out.append(item)
        return items_out if items_out else shape.MISSING
    return copy.deepcopy(v)

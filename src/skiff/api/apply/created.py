"""The `fieldsV1` of a create, built in one walk of the new object.

On a create the writer owns every field it set, so its field set is every path of
the object except the untracked ones. Building the wire trie directly, instead of
collecting path tuples into a `FieldSet` and encoding that, matters because every
pod a ReplicaSet creates pays for it. The result is the same trie, in the same
order, as the general bookkeeping writes.
"""

from __future__ import annotations

from typing import Any

from skiff.api.apply import shape
from skiff.api.apply.fieldset import element_order
from skiff.api.schema.node import SchemaNode

# Fields nobody owns (see `managers.UNTRACKED`): at the top level, and in metadata.
_UNTRACKED_TOP = frozenset({"apiVersion", "kind"})
_UNTRACKED_META = frozenset({"name", "namespace", "creationTimestamp", "selfLink", "uid",
                             "clusterName", "generation", "managedFields", "resourceVersion"})


def created_fields(obj: dict[str, Any], node: SchemaNode | None,
                   ignored_tops: frozenset[str]) -> dict[str, Any] | None:
    """The trie a creator of `obj` owns, leaving out top-level fields in `ignored_tops`.

    None when the object does not fit its schema (a list item without its key); the
    general bookkeeping then decides what happens.
    """
    trie: dict[str, Any] = {}
    try:
        for k in sorted(obj):
            if k in _UNTRACKED_TOP or k in ignored_tops:
                continue
            v = obj[k]
            child = shape.child(node, k)
            if k == "metadata":
                if not isinstance(v, dict):
                    return None
                meta = {f"f:{mk}": _below(v[mk], shape.child(child, mk))
                        for mk in sorted(v) if mk not in _UNTRACKED_META}
                if meta:
                    trie["f:metadata"] = meta
                continue
            trie[f"f:{k}"] = _below(v, child)
    except shape.SchemaMismatch:
        return None
    return trie


def _below(value: Any, node: SchemaNode | None) -> dict[str, Any]:
    """The trie entry of an owned field whose value is `value`."""
    if isinstance(value, dict):
        if not value or shape.atomic_map(node):
            return {}
        out: dict[str, Any] = {".": {}}
        for k in sorted(value):
            out[f"f:{k}"] = _below(value[k], shape.child(node, k))
        return out
    if isinstance(value, list):
        if not value or shape.list_type(node) == "atomic":
            return {}
        indexed = shape.index_items(node, value, "")
        elements = list(indexed)
        if len(elements) > 1:
            elements.sort(key=element_order)
        item_node = shape.items(node)
        out = {".": {}}
        for pe in elements:
            out[f"{pe.kind}:{pe.text}"] = _below(indexed[pe], item_node)
        return out
    return {}

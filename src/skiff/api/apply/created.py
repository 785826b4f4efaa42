"""The `fieldsV1` of a create, built in one walk of the new object.

On a create the writer owns every field it set, so its field set is every path of
the object except the untracked ones. Building the wire trie directly, instead of
collecting path tuples into a `FieldSet` and encoding that, matters because every
pod a ReplicaSet creates pays for it. The result is the same trie, in the same
order, as the general bookkeeping writes.
"""

from __future__ import annotations

from typing import Any

import orjson

from skiff.api.apply import shape
from skiff.api.apply.fieldset import element_order
from skiff.api.schema.node import SchemaNode

# Fields nobody owns (see `managers.UNTRACKED`): at the top level, and in metadata.
_UNTRACKED_TOP = frozenset({"apiVersion", "kind"})
_UNTRACKED_META = frozenset({"name", "namespace", "creationTimestamp", "selfLink", "uid",
                             "clusterName", "generation", "managedFields", "resourceVersion"})


# Subtrees remembered per schema node, and the largest value worth remembering.
_MEMO_ENTRIES = 1024
_MEMO_MAX_BYTES = 32 * 1024


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
            if k == "metadata":
                if not isinstance(v, dict):
                    return None
                v = {mk: v[mk] for mk in v if mk not in _UNTRACKED_META}
                if not v:
                    continue
            entry = _remembered(node, k, v)
            if k == "metadata":
                # Metadata itself is untracked: its entry has no `.` member marker.
                entry.pop(".", None)
            trie[f"f:{k}"] = entry
    except shape.SchemaMismatch:
        return None
    return trie


def _remembered(node: SchemaNode | None, k: str, value: Any) -> dict[str, Any]:
    """`_below` for a top-level field, remembered by the value's encoding: the pods a
    ReplicaSet creates share their spec and (but for the name) their metadata."""
    child = shape.child(node, k)
    if node is None or not isinstance(value, dict | list):
        return _below(value, child)
    try:
        encoded = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return _below(value, child)
    if len(encoded) > _MEMO_MAX_BYTES:
        return _below(value, child)
    memo: dict[tuple[str, bytes], bytes] = node.memo.setdefault("created_fields", {})
    found = memo.get((k, encoded))
    if found is None:
        found = orjson.dumps(_below(value, child))
        if len(memo) >= _MEMO_ENTRIES:
            memo.clear()
        memo[(k, encoded)] = found
    # A fresh copy: the caller stores it inside an object it goes on editing.
    return orjson.loads(found)


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

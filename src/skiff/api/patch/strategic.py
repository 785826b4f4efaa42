"""Strategic merge patch, the `application/strategic-merge-patch+json` patch type.

It is what `kubectl apply` (client-side), `kubectl patch` (default type),
`kubectl edit` and `kubectl set image` send for built-in kinds. Unlike a JSON
merge patch it knows, from the schema's `x-kubernetes-patch-strategy` and
`x-kubernetes-patch-merge-key`, that two container lists should be merged by
container name rather than replaced. Where the schema says nothing (free-form
maps such as labels, or no schema at all) maps merge and lists are replaced.
"""

from __future__ import annotations

from typing import Any

from skiff.api.errors import bad_request
from skiff.api.patch import directives as d
from skiff.api.patch._values import clone, json_type_name, scalar_key
from skiff.api.patch.element_order import arrange, check_order
from skiff.api.patch.strategic_list import merge_list
from skiff.api.schema.node import SchemaNode

Node = SchemaNode | None
_ABSENT = object()


def apply_strategic_merge_patch(
    doc: dict[str, Any], patch: dict[str, Any], node: Node
) -> dict[str, Any]:
    """Apply a strategic merge patch to `doc`, guided by `node` (the kind's schema).

    Directives (`$patch`, `$retainKeys`, `$setElementOrder/…`,
    `$deleteFromPrimitiveList/…`) steer the merge and never appear in the
    result. Neither input is modified and the result shares no containers with
    them. Malformed directives raise `StatusError` (400, or 422 for lists of lists).
    """
    if not isinstance(patch, dict):
        raise bad_request(
            f"json: cannot unmarshal {json_type_name(patch)} "
            "into Go value of type map[string]interface {}"
        )
    if not isinstance(doc, dict):
        raise d.bad_json_document()
    return _merge_map(clone(doc), patch, node)


def _shape(value: Any) -> int:
    return 2 if isinstance(value, dict) else 1 if isinstance(value, list) else 0


def _merge_map(original: dict[str, Any], patch: dict[str, Any], node: Node) -> dict[str, Any]:
    """Merge `patch` into `original`, which the caller owns and which is updated in place."""
    if d.PATCH in patch:
        directive = patch[d.PATCH]
        if directive == d.REPLACE:
            return _merge_map({}, {k: v for k, v in patch.items() if k != d.PATCH}, node)
        if directive == d.DELETE:
            return {}
        if directive != d.MERGE:
            raise d.unknown_patch_type(directive, patch)
    if d.RETAIN_KEYS in patch:
        _retain_keys(original, patch)
    ordered = _apply_element_orders(original, patch, node)
    deletions: list[tuple[str, Any]] = []
    for key, value in patch.items():
        if key in ordered:
            continue
        if key.startswith("$") and d.is_directive(key):
            if key.startswith(d.DELETE_FROM_PRIMITIVE_LIST):
                deletions.append((key[len(d.DELETE_FROM_PRIMITIVE_LIST) :], value))
            continue
        if value is None:
            original.pop(key, None)
            continue
        child = node.field(key) if node is not None else None
        current = original.get(key, _ABSENT)
        if current is _ABSENT or current is None or _shape(current) != _shape(value):
            if isinstance(value, dict) and value.get(d.PATCH) == d.DELETE:
                original.pop(key, None)
            else:
                original[key] = _fresh(value, child)
        elif isinstance(value, dict):
            if d.REPLACE in d.strategies(child):
                original[key] = _merge_map({}, value, child)
            else:
                original[key] = _merge_map(current, value, child)
        elif isinstance(value, list):
            if d.MERGE in d.strategies(child):
                original[key] = merge_list(current, value, child, key, _merge_map, _fresh)
            else:
                original[key] = _fresh_list(value, child)
        else:
            original[key] = value
    for name, values in deletions:
        _delete_from_primitive_list(original, name, values)
    return original


def _fresh(value: Any, node: Node) -> Any:
    """A clean copy of a patch value that has nothing to merge with."""
    if isinstance(value, dict):
        return _merge_map({}, value, node)
    if isinstance(value, list):
        return _fresh_list(value, node)
    return value


def _fresh_list(value: list[Any], node: Node) -> list[Any]:
    if d.MERGE in d.strategies(node):
        return merge_list([], value, node, "", _merge_map, _fresh)
    items = node.items() if node is not None else None
    return [
        _fresh(item, items) for item in value if not (isinstance(item, dict) and d.PATCH in item)
    ]


def _retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """Drop live fields the patch does not list in `$retainKeys`.

    This is how a union (e.g. a volume's source) switches members: the patch
    names the keys that may remain, so the old member goes away.
    """
    keep = patch[d.RETAIN_KEYS]
    if not isinstance(keep, list):
        raise d.bad_retain_keys()
    allowed = {k for k in keep if isinstance(k, str)}
    for key, value in patch.items():
        if value is not None and not d.is_directive(key) and key not in allowed:
            raise d.bad_retain_keys()
    for key in [k for k in original if k not in allowed]:
        del original[key]


def _apply_element_orders(original: dict[str, Any], patch: dict[str, Any], node: Node) -> set[str]:
    """Apply every `$setElementOrder/<field>`; return the fields it fully handled."""
    handled: set[str] = set()
    for key, order in patch.items():
        if not key.startswith(d.SET_ELEMENT_ORDER):
            continue
        name = key[len(d.SET_ELEMENT_ORDER) :]
        if not isinstance(order, list):
            raise d.bad_arg_type("[]interface {}", order)
        live = original.get(name)
        wanted = patch.get(name)
        if name in patch and wanted is None:
            continue  # the field is being deleted; ordering it is moot
        if live is not None and not isinstance(live, list):
            raise d.bad_arg_type("[]interface {}", live)
        if wanted is not None and not isinstance(wanted, list):
            raise d.bad_arg_type("[]interface {}", wanted)
        child = node.field(name) if node is not None else None
        merge_key = child.patch_merge_key if child is not None else None
        check_order(wanted or [], order, merge_key)
        if live is None and wanted is None:
            continue
        if wanted is None:
            merged = live
        elif live is None:
            merged = _fresh_list(wanted, child)
        elif d.MERGE in d.strategies(child):
            merged = merge_list(live, wanted, child, name, _merge_map, _fresh)
        else:
            merged = _fresh_list(wanted, child)
        original[name] = _order(merged, order, live or [], merge_key)
        handled.add(name)
    return handled


def _order(
    merged: list[Any], order: list[Any], live: list[Any], merge_key: str | None
) -> list[Any]:
    if not merged:
        return merged
    if any(isinstance(item, dict) for item in merged):
        if not merge_key:
            return merged  # maps without a merge key have no identity to order by
        return arrange(merged, order, live, merge_key)
    return arrange(merged, order, live, None)


def _delete_from_primitive_list(original: dict[str, Any], name: str, values: Any) -> None:
    if not isinstance(values, list):
        raise d.bad_primitive_list()
    current = original.get(name)
    if not isinstance(current, list):
        return
    doomed = {scalar_key(v) for v in values if not isinstance(v, (dict, list))}
    original[name] = [
        item for item in current if isinstance(item, (dict, list)) or scalar_key(item) not in doomed
    ]

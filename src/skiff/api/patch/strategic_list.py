"""How a strategic merge patch merges a list whose strategy is `merge`.

Lists of maps merge element-wise by the schema's merge key (containers by name,
ports by containerPort); lists of scalars become the union of both sides. The
`$patch` directive inside an element deletes by merge key (`delete`) or turns the
whole list into the patch's elements (`replace`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skiff.api.errors import bad_request
from skiff.api.patch import directives as d
from skiff.api.patch._values import scalar_key
from skiff.api.patch.element_order import arrange, identity
from skiff.api.schema.node import SchemaNode

Node = SchemaNode | None
# (owned live map, patch map, schema) -> merged map; (patch value, schema) -> clean copy.
MergeMap = Callable[[dict[str, Any], dict[str, Any], Node], dict[str, Any]]
Fresh = Callable[[Any, Node], Any]


def merge_list(
    original: list[Any],
    patch: list[Any],
    node: Node,
    name: str,
    merge_map: MergeMap,
    fresh: Fresh,
) -> list[Any]:
    """Merge `patch` into the live list `original` (owned by the caller, may be reused)."""
    if not original and not patch:
        return []
    items_node = node.items() if node is not None else None
    if not _holds_maps(original, patch):
        merged = _union(original, patch)
        return arrange(merged, patch, original, None)
    merge_key = node.patch_merge_key if node is not None else None
    if not merge_key:
        raise bad_request(f"cannot merge lists without merge key for {name}")
    original, patch_items = _apply_element_directives(original, patch, merge_key, items_node, fresh)
    merged = _merge_by_key(original, patch_items, merge_key, items_node, merge_map, fresh)
    return arrange(merged, patch_items, original, merge_key)


def _holds_maps(original: list[Any], patch: list[Any]) -> bool:
    """Whether the elements are maps (True) or scalars (False); mixing both is an error."""
    maps = scalars = False
    for item in (*original, *patch):
        if isinstance(item, list):
            raise d.no_list_of_lists()
        if isinstance(item, dict):
            maps = True
        else:
            scalars = True
    if maps and scalars:
        raise d.mixed_element_types(original, patch)
    return maps


def _union(original: list[Any], patch: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    out: list[Any] = []
    for item in (*original, *patch):
        key = scalar_key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _apply_element_directives(
    original: list[Any],
    patch: list[Any],
    merge_key: str,
    items_node: Node,
    fresh: Fresh,
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Apply `$patch` elements; return the live list left and the plain patch elements."""
    plain: list[dict[str, Any]] = []
    replace = False
    for element in patch:
        if d.PATCH not in element:
            plain.append(element)
            continue
        directive = element[d.PATCH]
        if directive == d.DELETE:
            if merge_key not in element:
                raise d.no_merge_key(element, merge_key)
            doomed = scalar_key(element[merge_key])
            original = [
                item for item in original if identity(item, merge_key, strict=False) != doomed
            ]
        elif directive == d.REPLACE:
            replace = True
        elif directive == d.MERGE:
            raise bad_request("merging lists cannot yet be specified in the patch")
        else:
            raise d.unknown_patch_type(directive, element)
    if replace:
        return [fresh(element, items_node) for element in plain], []
    return original, plain


def _merge_by_key(
    original: list[Any],
    patch_items: list[dict[str, Any]],
    merge_key: str,
    items_node: Node,
    merge_map: MergeMap,
    fresh: Fresh,
) -> list[Any]:
    merged = list(original)
    where: dict[Any, int] = {}
    for i, item in enumerate(merged):
        where.setdefault(identity(item, merge_key, strict=False), i)
    for element in patch_items:
        key = identity(element, merge_key)
        at = where.get(key)
        if at is None:
            where[key] = len(merged)
            merged.append(fresh(element, items_node))
        else:
            merged[at] = merge_map(merged[at], element, items_node)
    return merged

"""Where elements land when a strategic merge patch merges a list.

Upstream's rule (the "preserve order in strategic merge patch" design):
elements the patch names are ordered as the patch (or its `$setElementOrder`
list) orders them; elements only the server has keep their relative order from
the live list; the two runs are then interleaved, and a server-only element goes
before a patch element only when both are in the live list and it came first
there. So a brand-new element the patch introduces goes before the server-only
elements that follow it, e.g. adding container `b` to live `[a]` with a plain
patch yields `[b, a]`, exactly as `kubectl patch` does against a real cluster.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from skiff.api.patch import directives as d
from skiff.api.patch._values import json_equal, scalar_key


def identity(item: Any, merge_key: str | None, strict: bool = True) -> Hashable:
    """What identifies a list element: its merge-key value, or itself for scalars.

    `strict` rejects a map without the merge key (patch input); live elements are
    tolerated and simply never match anything.
    """
    if not merge_key:
        return scalar_key(item)
    if isinstance(item, dict) and merge_key in item:
        return scalar_key(item[merge_key])
    if strict:
        if not isinstance(item, dict):
            raise d.bad_arg_type("map[string]interface {}", item)
        raise d.no_merge_key(item, merge_key)
    return ("<no merge key>", id(item))


def _first_positions(items: list[Any], merge_key: str | None, strict: bool) -> dict[Any, int]:
    positions: dict[Any, int] = {}
    for i, item in enumerate(items):
        positions.setdefault(identity(item, merge_key, strict), i)
    return positions


def arrange(
    merged: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str | None,
) -> list[Any]:
    """Order the merged list: patch elements by `patch_order`, the rest by `server_order`."""
    in_patch = _first_positions(patch_order, merge_key, True)
    on_server = _first_positions(server_order, merge_key, False)
    patch_items: list[tuple[Any, Any]] = []
    server_items: list[tuple[Any, Any]] = []
    for item in merged:
        key = identity(item, merge_key, False)
        (patch_items if key in in_patch else server_items).append((key, item))
    if not patch_items or not server_items:
        bucket, order = (patch_items, in_patch) if patch_items else (server_items, on_server)
        bucket.sort(key=lambda pair: order.get(pair[0], len(order)))
        return [item for _, item in bucket]
    patch_items.sort(key=lambda pair: in_patch[pair[0]])
    server_items.sort(key=lambda pair: on_server.get(pair[0], len(on_server)))
    return _interleave(server_items, patch_items, on_server)


def _interleave(
    server_items: list[tuple[Any, Any]],
    patch_items: list[tuple[Any, Any]],
    on_server: dict[Any, int],
) -> list[Any]:
    out: list[Any] = []
    i = j = 0
    while i < len(server_items) and j < len(patch_items):
        left = on_server.get(server_items[i][0])
        right = on_server.get(patch_items[j][0])
        if left is not None and right is not None and left < right:
            out.append(server_items[i][1])
            i += 1
        else:
            out.append(patch_items[j][1])
            j += 1
    out.extend(item for _, item in server_items[i:])
    out.extend(item for _, item in patch_items[j:])
    return out


def check_order(patch_list: list[Any], order: list[Any], merge_key: str | None) -> None:
    """Reject a patch list whose elements are not a subsequence of `$setElementOrder`.

    The order list is what the client says the whole list should look like; a
    patch element missing from it, or out of its order, means the client built an
    inconsistent patch.
    """
    if not patch_list or not order:
        return
    items = [
        item
        for item in patch_list
        if not (merge_key and isinstance(item, dict) and item.get(d.PATCH) == d.DELETE)
    ]
    i = j = 0
    while i < len(items) and j < len(order):
        if isinstance(items[i], dict) and d.PATCH in items[i]:
            i += 1
            continue
        if _same_element(items[i], order[j], merge_key):
            i += 1
        j += 1
    while i < len(items) and isinstance(items[i], dict) and d.PATCH in items[i]:
        i += 1
    if i < len(items):
        raise d.order_mismatch(patch_list, order)


def _same_element(a: Any, b: Any, merge_key: str | None) -> bool:
    if not merge_key:
        return json_equal(a, b)
    return identity(a, merge_key) == identity(b, merge_key)

"""Server-side apply: merge a manager's intent into the live object.

An applier sends the fields it cares about, complete each time. The server merges
them into the live object, takes away what the applier set last time but no longer
sends (unless someone else also claims it), and refuses, with a 409 naming owner
and field, to change a value another manager set, unless the applier forces.
"""

from __future__ import annotations

from typing import Any

from skiff.api.apply import managers as mf
from skiff.api.apply.compare import compare
from skiff.api.apply.conflicts import conflict_error
from skiff.api.apply.fieldset import FieldSet, Path
from skiff.api.apply.last_applied import conflicts_allowed, keep_last_applied
from skiff.api.apply.managed_fields import set_managed_fields
from skiff.api.apply.merge import merge, remove_items
from skiff.api.apply.ownership import ensure_named_fields, to_field_set
from skiff.api.apply.shape import SchemaMismatch, same
from skiff.api.errors import bad_request
from skiff.api.schema.node import SchemaNode


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    force: bool,
    node: SchemaNode | None,
    api_version: str,
    now: str,
    *,
    subresource: str = "",
    ignored: tuple[Path, ...] = (),
) -> dict[str, Any]:
    """The object after `manager` applies `applied` to `live` (None: create it).

    Raises a 409 `StatusError` on conflicts when not forcing, and a 400 for a
    configuration that sets managedFields or cannot be placed in the schema.
    `ignored` are fields this endpoint resets (see `managers.reset_fields`).
    """
    if (applied.get("metadata") or {}).get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    live_obj = _strip_managed(live)
    try:
        managed = mf.decode(((live or {}).get("metadata") or {}).get("managedFields"))
    except ValueError:
        managed = {}
    try:
        merged = merge(live_obj, applied, node)
        config_set = to_field_set(applied, node).without_subtrees(ignored)
        me = mf.ManagerEntry(manager, mf.APPLY, api_version, config_set, None, subresource)
        previous = managed.get(me.identity)
        if previous is not None:
            me.time = previous.time
        managed[me.identity] = me
        new_obj = _prune(merged, managed, previous.fields if previous else FieldSet(), node)
        diff = compare(live_obj, new_obj, node).without_subtrees(ignored)
    except SchemaMismatch as e:
        raise bad_request(f"failed to create typed patch object: {e}") from None

    changed = diff.changed()
    conflicts: list[tuple[mf.ManagerEntry, Path]] = []
    for ident, entry in managed.items():
        if ident == me.identity:
            continue
        conflicts.extend((entry, p) for p in entry.fields & changed)
    if conflicts and not force and not conflicts_allowed(
            live_obj, manager, [p for _, p in conflicts], node):
        raise conflict_error(conflicts)
    for ident, entry in managed.items():
        if ident != me.identity:
            entry.fields = entry.fields - changed - diff.removed
    mf.strip_untracked(me, ignored)
    if not same(live_obj, new_obj) or me.time is None:
        me.time = now
    mf.drop_empty(managed)
    keep_last_applied(live, applied, manager, new_obj)
    set_managed_fields(new_obj, managed)
    return new_obj


def _strip_managed(obj: dict[str, Any] | None) -> dict[str, Any]:
    if not obj:
        return {}
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


def _prune(
    merged: dict[str, Any], managed: mf.Managed, last: FieldSet, node: SchemaNode | None
) -> dict[str, Any]:
    """Remove what the applier set last time and dropped now, if nobody else owns it.

    Three steps, as upstream: take out everything the applier owned before; put back
    whatever some manager (the applier's new configuration included) still owns or
    that was never removed; finally remove only what the applier had owned.
    """
    if not last:
        return merged
    last = ensure_named_fields(last, node)
    owned = FieldSet()
    for entry in managed.values():
        owned = owned | entry.fields
    owned = ensure_named_fields(owned, node)
    merged_set = ensure_named_fields(to_field_set(merged, node), node)
    pruned = remove_items(merged, last, node)
    pruned_set = ensure_named_fields(to_field_set(pruned, node), node)
    kept = remove_items(merged, merged_set - (pruned_set | owned), node)
    kept_set = ensure_named_fields(to_field_set(kept, node), node)
    return remove_items(merged, (merged_set - kept_set) & last, node)

"""Field ownership bookkeeping for ordinary writes (create, update, patch).

Every write that is not an apply is recorded as an `Update` by its field manager:
the manager takes the fields it added or changed from whoever owned them, fields it
removed leave every owner, and nothing else moves. This is what later lets
`kubectl apply --server-side` tell that `kubectl scale` changed the replica count.
"""

from __future__ import annotations

import copy
from typing import Any

from skiff.api.apply import managers as mf
from skiff.api.apply.compare import compare
from skiff.api.apply.created import created_fields
from skiff.api.apply.fieldset import FieldSet, Path
from skiff.api.apply.shape import SchemaMismatch
from skiff.api.schema.node import SchemaNode


def _without_managed_fields(obj: dict[str, Any] | None) -> dict[str, Any]:
    if not obj:
        return {}
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


def _starting_point(
    old: dict[str, Any] | None, new: dict[str, Any], subresource: str
) -> mf.Managed:
    old_entries = ((old or {}).get("metadata") or {}).get("managedFields")
    if not subresource:
        sent = (new.get("metadata") or {}).get("managedFields")
        if mf.is_reset(sent):
            return {}
        # Clients may rewrite managedFields (upstream allows it); a missing or
        # unreadable list means a client that does not know about them, so the
        # stored ownership carries over instead of being lost.
        try:
            managed = mf.decode(sent)
        except ValueError:
            managed = {}
        if managed:
            return managed
    try:
        return mf.decode(old_entries)
    except ValueError:
        return {}


def set_managed_fields(obj: dict[str, Any], managed: mf.Managed) -> None:
    """Write `managed` into `obj.metadata.managedFields` (or drop the key when empty)."""
    meta = obj.setdefault("metadata", {})
    encoded = mf.encode(managed)
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)


def update_managed_fields(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    operation: str,
    node: SchemaNode | None,
    now: str,
    subresource: str = "",
    *,
    ignored: tuple[Path, ...] = (),
) -> None:
    """Record a create/update/patch by `manager` in `new.metadata.managedFields`.

    `old` is the stored object (None on create), `new` the object about to be
    stored; `ignored` are fields this endpoint resets (see `managers.reset_fields`).
    """
    if not old and (new.get("metadata") or {}).get("managedFields") is None:
        tops = frozenset(r[0].text for r in ignored if len(r) == 1 and r[0].kind == "f")
        if len(tops) == len(ignored):
            trie = created_fields(new, node, tops)
            if trie is not None:
                _record_created(new, trie, manager, operation, now)
                return
    old_obj = _without_managed_fields(old)
    new_obj = _without_managed_fields(new)
    deeper: list[Path] = []
    for root in ignored:
        if len(root) == 1 and root[0].kind == "f":
            # A whole top-level field this endpoint resets (a status write's spec)
            # would only be compared to be dropped again: leave it out of the walk.
            old_obj.pop(root[0].text, None)
            new_obj.pop(root[0].text, None)
        else:
            deeper.append(root)
    api_version = str(new.get("apiVersion") or (old or {}).get("apiVersion") or "")
    try:
        diff = compare(old_obj, new_obj, node).without_subtrees(tuple(deeper))
    except SchemaMismatch:
        # Upstream never fails a write over bookkeeping; it keeps what was stored.
        fallback = ((old or {}).get("metadata") or {}).get("managedFields")
        meta = new.setdefault("metadata", {})
        if fallback:
            meta["managedFields"] = copy.deepcopy(fallback)
        else:
            meta.pop("managedFields", None)
        return
    changed = diff.changed()
    current = mf.ManagerEntry(manager, operation, api_version, changed, now, subresource)
    kept, managed = _split_stored(old, new, subresource, changed | diff.removed,
                                  current.identity)
    for entry in managed.values():
        entry.fields = entry.fields - changed - diff.removed
    mf.drop_empty(managed)

    mf.strip_untracked(current, tuple(deeper))
    if current.fields:
        previous = managed.get(current.identity)
        if previous is not None:
            current.fields = current.fields | previous.fields
        managed[current.identity] = current
    if kept and _updaters(managed, kept) > mf.MAX_UPDATE_MANAGERS:
        # Folding old updaters together needs every entry decoded (rare).
        managed.update(mf.decode(kept))
        kept = []
    mf.cap_updaters(managed)
    if not kept:
        set_managed_fields(new, managed)
        return
    meta = new.setdefault("metadata", {})
    meta["managedFields"] = mf.merge_encoded(kept, mf.encode(managed))


def _record_created(new: dict[str, Any], trie: dict[str, Any], manager: str,
                    operation: str, now: str) -> None:
    meta = new.setdefault("metadata", {})
    if not trie:
        meta.pop("managedFields", None)
        return
    meta["managedFields"] = [{"manager": manager, "operation": operation,
                              "apiVersion": str(new.get("apiVersion") or ""), "time": now,
                              "fieldsType": "FieldsV1", "fieldsV1": trie}]


def _split_stored(
    old: dict[str, Any] | None, new: dict[str, Any], subresource: str,
    touched: FieldSet, writer: mf.Identity,
) -> tuple[list[dict[str, Any]], mf.Managed]:
    """The starting ownership: stored entries the write leaves alone, kept as they are
    stored, and the rest decoded.

    A status write by one agent does not touch what the controller that created the
    object owns; its stored entry (written by this server, so canonically encoded) is
    carried over without decoding and encoding its field set again.
    """
    stored = ((old or {}).get("metadata") or {}).get("managedFields")
    sent = (new.get("metadata") or {}).get("managedFields")
    from_store = isinstance(stored, list) and stored and (
        subresource or sent is None or sent == stored)
    if not from_store:
        return [], _starting_point(old, new, subresource)
    assert isinstance(stored, list)
    kept: list[dict[str, Any]] = []
    rest: list[Any] = []
    for entry in stored:
        if (isinstance(entry, dict) and mf.raw_identity(entry) != writer
                and mf.owns_none(entry.get("fieldsV1"), touched)):
            kept.append(entry)
        else:
            rest.append(entry)
    try:
        return kept, mf.decode(rest)
    except ValueError:
        return [], _starting_point(old, new, subresource)


def _updaters(managed: mf.Managed, kept: list[dict[str, Any]]) -> int:
    return (sum(1 for e in managed.values() if e.operation == mf.UPDATE)
            + sum(1 for e in kept if e.get("operation") == mf.UPDATE))

"""ControllerRevisions: the history of a StatefulSet's or DaemonSet's pod template.

Each distinct template is stored once as a ControllerRevision named
`<owner>-<hash>`, whose `data` is the strategic merge patch that puts the template
back (`{"spec": {"template": {..., "$patch": "replace"}}}`) — exactly what
`kubectl rollout undo` applies — and whose `revision` number orders the history.
Going back to an old template re-numbers its existing revision instead of making a
new one, as upstream does. A hash collision (a different template under the same
name) bumps the owner's `status.collisionCount`, which changes every later hash.
"""

from __future__ import annotations

import copy
import struct
from typing import Any

import orjson

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.selectors.labels import LabelSelector
from skiff.client.http_client import Client
from skiff.client.informer import Informer
from skiff.controllers.controller_ref import (
    ControllerRefManager,
    owned_or_orphaned,
    owner_reference,
)

Obj = dict[str, Any]

GROUP, VERSION, PLURAL = "apps", "v1", "controllerrevisions"
# The label ControllerRevisions carry with their hash (upstream's ControllerRevisionHashLabel).
HASH_LABEL = "controller.kubernetes.io/hash"
# The label pods carry with the revision they were made from.
POD_REVISION_LABEL = "controller-revision-hash"

# upstream's rand.SafeEncodeString alphabet: no vowels, no look-alikes.
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def _fnv32a(data: bytes, h: int = _FNV_OFFSET) -> int:
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def template_hash(template: Obj, collision_count: int | None = None) -> str:
    """A short, stable name-safe hash of a pod template (and the collision count)."""
    h = _fnv32a(orjson.dumps(template, option=orjson.OPT_SORT_KEYS))
    if collision_count:
        h = _fnv32a(struct.pack("<I", collision_count & 0xFFFFFFFF), h)
    return "".join(_ALPHABET[ord(ch) % len(_ALPHABET)] for ch in str(h))


def revision_data(template: Obj) -> Obj:
    """The patch a revision stores: the whole template, replacing the current one."""
    t = copy.deepcopy(template)
    t["$patch"] = "replace"
    return {"spec": {"template": t}}


def revision_template(revision: Obj) -> Obj:
    """The pod template a revision records."""
    t = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    t.pop("$patch", None)
    return t


def revision_number(revision: Obj) -> int:
    """The revision's `revision` field."""
    return int(revision.get("revision") or 0)


def sort_revisions(revisions: list[Obj]) -> list[Obj]:
    """Oldest first, by revision number then name."""
    return sorted(revisions, key=lambda r: (revision_number(r), m.name_of(r)))


def revision_name(owner_name: str, hash_: str) -> str:
    """`<owner>-<hash>`, the owner's name shortened so the whole stays a valid name."""
    return f"{owner_name[:223]}-{hash_}"


def new_revision(owner: Obj, template: Obj, number: int, collision_count: int | None,
                 hash_label: str = HASH_LABEL) -> Obj:
    """A ControllerRevision object (not yet created) for `template`.

    It carries the template's labels plus `hash_label` (StatefulSets use
    `controller.kubernetes.io/hash`, DaemonSets `controller-revision-hash`).
    """
    hash_ = template_hash(template, collision_count)
    md = owner.get("metadata") or {}
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels[hash_label] = hash_
    meta: Obj = {
        "name": revision_name(md.get("name", ""), hash_),
        "namespace": md.get("namespace", ""),
        "labels": labels,
        "ownerReferences": [owner_reference(owner)],
    }
    if md.get("annotations"):
        meta["annotations"] = dict(md["annotations"])
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
            "data": revision_data(template), "revision": number}


async def claim_revisions(client: Client, owner: Obj, selector: LabelSelector,
                          informer: Informer) -> list[Obj]:
    """The owner's revisions, adopting the orphans its selector matches.

    Upstream adopts them, so a set deleted with `--cascade=orphan` and made again
    takes its history back rather than colliding with its own old revisions.
    """
    manager = ControllerRefManager(client, owner, selector, (GROUP, VERSION, PLURAL))
    claimed = await manager.claim(owned_or_orphaned(informer, owner))
    return [r for r in claimed if m.namespace_of(r) == m.namespace_of(owner)]


class RevisionCollision(Exception):
    """A revision with our name but another template exists; collisionCount was bumped."""


async def ensure_update_revision(
    client: Client, owner: Obj, revisions: list[Obj], template: Obj,
    collision_count: int, hash_label: str = HASH_LABEL,
) -> tuple[Obj, list[Obj]]:
    """The revision for the owner's current template, created or re-numbered as needed.

    `revisions` are the owner's existing revisions. Returns the update revision and
    the revisions as they are now. Raises RevisionCollision after bumping the
    owner's collisionCount in `owner["status"]` (the caller writes status and retries).
    """
    revisions = sort_revisions(revisions)
    latest = revision_number(revisions[-1]) if revisions else 0
    data = revision_data(template)
    equal = [r for r in revisions if r.get("data") == data]
    if equal:
        found = equal[-1]
        if revisions and found is revisions[-1]:
            return found, revisions
        updated = copy.deepcopy(found)
        updated["revision"] = latest + 1
        updated = await client.update(GROUP, VERSION, PLURAL, updated)
        return updated, sort_revisions(
            [r for r in revisions if m.name_of(r) != m.name_of(found)] + [updated])
    candidate = new_revision(owner, template, latest + 1, collision_count, hash_label)
    try:
        created = await client.create(GROUP, VERSION, PLURAL, candidate)
    except StatusError as err:
        if err.code != 409:
            raise
        existing = await client.get(GROUP, VERSION, PLURAL, m.name_of(candidate),
                                    m.namespace_of(candidate))
        same_owner = any(ref.get("uid") == m.uid_of(owner)
                         for ref in m.owner_references(existing))
        if same_owner and existing.get("data") == data:
            # Our cache had not seen it yet.
            return existing, sort_revisions([*revisions, existing])
        owner.setdefault("status", {})["collisionCount"] = collision_count + 1
        raise RevisionCollision(m.name_of(candidate)) from err
    return created, sort_revisions([*revisions, created])


async def truncate_history(client: Client, revisions: list[Obj], live: set[str],
                           limit: int) -> None:
    """Delete the oldest revisions not in `live` beyond `limit` of them."""
    history = [r for r in sort_revisions(revisions) if m.name_of(r) not in live]
    excess = len(history) - max(0, limit)
    for rev in history[:max(0, excess)]:
        try:
            await client.delete(GROUP, VERSION, PLURAL, m.name_of(rev), m.namespace_of(rev))
        except StatusError as err:
            if err.code != 404:
                raise

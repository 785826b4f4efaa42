"""Adopting and releasing dependents through their controller ownerReference.

A controller owns the objects whose ownerReferences name it with `controller: true`.
It adopts orphans its selector matches and releases objects it owns that stopped
matching (someone relabelled them), as upstream's ControllerRefManager does. Both
are strategic-merge patches carrying the object's UID, so they apply to exactly
the object the cache showed and never to a namesake created since.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.selectors.labels import LabelSelector
from skiff.client.http_client import Client
from skiff.client.informer import Informer

log = logging.getLogger(__name__)

Obj = dict[str, Any]


# The index value of objects without a controller: `orphan/<namespace>`.
ORPHAN = "orphan"
CONTROLLER_INDEX = "controller"
UID_INDEX = "uid"


def controller_index(obj: Obj) -> list[str]:
    """Index value: the controller's UID, or `orphan/<namespace>` for orphans."""
    ref = m.controller_of(obj)
    if ref is not None:
        return [ref.get("uid", "")]
    return [f"{ORPHAN}/{m.namespace_of(obj)}"]


def index_by_controller(informer: Informer) -> None:
    """Index an informer by controller UID (and by its own UID), once."""
    if not informer.has_index(CONTROLLER_INDEX):
        informer.add_index(CONTROLLER_INDEX, controller_index)
    if not informer.has_index(UID_INDEX):
        informer.add_index(UID_INDEX, lambda obj: [m.uid_of(obj)])


NAMESPACE_INDEX = "namespace"


def index_by_namespace(informer: Informer) -> None:
    """Index an informer by namespace, once (to find owners whose selector may match)."""
    if not informer.has_index(NAMESPACE_INDEX):
        informer.add_index(NAMESPACE_INDEX, lambda obj: [m.namespace_of(obj)])


def owned_or_orphaned(informer: Informer, owner: Obj) -> list[Obj]:
    """Claim candidates: objects `owner` controls plus orphans in its namespace."""
    return (informer.by_index(CONTROLLER_INDEX, m.uid_of(owner))
            + informer.by_index(CONTROLLER_INDEX, f"{ORPHAN}/{m.namespace_of(owner)}"))


def owner_reference(owner: Obj) -> Obj:
    """The controller ownerReference that points at `owner`."""
    return {
        "apiVersion": owner.get("apiVersion", ""),
        "kind": owner.get("kind", ""),
        "name": m.name_of(owner),
        "uid": m.uid_of(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_controlled_by(obj: Obj, owner: Obj) -> bool:
    """Whether `owner` is `obj`'s controller."""
    ref = m.controller_of(obj)
    return ref is not None and ref.get("uid") == m.uid_of(owner)


class ControllerRefManager:
    """Claims the dependents of one owner (pods of a ReplicaSet, ReplicaSets of a
    Deployment) in one reconcile.

    `can_adopt` is checked once, lazily, before the first adoption: upstream re-reads
    the owner from the API so a stale cache cannot adopt for an owner that is gone.
    """

    def __init__(self, client: Client, owner: Obj, selector: LabelSelector,
                 dependent: tuple[str, str, str],
                 can_adopt: Callable[[], Awaitable[None]] | None = None,
                 finalizer: str | None = None) -> None:
        self.client = client
        # A finalizer adopted dependents get too (Jobs track their pods with one).
        self.finalizer = finalizer
        self.owner = owner
        self.selector = selector
        self.group, self.version, self.plural = dependent
        self._can_adopt = can_adopt
        self._adopt_checked: bool | None = None

    async def _adoption_allowed(self) -> bool:
        if self._adopt_checked is None:
            try:
                if self._can_adopt is not None:
                    await self._can_adopt()
                self._adopt_checked = True
            except StatusError as err:
                log.info("not adopting for %s: %s", m.name_of(self.owner), err.message)
                self._adopt_checked = False
        return self._adopt_checked

    async def claim(self, candidates: list[Obj],
                    extra_match: Callable[[Obj], bool] | None = None) -> list[Obj]:
        """The candidates this owner controls after adopting and releasing as needed."""
        owner_uid = m.uid_of(self.owner)
        owner_deleting = bool(m.metadata(self.owner).get("deletionTimestamp"))
        claimed: list[Obj] = []
        for obj in candidates:
            matches = self.selector.matches(m.labels_of(obj)) and (
                extra_match is None or extra_match(obj))
            ref = m.controller_of(obj)
            if ref is not None:
                if ref.get("uid") != owner_uid:
                    continue
                if matches:
                    claimed.append(obj)
                elif not owner_deleting:
                    await self._release(obj)
                continue
            if owner_deleting or not matches:
                continue
            if m.metadata(obj).get("deletionTimestamp"):
                continue
            if m.namespace_of(obj) != m.namespace_of(self.owner):
                continue
            if not await self._adoption_allowed():
                continue
            adopted = await self._adopt(obj)
            if adopted is not None:
                claimed.append(adopted)
        return claimed

    async def _adopt(self, obj: Obj) -> Obj | None:
        patch: Obj = {"metadata": {"ownerReferences": [owner_reference(self.owner)],
                                   "uid": m.uid_of(obj)}}
        if self.finalizer and self.finalizer not in (m.metadata(obj).get("finalizers") or []):
            # finalizers merge as a set under strategic merge patch.
            patch["metadata"]["finalizers"] = [self.finalizer]
        try:
            return await self.client.patch(self.group, self.version, self.plural,
                                           m.name_of(obj), patch, m.namespace_of(obj),
                                           patch_type="strategic")
        except StatusError as err:
            # Gone, or changed under us (another controller adopted it first).
            if err.code in (404, 409, 422):
                return None
            raise

    async def _release(self, obj: Obj) -> None:
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete",
                                                   "uid": m.uid_of(self.owner)}],
                              "uid": m.uid_of(obj)}}
        try:
            await self.client.patch(self.group, self.version, self.plural, m.name_of(obj),
                                    patch, m.namespace_of(obj), patch_type="strategic")
        except StatusError as err:
            if err.code not in (404, 409, 422):
                raise

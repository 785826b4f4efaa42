"""Controller ownership of pods: references, adoption and release.

A workload owns the pods whose `ownerReferences` name it as controller. Pods that
match its selector but have no controller are adopted; pods it owns that stop
matching are released, as upstream's ControllerRefManager does. Both are patches
guarded by the pod's uid, so a pod replaced under the same name is never touched.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.selectors.labels import LabelSelector
from skiff.client.http_client import Client

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def controller_ref(owner: Obj) -> Obj:
    """The ownerReference a controller puts on what it creates."""
    md = owner.get("metadata") or {}
    return {
        "apiVersion": owner.get("apiVersion", ""),
        "kind": owner.get("kind", ""),
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: Obj) -> str:
    """The uid of the object's controller, or empty."""
    ref = m.controller_of(obj)
    return (ref or {}).get("uid") or ""


def owner_index(obj: Obj) -> list[str]:
    """Index function: the controller's uid (for Informer.add_index)."""
    uid = controller_uid(obj)
    return [uid] if uid else []


def namespace_index(obj: Obj) -> list[str]:
    """Index function: the namespace."""
    return [m.namespace_of(obj)]


async def claim(
    client: Client,
    owner: Obj,
    selector: LabelSelector,
    candidates: list[Obj],
    *,
    group: str = "",
    version: str = "v1",
    plural: str = "pods",
    adopt_finalizer: str | None = None,
) -> list[Obj]:
    """The objects `owner` controls after adopting orphans and releasing strays.

    `candidates` are the namespace's objects of that type (from a cache). Adoption is
    skipped while the owner is being deleted, as upstream does.
    """
    uid = m.uid_of(owner)
    owner_deleting = bool((owner.get("metadata") or {}).get("deletionTimestamp"))
    owned: list[Obj] = []
    adopt: list[Obj] = []
    release: list[Obj] = []
    for obj in candidates:
        ref = m.controller_of(obj)
        matches = selector.matches(m.labels_of(obj))
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches or owner_deleting:
                owned.append(obj)
            else:
                release.append(obj)
            continue
        if matches and not owner_deleting and not (obj.get("metadata") or {}).get(
                "deletionTimestamp"):
            adopt.append(obj)
    ref = controller_ref(owner)

    async def do_adopt(obj: Obj) -> Obj | None:
        md: Obj = {"ownerReferences": [ref], "uid": m.uid_of(obj)}
        if adopt_finalizer and adopt_finalizer not in (obj["metadata"].get("finalizers") or []):
            # finalizers merge as a set under strategic merge patch.
            md["finalizers"] = [adopt_finalizer]
        try:
            return await client.patch(group, version, plural, m.name_of(obj), {"metadata": md},
                                      m.namespace_of(obj), patch_type="strategic")
        except StatusError as err:
            if err.code in (404, 409, 422):
                return None
            raise

    async def do_release(obj: Obj) -> None:
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}],
                              "uid": m.uid_of(obj)}}
        try:
            await client.patch(group, version, plural, m.name_of(obj), patch,
                               m.namespace_of(obj), patch_type="strategic")
        except StatusError as err:
            if err.code not in (404, 409, 422):
                raise

    if adopt:
        adopted = await asyncio.gather(*(do_adopt(o) for o in adopt))
        owned.extend(o for o in adopted if o is not None)
    if release:
        await asyncio.gather(*(do_release(o) for o in release))
    return owned

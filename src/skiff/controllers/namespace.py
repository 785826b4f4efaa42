"""Namespace lifecycle: empty a terminating namespace, then release its finalizer.

Deleting a namespace only marks it (deletionTimestamp, phase Terminating); the
`kubernetes` entry in `spec.finalizers` keeps it alive until this controller has
deleted everything inside it and seen the namespace empty. Progress is reported in
status conditions shaped like upstream's, so `kubectl describe ns` explains a
namespace stuck in Terminating.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.discovery import APIResource, discover
from skiff.client.http_client import Client
from skiff.client.informer import Informer
from skiff.client.workqueue import WorkQueue
from skiff.controllers.informers import run_controller

log = logging.getLogger(__name__)

Obj = dict[str, Any]

FINALIZER = "kubernetes"
# How soon to look again while content (graceful pods, finalizers) is still going away.
CONTENT_RECHECK = 1.0

CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"
DELETION_FAILURE = "NamespaceDeletionContentFailure"
DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
GV_PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"


def _condition(kind: str, true: bool, reason: str, message: str) -> Obj:
    return {"type": kind, "status": "True" if true else "False", "reason": reason,
            "message": message}


class NamespaceController:
    """Reconciles namespaces by name."""

    def __init__(self, client: Client, *, workers: int = 2) -> None:
        self.client = client
        self.informer = Informer(client, "", "v1", "namespaces")
        self.queue = WorkQueue(name="namespace")
        self.workers = workers
        self.informer.on_add(self._enqueue)
        self.informer.on_update(lambda _old, new: self._enqueue(new))

    def _enqueue(self, ns: Obj) -> None:
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            self.queue.add(ns["metadata"]["name"])

    async def reconcile(self, name: str) -> float | None:
        """Delete the content of terminating namespace `name`, or finalize it if empty."""
        ns = self.informer.get(name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return None
        try:
            resources = [r for r in await discover(self.client)
                         if r.preferred and r.namespaced and r.supports("list")
                         and (r.supports("delete") or r.supports("deletecollection"))]
        except StatusError as err:
            await self._set_conditions(name, [_condition(
                DISCOVERY_FAILURE, True, "DiscoveryFailed",
                f"Discovery failed for some groups: {err.message}")])
            raise
        failures: list[str] = []
        counts: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for r in resources:
            try:
                await self._delete_all(r, name)
                items = (await self.client.list(r.group, r.version, r.plural, name)
                         ).get("items") or []
            except StatusError as err:
                if err.code in (404, 405):
                    continue
                failures.append(f"{_qualified(r)}: {err.message}")
                continue
            if items:
                counts[_qualified(r)] = len(items)
                for item in items:
                    for f in (item.get("metadata") or {}).get("finalizers") or []:
                        finalizers[f] = finalizers.get(f, 0) + 1
        await self._set_conditions(name, _conditions(failures, counts, finalizers))
        if failures or counts:
            return CONTENT_RECHECK
        await self._finalize(name)
        return None

    async def _delete_all(self, r: APIResource, namespace: str) -> None:
        # Background, as upstream: a resource that orphans by default (Jobs) must not
        # leave dependents waiting on the orphan finalizer while the namespace empties.
        if r.supports("deletecollection"):
            await self.client.delete_collection(r.group, r.version, r.plural, namespace,
                                                propagation_policy="Background")
            return
        page = await self.client.list(r.group, r.version, r.plural, namespace)
        for item in page.get("items") or []:
            with contextlib.suppress(StatusError):
                await self.client.delete(r.group, r.version, r.plural,
                                         item["metadata"]["name"], namespace,
                                         propagation_policy="Background")

    async def _set_conditions(self, name: str, conditions: list[Obj]) -> None:
        """Write conditions when they changed (best effort: they only explain progress)."""
        try:
            live = await self.client.get("", "v1", "namespaces", name)
        except StatusError:
            return
        status = live.setdefault("status", {})
        merged = list(status.get("conditions") or [])
        if not _merge_conditions(merged, conditions):
            return
        status["conditions"] = merged
        with contextlib.suppress(StatusError):
            await self.client.update_status("", "v1", "namespaces", live)

    async def _finalize(self, name: str) -> None:
        try:
            live = await self.client.get("", "v1", "namespaces", name)
        except StatusError as err:
            # The informer lags: a namespace finalized a moment ago is already gone.
            if err.code == 404:
                return
            raise
        body = copy.deepcopy(live)
        spec = body.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
        try:
            await self.client.request(
                "PUT", self.client.path("", "v1", "namespaces", name, subresource="finalize"),
                body=body,
            )
        except StatusError as err:
            if err.code != 404:
                raise
        log.info("namespace %s: content removed, finalizer released", name)

    async def run(self) -> None:
        """Watch namespaces and reconcile terminating ones until cancelled."""
        await run_controller(self.queue, self.reconcile, self.workers, [self.informer])


def _qualified(r: APIResource) -> str:
    # Upstream prints resource and group joined by a dot even for the core group
    # ("pods. has 1 resource instances").
    return f"{r.plural}.{r.group}"


def _merge_conditions(existing: list[Obj], new: list[Obj]) -> bool:
    """Fold `new` into `existing` in place; True if anything changed.

    As upstream (and `meta.set_condition`), a condition keeps its place and its
    lastTransitionTime unless its status flips.
    """
    holder = {"status": {"conditions": existing}}
    changed = False
    for cond in new:
        changed = m.set_condition(holder, cond["type"], cond["status"], cond["reason"],
                                  cond["message"]) or changed
    return changed


def _conditions(failures: list[str], counts: dict[str, int],
                finalizers: dict[str, int]) -> list[Obj]:
    conds = [_condition(DISCOVERY_FAILURE, False, "ResourcesDiscovered",
                        "All resources successfully discovered"),
             _condition(GV_PARSING_FAILURE, False, "ParsedGroupVersions",
                        "All legacy kube types successfully parsed")]
    if failures:
        conds.append(_condition(DELETION_FAILURE, True, "ContentDeletionFailed",
                                "Failed to delete all resource types, "
                                f"{len(failures)} remaining: " + ", ".join(failures)))
    else:
        conds.append(_condition(DELETION_FAILURE, False, "ContentDeleted",
                                "All content successfully deleted, may be waiting on finalization"))
    if counts:
        conds.append(_condition(CONTENT_REMAINING, True, "SomeResourcesRemain",
                                "Some resources are remaining: " + ", ".join(
                                    f"{k} has {v} resource instances"
                                    for k, v in sorted(counts.items()))))
    else:
        conds.append(_condition(CONTENT_REMAINING, False, "ContentRemoved",
                                "All content successfully removed"))
    if finalizers:
        # Upstream's reason is singular here ("SomeFinalizerRemain").
        conds.append(_condition(FINALIZERS_REMAINING, True, "SomeFinalizerRemain",
                                "Some finalizers are remaining: " + ", ".join(
                                    f"{k} in {v} resource instances"
                                    for k, v in sorted(finalizers.items()))))
    else:
        conds.append(_condition(FINALIZERS_REMAINING, False, "ContentRemoved",
                                "All content successfully removed"))
    return conds

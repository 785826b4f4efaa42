"""The Deployment controller: watches Deployments, their ReplicaSets and pods, and
hands each changed Deployment to one `Rollout` step."""

from __future__ import annotations

import logging
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.selectors.labels import LabelSelector, from_label_selector_dict
from skiff.client.event_recorder import EventRecorder
from skiff.client.http_client import Client
from skiff.client.informer import Informer, object_key
from skiff.client.workqueue import WorkQueue
from skiff.controllers.controller_ref import (
    CONTROLLER_INDEX,
    UID_INDEX,
    ControllerRefManager,
    index_by_controller,
    owned_or_orphaned,
)
from skiff.controllers.deployment import util as u
from skiff.controllers.deployment.rollout import Rollout
from skiff.controllers.informers import run_controller

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def _namespace_index(obj: Obj) -> list[str]:
    return [m.namespace_of(obj)]


def _selector(d: Obj) -> LabelSelector:
    sel = (d.get("spec") or {}).get("selector")
    try:
        return from_label_selector_dict(sel if isinstance(sel, dict) else None)
    except Exception:  # noqa: BLE001 - a stored bad selector selects nothing
        return LabelSelector(nothing=True)


class DeploymentController:
    """Reconciles Deployments by `namespace/name`."""

    def __init__(self, client: Client, *, workers: int = 4,
                 replicasets: Informer | None = None, pods: Informer | None = None,
                 deployments: Informer | None = None) -> None:
        self.client = client
        self.workers = workers
        self._own: list[Informer] = []
        if deployments is None:
            deployments = Informer(client, "apps", "v1", "deployments")
            self._own.append(deployments)
        self.deployments = deployments
        if not self.deployments.has_index(UID_INDEX):
            self.deployments.add_index(UID_INDEX, lambda d: [m.uid_of(d)])
        if not self.deployments.has_index("namespace"):
            self.deployments.add_index("namespace", _namespace_index)
        if replicasets is None:
            replicasets = Informer(client, "apps", "v1", "replicasets")
            self._own.append(replicasets)
        if pods is None:
            pods = Informer(client, "", "v1", "pods")
            self._own.append(pods)
        self.replicasets = replicasets
        self.pods = pods
        index_by_controller(self.replicasets)
        index_by_controller(self.pods)
        self.queue = WorkQueue(name="deployments")
        self.recorder = EventRecorder(client, "deployment-controller")
        self.reconciles = 0
        self.deployments.on_add(lambda d: self.queue.add(object_key(d)))
        self.deployments.on_update(lambda _o, d: self.queue.add(object_key(d)))
        self.deployments.on_delete(self._deployment_deleted)
        # uid → (the selector as stored, parsed): parsing validates every key and value.
        self._selectors: dict[str, tuple[Any, LabelSelector]] = {}
        self.replicasets.on_add(self._rs_added)
        self.replicasets.on_update(self._rs_updated)
        self.replicasets.on_delete(self._rs_deleted)
        self.pods.on_delete(self._pod_deleted)

    # -- mapping events to Deployments --------------------------------------------------

    def _deployment_deleted(self, d: Obj) -> None:
        self._selectors.pop(m.uid_of(d), None)
        self.queue.add(object_key(d))

    def selector_of(self, d: Obj) -> LabelSelector:
        """The Deployment's parsed selector, parsed again only if it changed."""
        raw = (d.get("spec") or {}).get("selector")
        cached = self._selectors.get(m.uid_of(d))
        if cached is not None and cached[0] == raw:
            return cached[1]
        sel = _selector(d)
        self._selectors[m.uid_of(d)] = (raw, sel)
        return sel

    def _owner(self, obj: Obj) -> Obj | None:
        ref = m.controller_of(obj)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        found = self.deployments.by_index(UID_INDEX, ref.get("uid", ""))
        return found[0] if found else None

    def _matching(self, rs: Obj) -> list[Obj]:
        labels = m.labels_of(rs)
        return [d for d in self.deployments.by_index("namespace", m.namespace_of(rs))
                if labels and self.selector_of(d).matches(labels)]

    def _rs_added(self, rs: Obj) -> None:
        owner = self._owner(rs)
        if owner is not None:
            self.queue.add(object_key(owner))
        elif m.controller_of(rs) is None:
            for d in self._matching(rs):
                self.queue.add(object_key(d))

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if m.resource_version_of(old) == m.resource_version_of(new):
            return
        prev = self._owner(old)
        if prev is not None and m.controller_of(old) != m.controller_of(new):
            self.queue.add(object_key(prev))
        owner = self._owner(new)
        if owner is not None:
            self.queue.add(object_key(owner))
        elif m.controller_of(new) is None and (m.labels_of(old) != m.labels_of(new)
                                               or m.controller_of(old) is not None):
            for d in self._matching(new):
                self.queue.add(object_key(d))

    def _rs_deleted(self, rs: Obj) -> None:
        owner = self._owner(rs)
        if owner is not None:
            self.queue.add(object_key(owner))

    def _pod_deleted(self, pod: Obj) -> None:
        # Only Recreate waits for pods (old ones must be gone before new ones start).
        ref = m.controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        for candidate in self.replicasets.by_index(UID_INDEX, ref.get("uid", "")):
            d = self._owner(candidate)
            if d is not None and not u.is_rolling(d):
                self.queue.add(object_key(d))

    # -- reconcile ---------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        """One step of the Deployment `key` toward its spec."""
        if not all(i.has_synced.is_set() for i in (self.deployments, self.replicasets,
                                                   self.pods)):
            return 0.1
        self.reconciles += 1
        d = self.deployments.get(key)
        if d is None:
            return None
        selector = self.selector_of(d)
        if selector.empty:
            self.recorder.event(d, "Warning", "SelectingAll", "This deployment is selecting "
                                "all pods. A non-empty selector is required.")
            return None
        rss = await self._claim_replicasets(d, selector)
        pods_by_rs: dict[str, list[Obj]] = {}
        if not u.is_rolling(d):
            for rs in rss:
                pods_by_rs[m.uid_of(rs)] = [
                    p for p in self.pods.by_index(CONTROLLER_INDEX, m.uid_of(rs))
                    if selector.matches(m.labels_of(p))]
        rollout = Rollout(self.client, self.recorder, d, rss, pods_by_rs)
        try:
            if m.metadata(d).get("deletionTimestamp"):
                new, old = await rollout.new_and_old(create=False)
                await rollout.sync_status([*old, new], new)
                return None
            await self._check_paused(rollout)
            if (d.get("spec") or {}).get("paused"):
                await rollout.sync()
            elif await rollout.is_scaling_event():
                await rollout.sync()
            elif u.is_rolling(d):
                await rollout.rolling()
            else:
                await rollout.recreate()
        except StatusError as err:
            if err.code == 409:
                return 0.05
            raise
        return rollout.requeue_after

    async def _claim_replicasets(self, d: Obj, selector: LabelSelector) -> list[Obj]:
        candidates = owned_or_orphaned(self.replicasets, d)
        manager = ControllerRefManager(self.client, d, selector, ("apps", "v1", "replicasets"),
                                       can_adopt=lambda: self._recheck(d))
        return await manager.claim(candidates)

    async def _recheck(self, d: Obj) -> None:
        fresh = await self.client.get("apps", "v1", "deployments", m.name_of(d),
                                      m.namespace_of(d))
        if m.uid_of(fresh) != m.uid_of(d) or m.metadata(fresh).get("deletionTimestamp"):
            raise StatusError(409, "Conflict", f"deployment {m.name_of(d)} changed identity "
                              "or is being deleted")

    async def _check_paused(self, rollout: Rollout) -> None:
        """Progressing is Unknown with DeploymentPaused while paused, DeploymentResumed
        once resumed (so the deadline does not run while nobody wants progress)."""
        d = rollout.d
        if not u.has_progress_deadline(d):
            return
        status = d.setdefault("status", {})
        cond = u.get_condition(status, "Progressing")
        if cond is not None and cond.get("reason") == u.TIMED_OUT:
            # A rollout already reported stuck stays reported: pausing it must not hide
            # the failure (kubectl rollout status keeps failing on it, as upstream).
            return
        paused = bool((d.get("spec") or {}).get("paused"))
        if paused and (cond is None or cond.get("reason") != u.PAUSED):
            u.set_condition(status, u.new_condition("Progressing", "Unknown", u.PAUSED,
                                                    "Deployment is paused"))
        elif not paused and cond is not None and cond.get("reason") == u.PAUSED:
            u.set_condition(status, u.new_condition("Progressing", "Unknown", u.RESUMED,
                                                    "Deployment is resumed"))
        else:
            return
        await rollout.write_status(status)

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch and reconcile until cancelled."""
        await run_controller(self.queue, self.reconcile, self.workers, self._own, self.recorder)


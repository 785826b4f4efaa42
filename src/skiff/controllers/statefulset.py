"""The StatefulSet controller: pods with stable names, made and removed in order.

One reconcile per StatefulSet key, following upstream's StatefulSet control:

1. Claim pods and record the pod template as ControllerRevisions; the revision
   of the current template is the update revision, `status.currentRevision`
   the one the set is rolling away from.
2. Walk ordinals upward: recreate pods that finished, create missing ones (from
   the current revision below the partition, the update revision otherwise), and
   with OrderedReady wait for each pod to be Running and Ready before the next.
3. Remove pods beyond `replicas`, highest ordinal first (one at a time with
   OrderedReady, all at once with Parallel).
4. RollingUpdate: delete the highest-ordinal pod not at the update revision, down
   to the partition, one at a time once all are healthy; it comes back updated.
   OnDelete leaves that to the user.
5. Write status as upstream does, so `kubectl rollout status sts` can follow it.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.selectors.labels import from_label_selector_dict
from skiff.client.event_recorder import EventRecorder
from skiff.client.http_client import Client
from skiff.client.informer import Informer, object_key
from skiff.client.workqueue import WorkQueue
from skiff.controllers import pod_state
from skiff.controllers import revisions as rev
from skiff.controllers import statefulset_pods as sp
from skiff.controllers.controller_ref import (
    NAMESPACE_INDEX,
    UID_INDEX,
    ControllerRefManager,
    index_by_controller,
    index_by_namespace,
    owned_or_orphaned,
    owner_reference,
)
from skiff.controllers.informers import run_controller, use_informer

log = logging.getLogger(__name__)

Obj = dict[str, Any]

COMPONENT = "statefulset-controller"
CONFLICT_RETRY = 0.05


class _Wait(Exception):
    """Stop this sync: the next step waits for a pod to change."""


class StatefulSetController:
    """Reconciles apps/v1 StatefulSets by `namespace/name`."""

    def __init__(self, client: Client, *, workers: int = 4,
                 clock: Callable[[], dt.datetime] = m.now, pods: Informer | None = None,
                 revisions: Informer | None = None) -> None:
        self.client = client
        self.clock = clock
        self.workers = workers
        self._own: list[Informer] = []
        self.sets = use_informer(client, None, self._own, "apps", "v1", "statefulsets")
        self.pods = use_informer(client, pods, self._own, "", "v1", "pods")
        self.revisions = use_informer(client, revisions, self._own, "apps", "v1",
                                      "controllerrevisions")
        for inf in (self.pods, self.revisions, self.sets):
            index_by_controller(inf)
        index_by_namespace(self.sets)
        self.queue = WorkQueue(name="statefulset")
        self.recorder = EventRecorder(client, COMPONENT)
        self.claims_served: bool | None = None
        self.sets.on_add(lambda s: self.queue.add(object_key(s)))
        self.sets.on_update(lambda _o, s: self.queue.add(object_key(s)))
        self.pods.on_add(self._pod_changed)
        self.pods.on_update(lambda old, new: (self._pod_changed(old), self._pod_changed(new)))
        self.pods.on_delete(self._pod_changed)
        self.revisions.on_delete(self._pod_changed)

    def _pod_changed(self, obj: Obj) -> None:
        ref = m.controller_of(obj)
        if ref is not None:
            if ref.get("kind") == "StatefulSet":
                for s in self.sets.by_index(UID_INDEX, ref.get("uid", "")):
                    self.queue.add(object_key(s))
            return
        labels = m.labels_of(obj)
        for s in self.sets.by_index(NAMESPACE_INDEX, m.namespace_of(obj)):
            try:
                if from_label_selector_dict((s.get("spec") or {}).get("selector")).matches(labels):
                    self.queue.add(object_key(s))
            except StatusError:
                continue

    async def reconcile(self, key: str) -> float | None:
        """Sync one StatefulSet."""
        if not all(i.has_synced.is_set() for i in (self.sets, self.pods, self.revisions)):
            return 0.1
        cached = self.sets.get(key)
        if cached is None:
            return None
        sts = copy.deepcopy(cached)
        try:
            return await self._sync(sts)
        except StatusError as err:
            if err.code != 409:
                raise
            return CONFLICT_RETRY

    async def _sync(self, sts: Obj) -> float | None:
        spec = sts.setdefault("spec", {})
        old_status = copy.deepcopy(sts.get("status") or {})
        selector = from_label_selector_dict(spec.get("selector"))
        manager = ControllerRefManager(self.client, sts, selector, ("", "v1", "pods"))
        pods = await manager.claim(owned_or_orphaned(self.pods, sts))
        pods = [p for p in pods if (po := sp.parent_and_ordinal(p)) and po[0] == m.name_of(sts)]
        owned_revisions = await rev.claim_revisions(self.client, sts, selector, self.revisions)
        collision = int((sts.get("status") or {}).get("collisionCount") or 0)
        try:
            update_rev, all_revs = await rev.ensure_update_revision(
                self.client, sts, owned_revisions, spec.get("template") or {}, collision)
        except rev.RevisionCollision:
            await self._write_status(sts, old_status)
            return CONFLICT_RETRY
        current_name = (sts.get("status") or {}).get("currentRevision") or ""
        current_rev = next((r for r in all_revs if m.name_of(r) == current_name), update_rev)
        status, requeue = await self._update_pods(sts, pods, current_rev, update_rev)
        status["collisionCount"] = collision
        sts["status"] = status
        await self._write_status(sts, old_status)
        live = {sp.revision_of(p) for p in pods} | {m.name_of(current_rev),
                                                      m.name_of(update_rev)}
        limit = spec.get("revisionHistoryLimit")
        await rev.truncate_history(self.client, all_revs, live,
                                   10 if not isinstance(limit, int) else limit)
        return requeue

    async def _write_status(self, sts: Obj, old_status: Obj) -> None:
        if (sts.get("status") or {}) != old_status:
            await self.client.update_status("apps", "v1", "statefulsets", sts)

    # -- pods -------------------------------------------------------------------------------

    async def _update_pods(self, sts: Obj, pods: list[Obj], current_rev: Obj,
                           update_rev: Obj) -> tuple[Obj, float | None]:
        spec = sts["spec"]
        now = self.clock()
        replicas = int(spec.get("replicas") if spec.get("replicas") is not None else 1)
        start = int((spec.get("ordinals") or {}).get("start") or 0)
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        min_ready = int(spec.get("minReadySeconds") or 0)
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        partition = int(((strategy.get("rollingUpdate") or {}).get("partition")) or 0)
        current_name, update_name = m.name_of(current_rev), m.name_of(update_rev)

        slots: list[Obj | None] = [None] * max(0, replicas)
        condemned: list[Obj] = []
        for pod in pods:
            po = sp.parent_and_ordinal(pod)
            assert po is not None
            i = po[1] - start
            if 0 <= i < replicas and slots[i] is None:
                slots[i] = pod
            else:
                condemned.append(pod)
        condemned.sort(key=lambda p: -(sp.parent_and_ordinal(p) or ("", 0))[1])
        created: list[Obj] = []
        # uids deleted in this sync: the cache does not show them terminating yet.
        gone: set[str] = set()

        def healthy(pod: Obj) -> bool:
            if not pod_state.is_running_and_ready(pod):
                return False
            return min_ready <= 0 or pod_state.is_available(pod, min_ready, now)

        def deleting(pod: Obj) -> bool:
            return pod_state.is_deleting(pod) or m.uid_of(pod) in gone

        async def delete(pod: Obj) -> None:
            await self._delete_pod(sts, pod)
            gone.add(m.uid_of(pod))

        try:
            if (sts.get("metadata") or {}).get("deletionTimestamp"):
                raise _Wait
            for i in range(replicas):
                ordinal = start + i
                pod = slots[i]
                if pod is not None and pod_state.is_terminal(pod):
                    # Only the SuccessfulDelete event: upstream dropped RecreatingFailedPod
                    # and RecreatingTerminatedPod in 1.30 (they repeated on every sync).
                    if not pod_state.is_deleting(pod):
                        await delete(pod)
                    # The replacement is made once this one is gone; with Parallel the
                    # other members go on meanwhile (upstream's burst mode ignores the stop).
                    if monotonic:
                        raise _Wait
                    continue
                if pod is None:
                    if rolling and i < partition:
                        template, revision = rev.revision_template(current_rev), current_name
                    else:
                        template, revision = rev.revision_template(update_rev), update_name
                    new = await self._create_pod(sts, template, ordinal, revision)
                    if new is not None:
                        created.append(new)
                    if monotonic:
                        raise _Wait
                    continue
                if pod_state.is_deleting(pod):
                    if monotonic:
                        raise _Wait
                    continue
                if not healthy(pod) and monotonic:
                    raise _Wait
                if not sp.identity_matches(sts, pod):
                    await self._fix_identity(sts, pod, ordinal)
            first_unhealthy = next((p for p in condemned if not healthy(p)), None)
            for pod in condemned:
                if deleting(pod):
                    if monotonic:
                        raise _Wait
                    continue
                if monotonic and not healthy(pod) and pod is not first_unhealthy:
                    raise _Wait
                await delete(pod)
                if monotonic:
                    raise _Wait
            if rolling:
                for i in range(replicas - 1, partition - 1, -1):
                    pod = slots[i]
                    if pod is None:
                        continue
                    if sp.revision_of(pod) != update_name and not deleting(pod):
                        await delete(pod)
                        raise _Wait
                    if not healthy(pod):
                        raise _Wait
        except _Wait:
            pass
        return self._status(sts, pods + created, current_name, update_name, rolling, now, gone)

    def _status(self, sts: Obj, pods: list[Obj], current: str, update: str, rolling: bool,
                now: dt.datetime, gone: set[str]) -> tuple[Obj, float | None]:
        min_ready = int((sts["spec"]).get("minReadySeconds") or 0)
        counts = {"replicas": 0, "readyReplicas": 0, "currentReplicas": 0,
                  "updatedReplicas": 0, "availableReplicas": 0}
        requeue: float | None = None
        for pod in pods:
            counts["replicas"] += 1
            if pod_state.is_running_and_ready(pod):
                counts["readyReplicas"] += 1
                if pod_state.is_available(pod, min_ready, now):
                    counts["availableReplicas"] += 1
                else:
                    left = pod_state.seconds_until_available(pod, min_ready, now)
                    if left is not None:
                        requeue = left if requeue is None else min(requeue, left)
            # A pod deleted just now no longer counts as current (upstream decrements it).
            if not pod_state.is_deleting(pod) and m.uid_of(pod) not in gone:
                if sp.revision_of(pod) == current:
                    counts["currentReplicas"] += 1
                if sp.revision_of(pod) == update:
                    counts["updatedReplicas"] += 1
        if (rolling and counts["updatedReplicas"] == counts["replicas"]
                and counts["readyReplicas"] == counts["replicas"]):
            counts["currentReplicas"] = counts["updatedReplicas"]
            current = update
        status: Obj = {"observedGeneration": (sts.get("metadata") or {}).get("generation", 0),
                       "replicas": counts["replicas"],
                       "availableReplicas": counts["availableReplicas"]}
        for k in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if counts[k]:
                status[k] = counts[k]
        status["currentRevision"] = current
        status["updateRevision"] = update
        return status, requeue

    async def _create_pod(self, sts: Obj, template: Obj, ordinal: int,
                          revision: str) -> Obj | None:
        pod = sp.new_pod(sts, template, ordinal, revision)
        name = m.name_of(pod)
        await self._ensure_claims(sts, name)
        try:
            created = await self.client.create("", "v1", "pods", pod, m.namespace_of(sts))
        except StatusError as err:
            if err.code == 409:
                return None
            self.recorder.event(sts, "Warning", "FailedCreate",
                                  f"create Pod {name} in StatefulSet {m.name_of(sts)} failed "
                                  f"error: {err.message}")
            raise
        self.recorder.event(sts, "Normal", "SuccessfulCreate",
                             f"create Pod {name} in StatefulSet {m.name_of(sts)} successful")
        return created

    async def _ensure_claims(self, sts: Obj, pod: str) -> None:
        """Create the pod's PVCs from volumeClaimTemplates, where the API serves PVCs."""
        templates = sp.claim_templates(sts)
        if not templates:
            return
        if self.claims_served is None:
            try:
                core = await self.client.request("GET", "/api/v1")
                self.claims_served = any(r.get("name") == "persistentvolumeclaims"
                                         for r in core.get("resources") or [])
            except StatusError:
                self.claims_served = False
        if not self.claims_served:
            return
        policy = (sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {})
        for template in templates:
            claim_obj = sp.new_claim(sts, template, pod)
            if policy.get("whenDeleted") == "Delete":
                ref = owner_reference(sts)
                ref["controller"] = False
                claim_obj["metadata"]["ownerReferences"] = [ref]
            try:
                await self.client.create("", "v1", "persistentvolumeclaims", claim_obj,
                                         m.namespace_of(sts))
            except StatusError as err:
                if err.code == 409:
                    continue
                self.recorder.event(sts, "Warning", "FailedCreate",
                                      f"create Claim {m.name_of(claim_obj)} for Pod {pod} in "
                                      f"StatefulSet {m.name_of(sts)} failed error: {err.message}")
                continue
            self.recorder.event(sts, "Normal", "SuccessfulCreate",
                                 f"create Claim {m.name_of(claim_obj)} Pod {pod} in "
                                 f"StatefulSet {m.name_of(sts)} success")

    async def _delete_pod(self, sts: Obj, pod: Obj) -> None:
        name = m.name_of(pod)
        try:
            await self.client.delete("", "v1", "pods", name, m.namespace_of(pod),
                                     preconditions={"uid": m.uid_of(pod)})
        except StatusError as err:
            if err.code == 404:
                return
            self.recorder.event(sts, "Warning", "FailedDelete",
                                  f"delete Pod {name} in StatefulSet {m.name_of(sts)} failed "
                                  f"error: {err.message}")
            raise
        self.recorder.event(sts, "Normal", "SuccessfulDelete",
                             f"delete Pod {name} in StatefulSet {m.name_of(sts)} successful")

    async def _fix_identity(self, sts: Obj, pod: Obj, ordinal: int) -> None:
        patch = {"metadata": {"labels": sp.identity_labels(sts, ordinal)}}
        try:
            await self.client.patch("", "v1", "pods", m.name_of(pod), patch, m.namespace_of(pod))
        except StatusError as err:
            if err.code == 404:
                return
            raise
        self.recorder.event(sts, "Normal", "SuccessfulUpdate",
                             f"update Pod {m.name_of(pod)} in StatefulSet {m.name_of(sts)} "
                             "successful")

    async def run(self) -> None:
        """Watch StatefulSets, pods and revisions until cancelled."""
        await run_controller(self.queue, self.reconcile, self.workers, self._own, self.recorder)

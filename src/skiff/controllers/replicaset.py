"""ReplicaSet and ReplicationController: keep exactly `replicas` pods matching the selector.

One reconcile of `namespace/name`:

1. claim pods: adopt matching orphans, release owned pods that stopped matching;
2. if every creation and deletion sent last time has shown up in the pod cache
   (expectations), create or delete the difference — creations in slow-start
   batches of 1, 2, 4, … so a failing template costs one request rather than
   hundreds; deletions of the pods upstream's ranking picks first;
3. write status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas
   (ready for minReadySeconds), observedGeneration, and a ReplicaFailure condition
   while creating or deleting fails.

The two kinds differ only in their API location and how their selector is written
(a LabelSelector versus a plain map), so one class serves both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.selectors.labels import (
    LabelSelector,
    from_label_selector_dict,
    selector_from_set,
)
from skiff.client.event_recorder import EventRecorder
from skiff.client.http_client import Client
from skiff.client.informer import Informer, object_key
from skiff.client.workqueue import WorkQueue
from skiff.controllers import pod_state
from skiff.controllers.controller_ref import (
    CONTROLLER_INDEX,
    UID_INDEX,
    ControllerRefManager,
    index_by_controller,
    owned_or_orphaned,
    owner_reference,
)
from skiff.controllers.expectations import Expectations
from skiff.controllers.informers import run_controller
from skiff.controllers.pod_ranking import pods_to_delete
from skiff.controllers.status_patch import write_status

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# Upstream's BurstReplicas: at most this many creations or deletions per sync.
BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1
MAX_RETRY_DELAY = 300.0
# A pod whose status changed (it started, became ready) only changes the owner's
# status counts; pods of one owner tend to change together, so their owner is synced
# once this long after the first of them instead of once per pod.
STATUS_BATCH_SECONDS = 0.25


@dataclass(frozen=True)
class ReplicaKind:
    """Where one replicated kind lives and how its selector is read."""

    group: str
    version: str
    plural: str
    kind: str
    component: str
    selector: Callable[[Obj], LabelSelector]

    @property
    def gvr(self) -> tuple[str, str, str]:
        """(group, version, plural) for client calls."""
        return self.group, self.version, self.plural

    @property
    def api_version(self) -> str:
        """apiVersion of its objects."""
        return f"{self.group}/{self.version}" if self.group else self.version


def _rs_selector(obj: Obj) -> LabelSelector:
    sel = (obj.get("spec") or {}).get("selector")
    return from_label_selector_dict(sel if isinstance(sel, dict) else None)


def _rc_selector(obj: Obj) -> LabelSelector:
    sel = (obj.get("spec") or {}).get("selector")
    if not sel:
        # An RC without a selector selects its template's labels (defaulting does this
        # on the server; this guards objects stored before it did).
        sel = (((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
            "labels")
    if not sel:
        return LabelSelector(nothing=True)
    return selector_from_set(sel)


REPLICASET = ReplicaKind("apps", "v1", "replicasets", "ReplicaSet", "replicaset-controller",
                         _rs_selector)
REPLICATION_CONTROLLER = ReplicaKind("", "v1", "replicationcontrollers",
                                     "ReplicationController", "replication-controller",
                                     _rc_selector)


def pod_from_template(owner: Obj, template: Obj) -> Obj:
    """A new pod for `owner` from its pod template (upstream's GetPodFromTemplate)."""
    tmeta = template.get("metadata") or {}
    md: Obj = {"generateName": f"{m.name_of(owner)}-", "namespace": m.namespace_of(owner),
               "ownerReferences": [owner_reference(owner)]}
    for key in ("labels", "annotations", "finalizers"):
        if tmeta.get(key):
            md[key] = m.deep_copy(tmeta[key])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": m.deep_copy(template.get("spec") or {})}


def _namespace_index(obj: Obj) -> list[str]:
    return [m.namespace_of(obj)]


def replica_status(owner: Obj, pods: list[Obj], manage_error: tuple[str, str] | None
                   ) -> Obj:
    """The status an owner with these (claimed, active) pods should report."""
    spec = owner.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    now = m.now()
    fully = ready = available = 0
    for pod in pods:
        labels = m.labels_of(pod)
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully += 1
        if pod_state.is_ready(pod):
            ready += 1
            if pod_state.is_available(pod, min_ready, now):
                available += 1
    old = owner.get("status") or {}
    status: Obj = {"replicas": len(pods)}
    if fully:
        status["fullyLabeledReplicas"] = fully
    if ready:
        status["readyReplicas"] = ready
    if available:
        status["availableReplicas"] = available
    generation = (owner.get("metadata") or {}).get("generation")
    if generation:
        status["observedGeneration"] = generation
    conditions = [dict(c) for c in old.get("conditions") or [] if isinstance(c, dict)]
    failure = next((c for c in conditions if c.get("type") == "ReplicaFailure"), None)
    if manage_error is not None:
        reason, message = manage_error
        # Set once per failure spell, as upstream: later errors (each naming another
        # generated pod) leave the first one and its transition time in place.
        if failure is None:
            conditions.append({"type": "ReplicaFailure", "status": "True",
                               "lastTransitionTime": m.rfc3339(), "reason": reason,
                               "message": message})
    elif failure is not None:
        conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
    if conditions:
        status["conditions"] = conditions
    return status


def _only_status_changed(old: Obj, new: Obj) -> bool:
    """Whether a pod update changed nothing its owner counts by but its status (a
    binding, which only sets spec.nodeName, counts as status here)."""
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if old_spec != new_spec and (
            {k: v for k, v in old_spec.items() if k != "nodeName"}
            != {k: v for k, v in new_spec.items() if k != "nodeName"}):
        return False
    old_md, new_md = m.metadata(old), m.metadata(new)
    return all(old_md.get(k) == new_md.get(k) for k in
               ("labels", "ownerReferences", "deletionTimestamp", "finalizers"))


class ReplicaSetController:
    """Reconciles ReplicaSets (or ReplicationControllers) by `namespace/name`."""

    def __init__(self, client: Client, kind: ReplicaKind = REPLICASET, *, workers: int = 4,
                 pods: Informer | None = None, owners: Informer | None = None) -> None:
        self.client = client
        self.kind = kind
        self.workers = workers
        self._own = []
        if owners is None:
            owners = Informer(client, *kind.gvr)
            self._own.append(owners)
        if pods is None:
            pods = Informer(client, "", "v1", "pods")
            self._own.append(pods)
        self.owners = owners
        self.pods = pods
        index_by_controller(self.owners)
        if not self.owners.has_index("namespace"):
            self.owners.add_index("namespace", _namespace_index)
        index_by_controller(self.pods)
        self.queue = WorkQueue(name=kind.plural)
        self.expectations = Expectations()
        self.recorder = EventRecorder(client, kind.component)
        # uid → (the selector as stored, parsed): parsing validates every key and value.
        self._selectors: dict[str, tuple[Any, LabelSelector]] = {}
        self._failures: dict[str, int] = {}
        self.reconciles = 0
        self.owners.on_add(self._owner_added)
        self.owners.on_update(self._owner_updated)
        self.owners.on_delete(self._owner_deleted)
        self.pods.on_add(self._pod_added)
        self.pods.on_update(self._pod_updated)
        self.pods.on_delete(self._pod_deleted)

    # -- event handlers: map events to owner keys -----------------------------------

    def _owner_added(self, obj: Obj) -> None:
        self.queue.add(object_key(obj))

    def _owner_updated(self, old: Obj, new: Obj) -> None:
        self.queue.add(object_key(new))

    def _owner_deleted(self, obj: Obj) -> None:
        key = object_key(obj)
        self.expectations.forget(key)
        self._failures.pop(key, None)
        self._selectors.pop(m.uid_of(obj), None)
        self.queue.add(key)

    def selector_of(self, owner: Obj) -> LabelSelector:
        """The owner's parsed selector, parsed again only if it changed (a
        ReplicaSet's is immutable, a ReplicationController's is not)."""
        uid = m.uid_of(owner)
        spec = owner.get("spec") or {}
        raw = spec.get("selector")
        if not raw:
            # An RC without a selector selects by its template's labels.
            raw = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
        cached = self._selectors.get(uid)
        if cached is not None and cached[0] == raw:
            return cached[1]
        try:
            sel = self.kind.selector(owner)
        except Exception:  # noqa: BLE001 - a stored bad selector selects nothing
            sel = LabelSelector(nothing=True)
        self._selectors[uid] = (raw, sel)
        return sel

    def _owner_by_ref(self, ref: Obj | None, namespace: str) -> Obj | None:
        if ref is None or ref.get("kind") != self.kind.kind:
            return None
        if ref.get("apiVersion", "").split("/")[0] != (self.kind.group or "v1"):
            return None
        owners = self.owners.by_index(UID_INDEX, ref.get("uid", ""))
        return owners[0] if owners else None

    def _matching_owners(self, pod: Obj) -> list[Obj]:
        labels = m.labels_of(pod)
        if not labels:
            return []
        return [o for o in self.owners.by_index("namespace", m.namespace_of(pod))
                if self.selector_of(o).matches(labels)]

    def _pod_added(self, pod: Obj) -> None:
        if pod_state.is_deleting(pod):
            self._pod_deleted(pod)
            return
        owner = self._owner_by_ref(m.controller_of(pod), m.namespace_of(pod))
        if owner is not None:
            key = object_key(owner)
            self.expectations.creation_observed(key)
            self.queue.add(key)
            return
        if m.controller_of(pod) is None:
            for o in self._matching_owners(pod):
                self.queue.add(object_key(o))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if m.resource_version_of(old) == m.resource_version_of(new):
            return
        if pod_state.is_deleting(new) and not pod_state.is_deleting(old):
            # Graceful deletion: the pod is as good as gone for counting purposes.
            self._pod_deleted(new)
            return
        old_ref, new_ref = m.controller_of(old), m.controller_of(new)
        if old_ref != new_ref and old_ref is not None:
            prev = self._owner_by_ref(old_ref, m.namespace_of(old))
            if prev is not None:
                self.queue.add(object_key(prev))
        owner = self._owner_by_ref(new_ref, m.namespace_of(new))
        if owner is not None:
            key = object_key(owner)
            if old_ref == new_ref and _only_status_changed(old, new):
                self.queue.add_after(key, STATUS_BATCH_SECONDS)
            else:
                self.queue.add(key)
            # A pod that just became ready turns available after minReadySeconds.
            min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and pod_state.is_ready(new) and not pod_state.is_ready(old):
                self.queue.add_after(key, min_ready + 1)
            return
        if new_ref is None and (old_ref is not None or m.labels_of(old) != m.labels_of(new)):
            for o in self._matching_owners(new):
                self.queue.add(object_key(o))

    def _pod_deleted(self, pod: Obj) -> None:
        owner = self._owner_by_ref(m.controller_of(pod), m.namespace_of(pod))
        if owner is None:
            return
        key = object_key(owner)
        self.expectations.deletion_observed(key, object_key(pod))
        self.queue.add(key)

    # -- reconcile ---------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        """Bring one owner's pods to its replica count and report its status."""
        if not (self.owners.has_synced.is_set() and self.pods.has_synced.is_set()):
            return 0.1
        self.reconciles += 1
        owner = self.owners.get(key)
        if owner is None:
            self.expectations.forget(key)
            return None
        needs_sync = self.expectations.satisfied(key)
        selector = self.selector_of(owner)
        candidates = [p for p in owned_or_orphaned(self.pods, owner) if pod_state.is_active(p)]
        manager = ControllerRefManager(self.client, owner, selector, ("", "v1", "pods"),
                                       can_adopt=lambda: self._recheck(owner))
        pods = await manager.claim(candidates)
        manage_error: tuple[str, str] | None = None
        if needs_sync and not m.metadata(owner).get("deletionTimestamp"):
            manage_error = await self._manage(key, owner, pods)
        status = replica_status(owner, pods, manage_error)
        await write_status(self.client, self.kind.gvr, owner, status, decode=False)
        spec = owner.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        replicas = int(spec.get("replicas", 1) or 0)
        if (manage_error is None and min_ready > 0
                and status.get("readyReplicas", 0) == replicas
                and status.get("availableReplicas", 0) != replicas):
            return float(min_ready)
        if manage_error is not None:
            # Retry with backoff, as upstream requeues a failed sync rate-limited.
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
            return min(0.005 * 2 ** failures, MAX_RETRY_DELAY)
        self._failures.pop(key, None)
        return None

    async def _recheck(self, owner: Obj) -> None:
        """Adopt only for the owner the API still has (not a stale cache entry)."""
        fresh = await self.client.get(*self.kind.gvr, m.name_of(owner), m.namespace_of(owner))
        if m.uid_of(fresh) != m.uid_of(owner):
            raise StatusError(409, "Conflict", f"original {self.kind.kind} "
                              f"{m.namespace_of(owner)}/{m.name_of(owner)} is gone: got uid "
                              f"{m.uid_of(fresh)}, wanted {m.uid_of(owner)}")
        if m.metadata(fresh).get("deletionTimestamp"):
            raise StatusError(409, "Conflict", f"{m.name_of(owner)} is being deleted")

    async def _manage(self, key: str, owner: Obj, pods: list[Obj]) -> tuple[str, str] | None:
        replicas = int((owner.get("spec") or {}).get("replicas", 1) or 0)
        diff = len(pods) - replicas
        if diff < 0:
            return await self._create(key, owner, min(-diff, BURST_REPLICAS))
        if diff > 0:
            return await self._delete(key, owner, pods, min(diff, BURST_REPLICAS))
        return None

    async def _create(self, key: str, owner: Obj, count: int) -> tuple[str, str] | None:
        self.expectations.expect_creations(key, count)
        template = (owner.get("spec") or {}).get("template") or {}
        remaining = count
        batch = SLOW_START_INITIAL_BATCH
        error: str | None = None
        while remaining > 0:
            size = min(batch, remaining)
            results = await asyncio.gather(
                *(self._create_one(owner, template) for _ in range(size)))
            failures = [r for r in results if r is not None]
            remaining -= size
            for _ in failures:
                self.expectations.creation_observed(key)
            if failures:
                error = failures[0]
                break
            batch *= 2
        for _ in range(remaining):
            # Never sent: the informer will not report them.
            self.expectations.creation_observed(key)
        return ("FailedCreate", error) if error is not None else None

    async def _create_one(self, owner: Obj, template: Obj) -> str | None:
        pod = pod_from_template(owner, template)
        try:
            created = await self.client.create("", "v1", "pods", pod, m.namespace_of(owner))
        except StatusError as err:
            if err.code == 403 and "being terminated" in err.message:
                # The namespace is going away; creating pods there is pointless, not wrong.
                return None
            self.recorder.event(owner, "Warning", "FailedCreate",
                                f"Error creating: {err.message}")
            return err.message
        self.recorder.event(owner, "Normal", "SuccessfulCreate",
                            f"Created pod: {m.name_of(created)}")
        return None

    async def _delete(self, key: str, owner: Obj, pods: list[Obj], count: int
                      ) -> tuple[str, str] | None:
        related = self._related_pods(owner) if count < len(pods) else []
        victims = pods_to_delete(pods, related, count)
        self.expectations.expect_deletions(key, [object_key(p) for p in victims])
        results = await asyncio.gather(*(self._delete_one(key, owner, p) for p in victims))
        errors = [r for r in results if r is not None]
        return ("FailedDelete", errors[0]) if errors else None

    async def _delete_one(self, key: str, owner: Obj, pod: Obj) -> str | None:
        try:
            await self.client.delete("", "v1", "pods", m.name_of(pod), m.namespace_of(pod),
                                     preconditions={"uid": m.uid_of(pod)})
        except StatusError as err:
            self.expectations.deletion_observed(key, object_key(pod))
            if err.code in (404, 409):
                return None
            self.recorder.event(owner, "Warning", "FailedDelete",
                                f"Error deleting: {err.message}")
            return err.message
        self.recorder.event(owner, "Normal", "SuccessfulDelete",
                            f"Deleted pod: {m.name_of(pod)}")
        return None

    def _related_pods(self, owner: Obj) -> list[Obj]:
        """Pods of every owner that shares this owner's controller (a Deployment's RSs)."""
        parent = m.controller_of(owner)
        siblings = [owner]
        if parent is not None:
            siblings = [o for o in self.owners.by_index("namespace", m.namespace_of(owner))
                        if (m.controller_of(o) or {}).get("uid") == parent.get("uid")]
        out: list[Obj] = []
        for sib in siblings:
            out.extend(self.pods.by_index(CONTROLLER_INDEX, m.uid_of(sib)))
        return out

    # -- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch owners and pods and reconcile until cancelled."""
        await run_controller(self.queue, self.reconcile, self.workers, self._own, self.recorder)

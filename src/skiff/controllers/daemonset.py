"""The DaemonSet controller: one pod on every eligible node.

One reconcile per DaemonSet key, following upstream's daemon controller:

1. Claim pods, record the template as a ControllerRevision; its hash labels the
   pods of the current template (`controller-revision-hash`).
2. Per node: create a pod where one should run and none does, delete failed
   pods (with back-off), surplus pods and pods on nodes that may no longer run
   them; remove pods of nodes that left the cluster. Pods are pinned to their
   node by required node affinity on `metadata.name`, so the scheduler binds them.
3. RollingUpdate: replace old pods within maxUnavailable (deleting first) or
   maxSurge (creating the new pod first, deleting the old once it is available).
4. Write status (desired/current/misscheduled/ready/updated/available counts) so
   `kubectl rollout status ds` can follow.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.selectors.labels import from_label_selector_dict
from skiff.client.event_recorder import EventRecorder
from skiff.client.http_client import Client
from skiff.client.informer import Informer, object_key
from skiff.client.workqueue import WorkQueue
from skiff.controllers import daemonset_nodes as dn
from skiff.controllers import pod_state
from skiff.controllers import revisions as rev
from skiff.controllers.controller_ref import (
    NAMESPACE_INDEX,
    UID_INDEX,
    ControllerRefManager,
    index_by_controller,
    index_by_namespace,
    owned_or_orphaned,
)
from skiff.controllers.expectations import Expectations
from skiff.controllers.informers import run_controller, use_informer
from skiff.controllers.pod_template import pod_from_template, slow_start

log = logging.getLogger(__name__)

Obj = dict[str, Any]

COMPONENT = "daemonset-controller"
CONFLICT_RETRY = 0.05
# Upstream re-kills failed daemon pods with a back-off from 1 s up to 15 min.
FAILED_POD_BACKOFF = 1.0
FAILED_POD_BACKOFF_MAX = 900.0
MAX_CREATES_PER_SYNC = 500


def scaled(value: Any, total: int) -> int:
    """An IntOrString count or percentage of `total`, rounded up."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return math.ceil(int(value[:-1]) * total / 100)
    return 0


class DaemonSetController:
    """Reconciles apps/v1 DaemonSets by `namespace/name`."""

    def __init__(self, client: Client, *, workers: int = 4,
                 clock: Callable[[], dt.datetime] = m.now, pods: Informer | None = None,
                 nodes: Informer | None = None, revisions: Informer | None = None) -> None:
        self.client = client
        self.clock = clock
        self.workers = workers
        self._own: list[Informer] = []
        self.sets = use_informer(client, None, self._own, "apps", "v1", "daemonsets")
        self.pods = use_informer(client, pods, self._own, "", "v1", "pods")
        self.nodes = use_informer(client, nodes, self._own, "", "v1", "nodes")
        self.revisions = use_informer(client, revisions, self._own, "apps", "v1",
                                      "controllerrevisions")
        for inf in (self.pods, self.revisions, self.sets):
            index_by_controller(inf)
        index_by_namespace(self.sets)
        self.queue = WorkQueue(name="daemonset")
        self.recorder = EventRecorder(client, COMPONENT)
        self.expectations = Expectations()
        # (ds uid, observed generation, node) → (failures, monotonic time before which not
        # to kill again). The generation is in the key as upstream's: a new spec starts over.
        self._failed_backoff: dict[tuple[str, int, str], tuple[int, float]] = {}
        self.sets.on_add(lambda s: self.queue.add(object_key(s)))
        self.sets.on_update(lambda _o, s: self.queue.add(object_key(s)))
        self.sets.on_delete(lambda s: self.expectations.forget(object_key(s)))
        self.pods.on_add(self._pod_added)
        self.pods.on_update(self._pod_updated)
        self.pods.on_delete(self._pod_deleted)
        self.nodes.on_add(lambda _n: self._queue_all())
        self.nodes.on_update(self._node_updated)
        self.nodes.on_delete(lambda _n: self._queue_all())
        self.revisions.on_delete(self._revision_deleted)

    # -- event handlers -------------------------------------------------------------------

    def _owner_keys(self, obj: Obj) -> list[str]:
        ref = m.controller_of(obj)
        if ref is None or ref.get("kind") != "DaemonSet":
            return []
        return [object_key(s) for s in self.sets.by_index(UID_INDEX, ref.get("uid", ""))]

    def _queue_matching(self, pod: Obj) -> None:
        labels = m.labels_of(pod)
        for s in self.sets.by_index(NAMESPACE_INDEX, m.namespace_of(pod)):
            try:
                if from_label_selector_dict((s.get("spec") or {}).get("selector")).matches(labels):
                    self.queue.add(object_key(s))
            except StatusError:
                continue

    def _pod_added(self, pod: Obj) -> None:
        keys = self._owner_keys(pod)
        for key in keys:
            self.expectations.creation_observed(key)
            self.queue.add(key)
        if not keys and m.controller_of(pod) is None:
            self._queue_matching(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        for key in self._owner_keys(new):
            if pod_state.is_deleting(new) and not pod_state.is_deleting(old):
                self.expectations.deletion_observed(key)
            self.queue.add(key)
        for key in self._owner_keys(old):
            self.queue.add(key)
        if m.controller_of(new) is None:
            self._queue_matching(new)

    def _pod_deleted(self, pod: Obj) -> None:
        for key in self._owner_keys(pod):
            if not pod_state.is_deleting(pod):
                self.expectations.deletion_observed(key)
            self.queue.add(key)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        # Only what eligibility depends on: labels, taints, the name.
        if (m.labels_of(old) != m.labels_of(new)
                or (old.get("spec") or {}).get("taints") != (new.get("spec") or {}).get("taints")):
            self._queue_all()

    def _queue_all(self) -> None:
        for s in self.sets.list():
            self.queue.add(object_key(s))

    def _revision_deleted(self, revision: Obj) -> None:
        for key in self._owner_keys(revision):
            self.queue.add(key)

    # -- reconcile --------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        """Sync one DaemonSet."""
        informers = (self.sets, self.pods, self.nodes, self.revisions)
        if not all(i.has_synced.is_set() for i in informers):
            return 0.1
        cached = self.sets.get(key)
        if cached is None:
            self.expectations.forget(key)
            return None
        ds = copy.deepcopy(cached)
        try:
            return await self._sync(key, ds)
        except StatusError as err:
            if err.code != 409:
                raise
            return CONFLICT_RETRY

    async def _sync(self, key: str, ds: Obj) -> float | None:
        spec = ds.setdefault("spec", {})
        old_status = copy.deepcopy(ds.get("status") or {})
        selector = from_label_selector_dict(spec.get("selector"))
        manager = ControllerRefManager(self.client, ds, selector, ("", "v1", "pods"))
        pods = await manager.claim(owned_or_orphaned(self.pods, ds))
        owned_revisions = await rev.claim_revisions(self.client, ds, selector, self.revisions)
        collision = int((ds.get("status") or {}).get("collisionCount") or 0)
        try:
            update_rev, all_revs = await rev.ensure_update_revision(
                self.client, ds, owned_revisions, spec.get("template") or {}, collision,
                hash_label=rev.POD_REVISION_LABEL)
        except rev.RevisionCollision:
            await self._write_status(ds, old_status)
            return CONFLICT_RETRY
        hash_ = m.labels_of(update_rev).get(rev.POD_REVISION_LABEL) or rev.template_hash(
            spec.get("template") or {}, collision)
        nodes = {m.name_of(n): n for n in self.nodes.list()}
        by_node = _pods_by_node(pods)
        daemon_spec = dn.daemon_pod_spec(ds)
        requeue: float | None = None
        deleting = bool((ds.get("metadata") or {}).get("deletionTimestamp"))
        if self.expectations.satisfied(key) and not deleting:
            changed, requeue = await self._manage(key, ds, nodes, by_node, daemon_spec, hash_)
            strategy = spec.get("updateStrategy") or {}
            if not changed and strategy.get("type", "RollingUpdate") == "RollingUpdate":
                await self._rolling_update(key, ds, nodes, by_node, daemon_spec, hash_)
        status, available_requeue = self._status(ds, nodes, by_node, daemon_spec, hash_)
        if collision:
            status["collisionCount"] = collision
        ds["status"] = status
        await self._write_status(ds, old_status)
        live_hashes = {m.labels_of(p).get(rev.POD_REVISION_LABEL, "") for p in pods} | {hash_}
        live = {m.name_of(r) for r in all_revs
                if m.labels_of(r).get(rev.POD_REVISION_LABEL) in live_hashes}
        limit = spec.get("revisionHistoryLimit")
        await rev.truncate_history(self.client, all_revs, live,
                                   10 if not isinstance(limit, int) else limit)
        candidates = [r for r in (requeue, available_requeue) if r is not None]
        return min(candidates) if candidates else None

    async def _write_status(self, ds: Obj, old_status: Obj) -> None:
        if (ds.get("status") or {}) != old_status:
            await self.client.update_status("apps", "v1", "daemonsets", ds)

    # -- placing pods -----------------------------------------------------------------------

    async def _manage(self, key: str, ds: Obj, nodes: dict[str, Obj],
                      by_node: dict[str, list[Obj]], daemon_spec: Obj, hash_: str
                      ) -> tuple[bool, float | None]:
        """Create and delete pods so each eligible node runs one; True if anything changed."""
        surge = scaled(((ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {})
                       .get("maxSurge", 0), 1) > 0
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        now = self.clock()
        create_on: list[str] = []
        delete: list[Obj] = []
        force_delete: list[Obj] = []
        requeue: float | None = None
        for name, node in nodes.items():
            run, keep = dn.should_run(daemon_spec, node)
            pods = by_node.get(name, [])
            if run and not pods:
                create_on.append(name)
            elif keep:
                # A pod that may stay (even where no new one would start) is still tended:
                # finished pods go, surplus pods go.
                running = []
                for pod in pods:
                    if pod_state.is_deleting(pod):
                        continue
                    if pod_state.phase(pod) == pod_state.SUCCEEDED:
                        # Upstream (since 1.28) replaces daemon pods that exited, without
                        # back-off: a node shutdown ends them so.
                        self.recorder.event(
                            ds, "Normal", "SucceededDaemonPod",
                            f"Found succeeded daemon pod {m.namespace_of(pod)}/{m.name_of(pod)}"
                            f" on node {name}, will try to delete it")
                        delete.append(pod)
                        continue
                    if pod_state.phase(pod) == pod_state.FAILED:
                        wait = self._failed_pod_wait(ds, name)
                        if wait > 0:
                            requeue = wait if requeue is None else min(requeue, wait)
                            continue
                        self.recorder.event(
                            ds, "Warning", "FailedDaemonPod",
                            f"Found failed daemon pod {m.namespace_of(pod)}/{m.name_of(pod)} on "
                            f"node {name}, will try to kill it")
                        delete.append(pod)
                        continue
                    running.append(pod)
                running.sort(key=_oldest_first)
                if not surge:
                    delete.extend(running[1:])
                elif len(running) > 1:
                    delete.extend(_surplus_with_surge(running, hash_, min_ready, now))
                    # The old pod goes when the new one turns available: look again then.
                    newest = next((p for p in running if _is_updated(p, hash_)), None)
                    left = (pod_state.seconds_until_available(newest, min_ready, now)
                            if newest is not None else None)
                    if left is not None:
                        requeue = left if requeue is None else min(requeue, left)
                elif not running and run:
                    create_on.append(name)
            else:
                delete.extend(p for p in pods if not pod_state.is_deleting(p))
        for name, pods in by_node.items():
            if name not in nodes:
                # The node left the cluster: nothing will ever stop these pods there.
                force_delete.extend(pods)
        if not (create_on or delete or force_delete):
            return False, requeue
        await self._sync_nodes(key, ds, delete, force_delete, create_on, daemon_spec, hash_)
        return True, requeue

    def _failed_pod_wait(self, ds: Obj, node: str) -> float:
        key = (m.uid_of(ds), int((ds.get("status") or {}).get("observedGeneration") or 0), node)
        failures, not_before = self._failed_backoff.get(key, (0, 0.0))
        now = time.monotonic()
        if now < not_before:
            return not_before - now
        if failures:
            last = not_before - min(FAILED_POD_BACKOFF * (2 ** (failures - 1)),
                                    FAILED_POD_BACKOFF_MAX)
            if now - last > FAILED_POD_BACKOFF_MAX:
                # Quiet for longer than the longest back-off: start again from 1 s, as
                # upstream's back-off does, rather than keep a node's old failures forever.
                failures = 0
        if key not in self._failed_backoff:
            # A new generation's entry replaces the node's older ones, which nothing reads.
            for stale in [k for k in self._failed_backoff if k[0] == key[0] and k[2] == node]:
                del self._failed_backoff[stale]
        delay = min(FAILED_POD_BACKOFF * (2 ** failures), FAILED_POD_BACKOFF_MAX)
        self._failed_backoff[key] = (failures + 1, now + delay)
        return 0.0

    async def _sync_nodes(self, key: str, ds: Obj, delete: list[Obj], force_delete: list[Obj],
                          create_on: list[str], daemon_spec: Obj, hash_: str) -> None:
        create_on = create_on[:MAX_CREATES_PER_SYNC]
        self.expectations.expect(key, adds=len(create_on), dels=len(delete) + len(force_delete))
        template = copy.deepcopy(ds["spec"].get("template") or {})
        template["spec"] = daemon_spec
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels[rev.POD_REVISION_LABEL] = hash_
        labels[dn.TEMPLATE_GENERATION_LABEL] = str((ds.get("metadata") or {}).get("generation",
                                                                                   1))

        async def create(i: int) -> None:
            pod = pod_from_template(template, ds)
            dn.pin_to_node(pod["spec"], create_on[i])
            try:
                created = await self.client.create("", "v1", "pods", pod, m.namespace_of(ds))
            except StatusError as err:
                if not (err.code == 403 and "being terminated" in err.message):
                    self.recorder.event(ds, "Warning", "FailedCreate",
                                        f"Error creating: {err.message}")
                raise
            self.recorder.event(ds, "Normal", "SuccessfulCreate",
                                f"Created pod: {m.name_of(created)}")

        async def remove(pod: Obj, grace: int | None) -> None:
            try:
                await self.client.delete("", "v1", "pods", m.name_of(pod), m.namespace_of(pod),
                                         grace_period_seconds=grace,
                                         preconditions={"uid": m.uid_of(pod)})
            except StatusError as err:
                self.expectations.deletion_observed(key)
                if err.code not in (404, 409):
                    self.recorder.event(ds, "Warning", "FailedDelete",
                                          f"Error deleting: {err.message}")
                    raise
                return
            self.recorder.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {m.name_of(pod)}")

        results = await asyncio.gather(
            *(remove(p, None) for p in delete), *(remove(p, 0) for p in force_delete),
            return_exceptions=True)
        created, error = await slow_start(len(create_on), create)
        if created < len(create_on):
            self.expectations.lower(key, adds=len(create_on) - created)
        errors = [r for r in results if isinstance(r, BaseException)]
        if error is not None:
            raise error
        if errors:
            raise errors[0]

    async def _rolling_update(self, key: str, ds: Obj, nodes: dict[str, Obj],
                              by_node: dict[str, list[Obj]], daemon_spec: Obj,
                              hash_: str) -> None:
        """Replace old pods within maxUnavailable (delete first) or maxSurge (create first).

        As upstream, the nodes walked are those that should run a pod plus those that
        still hold one: an old pod left on a node that no longer takes new ones (a
        NoSchedule taint) is retired by the rollout, within the same budgets.
        """
        ru = (ds["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}
        runs = {name for name, n in nodes.items() if dn.should_run(daemon_spec, n)[0]}
        desired = len(runs)
        max_surge = scaled(ru.get("maxSurge", 0), desired)
        max_unavailable = scaled(ru.get("maxUnavailable", 1), desired)
        if max_surge == 0 and max_unavailable == 0:
            max_unavailable = 1
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        now = self.clock()
        # Pods of nodes that left are the manage step's; it force-deletes them.
        walked = [name for name in nodes if name in runs or name in by_node]

        def available(pod: Obj) -> bool:
            return pod_state.is_available(pod, min_ready, now)

        to_delete: list[Obj] = []
        to_create: list[str] = []
        if max_surge == 0:
            unavailable = 0
            replace_now: list[Obj] = []
            candidates: list[Obj] = []
            for name in walked:
                found = _updated_and_old(by_node.get(name, []), hash_)
                if found is None:
                    unavailable += 1
                    continue
                new, old = found
                if old is None or new is not None:
                    # Nothing, or both: the manage step creates or prunes; unavailable till then.
                    if new is None or old is not None or not available(new):
                        unavailable += 1
                elif not available(old):
                    replace_now.append(old)
                else:
                    candidates.append(old)
            budget = max(0, min(max_unavailable - unavailable, len(candidates)))
            to_delete = replace_now + candidates[:budget]
        else:
            surging = 0
            available_count = 0
            create_now: list[str] = []
            candidates_n: list[str] = []
            retiring: list[Obj] = []
            for name in walked:
                found = _updated_and_old(by_node.get(name, []), hash_)
                if found is None:
                    surging += 1
                    continue
                new, old = found
                counted = old if old is not None else new
                if counted is not None and available(counted):
                    available_count += 1
                if old is None:
                    continue
                if new is None:
                    if not available(old):
                        if name in runs:
                            create_now.append(name)
                        else:
                            to_delete.append(old)
                    elif name in runs:
                        candidates_n.append(name)
                    else:
                        retiring.append(old)
                elif not available(new):
                    surging += 1
                else:
                    to_delete.append(old)
            budget = max(0, min(max_surge - surging, len(candidates_n)))
            to_create = create_now + candidates_n[:budget]
            # Surge promises full availability: a node's old pod goes only while enough
            # pods elsewhere are available.
            to_delete.extend(retiring[:max(0, available_count - desired)])
        if to_delete or to_create:
            await self._sync_nodes(key, ds, to_delete, [], to_create, daemon_spec, hash_)

    # -- status -----------------------------------------------------------------------------

    def _status(self, ds: Obj, nodes: dict[str, Obj], by_node: dict[str, list[Obj]],
                daemon_spec: Obj, hash_: str) -> tuple[Obj, float | None]:
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        now = self.clock()
        desired = current = misscheduled = ready = available = updated = 0
        requeue: float | None = None
        for name, node in nodes.items():
            run, _keep = dn.should_run(daemon_spec, node)
            pods = by_node.get(name, [])
            if run:
                desired += 1
                if pods:
                    current += 1
                    pod = sorted(pods, key=_oldest_first)[0]
                    if pod_state.is_ready(pod):
                        ready += 1
                        if pod_state.is_available(pod, min_ready, now):
                            available += 1
                        else:
                            left = pod_state.seconds_until_available(pod, min_ready, now)
                            if left is not None:
                                requeue = left if requeue is None else min(requeue, left)
                    if _is_updated(pod, hash_):
                        updated += 1
            elif pods:
                misscheduled += 1
        status: Obj = {
            "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled,
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "observedGeneration": (ds.get("metadata") or {}).get("generation", 0),
        }
        for k, v in (("updatedNumberScheduled", updated), ("numberAvailable", available),
                     ("numberUnavailable", desired - available)):
            if v:
                status[k] = v
        if (ds.get("status") or {}).get("conditions"):
            status["conditions"] = ds["status"]["conditions"]
        return status, requeue

    async def run(self) -> None:
        """Watch DaemonSets, pods, nodes and revisions until cancelled."""
        await run_controller(self.queue, self.reconcile, self.workers, self._own, self.recorder)


def _pods_by_node(pods: list[Obj]) -> dict[str, list[Obj]]:
    """The daemon pods per target node, leaving out finished pods already being deleted.

    Those have nothing left to do (a finalizer or the kubelet holds them), so as
    upstream they neither count as scheduled nor stop a replacement.
    """
    out: dict[str, list[Obj]] = {}
    for pod in pods:
        if pod_state.is_terminal(pod) and pod_state.is_deleting(pod):
            continue
        node = dn.target_node(pod)
        if node:
            out.setdefault(node, []).append(pod)
    return out


def _oldest_first(pod: Obj) -> tuple[int, str, str]:
    """Scheduled pods first, then by creation, then by name.

    Upstream's podByCreationTimestampAndPhase: which pod of a node is kept and counted.
    """
    return (0 if pod_state.node_name(pod) else 1, pod_state.creation_time(pod), m.name_of(pod))


def _is_updated(pod: Obj, hash_: str) -> bool:
    return bool(hash_) and m.labels_of(pod).get(rev.POD_REVISION_LABEL) == hash_


def _surplus_with_surge(pods: list[Obj], hash_: str, min_ready: int,
                        now: dt.datetime) -> list[Obj]:
    """With surge, keep the oldest new pod and, while it is not available, the oldest old one.

    The old pod goes once it is no longer ready, or once the new one is available
    (ready for minReadySeconds), as upstream: a new pod that is merely ready does
    not yet replace it.
    """
    new = [p for p in pods if _is_updated(p, hash_)]
    old = [p for p in pods if not _is_updated(p, hash_)]
    keep: list[Obj] = []
    if new:
        keep.append(new[0])
        if (old and pod_state.is_ready(old[0])
                and not pod_state.is_available(new[0], min_ready, now)):
            keep.append(old[0])
    elif old:
        keep.append(old[0])
    kept = {m.uid_of(p) for p in keep}
    return [p for p in pods if m.uid_of(p) not in kept]


def _updated_and_old(pods: list[Obj], hash_: str) -> tuple[Obj | None, Obj | None] | None:
    """The node's one updated and one old pod; None if it has several of either."""
    new: Obj | None = None
    old: Obj | None = None
    for pod in pods:
        if pod_state.is_deleting(pod):
            continue
        if _is_updated(pod, hash_):
            if new is not None:
                return None
            new = pod
        else:
            if old is not None:
                return None
            old = pod
    return new, old

"""The disruption controller: keeps every PodDisruptionBudget's status current.

The eviction subresource decides from a budget's status alone (it cannot afford to
count pods on every request), so this controller counts for it:

- `expectedPods`: how many pods the budget covers — the pods themselves for an
  integer minAvailable, otherwise the summed scale of their controllers (a
  percentage of what *should* run, not of what happens to run); pods without a
  controller count for nothing there, and earn an UnmanagedPods warning;
- `desiredHealthy`: minAvailable, or expectedPods minus maxUnavailable;
- `currentHealthy`: ready pods not being deleted and not just evicted;
- `disruptionsAllowed`: currentHealthy − desiredHealthy, never negative, and none
  while no pod is expected;
- `disruptedPods`: pods an eviction has promised to delete; each is dropped once
  it is gone, or after two minutes if the deletion never came;
- the `DisruptionAllowed` condition (SufficientPods / InsufficientPods / SyncFailed).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.selectors.labels import LabelSelector, from_label_selector_dict
from skiff.client.discovery import ResourceMap, discover
from skiff.client.event_recorder import EventRecorder
from skiff.client.http_client import Client
from skiff.client.informer import Informer, object_key
from skiff.client.workqueue import WorkQueue
from skiff.controllers import pod_state
from skiff.controllers.informers import run_controller
from skiff.controllers.status_patch import write_status

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PDBS = ("policy", "v1", "poddisruptionbudgets")
# How long an eviction's promise to delete a pod is believed (upstream's DeletionTimeout).
DELETION_TIMEOUT = 120.0
# Kinds whose scale a budget can read: kind → (group, version, plural).
SCALABLE = {
    ("apps", "ReplicaSet"): ("apps", "v1", "replicasets"),
    ("apps", "Deployment"): ("apps", "v1", "deployments"),
    ("apps", "StatefulSet"): ("apps", "v1", "statefulsets"),
    ("", "ReplicationController"): ("", "v1", "replicationcontrollers"),
}


class SyncFailed(Exception):
    """The budget's numbers cannot be computed (a pod whose controller is not found)."""


def pdb_selector(pdb: Obj) -> LabelSelector:
    """policy/v1: an empty selector selects every pod of the namespace; none selects none."""
    sel = (pdb.get("spec") or {}).get("selector")
    if sel is None:
        return LabelSelector(nothing=True)
    try:
        return from_label_selector_dict(sel)
    except Exception:  # noqa: BLE001 - a stored bad selector selects nothing
        return LabelSelector(nothing=True)


def _scaled(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    pct = int(str(value).rstrip("%") or 0)
    exact = pct * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def _selector_text(pdb: Obj) -> str:
    """The budget's selector as upstream's events print it (Go's LabelSelector.String)."""
    sel = (pdb.get("spec") or {}).get("selector")
    if not isinstance(sel, dict):
        return "nil"
    labels = sel.get("matchLabels") or {}
    pairs = "".join(f"{k}: {labels[k]}," for k in sorted(labels))
    exprs = "".join(
        f"LabelSelectorRequirement{{Key:{e.get('key', '')},Operator:{e.get('operator', '')},"
        f"Values:[{' '.join(str(v) for v in e.get('values') or [])}],}},"
        for e in sel.get("matchExpressions") or [] if isinstance(e, dict))
    return (f"&LabelSelector{{MatchLabels:map[string]string{{{pairs}}},"
            f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}")


def is_percent(value: Any) -> bool:
    """Whether an IntOrString amount is a percentage."""
    return isinstance(value, str)


class DisruptionController:
    """Reconciles PodDisruptionBudgets by `namespace/name`."""

    def __init__(self, client: Client, *, workers: int = 2, pods: Informer | None = None
                 ) -> None:
        self.client = client
        self.workers = workers
        self.pdbs = Informer(client, *PDBS)
        self.pdbs.add_index("namespace", lambda o: [m.namespace_of(o)])
        self._own = [self.pdbs]
        if pods is None:
            pods = Informer(client, "", "v1", "pods")
            self._own.append(pods)
        self.pods = pods
        if not self.pods.has_index("namespace"):
            self.pods.add_index("namespace", lambda o: [m.namespace_of(o)])
        self._resources: ResourceMap | None = None
        self.queue = WorkQueue(name="disruption")
        self.recorder = EventRecorder(client, "controllermanager")
        self.pdbs.on_add(lambda o: self.queue.add(object_key(o)))
        self.pdbs.on_update(lambda _o, n: self.queue.add(object_key(n)))
        self.pods.on_add(self._pod_changed)
        self.pods.on_update(lambda old, new: self._pod_changed(new, old))
        self.pods.on_delete(self._pod_changed)

    def _pod_changed(self, pod: Obj, old: Obj | None = None) -> None:
        labels = [m.labels_of(pod)] + ([m.labels_of(old)] if old is not None else [])
        for pdb in self.pdbs.by_index("namespace", m.namespace_of(pod)):
            sel = pdb_selector(pdb)
            if any(sel.matches(lb) for lb in labels):
                self.queue.add(object_key(pdb))

    async def reconcile(self, key: str) -> float | None:
        """Recount one budget and write its status."""
        if not (self.pdbs.has_synced.is_set() and self.pods.has_synced.is_set()):
            return 0.1
        pdb = self.pdbs.get(key)
        if pdb is None:
            return None
        sel = pdb_selector(pdb)
        pods = [p for p in self.pods.by_index("namespace", m.namespace_of(pdb))
                if sel.matches(m.labels_of(p))]
        if not pods:
            self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
        now = m.now()
        unmanaged: list[str] = []
        try:
            expected, desired = await self._expected(pdb, pods, unmanaged)
        except SyncFailed as err:
            self.recorder.event(pdb, "Warning", "CalculateExpectedPodCountFailed",
                                f"Failed to calculate the number of expected pods: {err}")
            await self._write(pdb, self._failed_status(pdb, str(err)))
            return 30.0
        if unmanaged:
            # As upstream: no sync failure (which would hot-loop), but a warning that a
            # percentage or maxUnavailable cannot account for these pods.
            self.recorder.event(
                pdb, "Warning", "UnmanagedPods",
                f"Pods selected by this PodDisruptionBudget (selector: "
                f"{_selector_text(pdb)}) were found to be unmanaged. As a result, the status "
                "of the PDB cannot be calculated correctly, which may result in undefined "
                'behavior. To account for these pods please set ".spec.minAvailable" field '
                "of the PDB to an integer value.")
        disrupted, recheck = self._disrupted(pdb, pods, now)
        healthy = sum(1 for p in pods if pod_state.is_ready(p) and not
                      pod_state.is_deleting(p) and m.name_of(p) not in disrupted)
        # A budget expecting no pods stays safe until it has counted its first ones.
        allowed = max(0, healthy - desired) if expected > 0 else 0
        status = self._status(pdb, expected, desired, healthy, allowed, disrupted)
        await self._write(pdb, status)
        return recheck

    async def _expected(self, pdb: Obj, pods: list[Obj], unmanaged: list[str]
                        ) -> tuple[int, int]:
        spec = pdb.get("spec") or {}
        min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
        if max_unavailable is not None:
            expected = await self._expected_scale(pdb, pods, unmanaged)
            desired = max(0, expected - _scaled(max_unavailable, expected, True))
        elif min_available is not None and not is_percent(min_available):
            expected, desired = len(pods), int(min_available)
        elif min_available is not None:
            expected = await self._expected_scale(pdb, pods, unmanaged)
            desired = _scaled(min_available, expected, True)
        else:
            # Neither bound: upstream expects nothing, so nothing may be disrupted.
            expected, desired = 0, 0
        return expected, desired

    async def _expected_scale(self, pdb: Obj, pods: list[Obj], unmanaged: list[str]) -> int:
        """The summed spec.replicas of the controllers of `pods` (each counted once);
        the names of pods without a controller go to `unmanaged`."""
        scales: dict[str, int] = {}
        cache: dict[tuple[str, str, str], Obj | None] = {}
        # Pods of one controller need its scale once (a custom one costs a request).
        counted: set[str] = set()
        for pod in pods:
            ref = m.controller_of(pod)
            if ref is None:
                unmanaged.append(m.name_of(pod))
                continue
            if ref.get("uid") in counted:
                continue
            found = await self._scale_root(ref, m.namespace_of(pod), cache)
            if found is None:
                raise SyncFailed(f'found no controllers for pod "{m.name_of(pod)}"')
            uid, replicas = found
            scales[uid] = replicas
            counted.add(str(ref.get("uid")))
        return sum(scales.values())

    async def _scale_root(self, ref: Obj, namespace: str,
                          cache: dict[tuple[str, str, str], Obj | None]
                          ) -> tuple[str, int] | None:
        group = ref.get("apiVersion", "").rpartition("/")[0]
        gvr = SCALABLE.get((group, ref.get("kind", "")))
        if gvr is None:
            return await self._other_scale(ref, namespace)
        key = (gvr[2], namespace, ref.get("name", ""))
        if key not in cache:
            try:
                cache[key] = await self.client.get(*gvr, ref.get("name", ""), namespace)
            except StatusError as err:
                if err.code != 404:
                    raise
                cache[key] = None
        owner = cache[key]
        if owner is None or m.uid_of(owner) != ref.get("uid"):
            return None
        parent = m.controller_of(owner)
        if ref.get("kind") == "ReplicaSet" and parent is not None and parent.get(
                "kind") == "Deployment":
            # A Deployment's ReplicaSets come and go; the Deployment's size is what counts.
            up = await self._scale_root(parent, namespace, cache)
            if up is not None:
                return up
        replicas = (owner.get("spec") or {}).get("replicas")
        return m.uid_of(owner), int(replicas) if isinstance(replicas, int) else 1

    async def _other_scale(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        """Any other kind counts through its scale subresource, as upstream's last
        finder does (custom resources that declare one, for instance)."""
        group, _, version = str(ref.get("apiVersion") or "").rpartition("/")
        kind = str(ref.get("kind") or "")
        found = None
        for attempt in range(2):
            if self._resources is None or attempt:
                self._resources = ResourceMap(await discover(self.client))
            found = self._resources.for_kind(group, version, kind)
            if found is not None:
                break
        if found is None:
            gv = f"{group}/{version}" if group else version
            raise SyncFailed(f'no matches for kind "{kind}" in version "{gv}"')
        try:
            scale = await self.client.request("GET", self.client.path(
                found.group, found.version, found.plural, ref.get("name", ""), namespace,
                "scale"))
        except StatusError as err:
            if err.code == 404:
                return None
            raise SyncFailed(err.message) from err
        if m.uid_of(scale) != ref.get("uid"):
            return None
        replicas = (scale.get("spec") or {}).get("replicas")
        return m.uid_of(scale), int(replicas) if isinstance(replicas, int) else 0

    def _disrupted(self, pdb: Obj, pods: list[Obj], now: dt.datetime
                   ) -> tuple[dict[str, str], float | None]:
        """Evicted pods still awaited, and when the earliest promise expires."""
        listed = (pdb.get("status") or {}).get("disruptedPods") or {}
        by_name = {m.name_of(p): p for p in pods}
        keep: dict[str, str] = {}
        recheck: float | None = None
        for name, stamp in listed.items():
            pod = by_name.get(name)
            if pod is None or pod_state.is_deleting(pod):
                continue
            at = m.parse_time(stamp)
            if at is None:
                continue
            left = (at - now).total_seconds() + DELETION_TIMEOUT
            if left <= 0:
                self.recorder.event(pod, "Warning", "NotDeleted",
                                    f"Pod was expected by PDB {m.namespace_of(pdb)}/"
                                    f"{m.name_of(pdb)} to be deleted but it wasn't")
                continue
            keep[name] = stamp
            recheck = left if recheck is None else min(recheck, left)
        return keep, recheck

    @staticmethod
    def _condition(pdb: Obj, status: str, reason: str, message: str,
                   generation: int | None = None) -> list[Obj]:
        old = [c for c in (pdb.get("status") or {}).get("conditions") or []
               if isinstance(c, dict)]
        current = next((c for c in old if c.get("type") == "DisruptionAllowed"), None)
        if generation is None:
            generation = (pdb.get("metadata") or {}).get("generation") or 0
        cond = {"type": "DisruptionAllowed", "status": status, "reason": reason,
                "message": message, "observedGeneration": generation,
                "lastTransitionTime": m.rfc3339()}
        if current is not None and current.get("status") == status:
            cond["lastTransitionTime"] = current.get("lastTransitionTime") or cond[
                "lastTransitionTime"]
        return [c for c in old if c.get("type") != "DisruptionAllowed"] + [cond]

    def _status(self, pdb: Obj, expected: int, desired: int, healthy: int, allowed: int,
                disrupted: dict[str, str]) -> Obj:
        status: Obj = {
            "observedGeneration": (pdb.get("metadata") or {}).get("generation") or 0,
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
        }
        if disrupted:
            status["disruptedPods"] = disrupted
        if allowed > 0:
            status["conditions"] = self._condition(pdb, "True", "SufficientPods", "")
        else:
            status["conditions"] = self._condition(pdb, "False", "InsufficientPods", "")
        return status

    def _failed_status(self, pdb: Obj, message: str) -> Obj:
        # As upstream's fail-safe: only the allowance and the condition change; the
        # generation stays unobserved, so evictions hear the budget is still processed.
        status = dict(pdb.get("status") or {})
        status["disruptionsAllowed"] = 0
        status.setdefault("observedGeneration", 0)
        status["conditions"] = self._condition(pdb, "False", "SyncFailed", message,
                                               status["observedGeneration"])
        for k in ("currentHealthy", "desiredHealthy", "expectedPods"):
            status.setdefault(k, 0)
        return status

    async def _write(self, pdb: Obj, status: Obj) -> None:
        try:
            await write_status(self.client, PDBS, pdb, status, precondition=True)
        except StatusError as err:
            if err.code != 409:
                raise
            self.queue.add_after(object_key(pdb), 0.05)

    async def run(self) -> None:
        """Watch budgets and pods and reconcile until cancelled."""
        await run_controller(self.queue, self.reconcile, self.workers, self._own, self.recorder)

"""Node lifecycle: notice nodes that stopped heartbeating, taint them, evict their pods.

As upstream's node lifecycle controller: a node whose Lease has not been renewed for
the grace period (40 s by default) gets its conditions set to Unknown ("Kubelet
stopped posting node status."). Nodes are tainted by their conditions
(TaintNodesByCondition): Ready False or Unknown gives `node.kubernetes.io/not-ready`
or `unreachable`, both NoSchedule and NoExecute; a true MemoryPressure, DiskPressure,
PIDPressure or NetworkUnavailable gives the matching NoSchedule taint; a cordoned
node (spec.unschedulable) gets `node.kubernetes.io/unschedulable:NoSchedule`. The
taints go when the condition does. Pods on a node with a NoExecute taint are deleted
once their toleration for it runs out (`tolerationSeconds`, 300 by default through
the DefaultTolerationSeconds admission plugin), so their controllers replace them
elsewhere.

Heartbeats are timed by when this controller *observes* a renewal, not by the
timestamps inside the Lease, so clock differences between machines do not matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.http_client import Client
from skiff.client.informer import Informer

log = logging.getLogger(__name__)

Obj = dict[str, Any]
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
MONITOR_PERIOD = 1.0
CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
# (condition type, status) -> the NoSchedule taint that state puts on the node.
CONDITION_TAINTS = {
    ("Ready", "False"): NOT_READY,
    ("Ready", "Unknown"): UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
}
# The taints this controller owns: it adds and removes them, and leaves all others.
_MANAGED = frozenset({*((k, "NoSchedule") for k in CONDITION_TAINTS.values()),
                      (UNSCHEDULABLE, "NoSchedule"),
                      (NOT_READY, "NoExecute"), (UNREACHABLE, "NoExecute")})


def _toleration_for(pod: Obj, taint: Obj) -> Obj | None:
    for t in (pod.get("spec") or {}).get("tolerations") or []:
        effect = t.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        if not t.get("key"):
            if op == "Exists":
                return t
            continue
        if t.get("key") != taint.get("key"):
            continue
        if op == "Exists" or t.get("value", "") == taint.get("value", ""):
            return t
    return None


def wanted_taints(node: Obj, ready: str | None = None) -> set[tuple[str, str]]:
    """The (key, effect) pairs of the controller's taints `node` should carry.

    `ready` overrides the Ready condition's status (Unknown for a node found silent
    before its status says so).
    """
    wanted: set[tuple[str, str]] = set()
    conditions = (node.get("status") or {}).get("conditions") or []
    if ready is None:
        ready = next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)
    for c in conditions:
        ctype = c.get("type")
        if ctype != "Ready" and (key := CONDITION_TAINTS.get((ctype, c.get("status")))):
            wanted.add((key, "NoSchedule"))
    if ready == "False":
        wanted |= {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}
    elif ready == "Unknown":
        wanted |= {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    if (node.get("spec") or {}).get("unschedulable") is True:
        wanted.add((UNSCHEDULABLE, "NoSchedule"))
    return wanted


def _node_of_pod(pod: Obj) -> list[str]:
    return [(pod.get("spec") or {}).get("nodeName") or ""]


class NodeLifecycleController:
    """Marks unreachable nodes and evicts pods past their tolerations."""

    def __init__(self, client: Client, grace_period: float = 40.0,
                 period: float = MONITOR_PERIOD, *, nodes: Informer | None = None,
                 pods: Informer | None = None) -> None:
        self.client = client
        self.grace = grace_period
        self.period = period
        self.leases = Informer(client, "coordination.k8s.io", "v1", "leases",
                               namespace="kube-node-lease")
        # Informers passed in are shared (started and stopped by their owner).
        self._own = [self.leases]
        if nodes is None:
            nodes = Informer(client, "", "v1", "nodes")
            self._own.append(nodes)
        if pods is None:
            pods = Informer(client, "", "v1", "pods")
            self._own.append(pods)
        self.nodes = nodes
        self.pods = pods
        if not self.pods.has_index("node"):
            self.pods.add_index("node", _node_of_pod)
        self._observed: dict[str, tuple[str, float]] = {}
        self._evicted: set[str] = set()
        # Per node, the uids of pods waiting out a tolerationSeconds: upstream records
        # "Cancelling deletion" when the taint goes before their time is up.
        self._scheduled: dict[str, set[str]] = {}

    def _heartbeat(self, node: str) -> float:
        """When this controller last saw the node renew its lease (monotonic)."""
        lease = self.leases.get(f"kube-node-lease/{node}")
        stamp = ((lease or {}).get("spec") or {}).get("renewTime") or ""
        if not stamp:
            n = self.nodes.get(node)
            stamp = (m.condition(n or {}, "Ready") or {}).get("lastHeartbeatTime") or ""
        seen = self._observed.get(node)
        if seen is None or seen[0] != stamp:
            self._observed[node] = (stamp, time.monotonic())
            return time.monotonic()
        return seen[1]

    async def run(self) -> None:
        """Monitor until cancelled."""
        tasks = [inf.start() for inf in self._own]
        try:
            for inf in (self.nodes, self.leases, self.pods):
                await inf.has_synced.wait()
            while True:
                try:
                    await self.monitor()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("node monitoring failed")
                await asyncio.sleep(self.period)
        finally:
            for inf in self._own:
                inf.stop()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def monitor(self) -> None:
        """One pass over every node."""
        now = time.monotonic()
        for node in self.nodes.list():
            name = node["metadata"]["name"]
            last = self._heartbeat(name)
            silent = now - last > self.grace
            if silent and (m.condition(node, "Ready") or {}).get("status") != "Unknown":
                # The patched node, so the taint patch below is not refused as stale.
                node = await self._mark_unknown(node) or node
            await self._sync_taints(node, wanted_taints(node, "Unknown" if silent else None))
            await self._evict(node)

    async def _mark_unknown(self, node: Obj) -> Obj | None:
        name = node["metadata"]["name"]
        now = m.rfc3339()
        conditions = []
        for c in (node.get("status") or {}).get("conditions") or []:
            c = dict(c)
            if c.get("type") in CONDITIONS and c.get("status") != "Unknown":
                c.update({"status": "Unknown", "reason": "NodeStatusUnknown",
                          "message": "Kubelet stopped posting node status.",
                          "lastTransitionTime": now})
            conditions.append(c)
        log.info("node %s stopped heartbeating; marking it Unknown", name)
        patched: Obj | None = None
        try:
            patched = await self.client.patch("", "v1", "nodes", name,
                                              {"status": {"conditions": conditions}},
                                              subresource="status")
        except StatusError as err:
            log.warning("node %s: %s", name, err.message)
        for pod in self.pods.by_index("node", name):
            await self._pod_not_ready(pod)
        await self._event(node, "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        return patched or None

    async def _pod_not_ready(self, pod: Obj) -> None:
        ready = m.condition(pod, "Ready")
        if ready is None or ready.get("status") == "False":
            return
        conditions = []
        for c in (pod.get("status") or {}).get("conditions") or []:
            c = dict(c)
            if c.get("type") in ("Ready", "ContainersReady") and c.get("status") == "True":
                c.update({"status": "False", "lastTransitionTime": m.rfc3339()})
            conditions.append(c)
        md = pod["metadata"]
        with contextlib.suppress(StatusError):
            await self.client.patch("", "v1", "pods", md["name"],
                                    {"status": {"conditions": conditions}},
                                    md.get("namespace", ""), subresource="status")

    async def _sync_taints(self, node: Obj, wanted: set[tuple[str, str]]) -> None:
        taints = (node.get("spec") or {}).get("taints") or []
        have = {(t.get("key"), t.get("effect")) for t in taints} & _MANAGED
        if have == wanted:
            return
        md = node["metadata"]
        stamp = m.rfc3339()
        kept = [t for t in taints if (t.get("key"), t.get("effect")) not in _MANAGED - wanted]
        added = [{"key": k, "effect": e, "timeAdded": stamp} for k, e in sorted(wanted - have)]
        # Guarded by resourceVersion so a concurrent `kubectl taint` is not undone; a
        # conflict is retried on the next pass with fresh data.
        patch = {"metadata": {"resourceVersion": md.get("resourceVersion")},
                 "spec": {"taints": (kept + added) or None}}
        try:
            await self.client.patch("", "v1", "nodes", md["name"], patch)
        except StatusError as err:
            if err.code != 409:
                log.warning("taints of node %s not updated: %s", md["name"], err.message)

    async def _evict(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        noexec = [t for t in (node.get("spec") or {}).get("taints") or []
                  if t.get("effect") == "NoExecute"]
        waited = self._scheduled.pop(name, None) or set()
        if not noexec and not waited:
            return
        now = m.now()
        waiting: set[str] = set()
        for pod in self.pods.by_index("node", name):
            md = pod["metadata"]
            if md.get("deletionTimestamp") or md["uid"] in self._evicted:
                continue
            due: dt.datetime | None = None
            for taint in noexec:
                tol = _toleration_for(pod, taint)
                if tol is None:
                    due = now
                    break
                seconds = tol.get("tolerationSeconds")
                if seconds is None:
                    continue
                added = m.parse_time(taint.get("timeAdded") or "") or now
                at = added + dt.timedelta(seconds=max(0, int(seconds)))
                due = at if due is None or at < due else due
            if due is None:
                # No timed taint any more (the node recovered): it stays.
                if md["uid"] in waited:
                    await self._cancel(pod)
                continue
            if due > now:
                waiting.add(md["uid"])
                continue
            self._evicted.add(md["uid"])
            await self._pod_event(pod, "TaintManagerEviction",
                                  f"Marking for deletion Pod {md.get('namespace')}/{md['name']}")
            try:
                await self.client.delete("", "v1", "pods", md["name"], md.get("namespace", ""),
                                         preconditions={"uid": md["uid"]})
            except StatusError as err:
                if err.code not in (404, 409):
                    self._evicted.discard(md["uid"])
                    log.warning("evicting %s/%s: %s", md.get("namespace"), md["name"],
                                err.message)
        if waiting:
            self._scheduled[name] = waiting

    async def _cancel(self, pod: Obj) -> None:
        md = pod["metadata"]
        await self._pod_event(pod, "TaintManagerEviction",
                              f"Cancelling deletion of Pod {md.get('namespace')}/{md['name']}")

    async def _event(self, node: Obj, reason: str, message: str) -> None:
        name = node["metadata"]["name"]
        await self._create_event({"kind": "Node", "name": name, "uid": name,
                                  "apiVersion": "v1"}, "default", "Normal", reason, message)

    async def _pod_event(self, pod: Obj, reason: str, message: str) -> None:
        md = pod["metadata"]
        await self._create_event({"kind": "Pod", "name": md["name"], "uid": md["uid"],
                                  "namespace": md.get("namespace", ""), "apiVersion": "v1"},
                                 md.get("namespace", ""), "Normal", reason, message)

    async def _create_event(self, ref: Obj, namespace: str, etype: str, reason: str,
                            message: str) -> None:
        now = m.rfc3339()
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": f"{ref['name']}.{time.time_ns():x}",
                              "namespace": namespace},
                 "involvedObject": ref, "reason": reason, "message": message, "type": etype,
                 "source": {"component": "node-controller"}, "firstTimestamp": now,
                 "lastTimestamp": now, "count": 1, "reportingComponent": "node-controller"}
        with contextlib.suppress(StatusError):
            await self.client.create("", "v1", "events", event, namespace)

"""Node lifecycle: notice nodes that stopped heartbeating, taint them, evict their pods.

As upstream's node lifecycle controller: a node whose Lease has not been renewed for
the grace period (40 s by default) gets its conditions set to Unknown ("Kubelet
stopped posting node status.") and the `node.kubernetes.io/unreachable` NoExecute
and NoSchedule taints. Pods on a node with a NoExecute taint are deleted once their
toleration for it runs out (`tolerationSeconds`, 300 by default through the
DefaultTolerationSeconds admission plugin), so their controllers replace them
elsewhere. When the node's agent comes back and reports Ready, the taints go.

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
MONITOR_PERIOD = 1.0
CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


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
            ready = m.condition(node, "Ready") or {}
            taints = (node.get("spec") or {}).get("taints") or []
            has_unreachable = any(t.get("key") == UNREACHABLE for t in taints)
            if now - last > self.grace:
                if ready.get("status") != "Unknown":
                    await self._mark_unknown(node)
                if not has_unreachable:
                    await self._set_taints(node, add=True)
            elif ready.get("status") == "True" and has_unreachable:
                await self._set_taints(node, add=False)
            await self._evict(node)

    async def _mark_unknown(self, node: Obj) -> None:
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
        try:
            await self.client.patch("", "v1", "nodes", name, {"status": {"conditions":
                                                                         conditions}},
                                    subresource="status")
        except StatusError as err:
            log.warning("node %s: %s", name, err.message)
        for pod in self.pods.by_index("node", name):
            await self._pod_not_ready(pod)
        await self._event(node, "NodeNotReady", f"Node {name} status is now: NodeNotReady")

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

    async def _set_taints(self, node: Obj, add: bool) -> None:
        name = node["metadata"]["name"]
        taints = [t for t in (node.get("spec") or {}).get("taints") or []
                  if t.get("key") != UNREACHABLE]
        if add:
            stamp = m.rfc3339()
            taints += [{"key": UNREACHABLE, "effect": "NoSchedule"},
                       {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": stamp}]
        try:
            await self.client.patch("", "v1", "nodes", name, {"spec": {"taints": taints or None}})
        except StatusError as err:
            log.warning("taints of node %s not updated: %s", name, err.message)

    async def _evict(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        noexec = [t for t in (node.get("spec") or {}).get("taints") or []
                  if t.get("effect") == "NoExecute"]
        if not noexec:
            return
        now = m.now()
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
            if due is None or due > now:
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

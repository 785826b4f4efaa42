"""Node heartbeats for every simulated node from one loop.

A kubelet renews its Lease every 10 s (a quarter of the 40 s lease duration) and
reports node status when it changes or every 5 minutes (nodeStatusReportFrequency).
Thousands of simulated nodes must not mean thousands of timers, so one loop keeps a
heap of due times and, on each tick, renews what is due. Each node's first due time
is spread at random over the interval, so the writes arrive evenly rather than in
bursts every 10 seconds.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.http_client import Client
from skiff.runtime.sim.nodes import ready_conditions

log = logging.getLogger(__name__)

Obj = dict[str, Any]

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
LEASE_RENEW_INTERVAL = 10.0
STATUS_REPORT_INTERVAL = 300.0
# How soon a kubelet writes node status that changed (its status sync period).
STATUS_UPDATE_FREQUENCY = 10.0
TICK = 0.5
CONCURRENCY = 64

LEASE = "lease"
STATUS = "status"


class Heartbeats:
    """Renews leases and refreshes node status for a changing set of nodes."""

    def __init__(self, client: Client, node_of: Callable[[str], Obj | None], *,
                 lease_interval: float = LEASE_RENEW_INTERVAL,
                 status_interval: float = STATUS_REPORT_INTERVAL, tick: float = TICK) -> None:
        self.client = client
        self._node_of = node_of
        self.lease_interval = lease_interval
        self.status_interval = status_interval
        self.tick = tick
        self._heap: list[tuple[float, int, str, str]] = []
        # The one live due time per (node, kind); heap entries that disagree are stale.
        self._due: dict[tuple[str, str], float] = {}
        self._seq = 0
        self._nodes: set[str] = set()
        self._leases: dict[str, Obj] = {}
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self.writes = 0
        # More status fields to report with the conditions (the sim agent's images).
        self.extra_status: Callable[[str], Obj] = lambda _name: {}

    def _push(self, when: float, name: str, kind: str) -> None:
        self._seq += 1
        self._due[(name, kind)] = when
        heapq.heappush(self._heap, (when, self._seq, name, kind))

    def track(self, name: str) -> None:
        """Start heartbeating `name` (its lease at once, its status within one interval)."""
        if name in self._nodes:
            return
        self._nodes.add(name)
        now = asyncio.get_running_loop().time()
        self._push(now, name, LEASE)
        self._push(now + random.uniform(0, self.status_interval), name, STATUS)
        self._wake.set()

    def status_soon(self, name: str, within: float = 0.0) -> None:
        """Report `name`'s status within `within` seconds (its images or conditions changed).

        A kubelet notices such changes at its next status sync, every 10 s
        (nodeStatusUpdateFrequency), so changes within one sync go out in one write.
        """
        if name not in self._nodes:
            return
        due = asyncio.get_running_loop().time() + within
        current = self._due.get((name, STATUS))
        if current is not None and current <= due:
            return
        self._push(due, name, STATUS)
        self._wake.set()

    def forget(self, name: str) -> None:
        """Stop heartbeating `name` (its due entries are dropped when they come up)."""
        self._nodes.discard(name)
        self._leases.pop(name, None)
        self._due.pop((name, LEASE), None)
        self._due.pop((name, STATUS), None)

    @property
    def tracked(self) -> int:
        """How many nodes are heartbeating."""
        return len(self._nodes)

    async def run(self) -> None:
        """Tick until cancelled, doing whatever fell due since the last tick."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            due: dict[tuple[str, str], None] = {}
            while self._heap and self._heap[0][0] <= now:
                when, _, name, kind = heapq.heappop(self._heap)
                if self._due.get((name, kind)) == when:
                    del self._due[(name, kind)]
                    due[(name, kind)] = None
            if due:
                await asyncio.gather(*(self._beat(name, kind) for name, kind in due))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.tick)
            except TimeoutError:
                pass

    async def _beat(self, name: str, kind: str) -> None:
        interval = self.lease_interval if kind == LEASE else self.status_interval
        work: Callable[[str], Awaitable[None]] = self.renew_lease if kind == LEASE \
            else self.report_status
        try:
            async with self._limit:
                await work(name)
        except asyncio.CancelledError:
            raise
        except StatusError as err:
            log.debug("sim heartbeat %s of %s: %s", kind, name, err.message)
            interval = min(interval, 1.0)
        except Exception as err:  # noqa: BLE001 - a heartbeat is retried, never fatal
            log.warning("sim heartbeat %s of %s failed: %s", kind, name, err)
            interval = min(interval, 1.0)
        # status_soon may have queued the next report meanwhile; that one stands.
        if name in self._nodes and (name, kind) not in self._due:
            self._push(asyncio.get_running_loop().time() + interval, name, kind)

    # -- the writes ---------------------------------------------------------------------------

    def _lease_body(self, name: str) -> Obj:
        node = self._node_of(name) or {}
        md: Obj = {"name": name, "namespace": LEASE_NAMESPACE}
        uid = m.uid_of(node)
        if uid:
            md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name,
                                      "uid": uid}]
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": md,
                "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION,
                         "renewTime": m.rfc3339_micro()}}

    async def renew_lease(self, name: str) -> None:
        """Renew (or create) the node's Lease in kube-node-lease."""
        lease = self._leases.get(name)
        self.writes += 1
        if lease is None:
            try:
                lease = await self.client.get("coordination.k8s.io", "v1", "leases", name,
                                              LEASE_NAMESPACE)
            except StatusError as err:
                if err.code != 404:
                    raise
                created = await self.client.create("coordination.k8s.io", "v1", "leases",
                                                   self._lease_body(name), LEASE_NAMESPACE)
                if name in self._nodes:
                    self._leases[name] = created
                return
        body = dict(lease)
        body["spec"] = {**(lease.get("spec") or {}), "holderIdentity": name,
                        "leaseDurationSeconds": LEASE_DURATION, "renewTime": m.rfc3339_micro()}
        try:
            updated = await self.client.update("coordination.k8s.io", "v1", "leases", body,
                                               LEASE_NAMESPACE)
        except StatusError as err:
            # Someone else wrote it (409) or it went (404): read it afresh next time.
            self._leases.pop(name, None)
            if err.code in (404, 409):
                await self.renew_lease(name)
                return
            raise
        if name in self._nodes:
            self._leases[name] = updated

    async def report_status(self, name: str) -> None:
        """Refresh the node's conditions (heartbeat times), keeping transition times."""
        node = self._node_of(name)
        if node is None:
            return
        now = m.rfc3339()
        old = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []
               if isinstance(c, dict)}
        conditions = []
        for cond in ready_conditions(now):
            prev = old.get(cond["type"])
            if prev and prev.get("status") == cond["status"] and prev.get("lastTransitionTime"):
                cond["lastTransitionTime"] = prev["lastTransitionTime"]
            conditions.append(cond)
        self.writes += 1
        status = {"conditions": conditions, **self.extra_status(name)}
        await self.client.patch("", "v1", "nodes", name, {"status": status},
                                subresource="status", decode=False)

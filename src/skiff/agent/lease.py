"""The node's Lease in kube-node-lease: the cheap heartbeat the node lifecycle
controller watches (renewed every 10 s; 40 s without renewal makes the node
unreachable)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.http_client import Client

log = logging.getLogger(__name__)

NAMESPACE = "kube-node-lease"
DURATION = 40
RENEW_INTERVAL = 10.0


class LeaseRenewer:
    """Creates and renews one node's Lease."""

    def __init__(self, client: Client, node: str, node_uid_fn: Any,
                 interval: float = RENEW_INTERVAL, duration: int = DURATION) -> None:
        self.client = client
        self.node = node
        self.node_uid_fn = node_uid_fn
        self.interval = interval
        self.duration = duration

    def _body(self, current: dict[str, Any] | None) -> dict[str, Any]:
        now = m.rfc3339_micro()
        lease = current or {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                            "metadata": {"name": self.node, "namespace": NAMESPACE}}
        uid = self.node_uid_fn()
        if uid and not lease["metadata"].get("ownerReferences"):
            lease["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node",
                                                     "name": self.node, "uid": uid}]
        lease["spec"] = {**(lease.get("spec") or {}), "holderIdentity": self.node,
                         "leaseDurationSeconds": self.duration, "renewTime": now}
        return lease

    async def renew_once(self) -> None:
        """Create or update the Lease with the current time."""
        try:
            current = await self.client.get("coordination.k8s.io", "v1", "leases", self.node,
                                            NAMESPACE)
        except StatusError as err:
            if err.code != 404:
                raise
            await self.client.create("coordination.k8s.io", "v1", "leases", self._body(None),
                                     NAMESPACE)
            return
        await self.client.update("coordination.k8s.io", "v1", "leases", self._body(current),
                                 NAMESPACE)

    async def run(self) -> None:
        """Renew until cancelled; failures are retried sooner."""
        while True:
            delay = self.interval
            try:
                await self.renew_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep heartbeating through errors
                log.warning("lease of %s not renewed: %s", self.node, exc)
                delay = min(self.interval, 2.0)
            await asyncio.sleep(delay)

"""The one agent behind every simulated node.

It is an API client like any kubelet: it watches Nodes labelled as simulated and
the pods bound to any node, keeps the nodes' leases and conditions fresh, moves their
pods to Running and Ready, and finishes the graceful deletion of their pods. Pods are
reconciled by key through a work queue with many workers, so status writes for a
burst of newly bound pods go out concurrently rather than one round trip at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.http_client import Client
from skiff.client.informer import Informer, object_key
from skiff.client.shared_informers import SharedInformers
from skiff.client.workqueue import WorkQueue, run_workers
from skiff.runtime.sim.heartbeat import (
    LEASE_RENEW_INTERVAL,
    STATUS_REPORT_INTERVAL,
    STATUS_UPDATE_FREQUENCY,
    Heartbeats,
)
from skiff.runtime.sim.nodes import SIM_LABEL, internal_ip
from skiff.runtime.sim.pod_status import exit_plan, is_running_here, next_status

log = logging.getLogger(__name__)

Obj = dict[str, Any]

WORKERS = 32
# The pod index by node name (named apart from the controllers' on a shared informer).
_NODE_INDEX = "sim-agent:node"
# Upstream's kubelet reports at most 50 images per node.
MAX_IMAGES = 50
# Simulated images have no size; ImageLocality scoring wants one.
SIM_IMAGE_SIZE = 100 * 1024 * 1024


def _node_name(pod: Obj) -> str:
    return (pod.get("spec") or {}).get("nodeName") or ""


class _Addresses:
    """Pod IPs out of each node's pod CIDR, remembered per pod key."""

    def __init__(self) -> None:
        # Pod key → (node name, its pod CIDR, offset in it, the address as text).
        self._by_pod: dict[str, tuple[str, str, int, str]] = {}
        self._used: dict[str, set[int]] = {}

    def claim(self, node: Obj, key: str, ip: str) -> None:
        """Record an address a pod already reports (after an agent restart)."""
        if not ip:
            return
        name = m.name_of(node)
        cidr = _cidr_text(node)
        held = self._by_pod.get(key)
        if held is not None and held[0] == name and held[1] == cidr and held[3] == ip:
            return  # every status update of the pod reports the address it was given
        net = _parse_cidr(cidr)
        if net is None:
            return
        try:
            offset = int(ipaddress.ip_address(ip)) - int(net.network_address)
        except ValueError:
            return
        if 0 < offset < net.num_addresses - 1:
            self._by_pod[key] = (name, cidr, offset, str(net.network_address + offset))
            self._used.setdefault(name, set()).add(offset)

    def get(self, node: Obj, key: str) -> str:
        """The pod's address, allocating the lowest free one on first use."""
        cidr = _cidr_text(node)
        net = _parse_cidr(cidr)
        if net is None:
            return ""
        name = m.name_of(node)
        held = self._by_pod.get(key)
        if held is None or held[0] != name:
            self.release(key)
            used = self._used.setdefault(name, set())
            offset = next((o for o in range(2, net.num_addresses - 1) if o not in used), 0)
            if not offset:
                # More pods than addresses: share rather than fail (nothing is routed).
                offset = 2 + len(self._by_pod) % max(1, net.num_addresses - 3)
            used.add(offset)
            held = (name, cidr, offset, str(net.network_address + offset))
            self._by_pod[key] = held
        elif held[1] != cidr:
            # The node's CIDR changed: same offset, new network.
            held = (name, cidr, held[2], str(net.network_address + held[2]))
            self._by_pod[key] = held
        return held[3]

    def release(self, key: str) -> None:
        """Free the pod's address."""
        held = self._by_pod.pop(key, None)
        if held is not None:
            self._used.get(held[0], set()).discard(held[2])


def _cidr_text(node: Obj) -> str:
    return (node.get("spec") or {}).get("podCIDR") or ""


@functools.lru_cache(maxsize=4096)
def _parse_cidr(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    # Parsed once per CIDR (every pod status write asks): networks are immutable.
    try:
        return ipaddress.ip_network(cidr)
    except ValueError:
        return None


class SimAgent:
    """Keeps every simulated node and its pods alive until cancelled."""

    def __init__(self, client: Client, *, workers: int = WORKERS,
                 lease_interval: float = LEASE_RENEW_INTERVAL,
                 status_interval: float = STATUS_REPORT_INTERVAL,
                 shared: SharedInformers | None = None) -> None:
        self.client = client
        self.nodes = Informer(client, "", "v1", "nodes", label_selector=f"{SIM_LABEL}=true")
        # Beside the scheduler and the controllers (`skiff components`) the process's
        # shared pod informer, which also holds unbound pods and pods of other nodes:
        # every use below looks the pod's node up among the sim nodes first.
        self._shared_pods = shared is not None
        if shared is not None:
            self.pods = shared.get("", "v1", "pods")
        else:
            self.pods = Informer(client, "", "v1", "pods", field_selector="spec.nodeName!=")
        if not self.pods.has_index(_NODE_INDEX):
            self.pods.add_index(_NODE_INDEX, lambda p: [_node_name(p)])
        self.queue = WorkQueue(name="sim-pods")
        self.workers = workers
        self.heartbeats = Heartbeats(client, self.nodes.get, lease_interval=lease_interval,
                                     status_interval=status_interval)
        self.heartbeats.extra_status = self._images_status
        self._addresses = _Addresses()
        self._images: dict[str, dict[str, None]] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        self.nodes.on_add(self._node_added)
        self.nodes.on_update(self._node_updated)
        self.nodes.on_delete(self._node_deleted)
        self._pod_handlers = (self._pod_changed, self._pod_updated, self._pod_deleted)
        self.pods.on_add(self._pod_changed)
        self.pods.on_update(self._pod_updated)
        self.pods.on_delete(self._pod_deleted)

    # -- events ------------------------------------------------------------------------------

    def _node_added(self, node: Obj) -> None:
        name = m.name_of(node)
        if name not in self._images:
            # What the node reported before an agent restart.
            self._images[name] = {n: None for img in (node.get("status") or {}).get("images")
                                  or [] for n in (img.get("names") or [])[:1]}
        self.heartbeats.track(name)
        for pod in self.pods.by_index(_NODE_INDEX, name):
            self._pod_changed(pod)

    def _node_updated(self, old: Obj, node: Obj) -> None:
        if m.name_of(node) not in self._images:
            self._node_added(node)
            return
        self.heartbeats.track(m.name_of(node))
        # Heartbeats update every node every few seconds; its pods' status depends only
        # on the node's address and pod CIDR, so only a change there revisits them.
        if internal_ip(old) != internal_ip(node) or _cidr_text(old) != _cidr_text(node):
            for pod in self.pods.by_index(_NODE_INDEX, m.name_of(node)):
                self._pod_changed(pod)

    def _node_deleted(self, node: Obj) -> None:
        name = m.name_of(node)
        self.heartbeats.forget(name)
        self._images.pop(name, None)
        # The pod garbage collector's job for pods of a vanished node.
        task = asyncio.get_running_loop().create_task(self._delete_pods_of(name))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    def _pod_changed(self, pod: Obj) -> None:
        node = self.nodes.get(_node_name(pod))
        if node is None:
            return
        key = object_key(pod)
        ip = (pod.get("status") or {}).get("podIP")
        if ip:
            self._addresses.claim(node, key, ip)
        if not self._settled(pod, node, key):
            self.queue.add(key)

    def _settled(self, pod: Obj, node: Obj, key: str) -> bool:
        """Whether a reconcile of the pod would find nothing to do: it is not being
        deleted, and it already ended or runs as reported with no exit planned. (Most
        updates are the echo of the agent's own status write.)"""
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            return False
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return True
        if exit_plan(pod) is not None:
            return False
        spec = pod.get("spec") or {}
        pod_ip = internal_ip(node) if spec.get("hostNetwork") else self._addresses.get(
            node, key)
        return is_running_here(pod, pod_ip)

    def _pod_updated(self, _old: Obj, pod: Obj) -> None:
        self._pod_changed(pod)

    def _pod_deleted(self, pod: Obj) -> None:
        self._addresses.release(object_key(pod))

    # -- pods --------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        """Bring one pod's status in line with what its simulated containers do."""
        if not (self.pods.has_synced.is_set() and self.nodes.has_synced.is_set()):
            return 0.1
        pod = self.pods.get(key)
        if pod is None:
            return None
        node = self.nodes.get(_node_name(pod))
        if node is None:
            return None
        md = pod.get("metadata") or {}
        if md.get("deletionTimestamp"):
            await self._finish_deletion(pod)
            return None
        spec = pod.get("spec") or {}
        host_ip = internal_ip(node)
        pod_ip = host_ip if spec.get("hostNetwork") else self._addresses.get(node, key)
        status, again = next_status(pod, host_ip, pod_ip)
        if status is not None:
            body = {**pod, "status": status}
            try:
                # Nothing reads the stored pod back: its watch event follows.
                await self.client.update_status("", "v1", "pods", body, decode=False)
            except StatusError as err:
                if err.code == 404:
                    return None
                if err.code == 409:
                    # A newer version is on its way through the watch; it requeues the key.
                    return 1.0
                raise
            self._note_images(m.name_of(node), spec)
        return again

    async def _finish_deletion(self, pod: Obj) -> None:
        """Nothing runs, so nothing needs to stop: remove the pod object at once."""
        md = pod.get("metadata") or {}
        try:
            await self.client.delete("", "v1", "pods", md.get("name", ""),
                                     md.get("namespace", ""), grace_period_seconds=0,
                                     preconditions={"uid": md.get("uid")})
        except StatusError as err:
            if err.code not in (404, 409):
                raise
        self._addresses.release(object_key(pod))

    async def _delete_pods_of(self, node: str) -> None:
        for pod in self.pods.by_index(_NODE_INDEX, node):
            md = pod.get("metadata") or {}
            with contextlib.suppress(StatusError):
                await self.client.delete("", "v1", "pods", md.get("name", ""),
                                         md.get("namespace", ""), grace_period_seconds=0,
                                         preconditions={"uid": md.get("uid")})

    # -- images ------------------------------------------------------------------------------

    def _note_images(self, node: str, spec: Obj) -> None:
        images = self._images.setdefault(node, {})
        new = False
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            image = c.get("image")
            if image and image not in images:
                images[image] = None
                new = True
        while len(images) > MAX_IMAGES:
            images.pop(next(iter(images)))
        if new:
            self.heartbeats.status_soon(node, STATUS_UPDATE_FREQUENCY)

    def _images_status(self, node: str) -> Obj:
        images = self._images.get(node)
        if images is None:
            return {}
        return {"images": [{"names": [name], "sizeBytes": SIM_IMAGE_SIZE} for name in images]}

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch and reconcile until cancelled."""
        tasks = [self.nodes.start(),
                 asyncio.create_task(self.heartbeats.run(), name="sim-heartbeats")]
        if not self._shared_pods:
            tasks.append(self.pods.start())
        try:
            await run_workers(self.queue, self.reconcile, self.workers)
        finally:
            self.queue.shutdown()
            self.nodes.stop()
            if self._shared_pods:
                for fn in self._pod_handlers:
                    self.pods.remove_handler(fn)
            else:
                self.pods.stop()
            for t in [*tasks, *self._cleanups]:
                t.cancel()
            for t in [*tasks, *self._cleanups]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

"""Events about pods and the node, recorded as the kubelet records them.

Repeats of the same (object, reason, message) within the hour are folded into one
Event whose `count` and `lastTimestamp` go up, as upstream's event correlator does,
so a crash-looping container leaves one `BackOff` event, not hundreds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.http_client import Client

log = logging.getLogger(__name__)

Obj = dict[str, Any]
AGGREGATE_WINDOW = 3600.0


class EventRecorder:
    """Writes core/v1 Events with this node's kubelet as the source."""

    def __init__(self, client: Client, node: str, component: str = "kubelet") -> None:
        self.client = client
        self.node = node
        self.component = component
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, int, float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def pod(self, pod: Obj, etype: str, reason: str, message: str, field_path: str = "") -> None:
        """Record an event about a pod (in the background; failures are only logged)."""
        md = pod.get("metadata") or {}
        ref = {"kind": "Pod", "namespace": md.get("namespace", ""), "name": md.get("name", ""),
               "uid": md.get("uid", ""), "apiVersion": "v1",
               "resourceVersion": md.get("resourceVersion", "")}
        if field_path:
            ref["fieldPath"] = field_path
        self._spawn(ref, etype, reason, message)

    def node_event(self, node_uid: str, etype: str, reason: str, message: str) -> None:
        """Record an event about this node."""
        ref = {"kind": "Node", "name": self.node, "uid": self.node, "apiVersion": "v1"}
        self._spawn(ref, etype, reason, message, namespace="default")

    def _spawn(self, ref: Obj, etype: str, reason: str, message: str,
               namespace: str = "") -> None:
        task = asyncio.ensure_future(self._record(ref, etype, reason, message,
                                                  namespace or ref.get("namespace", "")))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, ref: Obj, etype: str, reason: str, message: str,
                      namespace: str) -> None:
        key = (ref.get("uid", ""), ref.get("fieldPath", ""), reason, message)
        now = m.rfc3339()
        seen = self._seen.get(key)
        try:
            if seen is not None and time.monotonic() - seen[3] < AGGREGATE_WINDOW:
                name, ns, count, _ = seen
                self._seen[key] = (name, ns, count + 1, time.monotonic())
                await self.client.patch("", "v1", "events", name,
                                        {"count": count + 1, "lastTimestamp": now}, ns)
                return
            md_name = f"{ref.get('name', '')}.{time.time_ns():x}"
            # Claim the key before the create goes out, so a repeat recorded meanwhile
            # counts up this event instead of making a second one.
            self._seen[key] = (md_name, namespace, 1, time.monotonic())
            event = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": md_name, "namespace": namespace},
                "involvedObject": ref, "reason": reason, "message": message, "type": etype,
                "source": {"component": self.component, "host": self.node},
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                "reportingComponent": self.component, "reportingInstance": self.node,
            }
            await self.client.create("", "v1", "events", event, namespace)
            if len(self._seen) > 4096:
                cutoff = time.monotonic() - AGGREGATE_WINDOW
                self._seen = {k: v for k, v in self._seen.items() if v[3] > cutoff}
        except StatusError as err:
            if err.code == 404 or seen is None:
                self._seen.pop(key, None)
            log.debug("event %s %s not recorded: %s", reason, message, err.message)
        except Exception as exc:  # noqa: BLE001 - events are best effort
            log.debug("event %s not recorded: %s", reason, exc)

    async def close(self) -> None:
        """Wait briefly for events still being written."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)

"""Recording core/v1 Events about objects, as client-go's event recorder does.

Controllers explain their decisions through events (`SuccessfulCreate`,
`ScalingReplicaSet`, …). Recording must never slow a reconcile down or fail it, so
`event()` only queues; a background task writes the events. Repeats of the same
event about the same object within the aggregation window bump the existing
event's `count` and `lastTimestamp` instead of creating another, so a controller
that retries does not flood the namespace.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.http_client import Client

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# Upstream's broadcaster queues at most 1000 events and drops the rest.
MAX_PENDING = 1000
# How long an event stays the one repeats are folded into.
AGGREGATE_SECONDS = 600.0
MAX_REMEMBERED = 4096


def involved_object(obj: Obj) -> Obj:
    """The ObjectReference an event about `obj` carries."""
    md = obj.get("metadata") or {}
    ref = {
        "kind": obj.get("kind", ""),
        "namespace": md.get("namespace", ""),
        "name": md.get("name", ""),
        "uid": md.get("uid", ""),
        "apiVersion": obj.get("apiVersion", ""),
        "resourceVersion": md.get("resourceVersion", ""),
    }
    return {k: v for k, v in ref.items() if v}


class EventRecorder:
    """Queues events about objects and writes them through the API in the background."""

    def __init__(self, client: Client, component: str, *, host: str = "") -> None:
        self.client = client
        self.component = component
        self.host = host
        self._pending: collections.deque[Obj] = collections.deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        # (uid, type, reason, message) → (event name, namespace, count, first seen).
        self._recent: collections.OrderedDict[tuple[str, ...], tuple[str, str, int, float]] = (
            collections.OrderedDict())
        self.dropped = 0

    def event(self, obj: Obj, event_type: str, reason: str, message: str) -> None:
        """Record that `reason` happened to `obj` (type `Normal` or `Warning`)."""
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self._pending.append({"ref": involved_object(obj), "type": event_type,
                              "reason": reason, "message": message})
        self._idle.clear()
        self._wake.set()

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued event has been written (for tests and shutdown)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def run(self) -> None:
        """Write queued events until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                item = self._pending.popleft()
                try:
                    await self._write(item)
                except asyncio.CancelledError:
                    raise
                except (StatusError, OSError, TimeoutError) as err:
                    # Events are best effort: a namespace being deleted refuses them.
                    log.debug("event %s dropped: %s", item["reason"], err)
                except Exception:
                    log.exception("writing event %s failed", item["reason"])
            self._idle.set()

    async def _write(self, item: Obj) -> None:
        ref = item["ref"]
        ns = ref.get("namespace") or "default"
        key = (ref.get("uid", ""), ref.get("name", ""), item["type"], item["reason"],
               item["message"])
        now = time.monotonic()
        ts = m.rfc3339()
        seen = self._recent.get(key)
        if seen is not None and now - seen[3] < AGGREGATE_SECONDS:
            name, ev_ns, count, first = seen
            try:
                await self.client.patch("", "v1", "events", name,
                                        {"count": count + 1, "lastTimestamp": ts}, ev_ns,
                                        decode=False)
                self._recent[key] = (name, ev_ns, count + 1, first)
                self._recent.move_to_end(key)
                return
            except StatusError as err:
                if err.code != 404:
                    raise
        name = f"{ref.get('name', 'unknown')}.{time.time_ns():x}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": ref,
            "reason": item["reason"],
            "message": item["message"],
            "source": {"component": self.component, **({"host": self.host} if self.host
                                                        else {})},
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "type": item["type"],
            "reportingComponent": self.component,
            "reportingInstance": self.host or self.component,
        }
        await self.client.create("", "v1", "events", event, ns, decode=False)
        self._recent[key] = (name, ns, 1, now)
        while len(self._recent) > MAX_REMEMBERED:
            self._recent.popitem(last=False)

"""Events about pods and the node, recorded as the kubelet records them.

Repeats of the same (object, reason, message) within the hour are folded into one
Event whose `count` and `lastTimestamp` go up, as upstream's event correlator does,
so a crash-looping container leaves one `BackOff` event, not hundreds.

Recording only queues: one background task writes the events, one at a time and in
the order they happened, as the kubelet's event broadcaster does. Events are what a
reader looks at afterwards; the pod's status is what controllers act on, so a pod
start's three events (Pulled, Created, Started) must not hold up its status write
at the API server, nor open a connection each when the server is busy: while a
status write is under way (`status_first`), no new event write starts, unless the
event has waited a second already.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.http_client import Client

log = logging.getLogger(__name__)

Obj = dict[str, Any]
AGGREGATE_WINDOW = 3600.0
# Upstream's broadcaster keeps at most 1000 events waiting and drops the rest.
MAX_PENDING = 1000
# How long after it happened an event waits at most for status writes to finish.
MAX_HOLD = 1.0


class EventRecorder:
    """Writes core/v1 Events with this node's kubelet as the source."""

    def __init__(self, client: Client, node: str, component: str = "kubelet") -> None:
        self.client = client
        self.node = node
        self.component = component
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, int, float]] = {}
        # (involved object, type, reason, message, namespace, timestamp, when queued)
        self._pending: collections.deque[tuple[Obj, str, str, str, str, str, float]] = (
            collections.deque())
        self._busy = False
        # Set while no status write is under way (see `status_first`).
        self._open: asyncio.Event | None = None
        self._holds = 0
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self.dropped = 0

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
        if self._closed:
            return
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("%d events dropped: the API server is not keeping up",
                            self.dropped)
            return
        self._pending.append((ref, etype, reason, message,
                              namespace or ref.get("namespace", ""), m.rfc3339(),
                              time.monotonic()))
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_loop())

    async def _write_loop(self) -> None:
        """Write queued events one at a time, oldest first."""
        assert self._wake is not None
        while True:
            while self._pending:
                if self._open is not None and not self._open.is_set():
                    # Status writes first, but an event waits MAX_HOLD at most.
                    wait = self._pending[0][-1] + MAX_HOLD - time.monotonic()
                    if wait > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._open.wait(), wait)
                self._busy = True
                try:
                    await self._record(*self._pending.popleft()[:-1])
                finally:
                    self._busy = False
            self._wake.clear()
            await self._wake.wait()

    async def _record(self, ref: Obj, etype: str, reason: str, message: str,
                      namespace: str, now: str) -> None:
        key = (ref.get("uid", ""), ref.get("fieldPath", ""), reason, message)
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

    @contextlib.asynccontextmanager
    async def status_first(self) -> AsyncIterator[None]:
        """Start no event write while the body (a status write) runs."""
        if self._open is None:
            self._open = asyncio.Event()
        self._holds += 1
        self._open.clear()
        try:
            yield
        finally:
            self._holds -= 1
            if self._holds == 0:
                self._open.set()

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait (at most `timeout` seconds) until the queued events are written."""
        deadline = time.monotonic() + timeout
        while (self._pending or self._busy) and self._writer is not None and \
                not self._writer.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Write what is queued (for at most two seconds), then stop."""
        await self.flush(2.0)
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer

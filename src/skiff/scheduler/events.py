"""Scheduler events (Scheduled, FailedScheduling, Preempted), written in the background.

Recording never delays scheduling: events go into a bounded buffer that a writer
drains; when the buffer is full, events are dropped (upstream's broadcaster drops
past 1,000 queued events too). As with kube-scheduler, whose events share its API
client's rate limit (50 requests/s, bursts of 100, by default), the writer sends at most
`qps` events a second after an initial burst: during a burst of thousands of pods the
API server's time goes to bindings, and the Scheduled events of the pods beyond the
buffer are dropped. A repeat of the same event for the same pod bumps the first one's
count and lastTimestamp, which is what `kubectl describe` prints as "(x3 over 2m)".
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
from skiff.client.pipeline import RequestPipeline

log = logging.getLogger(__name__)

Obj = dict[str, Any]

COMPONENT = "default-scheduler"
MAX_PENDING = 1000
WRITERS = 2
REMEMBER = 4096
EVENT_QPS = 50.0
EVENT_BURST = 100


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up (rate <= 0: no limit)."""

    def __init__(self, rate: float, burst: int, clock: Any = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self.clock = clock
        self.tokens = float(self.burst)
        self.stamp = clock()

    def delay(self) -> float:
        """Take a token; the seconds to wait before using it (0: now)."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class EventRecorder:
    """Queues events about pods and writes them through the API."""

    def __init__(self, client: Client, component: str = COMPONENT, *,
                 pipeline: RequestPipeline | None = None, qps: float = EVENT_QPS,
                 burst: int = EVENT_BURST) -> None:
        self.client = client
        self.component = component
        self.pipeline = pipeline
        self.bucket = TokenBucket(qps, burst)
        self._pending: collections.deque[Obj] = collections.deque()
        self._wake = asyncio.Event()
        self._recent: collections.OrderedDict[tuple[str, ...], tuple[str, str, int]] = \
            collections.OrderedDict()
        self.dropped = 0
        self.written = 0

    def record(self, pod: Obj, event_type: str, reason: str, message: str,
               action: str = "") -> None:
        """Queue an event about `pod`."""
        if len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        md = pod.get("metadata") or {}
        ref = {"kind": "Pod", "namespace": md.get("namespace", ""), "name": md.get("name", ""),
               "uid": md.get("uid", ""), "apiVersion": "v1",
               "resourceVersion": md.get("resourceVersion", "")}
        self._pending.append({"ref": ref, "type": event_type, "reason": reason,
                              "message": message, "action": action or reason})
        self._wake.set()

    async def run(self) -> None:
        """Write queued events until cancelled."""
        await asyncio.gather(*(self._writer() for _ in range(WRITERS)))

    async def _writer(self) -> None:
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            wait = self.bucket.delay()
            if wait > 0:
                await asyncio.sleep(wait)
            if not self._pending:
                continue
            item = self._pending.popleft()
            try:
                await self._write(item)
                self.written += 1
            except asyncio.CancelledError:
                raise
            except (StatusError, OSError, TimeoutError) as err:
                log.debug("event %s not written: %s", item["reason"], err)
            except Exception:  # noqa: BLE001 - events are best effort
                log.exception("writing event %s failed", item["reason"])

    async def _write(self, item: Obj) -> None:
        ref = item["ref"]
        ns = ref["namespace"] or "default"
        key = (ref["uid"], item["type"], item["reason"], item["message"])
        ts = m.rfc3339()
        seen = self._recent.get(key)
        if seen is not None:
            name, ev_ns, count = seen
            with contextlib.suppress(StatusError):
                await self._send("PATCH", self.client.path("", "v1", "events", name, ev_ns),
                                 {"count": count + 1, "lastTimestamp": ts},
                                 "application/merge-patch+json")
                self._recent[key] = (name, ev_ns, count + 1)
                self._recent.move_to_end(key)
                return
        name = f"{ref['name']}.{time.time_ns():x}"
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": ref, "reason": item["reason"], "message": item["message"],
            "type": item["type"], "count": 1, "firstTimestamp": ts, "lastTimestamp": ts,
            "eventTime": None, "source": {"component": self.component},
            "reportingComponent": self.component, "reportingInstance": self.component,
            "action": item["action"],
        }
        await self._send("POST", self.client.path("", "v1", "events", namespace=ns), event)
        self._recent[key] = (name, ns, 1)
        if len(self._recent) > REMEMBER:
            self._recent.popitem(last=False)

    async def _send(self, method: str, path: str, body: Obj,
                    content_type: str = "application/json") -> None:
        if self.pipeline is not None:
            await self.pipeline.request(method, path, body, content_type)
        else:
            await self.client.request(method, path, body=body, content_type=content_type)

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until the buffer is empty (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

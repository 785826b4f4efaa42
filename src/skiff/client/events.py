"""Recording core/v1 Events about objects, as controllers explain their decisions.

Like upstream's event recorder, writing is fire-and-forget: a reconcile never waits
for (or fails because of) an event. Repeats of the same event about the same object
are folded into one Event whose `count` and `lastTimestamp` move, so a controller
that says the same thing on every sync does not flood the namespace.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.http_client import Client

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NORMAL = "Normal"
WARNING = "Warning"

# How many distinct (object, reason, message) events are remembered for folding.
_FOLD_CACHE = 4096


def object_reference(obj: Obj) -> Obj:
    """An ObjectReference to `obj` (what Events and CronJob.status.active hold)."""
    md = obj.get("metadata") or {}
    ref: Obj = {"kind": obj.get("kind", ""), "name": md.get("name", "")}
    if md.get("namespace"):
        ref["namespace"] = md["namespace"]
    if md.get("uid"):
        ref["uid"] = md["uid"]
    if obj.get("apiVersion"):
        ref["apiVersion"] = obj["apiVersion"]
    if md.get("resourceVersion"):
        ref["resourceVersion"] = md["resourceVersion"]
    return ref


class EventRecorder:
    """Writes Events on behalf of one component (e.g. `job-controller`)."""

    def __init__(self, client: Client, component: str) -> None:
        self.client = client
        self.component = component
        self._tasks: set[asyncio.Task[None]] = set()
        # (uid, kind, name, type, reason, message) → (event name, namespace, count)
        self._seen: collections.OrderedDict[tuple[str, ...], tuple[str, str, int]] = (
            collections.OrderedDict())

    def event(self, obj: Obj, etype: str, reason: str, message: str) -> None:
        """Record an event about `obj` in the background."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - only called from controllers
            return
        task = loop.create_task(self._write(obj, etype, reason, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def normal(self, obj: Obj, reason: str, message: str) -> None:
        """Record a Normal event."""
        self.event(obj, NORMAL, reason, message)

    def warning(self, obj: Obj, reason: str, message: str) -> None:
        """Record a Warning event."""
        self.event(obj, WARNING, reason, message)

    async def flush(self) -> None:
        """Wait for the events written so far (tests use it to read them back)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _write(self, obj: Obj, etype: str, reason: str, message: str) -> None:
        ref = object_reference(obj)
        namespace = ref.get("namespace") or "default"
        key = (ref.get("uid", ""), ref["kind"], ref["name"], etype, reason, message)
        now = m.now()
        try:
            seen = self._seen.get(key)
            if seen is not None:
                name, ns, count = seen
                patch = {"count": count + 1, "lastTimestamp": m.rfc3339(now)}
                try:
                    await self.client.patch("", "v1", "events", name, patch, ns)
                    self._remember(key, (name, ns, count + 1))
                    return
                except StatusError as err:
                    if err.code != 404:
                        raise
            name = f"{ref['name']}.{int(now.timestamp() * 1e9):x}"
            body = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": ref,
                "reason": reason,
                "message": message,
                "type": etype,
                "source": {"component": self.component},
                "firstTimestamp": m.rfc3339(now),
                "lastTimestamp": m.rfc3339(now),
                "count": 1,
                "reportingComponent": self.component,
                "reportingInstance": "",
            }
            await self.client.create("", "v1", "events", body, namespace)
            self._remember(key, (name, namespace, 1))
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - an event is never worth failing for
            log.debug("%s: could not record event %s on %s: %s", self.component, reason,
                      ref.get("name"), err)

    def _remember(self, key: tuple[str, ...], value: tuple[str, str, int]) -> None:
        self._seen[key] = value
        self._seen.move_to_end(key)
        while len(self._seen) > _FOLD_CACHE:
            self._seen.popitem(last=False)

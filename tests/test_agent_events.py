"""The agent's event recorder (skiff.agent.events): queued, in order, one at a time."""

from __future__ import annotations

import asyncio
from typing import Any

from skiff.agent import events as ev
from skiff.agent.events import EventRecorder

POD = {"metadata": {"name": "web", "namespace": "ns", "uid": "u1", "resourceVersion": "7"}}


class FakeClient:
    """Records event writes; each takes `delay` seconds, like a busy server."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[tuple[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def _call(self, what: str, body: Any) -> dict[str, Any]:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            self.calls.append((what, body))
            return body
        finally:
            self.in_flight -= 1

    async def create(self, group: str, version: str, plural: str, obj: Any,
                     namespace: str = "") -> dict[str, Any]:
        return await self._call("create", obj)

    async def patch(self, group: str, version: str, plural: str, name: str, patch: Any,
                    namespace: str = "") -> dict[str, Any]:
        return await self._call("patch", {"name": name, **patch})


async def test_events_are_written_in_order_one_at_a_time() -> None:
    client = FakeClient(delay=0.01)
    rec = EventRecorder(client, "node-1")  # type: ignore[arg-type]
    for reason in ("Pulled", "Created", "Started"):
        rec.pod(POD, "Normal", reason, f"{reason} container c", "spec.containers{c}")
    # Recording returns at once: nothing was written yet.
    assert client.calls == []
    await rec.flush()
    assert [body["reason"] for _, body in client.calls] == ["Pulled", "Created", "Started"]
    assert client.max_in_flight == 1
    first = client.calls[0][1]
    assert first["involvedObject"]["fieldPath"] == "spec.containers{c}"
    assert first["source"] == {"component": "kubelet", "host": "node-1"}
    assert first["metadata"]["namespace"] == "ns" and first["count"] == 1
    await rec.close()


async def test_events_wait_for_a_status_write_but_not_forever(monkeypatch: Any) -> None:
    client = FakeClient()
    rec = EventRecorder(client, "node-1")  # type: ignore[arg-type]
    async with rec.status_first():
        rec.pod(POD, "Normal", "Started", "Started container c")
        await asyncio.sleep(0.05)
        assert client.calls == []
    await rec.flush()
    assert len(client.calls) == 1
    # Status writes that never end hold an event back MAX_HOLD after it happened, at
    # most: events keep flowing behind them.
    monkeypatch.setattr(ev, "MAX_HOLD", 0.1)
    async with rec.status_first():
        for i in range(5):
            rec.pod(POD, "Normal", "Killing", f"Stopping container c{i}")
        await asyncio.sleep(0.3)
        assert len(client.calls) == 6
    await rec.close()


async def test_repeats_count_up_one_event() -> None:
    client = FakeClient()
    rec = EventRecorder(client, "node-1")  # type: ignore[arg-type]
    for _ in range(3):
        rec.pod(POD, "Warning", "BackOff", "Back-off restarting failed container c")
    await rec.flush()
    assert [what for what, _ in client.calls] == ["create", "patch", "patch"]
    name = client.calls[0][1]["metadata"]["name"]
    assert client.calls[-1][1] == {"name": name, "count": 3,
                                   "lastTimestamp": client.calls[-1][1]["lastTimestamp"]}
    await rec.close()


async def test_a_full_queue_drops_instead_of_growing(monkeypatch: Any) -> None:
    monkeypatch.setattr(ev, "MAX_PENDING", 5)
    client = FakeClient(delay=0.01)
    rec = EventRecorder(client, "node-1")  # type: ignore[arg-type]
    for i in range(20):
        rec.pod(POD, "Normal", "Started", f"message {i}")
    assert rec.dropped == 15
    await rec.close()
    # close() wrote what was queued, then stopped taking events.
    assert len(client.calls) == 5
    rec.pod(POD, "Normal", "Started", "after close")
    await asyncio.sleep(0.05)
    assert len(client.calls) == 5

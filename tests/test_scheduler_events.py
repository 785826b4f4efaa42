"""The scheduler's event recorder: its rate limit, its bounded backlog, and repeats
folded into one event's count (a fake pipeline stands in for the API server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from skiff.client import Client
from skiff.scheduler.events import MAX_PENDING, EventRecorder, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, 3, clock=clock)
    assert [bucket.delay() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.delay() == pytest.approx(0.5)
    assert bucket.delay() == pytest.approx(1.0)
    clock.now += 10  # long idle: the bucket refills to its burst, no further
    assert [bucket.delay() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.delay() == pytest.approx(0.5)


def test_token_bucket_without_a_rate_never_waits() -> None:
    bucket = TokenBucket(0, 1)
    assert all(bucket.delay() == 0.0 for _ in range(1000))


class FakePipeline:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any, str]] = []

    async def request(self, method: str, path: str, body: Any = None,
                      content_type: str = "application/json") -> Any:
        self.requests.append((method, path, body, content_type))
        return body


def _pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                         "resourceVersion": "7"}}


async def _drain(recorder: EventRecorder) -> None:
    task = asyncio.ensure_future(recorder.run())
    await recorder.flush(2.0)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_events_are_created_and_repeats_bump_the_count() -> None:
    pipe = FakePipeline()
    recorder = EventRecorder(Client("https://127.0.0.1:1"), pipeline=pipe,  # type: ignore[arg-type]
                             qps=0)
    recorder.record(_pod("a"), "Normal", "Scheduled", "Successfully assigned ns/a to n1")
    await _drain(recorder)
    recorder.record(_pod("a"), "Normal", "Scheduled", "Successfully assigned ns/a to n1")
    await _drain(recorder)
    (m1, p1, event, _), (m2, p2, patch, ctype) = pipe.requests
    assert (m1, p1) == ("POST", "/api/v1/namespaces/ns/events")
    assert event["involvedObject"] == {"kind": "Pod", "namespace": "ns", "name": "a",
                                       "uid": "uid-a", "apiVersion": "v1",
                                       "resourceVersion": "7"}
    assert (event["reason"], event["type"], event["count"]) == ("Scheduled", "Normal", 1)
    assert event["source"] == {"component": "default-scheduler"}
    assert m2 == "PATCH" and p2 == f"/api/v1/namespaces/ns/events/{event['metadata']['name']}"
    assert patch["count"] == 2 and ctype == "application/merge-patch+json"


async def test_a_full_backlog_drops_events() -> None:
    pipe = FakePipeline()
    recorder = EventRecorder(Client("https://127.0.0.1:1"), pipeline=pipe,  # type: ignore[arg-type]
                             qps=0)
    for i in range(MAX_PENDING + 5):
        recorder.record(_pod(f"p{i}"), "Normal", "Scheduled", f"Successfully assigned ns/p{i}")
    assert recorder.dropped == 5
    await _drain(recorder)
    assert len(pipe.requests) == MAX_PENDING


async def test_writes_wait_for_the_rate_limit() -> None:
    pipe = FakePipeline()
    recorder = EventRecorder(Client("https://127.0.0.1:1"), pipeline=pipe,  # type: ignore[arg-type]
                             qps=1, burst=2)
    for i in range(4):
        recorder.record(_pod(f"p{i}"), "Normal", "Scheduled", f"Successfully assigned ns/p{i}")
    task = asyncio.ensure_future(recorder.run())
    await asyncio.sleep(0.2)
    # The burst went out at once; the rest waits for tokens (one a second).
    assert len(pipe.requests) == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

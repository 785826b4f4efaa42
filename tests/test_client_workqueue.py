"""WorkQueue: de-duplication, one worker per key, backoff and shutdown."""

from __future__ import annotations

import asyncio

import pytest

from skiff.client.workqueue import WorkQueue, run_workers


async def test_duplicate_adds_collapse() -> None:
    q = WorkQueue()
    q.add("a")
    q.add("b")
    q.add("a")
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"


async def test_key_added_while_processing_is_handed_out_again_after_done() -> None:
    q = WorkQueue()
    q.add("a")
    key = await q.get()
    q.add("a")
    assert len(q) == 0, "must not be handed to a second worker while in flight"
    q.done(key)
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0


async def test_get_waits_for_add() -> None:
    q = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 1) == "x"


async def test_shutdown_releases_waiters_and_ignores_adds() -> None:
    q = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    assert await asyncio.wait_for(getter, 1) is None
    q.add("late")
    assert len(q) == 0


async def test_add_after_delays_and_earliest_deadline_wins() -> None:
    q = WorkQueue()
    q.add_after("k", 10.0)
    q.add_after("k", 0.02)
    assert len(q) == 0
    await asyncio.sleep(0.06)
    assert len(q) == 1
    q.shutdown()


def test_backoff_doubles_from_5ms_and_caps() -> None:
    q = WorkQueue()
    delays = []
    for _ in range(4):
        delays.append(q.backoff("k"))
        q._failures["k"] = q._failures.get("k", 0) + 1
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04])
    q._failures["k"] = 40
    assert q.backoff("k") == 1000.0
    q.forget("k")
    assert q.backoff("k") == 0.005
    assert q.num_requeues("k") == 0


async def test_run_workers_retries_failures_then_forgets() -> None:
    q = WorkQueue(base_delay=0.001)
    attempts: list[str] = []

    async def reconcile(key: str) -> None:
        attempts.append(key)
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        q.shutdown()

    q.add("k")
    await asyncio.wait_for(run_workers(q, reconcile, workers=2), 2)
    assert attempts == ["k", "k", "k"]
    assert q.num_requeues("k") == 0


async def test_one_worker_per_key_even_with_many_workers() -> None:
    q = WorkQueue()
    running: set[str] = set()
    overlaps = 0
    count = 0

    async def reconcile(key: str) -> None:
        nonlocal overlaps, count
        if key in running:
            overlaps += 1
        running.add(key)
        await asyncio.sleep(0.005)
        q.add(key)  # re-added while in flight
        running.discard(key)
        count += 1
        if count >= 6:
            q.shutdown()

    q.add("same")
    await asyncio.wait_for(run_workers(q, reconcile, workers=4), 2)
    assert overlaps == 0
    assert count >= 6


async def test_returned_delay_requeues_key() -> None:
    q = WorkQueue()
    seen = 0

    async def reconcile(key: str) -> float | None:
        nonlocal seen
        seen += 1
        if seen == 2:
            q.shutdown()
            return None
        return 0.01

    q.add("k")
    await asyncio.wait_for(run_workers(q, reconcile), 2)
    assert seen == 2

"""A work queue of keys with de-duplication and per-key exponential backoff.

Controllers queue *keys*, not events: many changes to one object collapse into one
reconcile, and a key is never handed to two workers at once. A key added while it is
being processed is remembered and handed out again once the worker calls `done`, so no
change is missed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from skiff.client.metrics import METRICS

log = logging.getLogger(__name__)

# Upstream's default controller rate limiter starts at 5 ms and caps at 1000 s.
BASE_DELAY = 0.005
MAX_DELAY = 1000.0


class WorkQueue:
    """Keys waiting for a worker, each queued at most once."""

    def __init__(
        self, *, base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY, name: str = ""
    ) -> None:
        self.name = name
        self._base = base_delay
        self._max = max_delay
        self._queue: collections.deque[str] = collections.deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._shutting_down = False
        METRICS.track_queue(self)

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        """Whether `shutdown` was called; workers stop once they see it."""
        return self._shutting_down

    def add(self, key: str) -> None:
        """Queue `key` unless it is already waiting."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        METRICS.queue_adds[self.name] += 1
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: str, delay: float) -> None:
        """Queue `key` once `delay` seconds have passed (an earlier deadline wins)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        existing = self._timers.get(key)
        if existing is not None:
            if existing.when() <= due:
                return
            existing.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def backoff(self, key: str) -> float:
        """The delay the next `add_rate_limited(key)` would use."""
        return min(self._base * (2 ** self._failures.get(key, 0)), self._max)

    def add_rate_limited(self, key: str) -> None:
        """Queue `key` after its backoff, which doubles with every consecutive failure."""
        delay = self.backoff(key)
        METRICS.queue_retries[self.name] += 1
        self._failures[key] = self._failures.get(key, 0) + 1
        self.add_after(key, delay)

    def forget(self, key: str) -> None:
        """Reset the backoff of `key` (its last attempt succeeded)."""
        self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        """How many consecutive failures `key` has had."""
        return self._failures.get(key, 0)

    async def get(self) -> str | None:
        """The next key to process, or None once the queue is shut down."""
        while not self._queue:
            if self._shutting_down:
                return None
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
                # Pass on a wake-up this waiter consumed but can no longer use.
                if fut.done() and not fut.cancelled():
                    self._wake_one()
                raise
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: str) -> None:
        """Mark `key` finished; if it was re-added meanwhile, it is queued again now."""
        self._processing.discard(key)
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)
            self._wake_one()

    def shutdown(self) -> None:
        """Stop accepting keys and release every waiting worker."""
        self._shutting_down = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._queue.clear()
        self._dirty.clear()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return


Reconcile = Callable[[str], Awaitable[float | None]]


async def _worker(queue: WorkQueue, reconcile: Reconcile) -> None:
    while True:
        key = await queue.get()
        if key is None:
            return
        started = time.perf_counter()
        try:
            requeue_after = await reconcile(key)
        except asyncio.CancelledError:
            queue.done(key)
            raise
        except Exception:
            log.exception("%s: reconciling %r failed; retrying after %.3fs",
                          queue.name or "queue", key, queue.backoff(key))
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
            if requeue_after is not None:
                queue.add_after(key, requeue_after)
        METRICS.work_done(queue.name, time.perf_counter() - started)
        queue.done(key)


async def run_workers(queue: WorkQueue, reconcile: Reconcile, workers: int = 1) -> None:
    """Process keys with `workers` concurrent workers until the queue shuts down.

    A reconcile that raises is retried with backoff; one that returns a number is run
    again after that many seconds (for waits nothing will send an event about).
    """
    tasks = [asyncio.create_task(_worker(queue, reconcile)) for _ in range(max(1, workers))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

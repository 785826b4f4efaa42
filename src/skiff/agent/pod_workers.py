"""One worker per pod: syncs of one pod never overlap, pods never wait on each other.

Upstream's podWorkers: a pod's sync can take a whole grace period (a deletion) and
must not hold up other pods, so each pod key gets its own task that runs the sync
whenever the pod is marked dirty, and sleeps otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Sync = Callable[[str], Awaitable[float | None]]


class _Worker:
    def __init__(self) -> None:
        self.dirty = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None


class PodWorkers:
    """Runs `sync(key)` per pod key; a negative return value retires the worker."""

    def __init__(self, sync: Sync, retry_delay: float = 1.0) -> None:
        self.sync = sync
        self.retry_delay = retry_delay
        self._workers: dict[str, _Worker] = {}
        self._closed = False

    def enqueue(self, key: str, delay: float = 0.0) -> None:
        """Sync `key` now (or after `delay` seconds; an earlier request wins)."""
        if self._closed:
            return
        w = self._workers.get(key)
        if w is None:
            w = self._workers[key] = _Worker()
            w.task = asyncio.create_task(self._loop(key, w), name=f"pod-worker:{key}")
        if delay <= 0:
            w.dirty.set()
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        if w.timer is not None and not w.timer.cancelled() and w.timer.when() <= due:
            return
        if w.timer is not None:
            w.timer.cancel()
        w.timer = loop.call_at(due, w.dirty.set)

    def keys(self) -> list[str]:
        """Pod keys that have a worker."""
        return list(self._workers)

    async def _loop(self, key: str, w: _Worker) -> None:
        while True:
            await w.dirty.wait()
            w.dirty.clear()
            try:
                delay = await self.sync(key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sync of pod %s failed", key)
                delay = self.retry_delay
            if delay is not None and delay < 0:
                if not w.dirty.is_set():
                    if w.timer is not None:
                        w.timer.cancel()
                    self._workers.pop(key, None)
                    return
                continue
            if delay:
                self.enqueue(key, delay)

    async def close(self) -> None:
        """Cancel every worker."""
        self._closed = True
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for w in self._workers.values():
            if w.timer is not None:
                w.timer.cancel()
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        self._workers.clear()

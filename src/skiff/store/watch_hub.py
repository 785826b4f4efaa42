"""Fan-out of store events to watchers.

Each watcher has a bounded buffer. A watcher that falls too far behind is ended
(its iterator raises `WatcherTooSlow`) rather than letting memory grow without
bound; clients resume from their last resourceVersion, as with upstream.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from skiff.store.base import Event

_BUFFER = 100_000


class WatcherTooSlow(Exception):
    """The watcher's buffer overflowed; it must re-watch from its last revision."""


class Subscription:
    """One watcher's buffered view of the event stream under a key prefix."""

    __slots__ = ("prefix", "_events", "_wake", "_closed", "_overflow")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._events: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._closed = False
        self._overflow = False

    def push(self, ev: Event) -> None:
        """Queue an event for this watcher (called on the loop)."""
        if len(self._events) >= _BUFFER:
            self._overflow = True
        else:
            self._events.append(ev)
        self._wake.set()

    def close(self) -> None:
        """End the iteration once buffered events are drained."""
        self._closed = True
        self._wake.set()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def batches(self) -> AsyncIterator[list[Event]]:
        """Everything buffered at each wake-up, oldest first: one hand-off per burst."""
        while True:
            if self._events:
                batch = list(self._events)
                self._events.clear()
                yield batch
                continue
            if self._overflow:
                raise WatcherTooSlow()
            if self._closed:
                return
            self._wake.clear()
            await self._wake.wait()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            while self._events:
                yield self._events.popleft()
            if self._overflow:
                raise WatcherTooSlow()
            if self._closed:
                return
            self._wake.clear()
            await self._wake.wait()


class WatchHub:
    """Publishes each committed event to the subscriptions whose prefix matches."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, prefix: str) -> Subscription:
        """Start buffering events under `prefix`."""
        sub = Subscription(prefix)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to `sub`."""
        self._subs.discard(sub)

    def publish(self, ev: Event) -> None:
        """Deliver `ev` to every interested watcher."""
        for sub in self._subs:
            if ev.key.startswith(sub.prefix):
                sub.push(ev)

    def close_all(self) -> None:
        """End every watch (server shutdown)."""
        for sub in list(self._subs):
            sub.close()
        self._subs.clear()

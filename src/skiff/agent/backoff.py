"""Crash-loop back-off: how long the agent waits before restarting a container.

Upstream's numbers: 10 s after the second exit, doubling to 5 minutes; an entry
not touched for twice the maximum (10 minutes) is forgotten, so a container that
ran well for 10 minutes starts again from 10 s.
"""

from __future__ import annotations

import time

INITIAL = 10.0
MAXIMUM = 300.0


class Backoff:
    """Per-key exponential back-off measured from the last exit."""

    def __init__(self, initial: float = INITIAL, maximum: float = MAXIMUM) -> None:
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, tuple[float, float]] = {}

    def _entry(self, key: str, now: float) -> tuple[float, float] | None:
        entry = self._entries.get(key)
        if entry is not None and now - entry[1] > 2 * self.maximum:
            del self._entries[key]
            return None
        return entry

    def remaining(self, key: str, since: float, now: float | None = None) -> float:
        """Seconds still to wait after an exit at `since` (0: may restart now)."""
        now = time.time() if now is None else now
        entry = self._entry(key, now)
        if entry is None:
            return 0.0
        return max(0.0, since + entry[0] - now)

    def delay(self, key: str) -> float:
        """The current back-off period of `key` (0 if none)."""
        entry = self._entries.get(key)
        return entry[0] if entry else 0.0

    def next(self, key: str, now: float | None = None) -> None:
        """Record a restart: the next exit waits twice as long (up to the maximum)."""
        now = time.time() if now is None else now
        entry = self._entry(key, now)
        delay = self.initial if entry is None else min(entry[0] * 2, self.maximum)
        self._entries[key] = (delay, now)

    def forget(self, prefix: str) -> None:
        """Drop every key starting with `prefix` (a pod that went away)."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]

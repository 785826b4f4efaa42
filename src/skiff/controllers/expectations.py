"""Expectations: what a controller is waiting to see in its caches before acting again.

After creating N pods a controller's informer lags behind its own writes. Without
a record of what it is waiting for, the next reconcile (triggered by the very first
pod event) would count too few pods and create more. Upstream's answer, followed
here: note how many creations and deletions are in flight per controller key, count
them down as the informer reports them, and only manage replicas again once they
are all observed (or have waited so long that something was lost).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Upstream's ExpectationsTimeout: after this long, stop waiting and resync.
EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Expectation:
    add: int = 0
    delete: int = 0
    # Keys of pods whose deletion we wait for (deletions are tracked by name, since
    # a pod that was already going away may never produce a second event).
    deleting: set[str] = field(default_factory=set)
    stamp: float = field(default_factory=time.monotonic)

    def fulfilled(self) -> bool:
        return self.add <= 0 and self.delete <= 0 and not self.deleting


class Expectations:
    """Per-controller-key counts of pending creations and deletions."""

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self.timeout = timeout
        self._by_key: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        """Whether `key` may manage its replicas now: nothing pending, or waited too long."""
        exp = self._by_key.get(key)
        if exp is None or exp.fulfilled():
            return True
        return time.monotonic() - exp.stamp > self.timeout

    def expect(self, key: str, adds: int = 0, dels: int = 0) -> None:
        """Start waiting for `adds` creations and `dels` deletions (replacing the old wait)."""
        self._by_key[key] = _Expectation(add=adds, delete=dels)

    def lower(self, key: str, adds: int = 0, dels: int = 0) -> None:
        """Expect fewer (creations or deletions that failed, or were observed)."""
        exp = self._by_key.get(key)
        if exp is not None:
            exp.add -= adds
            exp.delete -= dels

    def expect_creations(self, key: str, count: int) -> None:
        """Record that `count` creations are about to be sent."""
        self._by_key[key] = _Expectation(add=count)

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        """Record that the pods `pod_keys` are about to be deleted."""
        self._by_key[key] = _Expectation(delete=len(pod_keys), deleting=set(pod_keys))

    def creation_observed(self, key: str) -> None:
        """An expected creation showed up in the cache (or was never sent)."""
        exp = self._by_key.get(key)
        if exp is not None:
            exp.add -= 1

    def deletion_observed(self, key: str, pod_key: str | None = None) -> None:
        """An expected deletion showed up in the cache (or failed)."""
        exp = self._by_key.get(key)
        if exp is None:
            return
        if pod_key is not None:
            if pod_key not in exp.deleting:
                return
            exp.deleting.discard(pod_key)
        exp.delete -= 1

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still awaited for `key`."""
        exp = self._by_key.get(key)
        return (exp.add, exp.delete) if exp is not None else (0, 0)

    def forget(self, key: str) -> None:
        """Drop everything recorded for `key` (its controller is gone)."""
        self._by_key.pop(key, None)


class UIDExpectations:
    """Per-key sets of pod uids whose change (e.g. a finalizer removal) is in flight."""

    def __init__(self) -> None:
        self._uids: dict[str, set[str]] = {}

    def expect(self, key: str, uids: list[str]) -> None:
        """Add uids we are waiting to see changed."""
        self._uids.setdefault(key, set()).update(uids)

    def observed(self, key: str, uid: str) -> None:
        """The change to `uid` was seen (or will never come)."""
        uids = self._uids.get(key)
        if uids is not None:
            uids.discard(uid)
            if not uids:
                del self._uids[key]

    def pending(self, key: str) -> set[str]:
        """The uids still in flight for `key`."""
        return set(self._uids.get(key, ()))

    def forget(self, key: str) -> None:
        """Drop everything for `key`."""
        self._uids.pop(key, None)

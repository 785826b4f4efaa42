"""Expectations: what a controller is still waiting to see in its caches.

After creating N pods a controller's cache lags behind the server for a moment; a
reconcile in that moment would count too few pods and create more. So a controller
records how many creations and deletions it expects, the pod informer's handlers
count them off as they arrive, and the controller only acts on a key whose
expectations are met (or have expired, in case an event was lost), as upstream's
ControllerExpectations do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Upstream waits five minutes before it distrusts an expectation.
EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Record:
    adds: int = 0
    dels: int = 0
    since: float = field(default_factory=time.monotonic)


class Expectations:
    """Pending creations and deletions per controller key."""

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self.timeout = timeout
        self._records: dict[str, _Record] = {}

    def expect(self, key: str, adds: int = 0, dels: int = 0) -> None:
        """Start waiting for `adds` creations and `dels` deletions (replacing the old wait)."""
        self._records[key] = _Record(adds=adds, dels=dels)

    def lower(self, key: str, adds: int = 0, dels: int = 0) -> None:
        """Expect fewer (creations that failed, or that were observed)."""
        rec = self._records.get(key)
        if rec is not None:
            rec.adds -= adds
            rec.dels -= dels

    def creation_observed(self, key: str) -> None:
        """The informer saw one of the expected pods appear."""
        self.lower(key, adds=1)

    def deletion_observed(self, key: str) -> None:
        """The informer saw one of the expected pods go (or start going)."""
        self.lower(key, dels=1)

    def satisfied(self, key: str) -> bool:
        """Whether the controller may trust its cache for `key`."""
        rec = self._records.get(key)
        if rec is None:
            return True
        if rec.adds <= 0 and rec.dels <= 0:
            return True
        return time.monotonic() - rec.since > self.timeout

    def forget(self, key: str) -> None:
        """Drop the record (the controller object is gone)."""
        self._records.pop(key, None)


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

"""The storage contract every backend implements.

A store is a revisioned key-value log in the etcd model: every write gets the next
cluster-wide revision, reads can be made at any retained revision, and a watch
replays every change after a revision in order. Values are opaque bytes (the API
server stores JSON); the revision of a key's latest write is its resourceVersion.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One key's value at some revision."""

    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One change, as a watch delivers it.

    `kind` is ADDED, MODIFIED or DELETED. For DELETED, `value` is the last value the
    key held. `prev_value` is the value before the change (None on ADDED), so a
    filtered watch can tell an object that stopped matching from one that changed.
    """

    kind: str
    key: str
    value: bytes
    revision: int
    prev_value: bytes | None


@dataclass(frozen=True, slots=True)
class ListResult:
    """A page of a list: the items, the revision it was read at, and whether more follow."""

    items: list[KeyValue]
    revision: int
    more: bool


class StoreError(Exception):
    """Base of the store's failures; the API server maps each to a Status."""


class KeyExistsError(StoreError):
    """A create found the key already present."""


class KeyNotFoundError(StoreError):
    """An update or delete found no such key."""


class RevisionConflictError(StoreError):
    """A compare-and-swap found a newer revision than the caller expected."""

    def __init__(self, current: KeyValue | None) -> None:
        super().__init__("revision conflict")
        self.current = current


class CompactedError(StoreError):
    """The requested revision is older than the compaction horizon."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"required revision {requested} has been compacted (at {compacted})")
        self.requested = requested
        self.compacted = compacted


class FutureRevisionError(StoreError):
    """The requested revision is newer than any the store has produced."""


class Store(Protocol):
    """The operations the API server needs from a backend."""

    @property
    def revision(self) -> int:
        """The newest committed revision."""
        ...

    @property
    def compacted_revision(self) -> int:
        """Revisions at or below this one can no longer be read or watched from."""
        ...

    async def get(self, key: str) -> KeyValue | None:
        """The key's latest value, or None."""
        ...

    async def list(
        self, prefix: str, *, revision: int = 0, start_after: str = "", limit: int = 0
    ) -> ListResult:
        """Keys under `prefix` in key order, as of `revision` (0 = latest)."""
        ...

    async def create(self, key: str, value: bytes) -> int:
        """Write a new key; returns its revision. Raises KeyExistsError."""
        ...

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        """Replace a key if its revision is still `expected_revision` (0 = any)."""
        ...

    async def delete(self, key: str, expected_revision: int = 0) -> KeyValue:
        """Remove a key; returns its last value. Raises KeyNotFoundError or a conflict."""
        ...

    def watch(self, prefix: str, from_revision: int) -> AsyncIterator[Event]:
        """Every change under `prefix` after `from_revision`, then live changes."""
        ...

    def watch_batches(self, prefix: str, from_revision: int) -> AsyncIterator[list[Event]]:
        """The same changes as `watch`, in order, grouped as they became available."""
        ...

    async def compact(self, revision: int) -> None:
        """Forget history at or below `revision` (latest values are kept)."""
        ...

    async def close(self) -> None:
        """Flush and release resources."""
        ...

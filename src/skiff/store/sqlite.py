"""The embedded store: the kine model on SQLite.

Every write appends one row to the `log` table; the row id *is* the cluster
revision. A read at revision R takes, per key, the newest row at or below R;
deleted keys are rows flagged `deleted`. Compaction removes rows that no read at
or above the horizon can see.

Writes go through one writer thread that commits them in batches (group commit):
a burst of concurrent writes costs one fsync, and a write's future resolves only
after its batch is durable. Compare-and-swap checks happen on the event loop
against the committed state plus the writes still in flight, so revisions are
assigned in order without a round trip to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import queue
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sortedcontainers import SortedList

from skiff.store.base import (
    CompactedError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    RevisionConflictError,
)
from skiff.store.watch_hub import WatchHub

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_name_id ON log (name, id);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
"""

# How many recent events stay in memory so that watches resuming from a recent
# revision never touch the database.
_HISTORY_EVENTS = 20_000
# Batches bigger than this are split, to bound a commit's latency.
_MAX_BATCH = 2_000


@dataclass(slots=True)
class _Row:
    revision: int
    key: str
    created: bool
    deleted: bool
    create_revision: int
    prev_revision: int
    value: bytes


@dataclass(slots=True)
class _Write:
    row: _Row
    prev_value: bytes | None
    future: asyncio.Future[None]


def _prefix_end(prefix: str) -> str:
    # The smallest string greater than every string that starts with `prefix`.
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"


class SQLiteStore:
    """A `Store` in one SQLite file, durable on every acknowledged write."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._latest: dict[str, KeyValue] = {}
        # The same keys in order, so a list walks only its prefix's range instead of
        # scanning (and sorting) every key of the store.
        self._keys = SortedList()
        # Writes handed to the writer thread but not yet committed: key → value
        # (None for a pending delete) and how many are in flight for that key.
        self._pending: dict[str, tuple[KeyValue | None, int]] = {}
        self._next_revision = 0
        self._committed_revision = 0
        self._compacted = 0
        self._history: deque[Event] = deque(maxlen=_HISTORY_EVENTS)
        self._hub = WatchHub()
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: threading.Thread | None = None
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._failed: BaseException | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Open (or create) the database and load the latest value of every key."""
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._open_sync)
        self._writer = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self._writer.start()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsynced at every commit, so an acknowledged write
        # survives power loss, not only a process crash.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _open_sync(self) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self._path)), exist_ok=True)
        conn = self._connect()
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT v FROM meta WHERE k='compact'").fetchone()
        self._compacted = row[0] if row else 0
        top = conn.execute("SELECT MAX(id) FROM log").fetchone()[0] or 0
        self._committed_revision = self._next_revision = max(top, self._compacted)
        cur = conn.execute(
            "SELECT l.name, l.value, l.id, l.create_revision FROM log l "
            "JOIN (SELECT MAX(id) AS mid FROM log GROUP BY name) m ON l.id = m.mid "
            "WHERE l.deleted = 0"
        )
        for name, value, rev, crev in cur:
            self._latest[name] = KeyValue(name, bytes(value), rev, crev)
        self._keys = SortedList(self._latest)
        self._reader = conn

    async def close(self) -> None:
        """Finish in-flight writes, stop the writer thread and close the database."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join)
        self._hub.close_all()
        if self._reader is not None:
            with self._reader_lock:
                self._reader.close()

    # -- properties ------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The newest committed revision."""
        return self._committed_revision

    @property
    def compacted_revision(self) -> int:
        """Reads and watches must be after this revision."""
        return self._compacted

    # -- reads -----------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        """The key's latest committed value."""
        return self._latest.get(key)

    def get_now(self, key: str) -> KeyValue | None:
        """Synchronous form of `get` for callers already on the loop."""
        return self._latest.get(key)

    async def list(
        self, prefix: str, *, revision: int = 0, start_after: str = "", limit: int = 0
    ) -> ListResult:
        """Keys under `prefix` after `start_after`, as of `revision` (0 = latest)."""
        if revision and revision < self._compacted:
            raise CompactedError(revision, self._compacted)
        if revision > self._committed_revision:
            raise FutureRevisionError(f"revision {revision} is in the future")
        # Any int64 is a valid limit; one past it must still fit SQLite and islice.
        limit = min(limit, sys.maxsize - 1)
        if not revision or revision == self._committed_revision:
            return self._list_latest(prefix, start_after, limit)
        return await asyncio.to_thread(self._list_at, prefix, revision, start_after, limit)

    def _list_latest(self, prefix: str, start_after: str, limit: int) -> ListResult:
        rev = self._committed_revision
        lo, inclusive = (start_after, False) if start_after >= prefix else (prefix, True)
        found = self._keys.irange(lo, _prefix_end(prefix), inclusive=(inclusive, False))
        keys = list(itertools.islice(found, limit + 1)) if limit else list(found)
        more = bool(limit) and len(keys) > limit
        if limit:
            keys = keys[:limit]
        return ListResult([self._latest[k] for k in keys], rev, more)

    def _list_at(self, prefix: str, revision: int, start_after: str, limit: int) -> ListResult:
        lo = max(prefix, start_after + "\x00") if start_after else prefix
        sql = (
            "SELECT l.name, l.value, l.id, l.create_revision FROM log l "
            "JOIN (SELECT MAX(id) AS mid FROM log WHERE name >= ? AND name < ? AND id <= ? "
            "GROUP BY name) m ON l.id = m.mid WHERE l.deleted = 0 ORDER BY l.name"
        )
        args: list[object] = [lo, _prefix_end(prefix), revision]
        if limit:
            sql += " LIMIT ?"
            args.append(limit + 1)
        assert self._reader is not None
        with self._reader_lock:
            rows = self._reader.execute(sql, args).fetchall()
        items = [KeyValue(n, bytes(v), r, c) for n, v, r, c in rows]
        more = bool(limit) and len(items) > limit
        return ListResult(items[:limit] if limit else items, revision, more)

    # -- writes ----------------------------------------------------------------

    def _current(self, key: str) -> KeyValue | None:
        pending = self._pending.get(key)
        if pending is not None:
            return pending[0]
        return self._latest.get(key)

    async def create(self, key: str, value: bytes) -> int:
        """Write a new key; fails if it exists (or a create of it is in flight)."""
        if self._current(key) is not None:
            raise KeyExistsError(key)
        rev = self._next_revision + 1
        return await self._submit(_Row(rev, key, True, False, rev, 0, value), None)

    async def update(self, key: str, value: bytes, expected_revision: int = 0) -> int:
        """Replace the key's value if its revision still equals `expected_revision`."""
        cur = self._current(key)
        if cur is None:
            raise KeyNotFoundError(key)
        if expected_revision and cur.mod_revision != expected_revision:
            raise RevisionConflictError(cur)
        rev = self._next_revision + 1
        row = _Row(rev, key, False, False, cur.create_revision, cur.mod_revision, value)
        return await self._submit(row, cur.value)

    async def delete(self, key: str, expected_revision: int = 0) -> KeyValue:
        """Remove the key; its last value is kept in the log for watchers."""
        cur = self._current(key)
        if cur is None:
            raise KeyNotFoundError(key)
        if expected_revision and cur.mod_revision != expected_revision:
            raise RevisionConflictError(cur)
        rev = self._next_revision + 1
        row = _Row(rev, key, False, True, cur.create_revision, cur.mod_revision, cur.value)
        await self._submit(row, cur.value)
        return KeyValue(key, cur.value, rev, cur.create_revision)

    async def _submit(self, row: _Row, prev_value: bytes | None) -> int:
        if self._failed is not None:
            raise RuntimeError(f"store is unusable after a failed commit: {self._failed}")
        if self._closed:
            raise RuntimeError("store is closed")
        assert self._loop is not None
        self._next_revision = row.revision
        kv = (None if row.deleted
              else KeyValue(row.key, row.value, row.revision, row.create_revision))
        held = self._pending.get(row.key)
        self._pending[row.key] = (kv, (held[1] if held else 0) + 1)
        fut: asyncio.Future[None] = self._loop.create_future()
        self._queue.put(_Write(row, prev_value, fut))
        await fut
        return row.revision

    def _write_loop(self) -> None:
        conn = self._connect()
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < _MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            try:
                conn.execute("BEGIN")
                conn.executemany(
                    "INSERT INTO log (id, name, created, deleted, create_revision, "
                    "prev_revision, value) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (r.revision, r.key, r.created, r.deleted, r.create_revision,
                         r.prev_revision, r.value)
                        for r in (w.row for w in batch)
                    ],
                )
                conn.execute("COMMIT")
            except BaseException as exc:  # noqa: BLE001 - every failure is fatal here
                with contextlib.suppress(Exception):
                    conn.execute("ROLLBACK")
                log.exception("store commit failed; refusing further writes")
                assert self._loop is not None
                self._loop.call_soon_threadsafe(self._fail_batch, batch, exc)
                continue
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._apply_batch, batch)
        conn.close()

    def _fail_batch(self, batch: list[_Write], exc: BaseException) -> None:
        self._failed = exc
        for w in batch:
            if not w.future.done():
                w.future.set_exception(RuntimeError(f"store commit failed: {exc}"))

    def _apply_batch(self, batch: list[_Write]) -> None:
        for w in batch:
            r = w.row
            kv = KeyValue(r.key, r.value, r.revision, r.create_revision)
            if r.deleted:
                if self._latest.pop(r.key, None) is not None:
                    self._keys.discard(r.key)
                kind = "DELETED"
            else:
                if r.key not in self._latest:
                    self._keys.add(r.key)
                self._latest[r.key] = kv
                kind = "ADDED" if r.created else "MODIFIED"
            held = self._pending.get(r.key)
            if held is not None:
                if held[1] <= 1:
                    del self._pending[r.key]
                else:
                    self._pending[r.key] = (held[0], held[1] - 1)
            self._committed_revision = r.revision
            ev = Event(kind, r.key, r.value, r.revision, w.prev_value)
            self._history.append(ev)
            self._hub.publish(ev)
            if not w.future.done():
                w.future.set_result(None)

    # -- watch -----------------------------------------------------------------

    async def watch(self, prefix: str, from_revision: int) -> AsyncIterator[Event]:
        """Every change under `prefix` after `from_revision`, in order, then live ones."""
        async for batch in self.watch_batches(prefix, from_revision):
            for ev in batch:
                yield ev

    async def watch_batches(self, prefix: str,
                            from_revision: int) -> AsyncIterator[list[Event]]:
        """The changes `watch` yields, grouped as they were committed together."""
        if from_revision and from_revision < self._compacted:
            raise CompactedError(from_revision, self._compacted)
        sub = self._hub.subscribe(prefix)
        try:
            last = from_revision
            if from_revision < self._committed_revision:
                history = await self._history_since(prefix, from_revision)
                if history:
                    last = history[-1].revision
                    yield history
            async for batch in sub.batches():
                fresh = [ev for ev in batch if ev.revision > last]
                if fresh:
                    last = fresh[-1].revision
                    yield fresh
        finally:
            self._hub.unsubscribe(sub)

    async def _history_since(self, prefix: str, revision: int) -> list[Event]:
        upto = self._committed_revision
        hist = self._history
        if hist and hist[0].revision <= revision + 1:
            return [e for e in hist if revision < e.revision <= upto and e.key.startswith(prefix)]
        return await asyncio.to_thread(self._history_from_db, prefix, revision, upto)

    def _history_from_db(self, prefix: str, revision: int, upto: int) -> list[Event]:
        assert self._reader is not None
        with self._reader_lock:
            rows = self._reader.execute(
                "SELECT l.id, l.name, l.created, l.deleted, l.value, p.value FROM log l "
                "LEFT JOIN log p ON p.id = l.prev_revision "
                "WHERE l.id > ? AND l.id <= ? AND l.name >= ? AND l.name < ? ORDER BY l.id",
                (revision, upto, prefix, _prefix_end(prefix)),
            ).fetchall()
        out = []
        for rev, name, created, deleted, value, prev in rows:
            kind = "DELETED" if deleted else ("ADDED" if created else "MODIFIED")
            out.append(Event(kind, name, bytes(value), rev, bytes(prev) if prev else None))
        return out

    # -- compaction ------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """Drop history at or below `revision` that no longer-visible read needs."""
        revision = min(revision, self._committed_revision)
        if revision <= self._compacted:
            return
        await asyncio.to_thread(self._compact_sync, revision)
        self._compacted = revision

    def _compact_sync(self, revision: int) -> None:
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            # A row at or below the horizon is dead once a newer row for its key
            # is also at or below it; a deletion row is dead once it is below it.
            conn.execute(
                "DELETE FROM log WHERE id <= ? AND (deleted = 1 OR id < "
                "(SELECT MAX(n.id) FROM log n WHERE n.name = log.name AND n.id <= ?))",
                (revision, revision),
            )
            conn.execute(
                "INSERT INTO meta (k, v) VALUES ('compact', ?) "
                "ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                (revision,),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()


class Compactor:
    """Compacts periodically, keeping a window of history as upstream does (5 min)."""

    def __init__(self, store: SQLiteStore, keep_seconds: float = 300.0) -> None:
        self._store = store
        self._keep = keep_seconds
        self._marks: deque[tuple[float, int]] = deque()

    async def run(self, interval: float = 60.0) -> None:
        """Loop forever: remember the revision now, compact what is older than the window."""
        while True:
            now = time.monotonic()
            self._marks.append((now, self._store.revision))
            target = 0
            while self._marks and self._marks[0][0] <= now - self._keep:
                target = self._marks.popleft()[1]
            if target:
                await self._store.compact(target)
            await asyncio.sleep(interval)

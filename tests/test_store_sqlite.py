"""The SQLite store: revisions, compare-and-swap, lists at a revision, watch, compaction."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from skiff.store.base import (
    CompactedError,
    KeyExistsError,
    KeyNotFoundError,
    RevisionConflictError,
)
from skiff.store.sqlite import SQLiteStore


@pytest.fixture
async def store(tmp_path: Path):
    s = SQLiteStore(str(tmp_path / "db.sqlite"))
    await s.open()
    yield s
    await s.close()


async def test_create_get_update_delete(store: SQLiteStore) -> None:
    r1 = await store.create("/a/x", b"1")
    with pytest.raises(KeyExistsError):
        await store.create("/a/x", b"2")
    kv = await store.get("/a/x")
    assert kv is not None and kv.value == b"1" and kv.mod_revision == r1
    r2 = await store.update("/a/x", b"2", r1)
    assert r2 == r1 + 1
    with pytest.raises(RevisionConflictError):
        await store.update("/a/x", b"3", r1)
    last = await store.delete("/a/x")
    assert last.value == b"2"
    assert await store.get("/a/x") is None
    with pytest.raises(KeyNotFoundError):
        await store.delete("/a/x")


async def test_list_at_revision_and_paging(store: SQLiteStore) -> None:
    for i in range(5):
        await store.create(f"/p/{i}", str(i).encode())
    rev = store.revision
    await store.update("/p/0", b"changed")
    await store.delete("/p/1")
    await store.create("/p/9", b"9")
    old = await store.list("/p/", revision=rev)
    assert [kv.value for kv in old.items] == [b"0", b"1", b"2", b"3", b"4"]
    page = await store.list("/p/", revision=rev, limit=2)
    assert page.more and [kv.key for kv in page.items] == ["/p/0", "/p/1"]
    page2 = await store.list("/p/", revision=rev, start_after="/p/1", limit=2)
    assert [kv.key for kv in page2.items] == ["/p/2", "/p/3"]
    now = await store.list("/p/")
    assert [kv.key for kv in now.items] == ["/p/0", "/p/2", "/p/3", "/p/4", "/p/9"]
    # The largest int64 limit is just "everything", now and at an older revision.
    for at in (0, rev):
        whole = await store.list("/p/", revision=at, limit=2**63 - 1)
        assert not whole.more and len(whole.items) == 5


async def test_durable_across_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "db.sqlite")
    s = SQLiteStore(path)
    await s.open()
    await asyncio.gather(*(s.create(f"/k/{i}", b"v") for i in range(200)))
    await s.delete("/k/5")
    rev = s.revision
    await s.close()
    s2 = SQLiteStore(path)
    await s2.open()
    assert s2.revision == rev
    assert len((await s2.list("/k/")).items) == 199
    assert await s2.create("/k/new", b"x") == rev + 1
    await s2.close()


async def test_watch_replays_then_follows(store: SQLiteStore) -> None:
    r1 = await store.create("/w/a", b"1")
    await store.update("/w/a", b"2")
    await store.create("/other/b", b"x")
    seen = []

    async def consume() -> None:
        async for ev in store.watch("/w/", r1):
            seen.append((ev.kind, ev.key, ev.value, ev.prev_value))
            if len(seen) == 3:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    await store.delete("/w/a")
    await store.create("/w/c", b"3")
    await asyncio.wait_for(task, 5)
    assert seen == [
        ("MODIFIED", "/w/a", b"2", b"1"),
        ("DELETED", "/w/a", b"2", b"2"),
        ("ADDED", "/w/c", b"3", None),
    ]


async def test_compaction(store: SQLiteStore) -> None:
    r1 = await store.create("/c/a", b"1")
    r2 = await store.update("/c/a", b"2")
    await store.create("/c/b", b"b")
    await store.compact(r2)
    with pytest.raises(CompactedError):
        await store.list("/c/", revision=r1)
    with pytest.raises(CompactedError):
        async for _ in store.watch("/c/", r1):
            pass
    res = await store.list("/c/", revision=r2)
    assert [kv.value for kv in res.items] == [b"2"]
    events = store._history_from_db("/c/", r2, store.revision)
    assert [e.key for e in events] == ["/c/b"]


async def test_latest_lists_read_only_their_prefix_in_order(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "db.sqlite"))
    await store.open()
    keys = [f"/registry/{kind}/{ns}/{i:03d}" for kind in ("pods", "podtemplates", "services")
            for ns in ("a", "b") for i in range(0, 30, 3)]
    await asyncio.gather(*(store.create(k, k.encode()) for k in reversed(keys)))
    for k in keys[::4]:
        await store.delete(k)
    await store.create("/registry/pods/a/001", b"late")
    await store.close()
    # The order is kept across writes and rebuilt when the store is opened again.
    for s in (store, SQLiteStore(str(tmp_path / "db.sqlite"))):
        if s is not store:
            await s.open()
        live = sorted(set(keys) - set(keys[::4]) | {"/registry/pods/a/001"})
        for prefix in ("/registry/pods/", "/registry/pods/a/", "/registry/pod", "/registry/x/"):
            want = [k for k in live if k.startswith(prefix)]
            got: list[str] = []
            after = ""
            while True:
                page = s._list_latest(prefix, after, 4)
                got += [kv.key for kv in page.items]
                if not page.more:
                    break
                after = got[-1]
            assert got == want
            assert [kv.key for kv in s._list_latest(prefix, "", 0).items] == want
        if s is not store:
            await s.close()

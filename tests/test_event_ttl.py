"""Events older than their TTL are swept; recent ones stay."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson

from skiff.api import meta as m
from skiff.api.builtin_kinds import register_builtins
from skiff.api.resources import Registry
from skiff.apiserver.event_ttl import sweep_expired_events
from skiff.store.sqlite import SQLiteStore


async def test_sweep_removes_only_expired(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "db"))
    await store.open()
    registry = Registry()
    register_builtins(registry)
    old = m.rfc3339(m.now() - dt.timedelta(hours=2))
    new = m.rfc3339(m.now())
    for name, ts in (("old", old), ("new", new)):
        ev = {"metadata": {"name": name, "namespace": "default", "creationTimestamp": ts},
              "lastTimestamp": ts, "reason": "Test"}
        await store.create(f"/registry/core/events/default/{name}", orjson.dumps(ev))
    assert await sweep_expired_events(store, registry) == 1
    left = [kv.key for kv in (await store.list("/registry/core/events/")).items]
    assert left == ["/registry/core/events/default/new"]
    await store.close()

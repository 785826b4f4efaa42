"""Events expire: upstream keeps each Event for one hour after its last update
(an etcd lease); here a periodic sweep deletes the expired ones."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

import orjson

from skiff.api import meta as m
from skiff.api.resources import Registry
from skiff.apiserver import keys
from skiff.store.base import KeyNotFoundError, RevisionConflictError
from skiff.store.sqlite import SQLiteStore

log = logging.getLogger(__name__)

EVENT_TTL = dt.timedelta(hours=1)


def _last_update(event: dict) -> dt.datetime | None:
    for field in ("lastTimestamp", "eventTime", "deprecatedLastTimestamp"):
        value = event.get(field)
        if isinstance(value, str) and (t := m.parse_time(value)):
            return t
    return m.parse_time((event.get("metadata") or {}).get("creationTimestamp") or "")


async def sweep_expired_events(store: SQLiteStore, registry: Registry,
                               ttl: dt.timedelta = EVENT_TTL) -> int:
    """Delete every Event not updated within `ttl`; returns how many went."""
    cutoff = m.now() - ttl
    removed = 0
    for group in ("", "events.k8s.io"):
        rt = registry.get(group, "v1", "events")
        if rt is None:
            continue
        res = await store.list(keys.collection_prefix(rt))
        for kv in res.items:
            updated = _last_update(orjson.loads(kv.value))
            if updated is not None and updated < cutoff:
                with contextlib.suppress(KeyNotFoundError, RevisionConflictError):
                    await store.delete(kv.key, kv.mod_revision)
                    removed += 1
    return removed


async def run_event_ttl(store: SQLiteStore, registry: Registry, interval: float = 60.0) -> None:
    """Sweep forever (cancelled at shutdown)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep_expired_events(store, registry)
        except Exception:  # noqa: BLE001 - a failed sweep is retried next interval
            log.exception("event expiry sweep failed")

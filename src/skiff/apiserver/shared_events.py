"""Watch events decoded and encoded once, however many clients watch them.

A hundred watchers of pods would otherwise each parse every stored pod change and
each serialise it again. Every write has its own revision, so (resource, revision)
names one object state, and (resource, event type, revision) one line of a watch
stream: both can be shared. Shared objects are read-only for their consumers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from skiff.api.resources import ResourceType
from skiff.store.base import Event

Obj = dict[str, Any]
Loads = Callable[[ResourceType, bytes], Obj]

# Enough for every watcher to catch up on a burst of writes before entries age out.
_SIZE = 8192


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    if len(cache) > _SIZE:
        # Dicts keep insertion order: drop the oldest eighth at once.
        for old in list(cache)[: _SIZE // 8]:
            del cache[old]


class SharedEvents:
    """Caches of decoded event objects and encoded watch lines."""

    def __init__(self, loads: Loads) -> None:
        self._loads = loads
        self._objects: dict[tuple[str, int], Obj] = {}
        self._lines: dict[tuple[str, str, str], bytes] = {}

    def current(self, rt: ResourceType, ev: Event) -> Obj:
        """The object as the change left it, with its resourceVersion."""
        key = (rt.key, ev.revision)
        obj = self._objects.get(key)
        if obj is None:
            obj = self._loads(rt, ev.value)
            obj["metadata"]["resourceVersion"] = str(ev.revision)
            _remember(self._objects, key, obj)
        return obj

    def previous(self, rt: ResourceType, ev: Event) -> Obj:
        """The object as it was before the change (for selector transitions)."""
        assert ev.prev_value is not None
        key = (rt.key, -ev.revision)
        obj = self._objects.get(key)
        if obj is None:
            obj = self._loads(rt, ev.prev_value)
            _remember(self._objects, key, obj)
        return obj

    def line(self, rt: ResourceType, kind: str, obj: Obj) -> bytes:
        """`{"type": kind, "object": obj}` and a newline, as a JSON watch stream sends it."""
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if not rv or kind in ("BOOKMARK", "ERROR"):
            return orjson.dumps({"type": kind, "object": obj}) + b"\n"
        key = (rt.key, kind, rv)
        line = self._lines.get(key)
        if line is None:
            line = orjson.dumps({"type": kind, "object": obj}) + b"\n"
            _remember(self._lines, key, line)
        return line

"""Watch events decoded and encoded once, however many clients watch them.

A hundred watchers of pods would otherwise each parse every stored pod change and
each serialise it again. Every write has its own revision, so (resource, version,
revision) names one object state, and (resource, version, event type, revision) one
line of a watch stream: both can be shared. The version matters where two versions
share one storage (autoscaling/v1 and v2 HorizontalPodAutoscalers): each is served
in its own shape. Shared objects are read-only for their consumers.
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


_METADATA = b'"metadata":{'


def with_resource_version(stored: bytes, revision: int) -> bytes | None:
    """A stored object's JSON with its resourceVersion put back, without decoding it.

    Stored values are compact orjson output without resourceVersion (the revision is
    the row's). Its top-level `"metadata":{` is the first one with no `{` or `[`
    before it: the quote around `metadata` could not be part of a string, where quotes
    are escaped. None when the value does not have that shape.
    """
    i = stored.find(_METADATA)
    if i < 0 or stored.find(b"{", 1, i) >= 0 or stored.find(b"[", 1, i) >= 0:
        return None
    j = i + len(_METADATA)
    rv = b'"resourceVersion":"%d"' % revision
    return stored[:j] + rv + (b"" if stored[j:j + 1] == b"}" else b",") + stored[j:]


class Raw:
    """A change whose object a watcher forwards as stored, without decoding it."""

    __slots__ = ("rt", "event")

    def __init__(self, rt: ResourceType, event: Event) -> None:
        self.rt = rt
        self.event = event


class SharedEvents:
    """Caches of decoded event objects and encoded watch lines."""

    def __init__(self, loads: Loads) -> None:
        self._loads = loads
        self._objects: dict[tuple[str, int], Obj] = {}
        self._lines: dict[tuple[str, str, str], bytes] = {}

    def current(self, rt: ResourceType, ev: Event) -> Obj:
        """The object as the change left it, with its resourceVersion."""
        key = (rt.key, rt.version, ev.revision)
        obj = self._objects.get(key)
        if obj is None:
            obj = self._loads(rt, ev.value)
            obj["metadata"]["resourceVersion"] = str(ev.revision)
            _remember(self._objects, key, obj)
        return obj

    def previous(self, rt: ResourceType, ev: Event) -> Obj:
        """The object as it was before the change (for selector transitions)."""
        assert ev.prev_value is not None
        key = (rt.key, rt.version, -ev.revision)
        obj = self._objects.get(key)
        if obj is None:
            obj = self._loads(rt, ev.prev_value)
            _remember(self._objects, key, obj)
        return obj

    def raw_line(self, kind: str, raw: Raw) -> bytes:
        """The watch line of a change forwarded as stored (see `Raw`)."""
        key = (raw.rt.key, raw.rt.version, kind, str(raw.event.revision))
        line = self._lines.get(key)
        if line is None:
            obj = with_resource_version(raw.event.value, raw.event.revision)
            if obj is None:
                return self.line(raw.rt, kind, self.current(raw.rt, raw.event))
            line = b'{"type":"' + kind.encode() + b'","object":' + obj + b"}\n"
            _remember(self._lines, key, line)
        return line

    def line(self, rt: ResourceType, kind: str, obj: Obj) -> bytes:
        """`{"type": kind, "object": obj}` and a newline, as a JSON watch stream sends it."""
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if not rv or kind in ("BOOKMARK", "ERROR"):
            return orjson.dumps({"type": kind, "object": obj}) + b"\n"
        key = (rt.key, rt.version, kind, rv)
        line = self._lines.get(key)
        if line is None:
            line = orjson.dumps({"type": kind, "object": obj}) + b"\n"
            _remember(self._lines, key, line)
        return line

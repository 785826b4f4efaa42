"""The Event table, shared by core/v1 and events.k8s.io/v1 events.

The two APIs carry the same facts under different field names (`involvedObject`
and `regarding`, `message` and `note`, `lastTimestamp` and
`deprecatedLastTimestamp`, ...). Upstream prints both from one internal type, so
both get the same columns here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from skiff.api.tables.age import parse_time, since
from skiff.api.tables.columns import Printer, column, integer, meta, name_column, sub, text

COLUMNS = [
    column("Last Seen", "string", "Time since the event was last observed."),
    column("Type", "string", "Normal, or Warning when something went wrong."),
    column("Reason", "string", "A short machine-readable word for why the event happened."),
    column("Object", "string", "The object the event is about, as kind/name."),
    column("Subobject", "string", "The part of the object the event is about.", priority=1),
    column("Source", "string", "The component that reported the event.", priority=1),
    column("Message", "string", "What happened, for humans."),
    column("First Seen", "string", "Time since the event was first observed.", priority=1),
    column("Count", "string", "How many times the event has been observed.", priority=1),
    name_column(priority=1),
]


def _first(*values: Any) -> str:
    for v in values:
        if isinstance(v, str) and v:
            return v
    return ""


def _fields(obj: dict[str, Any], new_api: bool) -> dict[str, Any]:
    """The event's facts under core/v1 names, whichever API it came from."""
    if not new_api:
        return obj
    return {
        "involvedObject": obj.get("regarding"),
        "message": obj.get("note"),
        "firstTimestamp": obj.get("deprecatedFirstTimestamp"),
        "lastTimestamp": obj.get("deprecatedLastTimestamp"),
        "count": obj.get("deprecatedCount"),
        "source": obj.get("deprecatedSource"),
        "eventTime": obj.get("eventTime"),
        "series": obj.get("series"),
        "type": obj.get("type"),
        "reason": obj.get("reason"),
        "reportingComponent": obj.get("reportingController"),
        "reportingInstance": obj.get("reportingInstance"),
    }


def _cells(obj: dict[str, Any], now: datetime, new_api: bool) -> list[Any]:
    ev = _fields(obj, new_api)
    first = ev.get("firstTimestamp") if parse_time(ev.get("firstTimestamp")) else None
    first_seen = since(first or ev.get("eventTime"), now)
    last = ev.get("lastTimestamp") if parse_time(ev.get("lastTimestamp")) else None
    last_seen = since(last, now) if last else first_seen
    n = integer(ev.get("count"))
    series = ev.get("series")
    if isinstance(series, dict):
        last_seen = since(series.get("lastObservedTime"), now)
        n = integer(series.get("count"))
    elif n == 0:
        n = 1  # events.k8s.io singletons leave the count unset
    involved = sub(ev, "involvedObject")
    kind = text(involved.get("kind")).lower()
    name = text(involved.get("name"))
    target = f"{kind}/{name}" if name else kind
    source = sub(ev, "source")
    component = _first(source.get("component"), ev.get("reportingComponent"))
    instance = _first(source.get("host"), ev.get("reportingInstance"))
    return [
        last_seen,
        text(ev.get("type")),
        text(ev.get("reason")),
        target,
        text(involved.get("fieldPath")),
        f"{component}, {instance}" if instance else component,
        text(ev.get("message")).strip(),
        first_seen,
        n,
        text(meta(obj).get("name")),
    ]


def _core(obj: dict[str, Any], now: datetime) -> list[Any]:
    return _cells(obj, now, new_api=False)


def _new(obj: dict[str, Any], now: datetime) -> list[Any]:
    return _cells(obj, now, new_api=True)


PRINTERS = {
    "core/events": Printer(COLUMNS, _core),
    "events.k8s.io/events": Printer(COLUMNS, _new),
}

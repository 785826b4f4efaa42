"""events.k8s.io/v1 Events are core/v1 Events in another shape.

Upstream stores both in one place, so an event written through either API is
read through both (kubectl describe reads core events; newer components write
events.k8s.io ones). These two functions map the fields that differ.
"""

from __future__ import annotations

from typing import Any

# events.k8s.io name → core name, for the fields that are renamed.
_RENAMED = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_TO_NEW = {v: k for k, v in _RENAMED.items()}


def to_core(event: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event as the core/v1 Event it is stored as."""
    out = {_RENAMED.get(k, k): v for k, v in event.items()}
    out["apiVersion"] = "v1"
    out["kind"] = "Event"
    return out


def from_core(event: dict[str, Any]) -> dict[str, Any]:
    """A stored core/v1 Event in its events.k8s.io/v1 shape."""
    out = {_TO_NEW.get(k, k): v for k, v in event.items()}
    out["apiVersion"] = "events.k8s.io/v1"
    out["kind"] = "Event"
    return out

"""Reading a pod's state the way upstream controllers do: active, ready, available."""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import meta as m

Obj = dict[str, Any]


def phase(pod: Obj) -> str:
    """status.phase, `Pending` when unset."""
    return (pod.get("status") or {}).get("phase") or "Pending"


def is_terminal(pod: Obj) -> bool:
    """Succeeded or Failed: the pod will never run again."""
    return phase(pod) in ("Succeeded", "Failed")


def is_terminating(pod: Obj) -> bool:
    """Deletion has begun."""
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_active(pod: Obj) -> bool:
    """Neither finished nor being deleted: counts toward a controller's replicas."""
    return not is_terminal(pod) and not is_terminating(pod)


def ready_condition(pod: Obj) -> Obj | None:
    """The pod's Ready condition, if any."""
    return m.condition(pod, "Ready")


def is_ready(pod: Obj) -> bool:
    """The Ready condition is True."""
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def ready_since(pod: Obj) -> dt.datetime | None:
    """When the pod last became ready (None if it is not ready)."""
    cond = ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return None
    return m.parse_time(cond.get("lastTransitionTime") or "")


def is_available(pod: Obj, min_ready_seconds: int, now: dt.datetime) -> bool:
    """Ready for at least `min_ready_seconds` (upstream's IsPodAvailable)."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and since + dt.timedelta(seconds=min_ready_seconds) <= now


def seconds_until_available(pod: Obj, min_ready_seconds: int, now: dt.datetime) -> float | None:
    """For a ready pod not yet available: how long until it will be; else None."""
    if min_ready_seconds <= 0 or not is_ready(pod):
        return None
    since = ready_since(pod)
    if since is None:
        return None
    left = (since + dt.timedelta(seconds=min_ready_seconds) - now).total_seconds()
    return left if left > 0 else None


def max_restarts(pod: Obj) -> int:
    """The highest restart count among the pod's containers."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses if isinstance(s, dict)),
               default=0)

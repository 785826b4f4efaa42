"""What a controller needs to know about a pod's state, read from its status.

These mirror upstream's pod helpers (podutil.IsPodReady, controller.IsPodActive, …)
so every workload controller counts `ready`, `available` and `active` the same way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import meta as m

Obj = dict[str, Any]

SUCCEEDED = "Succeeded"
FAILED = "Failed"
RUNNING = "Running"
PENDING = "Pending"


def phase(pod: Obj) -> str:
    """status.phase, `Pending` when unset."""
    return (pod.get("status") or {}).get("phase") or PENDING


def is_terminal(pod: Obj) -> bool:
    """Succeeded or Failed: the pod will not run again."""
    return phase(pod) in (SUCCEEDED, FAILED)


def is_deleting(pod: Obj) -> bool:
    """Whether the pod has a deletionTimestamp."""
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_active(pod: Obj) -> bool:
    """Not finished and not being deleted (upstream's IsPodActive)."""
    return not is_terminal(pod) and not is_deleting(pod)


def is_terminating(pod: Obj) -> bool:
    """Being deleted but not yet finished (counted as `terminating`)."""
    return is_deleting(pod) and not is_terminal(pod)


def ready_condition(pod: Obj) -> Obj | None:
    """The pod's Ready condition, if any."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return c
    return None


def is_ready(pod: Obj) -> bool:
    """The Ready condition is True."""
    c = ready_condition(pod)
    return c is not None and c.get("status") == "True"


def is_running_and_ready(pod: Obj) -> bool:
    """Phase Running and Ready (StatefulSet's notion of healthy)."""
    return phase(pod) == RUNNING and is_ready(pod)


def ready_since(pod: Obj) -> dt.datetime | None:
    """When the pod last became Ready, if it is."""
    c = ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    return m.parse_time(c.get("lastTransitionTime") or "")


def is_available(pod: Obj, min_ready_seconds: int, now: dt.datetime) -> bool:
    """Ready for at least `min_ready_seconds` (upstream's IsPodAvailable)."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and since + dt.timedelta(seconds=min_ready_seconds) <= now


def seconds_until_available(pod: Obj, min_ready_seconds: int, now: dt.datetime) -> float | None:
    """Seconds until a ready pod becomes available (None if not ready or already so)."""
    since = ready_since(pod)
    if since is None or min_ready_seconds <= 0:
        return None
    left = (since + dt.timedelta(seconds=min_ready_seconds) - now).total_seconds()
    return left if left > 0 else None


def max_restarts(pod: Obj) -> int:
    """The highest restart count among the pod's containers."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses if isinstance(s, dict)),
               default=0)


def node_name(pod: Obj) -> str:
    """spec.nodeName, or empty."""
    return (pod.get("spec") or {}).get("nodeName") or ""


def creation_time(pod: Obj) -> str:
    """metadata.creationTimestamp as stored (RFC 3339 sorts as text)."""
    return (pod.get("metadata") or {}).get("creationTimestamp") or ""


def restart_count(pod: Obj) -> int:
    """Sum of restarts over init and regular containers."""
    st = pod.get("status") or {}
    return sum(int(c.get("restartCount") or 0)
               for key in ("initContainerStatuses", "containerStatuses")
               for c in st.get(key) or [])


def finish_time(pod: Obj) -> dt.datetime:
    """When the pod finished: its last container's finishedAt, else a best guess."""
    latest: dt.datetime | None = None
    st = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for c in st.get(key) or []:
            term = ((c.get("state") or {}).get("terminated")) or {}
            t = m.parse_time(term.get("finishedAt") or "")
            if t is not None and (latest is None or t > latest):
                latest = t
    if latest is not None:
        return latest
    c = ready_condition(pod)
    if c is not None and c.get("status") == "False":
        t = m.parse_time(c.get("lastTransitionTime") or "")
        if t is not None:
            return t
    md = pod.get("metadata") or {}
    for value in (md.get("deletionTimestamp"), md.get("creationTimestamp")):
        t = m.parse_time(value or "")
        if t is not None:
            return t
    return m.now()


_PHASE_RANK = {PENDING: 0, "Unknown": 1, RUNNING: 2}


def deletion_rank(pod: Obj) -> tuple[Any, ...]:
    """Sort key putting the pods best deleted first (upstream's ActivePods order).

    Unassigned before assigned, pending before unknown before running, not ready
    before ready, more restarts first, newer before older.
    """
    ready = is_ready(pod)
    since = ready_since(pod)
    return (
        1 if node_name(pod) else 0,
        _PHASE_RANK.get(phase(pod), 0),
        1 if ready else 0,
        # Ready longer is more valuable: newer readiness first (negate the timestamp).
        -(since.timestamp() if since else 0.0),
        -restart_count(pod),
        _negated(creation_time(pod)),
    )


def _negated(text: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in text)

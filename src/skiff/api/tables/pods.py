"""The Pod table: READY, STATUS and RESTARTS summarise every container.

STATUS is not `status.phase`: upstream folds init progress ("Init:0/2"), the
reason a container is waiting or terminated ("CrashLoopBackOff", "Completed",
"ContainerCreating") and deletion ("Terminating") into one word, because that
word is what a user needs to see first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from skiff.api.tables.age import age, elapsed, human_duration, parse_time
from skiff.api.tables.columns import (
    AGE_DESCRIPTION,
    Printer,
    column,
    integer,
    items,
    meta,
    name_column,
    sub,
    text,
)

NONE = "<none>"
# The reason the node lifecycle controller gives pods on a node that went away.
NODE_LOST = "NodeLost"

COLUMNS = [
    name_column(),
    column("Ready", "string", "Ready containers out of all the containers of the pod."),
    column("Status", "string", "A one-word summary of the pod and its containers."),
    column(
        "Restarts",
        "string",
        "Container restarts in the pod, with how long ago the latest one happened.",
    ),
    column("Age", "string", AGE_DESCRIPTION),
    column("IP", "string", "The pod's primary IP address.", priority=1),
    column("Node", "string", "The node the pod is bound to.", priority=1),
    column(
        "Nominated Node",
        "string",
        "The node where preemption made room for the pod, while it waits to be bound.",
        priority=1,
    ),
    column(
        "Readiness Gates",
        "string",
        "Readiness gate conditions that are True, out of all of the pod's gates.",
        priority=1,
    ),
]


def _condition_true(status: dict[str, Any], type_: str) -> bool:
    for cond in items(status.get("conditions")):
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond.get("status") == "True"
    return False


def _restartable(container: Any) -> bool:
    """Sidecar init containers (restartPolicy Always) count as regular containers."""
    return isinstance(container, dict) and container.get("restartPolicy") == "Always"


def _finished_at(cs: dict[str, Any]) -> datetime | None:
    return parse_time(sub(cs, "lastState", "terminated").get("finishedAt"))


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _state(state: dict[str, Any], which: str) -> dict[str, Any] | None:
    value = state.get(which)
    return value if isinstance(value, dict) else None


def _terminated_reason(term: dict[str, Any], prefix: str = "") -> str:
    reason = text(term.get("reason"))
    if reason:
        return prefix + reason
    signal = term.get("signal") or 0
    if signal:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{term.get('exitCode') or 0}"


class _Summary:
    """The running totals while walking a pod's container statuses."""

    def __init__(self, reason: str, total: int) -> None:
        self.reason = reason
        self.total = total
        self.ready = 0
        self.restarts = 0
        self.last_restart: datetime | None = None
        self.sidecar_restarts = 0
        self.sidecar_last_restart: datetime | None = None


def _walk_init(pod: dict[str, Any], s: _Summary) -> bool:
    """Account for init containers; True while the pod is still initialising."""
    spec, status = sub(pod, "spec"), sub(pod, "status")
    init_specs = {
        text(c.get("name")): c for c in items(spec.get("initContainers")) if isinstance(c, dict)
    }
    n_init = len(items(spec.get("initContainers")))
    for i, cs in enumerate(items(status.get("initContainerStatuses"))):
        if not isinstance(cs, dict):
            continue
        restarts = integer(cs.get("restartCount"))
        finished = _finished_at(cs)
        s.restarts += restarts
        s.last_restart = _later(s.last_restart, finished)
        sidecar = _restartable(init_specs.get(text(cs.get("name"))))
        if sidecar:
            s.sidecar_restarts += restarts
            s.sidecar_last_restart = _later(s.sidecar_last_restart, finished)
        state = sub(cs, "state")
        term = _state(state, "terminated")
        waiting = _state(state, "waiting")
        if term is not None and integer(term.get("exitCode")) == 0:
            continue
        if sidecar and cs.get("started") is True:
            if cs.get("ready"):
                s.ready += 1
            continue
        if term is not None:
            s.reason = _terminated_reason(term, "Init:")
        elif waiting is not None and text(waiting.get("reason")) not in ("", "PodInitializing"):
            s.reason = "Init:" + text(waiting.get("reason"))
        else:
            s.reason = f"Init:{i}/{n_init}"
        return True
    return False


def _walk_containers(pod: dict[str, Any], s: _Summary) -> None:
    status = sub(pod, "status")
    s.restarts = s.sidecar_restarts
    s.last_restart = s.sidecar_last_restart
    has_running = False
    # Walk backwards so the first container's reason is the one that sticks.
    for cs in reversed(items(status.get("containerStatuses"))):
        if not isinstance(cs, dict):
            continue
        s.restarts += integer(cs.get("restartCount"))
        s.last_restart = _later(s.last_restart, _finished_at(cs))
        state = sub(cs, "state")
        waiting_reason = text(sub(state, "waiting").get("reason"))
        if waiting_reason:
            s.reason = waiting_reason
        elif (term := _state(state, "terminated")) is not None:
            s.reason = _terminated_reason(term)
        elif cs.get("ready") and _state(state, "running") is not None:
            has_running = True
            s.ready += 1
    if s.reason == "Completed" and has_running:
        s.reason = "Running" if _condition_true(status, "Ready") else "NotReady"


def pod_status(pod: dict[str, Any]) -> tuple[str, int, int, int, datetime | None]:
    """(STATUS, ready containers, total containers, restarts, time of the latest restart)."""
    spec, status = sub(pod, "spec"), sub(pod, "status")
    phase = text(status.get("phase"))
    reason = text(status.get("reason")) or phase
    for cond in items(status.get("conditions")):
        if (
            isinstance(cond, dict)
            and cond.get("type") == "PodScheduled"
            and cond.get("reason") == "SchedulingGated"
        ):
            reason = "SchedulingGated"
    total = len(items(spec.get("containers"))) + sum(
        1 for c in items(spec.get("initContainers")) if isinstance(c, dict) and _restartable(c)
    )
    s = _Summary(reason, total)
    initializing = _walk_init(pod, s)
    if not initializing or _condition_true(status, "Initialized"):
        _walk_containers(pod, s)
    deleting = bool(meta(pod).get("deletionTimestamp"))
    if deleting and status.get("reason") == NODE_LOST:
        s.reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        s.reason = "Terminating"
    return s.reason, s.ready, s.total, s.restarts, s.last_restart


def _restarts_cell(restarts: int, last: datetime | None, now: datetime) -> str:
    if restarts and last is not None:
        return f"{restarts} ({human_duration(elapsed(last, now))} ago)"
    return str(restarts)


def _readiness_gates(pod: dict[str, Any]) -> str:
    gates = [g for g in items(sub(pod, "spec").get("readinessGates")) if isinstance(g, dict)]
    if not gates:
        return NONE
    conditions = [c for c in items(sub(pod, "status").get("conditions")) if isinstance(c, dict)]
    true = 0
    for gate in gates:
        for cond in conditions:
            if cond.get("type") == gate.get("conditionType"):
                true += cond.get("status") == "True"
                break
    return f"{true}/{len(gates)}"


def pod_cells(pod: dict[str, Any], now: datetime) -> list[Any]:
    """One pod's row."""
    reason, ready, total, restarts, last = pod_status(pod)
    spec, status = sub(pod, "spec"), sub(pod, "status")
    ips = [p for p in items(status.get("podIPs")) if isinstance(p, dict)]
    ip = text(ips[0].get("ip")) if ips else text(status.get("podIP"))
    return [
        text(meta(pod).get("name")),
        f"{ready}/{total}",
        reason,
        _restarts_cell(restarts, last, now),
        age(pod, now),
        ip or NONE,
        text(spec.get("nodeName")) or NONE,
        text(status.get("nominatedNodeName")) or NONE,
        _readiness_gates(pod),
    ]


def pod_conditions(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """Marks rows of finished pods Completed, which clients may use to dim or hide them."""
    phase = sub(pod, "status").get("phase")
    if phase == "Succeeded":
        message = "Every container of the pod exited successfully."
    elif phase == "Failed":
        message = "The pod ended in failure."
    else:
        return []
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


PRINTERS = {"core/pods": Printer(COLUMNS, pod_cells, pod_conditions)}

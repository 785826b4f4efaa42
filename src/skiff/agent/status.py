"""A pod's status computed from what the runtime reports, as the kubelet computes it.

Inputs are the runtime's containers of the pod (latest instance and the one before,
per name), what the agent knows beyond the runtime (why a container waits: config
errors, back-off), and probe verdicts. Output is the `status` object: phase,
conditions, container statuses, IPs and start time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from skiff.api import meta as m
from skiff.runtime.protocol import EXITED, RUNNING, UNKNOWN, ContainerStatus

Obj = dict[str, Any]
SCHEME = "process://"


def ts(epoch: float) -> str:
    """An RFC 3339 timestamp of a UNIX time (second precision, as the API stores it)."""
    return m.rfc3339(dt.datetime.fromtimestamp(epoch, dt.UTC)) if epoch else ""


@dataclass
class Observed:
    """What the agent knows about one pod beyond the pod object."""

    containers: dict[str, list[ContainerStatus]] = field(default_factory=dict)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    ready: dict[str, bool] = field(default_factory=dict)
    started: dict[str, bool] = field(default_factory=dict)
    termination_messages: dict[str, str] = field(default_factory=dict)
    initialized: bool = False
    sandbox_ready: bool = False
    terminating: bool = False
    host_ip: str = ""
    pod_ip: str = ""
    start_time: str = ""
    scheme: str = SCHEME


def latest(instances: list[ContainerStatus]) -> ContainerStatus | None:
    """The newest instance of a container (highest attempt)."""
    return max(instances, key=lambda c: (c.attempt, c.created_at)) if instances else None


def previous(instances: list[ContainerStatus]) -> ContainerStatus | None:
    """The instance before the newest one."""
    ordered = sorted(instances, key=lambda c: (c.attempt, c.created_at))
    return ordered[-2] if len(ordered) >= 2 else None


def _terminated(c: ContainerStatus, scheme: str, message: str = "") -> Obj:
    out: Obj = {"exitCode": c.exit_code, "reason": c.reason or ("Completed" if c.exit_code == 0
                                                                 else "Error"),
                "startedAt": ts(c.started_at) or None, "finishedAt": ts(c.finished_at) or None,
                "containerID": scheme + c.id}
    msg = message or c.message
    if msg:
        out["message"] = msg
    if c.exit_code != 0 and c.reason == "StartError":
        out["startedAt"] = ts(c.started_at or c.finished_at)
    return out


def container_status(spec: Obj, obs: Observed, default_waiting: str) -> Obj:
    """One entry of containerStatuses / initContainerStatuses."""
    name = spec.get("name", "")
    instances = obs.containers.get(name) or []
    cur = latest(instances)
    prev = previous(instances)
    out: Obj = {"name": name, "image": spec.get("image", ""), "imageID": "",
                "ready": False, "restartCount": cur.attempt if cur else 0,
                "started": False, "lastState": {}}
    waiting = obs.waiting.get(name)
    if cur is not None:
        out["containerID"] = obs.scheme + cur.id
    if waiting is not None:
        reason, message = waiting
        out["state"] = {"waiting": {"reason": reason, **({"message": message} if message
                                                           else {})}}
        if cur is not None and cur.state in (EXITED, UNKNOWN):
            out["lastState"] = {"terminated": _terminated(
                cur, obs.scheme, obs.termination_messages.get(cur.id, ""))}
        elif prev is not None:
            out["lastState"] = {"terminated": _terminated(
                prev, obs.scheme, obs.termination_messages.get(prev.id, ""))}
        return out
    if cur is None:
        out["state"] = {"waiting": {"reason": default_waiting}}
        return out
    if prev is not None:
        out["lastState"] = {"terminated": _terminated(
            prev, obs.scheme, obs.termination_messages.get(prev.id, ""))}
    if cur.state == RUNNING:
        out["state"] = {"running": {"startedAt": ts(cur.started_at)}}
        out["started"] = obs.started.get(name, True)
        out["ready"] = obs.ready.get(name, True) and not obs.terminating
    elif cur.state in (EXITED, UNKNOWN):
        out["state"] = {"terminated": _terminated(cur, obs.scheme,
                                                  obs.termination_messages.get(cur.id, ""))}
    else:
        out["state"] = {"waiting": {"reason": default_waiting}}
    return out


def _counts(statuses: list[Obj]) -> tuple[int, int, int, int]:
    running = waiting = succeeded = failed = 0
    for st in statuses:
        state = st.get("state") or {}
        last = (st.get("lastState") or {}).get("terminated")
        if "running" in state:
            running += 1
        elif "terminated" in state:
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
            else:
                failed += 1
        elif last is not None:
            if last.get("exitCode") == 0:
                succeeded += 1
            else:
                failed += 1
        else:
            waiting += 1
    return running, waiting, succeeded, failed


def phase(pod: Obj, init_statuses: list[Obj], statuses: list[Obj], initialized: bool,
          terminating: bool = False) -> str:
    """Upstream's pod phase from its container statuses."""
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    if not initialized:
        if policy == "Never":
            for st in init_statuses:
                term = (st.get("state") or {}).get("terminated")
                if term is not None and term.get("exitCode") != 0:
                    return "Failed"
        return "Pending"
    running, waiting, succeeded, failed = _counts(statuses)
    if terminating:
        policy = "Never"
    if waiting > 0 and not terminating:
        return "Pending"
    if running > 0:
        return "Running"
    if succeeded + failed == 0:
        return "Pending"
    if policy == "Always":
        return "Running"
    if failed == 0:
        return "Succeeded"
    if policy == "OnFailure":
        return "Running"
    return "Failed"


def _condition(ctype: str, ok: bool, reason: str = "", message: str = "") -> Obj:
    out: Obj = {"type": ctype, "status": "True" if ok else "False",
                "lastProbeTime": None, "lastTransitionTime": m.rfc3339()}
    if not ok and reason:
        out["reason"] = reason
    if not ok and message:
        out["message"] = message
    return out


def build_status(pod: Obj, obs: Observed) -> Obj:
    """The pod's whole status."""
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    init_specs = spec.get("initContainers") or []
    init_statuses = [container_status(c, obs, "PodInitializing") for c in init_specs]
    main_default = "PodInitializing" if init_specs and not obs.initialized else \
        "ContainerCreating"
    statuses = [container_status(c, obs, main_default) for c in spec.get("containers") or []]
    for init in init_statuses:
        term = (init.get("state") or {}).get("terminated")
        init["ready"] = bool(term and term.get("exitCode") == 0)
        init["started"] = "running" in (init.get("state") or {})
    ph = phase(pod, init_statuses, statuses, obs.initialized, obs.terminating)
    unready = [st["name"] for st in statuses if not st.get("ready")]
    incomplete = [init["name"] for init in init_statuses if not init.get("ready")]
    conditions = []
    conditions.append(_condition("PodReadyToStartContainers", obs.sandbox_ready))
    if obs.initialized or not incomplete:
        conditions.append(_condition("Initialized", True))
    else:
        conditions.append(_condition("Initialized", False, "ContainersNotInitialized",
                                     f"containers with incomplete status: "
                                     f"[{' '.join(incomplete)}]"))
    terminal = ph in ("Succeeded", "Failed")
    if terminal:
        ready_reason, ready_msg = "PodCompleted", ""
    else:
        ready_reason = "ContainersNotReady"
        ready_msg = f"containers with unready status: [{' '.join(unready)}]"
    containers_ready = not unready and not terminal
    conditions.append(_condition("ContainersReady", containers_ready, ready_reason, ready_msg))
    gates_ok = True
    for gate in spec.get("readinessGates") or []:
        got = m.condition(pod, gate.get("conditionType", ""))
        if not got or got.get("status") != "True":
            gates_ok = False
    ready = containers_ready and gates_ok
    if not gates_ok and containers_ready:
        conditions.append(_condition("Ready", False, "ReadinessGatesNotReady",
                                     "corresponding condition of pod readiness gate "
                                     "is not True"))
    else:
        conditions.append(_condition("Ready", ready, ready_reason, ready_msg))
    if not any(c.get("type") == "PodScheduled" for c in old.get("conditions") or []):
        # A pod bound by spec.nodeName never saw a scheduler; the kubelet says it is.
        conditions.append(_condition("PodScheduled", True))
    owned = {c["type"] for c in conditions}
    for c in old.get("conditions") or []:
        if c.get("type") not in owned:
            conditions.append(c)
    # Keep transition times of conditions whose status did not change.
    previous_conditions = {c.get("type"): c for c in old.get("conditions") or []}
    for c in conditions:
        before = previous_conditions.get(c["type"])
        if before is not None and before.get("status") == c["status"]:
            c["lastTransitionTime"] = before.get("lastTransitionTime") or c["lastTransitionTime"]
    order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
             "PodScheduled"]
    conditions.sort(key=lambda c: order.index(c["type"]) if c["type"] in order else 99)
    out: Obj = {"phase": ph, "conditions": conditions}
    if obs.host_ip:
        out["hostIP"] = obs.host_ip
        out["hostIPs"] = [{"ip": obs.host_ip}]
    if obs.pod_ip and obs.sandbox_ready:
        out["podIP"] = obs.pod_ip
        out["podIPs"] = [{"ip": obs.pod_ip}]
    if obs.start_time:
        out["startTime"] = obs.start_time
    if init_statuses:
        out["initContainerStatuses"] = init_statuses
    # Upstream lists container statuses by name (init containers in spec order).
    out["containerStatuses"] = sorted(statuses, key=lambda c: c["name"])
    if old.get("qosClass"):
        out["qosClass"] = old["qosClass"]
    for key in ("nominatedNodeName", "resize", "resourceClaimStatuses"):
        if key in old:
            out[key] = old[key]
    return out


def comparable(status: Obj) -> Obj:
    """The status without fields that change on every computation."""
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k not in ("lastTransitionTime",
                                                                   "lastProbeTime")}
                         for c in status.get("conditions") or []]
    return out

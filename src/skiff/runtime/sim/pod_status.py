"""The status a simulated kubelet reports for a pod, as a pure function of the pod.

Simulated containers have nothing to run, so they start at once and run until the
pod is deleted. A pod may ask to see its containers exit, which is how Jobs and
restart policies are exercised on simulated nodes:

    metadata.annotations:
      skiff.dev/sim-exit-after: "5s"   # containers exit this long after they start
      skiff.dev/sim-exit-code: "1"     # with this exit code (default 0)

The pod's restartPolicy then decides, as the kubelet does: `Never` ends the pod
(Succeeded on code 0, Failed otherwise), `OnFailure` ends it on code 0 and restarts
the containers otherwise, `Always` restarts them whatever the code.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

from skiff.api import meta as m

Obj = dict[str, Any]

EXIT_AFTER = "skiff.dev/sim-exit-after"
EXIT_CODE = "skiff.dev/sim-exit-code"

MIN_RESTART_INTERVAL = 1.0

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """Go-style durations (`1m30s`, `500ms`) or plain seconds; None if unreadable."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    if not _DURATION.match(text):
        return None
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))


def exit_plan(pod: Obj) -> tuple[float, int] | None:
    """(seconds after start, exit code) if the pod asked its containers to exit."""
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    after = ann.get(EXIT_AFTER)
    if after is None:
        return None
    seconds = parse_duration(str(after))
    if seconds is None:
        return None
    try:
        code = int(str(ann.get(EXIT_CODE, "0")).strip())
    except ValueError:
        code = 1
    return seconds, code


def _container_id(pod: Obj, name: str, restarts: int) -> str:
    seed = f"{m.uid_of(pod)}/{name}/{restarts}".encode()
    return "sim://" + hashlib.sha256(seed).hexdigest()[:32]


def _image_id(image: str) -> str:
    return "sim://" + image


def _conditions(pod: Obj, now: str, ready: bool, reason: str = "") -> list[Obj]:
    old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []
           if isinstance(c, dict)}

    def cond(ctype: str, status: str, why: str = "") -> Obj:
        prev = old.get(ctype)
        since = prev.get("lastTransitionTime") if prev and prev.get("status") == status else now
        c: Obj = {"type": ctype, "status": status, "lastProbeTime": None,
                  "lastTransitionTime": since}
        if why:
            c["reason"] = why
        return c

    flag = "True" if ready else "False"
    out = [cond("PodReadyToStartContainers", "True" if ready or not reason else "False"),
           cond("Initialized", "True"),
           cond("Ready", flag, reason),
           cond("ContainersReady", flag, reason)]
    out.append(old.get("PodScheduled") or cond("PodScheduled", "True"))
    return out


def _init_statuses(pod: Obj, started: str) -> list[Obj]:
    out = []
    for c in (pod.get("spec") or {}).get("initContainers") or []:
        name = c.get("name", "")
        out.append({
            "name": name, "image": c.get("image", ""), "imageID": _image_id(c.get("image", "")),
            "containerID": _container_id(pod, name, 0), "ready": True, "restartCount": 0,
            "started": False,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                     "startedAt": started, "finishedAt": started,
                                     "containerID": _container_id(pod, name, 0)}},
            "lastState": {},
        })
    return out


def _running(pod: Obj, c: Obj, started: str, restarts: int, last: Obj | None) -> Obj:
    name = c.get("name", "")
    return {
        "name": name, "image": c.get("image", ""), "imageID": _image_id(c.get("image", "")),
        "containerID": _container_id(pod, name, restarts), "ready": True, "started": True,
        "restartCount": restarts, "state": {"running": {"startedAt": started}},
        "lastState": last or {},
    }


def _base(pod: Obj, host_ip: str, pod_ip: str, now: str) -> Obj:
    old = pod.get("status") or {}
    status: Obj = {
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": old.get("startTime") or now,
    }
    if old.get("qosClass"):
        status["qosClass"] = old["qosClass"]
    return status


def running_status(pod: Obj, host_ip: str, pod_ip: str, now: str) -> Obj:
    """Every container started and ready, init containers completed."""
    status = _base(pod, host_ip, pod_ip, now)
    status["phase"] = "Running"
    status["conditions"] = _conditions(pod, now, ready=True)
    status["initContainerStatuses"] = _init_statuses(pod, now)
    status["containerStatuses"] = [_running(pod, c, now, 0, None)
                                   for c in (pod.get("spec") or {}).get("containers") or []]
    if not status["initContainerStatuses"]:
        del status["initContainerStatuses"]
    return status


def _terminated(c: Obj, code: int, started: str, now: str, cid: str) -> Obj:
    return {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                           "startedAt": started, "finishedAt": now, "containerID": cid}}


def exited_status(pod: Obj, code: int, now: str) -> Obj:
    """The status after the containers exited with `code`, per the restart policy."""
    old = pod.get("status") or {}
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    restart = policy == "Always" or (policy == "OnFailure" and code != 0)
    status = {k: v for k, v in old.items() if k not in ("conditions", "containerStatuses")}
    containers = []
    for cs in old.get("containerStatuses") or []:
        started = ((cs.get("state") or {}).get("running") or {}).get("startedAt") or now
        term = _terminated(cs, code, started, now, cs.get("containerID", ""))
        if restart:
            spec_c = {"name": cs.get("name"), "image": cs.get("image")}
            containers.append(_running(pod, spec_c, now, int(cs.get("restartCount") or 0) + 1,
                                       term))
        else:
            containers.append({**cs, "ready": False, "started": False, "state": term})
    status["containerStatuses"] = containers
    if restart:
        status["phase"] = "Running"
        status["conditions"] = _conditions(pod, now, ready=True)
    else:
        status["phase"] = "Succeeded" if code == 0 else "Failed"
        status["conditions"] = _conditions(pod, now, ready=False, reason="PodCompleted")
    return status


def _started_at(pod: Obj) -> dt.datetime | None:
    latest: dt.datetime | None = None
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        at = m.parse_time(((cs.get("state") or {}).get("running") or {}).get("startedAt") or "")
        if at is not None and (latest is None or at > latest):
            latest = at
    return latest


def is_running_here(pod: Obj, pod_ip: str) -> bool:
    """Whether the pod already shows what `running_status` would write."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running" or not status.get("podIP"):
        return False
    if pod_ip and status.get("podIP") != pod_ip:
        return False
    want = {c.get("name") for c in (pod.get("spec") or {}).get("containers") or []}
    have = {c.get("name") for c in status.get("containerStatuses") or []}
    return want == have


def next_status(pod: Obj, host_ip: str, pod_ip: str,
                now: dt.datetime | None = None) -> tuple[Obj | None, float | None]:
    """(status to write or None, seconds until the pod needs another look or None)."""
    at = now or m.now()
    stamp = m.rfc3339(at)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return None, None
    plan = exit_plan(pod)
    if not is_running_here(pod, pod_ip):
        status = running_status(pod, host_ip, pod_ip, stamp)
        return status, (plan[0] if plan else None)
    if plan is None:
        return None, None
    after, code = plan
    if any(int(cs.get("restartCount") or 0) for cs in
           (pod.get("status") or {}).get("containerStatuses") or []):
        # A restart loop with no pause would write as fast as the server allows.
        after = max(after, MIN_RESTART_INTERVAL)
    started = _started_at(pod)
    if started is None:
        return None, None
    wait = (started + dt.timedelta(seconds=after) - at).total_seconds()
    if wait > 0:
        return None, wait
    status = exited_status(pod, code, stamp)
    again = max(after, MIN_RESTART_INTERVAL) if status["phase"] == "Running" else None
    return status, again

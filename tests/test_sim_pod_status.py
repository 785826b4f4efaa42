"""The simulated kubelet's pod status: running at once, exits per restartPolicy."""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.runtime.sim.pod_status import (
    EXIT_AFTER,
    EXIT_CODE,
    exit_plan,
    next_status,
    parse_duration,
)

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def pod(restart: str = "Always", annotations: dict[str, str] | None = None,
        init: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": "n1", "restartPolicy": restart,
                            "containers": [{"name": "a", "image": "nginx"},
                                           {"name": "b", "image": "busybox"}]}
    if init:
        spec["initContainers"] = [{"name": "setup", "image": "busybox"}]
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1",
                         "annotations": annotations or {}},
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": "BestEffort",
                       "conditions": [{"type": "PodScheduled", "status": "True",
                                       "lastTransitionTime": "2026-01-01T11:59:59Z"}]}}


def cond(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == ctype)


def test_pending_pod_becomes_running_and_ready() -> None:
    status, again = next_status(pod(init=True), "172.16.0.1", "10.64.0.2", T0)
    assert again is None
    assert status is not None
    assert status["phase"] == "Running"
    assert status["podIP"] == "10.64.0.2" and status["podIPs"] == [{"ip": "10.64.0.2"}]
    assert status["hostIP"] == "172.16.0.1"
    assert status["startTime"] == "2026-01-01T12:00:00Z"
    assert status["qosClass"] == "BestEffort"
    for ctype in ("Initialized", "Ready", "ContainersReady", "PodReadyToStartContainers"):
        assert cond(status, ctype)["status"] == "True"
    # The binding's condition is kept as it was.
    assert cond(status, "PodScheduled")["lastTransitionTime"] == "2026-01-01T11:59:59Z"
    names = [c["name"] for c in status["containerStatuses"]]
    assert names == ["a", "b"]
    for c in status["containerStatuses"]:
        assert c["ready"] and c["started"] and c["restartCount"] == 0
        assert c["state"]["running"]["startedAt"] == "2026-01-01T12:00:00Z"
        assert c["containerID"].startswith("sim://")
    init = status["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed"


def test_running_pod_needs_no_write() -> None:
    p = pod()
    p["status"], _ = next_status(p, "172.16.0.1", "10.64.0.2", T0)
    assert next_status(p, "172.16.0.1", "10.64.0.2", T0 + dt.timedelta(hours=1)) == (None, None)


def _run(restart: str, code: int) -> tuple[dict[str, Any], dict[str, Any] | None, float | None]:
    p = pod(restart, {EXIT_AFTER: "5s", EXIT_CODE: str(code)})
    p["status"], again = next_status(p, "h", "10.64.0.2", T0)
    assert again == 5.0
    assert next_status(p, "h", "10.64.0.2", T0 + dt.timedelta(seconds=2)) == (None, 3.0)
    status, again = next_status(p, "h", "10.64.0.2", T0 + dt.timedelta(seconds=5))
    return p, status, again


def test_never_ends_the_pod_with_the_exit_code() -> None:
    _, status, again = _run("Never", 0)
    assert status is not None and again is None
    assert status["phase"] == "Succeeded"
    term = status["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
    assert cond(status, "Ready")["status"] == "False"
    assert cond(status, "Ready")["reason"] == "PodCompleted"
    _, status, _ = _run("Never", 3)
    assert status is not None and status["phase"] == "Failed"
    assert status["containerStatuses"][1]["state"]["terminated"]["reason"] == "Error"


def test_on_failure_restarts_only_failures() -> None:
    _, status, _ = _run("OnFailure", 0)
    assert status is not None and status["phase"] == "Succeeded"
    _, status, again = _run("OnFailure", 2)
    assert status is not None and status["phase"] == "Running"
    c = status["containerStatuses"][0]
    assert c["restartCount"] == 1 and "running" in c["state"]
    assert c["lastState"]["terminated"]["exitCode"] == 2
    assert again == 5.0


def test_always_restarts_even_on_success() -> None:
    _, status, _ = _run("Always", 0)
    assert status is not None and status["phase"] == "Running"
    assert status["containerStatuses"][0]["restartCount"] == 1


def test_finished_pods_stay_finished() -> None:
    p, status, _ = _run("Never", 0)
    p["status"] = status
    assert next_status(p, "h", "10.64.0.2", T0 + dt.timedelta(hours=1)) == (None, None)


def test_durations() -> None:
    assert parse_duration("1m30s") == 90
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2") == 2
    assert parse_duration("soon") is None
    assert exit_plan(pod(annotations={EXIT_AFTER: "soon"})) is None
    assert exit_plan(pod(annotations={EXIT_AFTER: "1s", EXIT_CODE: "x"})) == (1.0, 1)

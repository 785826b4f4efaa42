"""The Pod table: READY, STATUS and RESTARTS as `kubectl get pods` shows them."""

from datetime import UTC, datetime
from typing import Any

from skiff.api.tables import to_table

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
CREATED = "2024-05-01T11:00:00Z"


def pod(
    *,
    containers: int = 1,
    statuses: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    conditions: list[dict[str, Any]] | None = None,
    **meta: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}"} for i in range(containers)]}
    if init is not None:
        spec["initContainers"] = init
    status: dict[str, Any] = {"phase": phase, "containerStatuses": statuses or []}
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if conditions is not None:
        status["conditions"] = conditions
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "creationTimestamp": CREATED, **meta},
        "spec": spec,
        "status": status,
    }


def running(ready: bool = True, restarts: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "name": "c",
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": CREATED}},
        **extra,
    }


def row(obj: dict[str, Any]) -> list[Any]:
    return to_table("core/pods", [obj], now=NOW)["rows"][0]["cells"]


def test_columns_and_wide_priorities() -> None:
    cols = to_table("core/pods", [], now=NOW)["columnDefinitions"]
    assert [c["name"] for c in cols] == [
        "Name", "Ready", "Status", "Restarts", "Age",
        "IP", "Node", "Nominated Node", "Readiness Gates",
    ]  # fmt: skip
    assert [c["priority"] for c in cols] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert cols[0]["format"] == "name"


def test_half_ready_pod_with_restarts_shows_when_last_restarted() -> None:
    last = {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:55:00Z"}}
    obj = pod(
        containers=2,
        statuses=[
            running(ready=True, restarts=1),
            running(ready=False, restarts=2, lastState=last),
        ],
    )
    cells = row(obj)
    assert cells[:5] == ["p", "1/2", "Running", "3 (5m ago)", "60m"]


def test_restarts_without_a_known_time_are_a_bare_number() -> None:
    assert row(pod(statuses=[running(restarts=3)]))[3] == "3"


def test_crashlooping_pod() -> None:
    crash = {
        "name": "c",
        "ready": False,
        "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 2, "finishedAt": "2024-05-01T11:58:00Z"}},
    }
    cells = row(pod(statuses=[crash]))
    assert cells[1:4] == ["0/1", "CrashLoopBackOff", "4 (2m ago)"]


def test_terminating_pod() -> None:
    obj = pod(statuses=[running()], deletionTimestamp="2024-05-01T11:59:00Z")
    assert row(obj)[2] == "Terminating"


def test_deleted_pod_on_a_lost_node_is_unknown() -> None:
    obj = pod(statuses=[running()], deletionTimestamp="2024-05-01T11:59:00Z")
    obj["status"]["reason"] = "NodeLost"
    assert row(obj)[2] == "Unknown"


def test_finished_pod_being_deleted_keeps_its_phase_reason() -> None:
    done = {"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    obj = pod(statuses=[done], phase="Succeeded", deletionTimestamp="2024-05-01T11:59:00Z")
    assert row(obj)[2] == "Completed"


def test_completed_pod_gets_a_completed_row_condition() -> None:
    done = {"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    r = to_table("core/pods", [pod(statuses=[done], phase="Succeeded")], now=NOW)["rows"][0]
    assert r["cells"][1:3] == ["0/1", "Completed"]
    assert r["conditions"][0]["type"] == "Completed"
    assert r["conditions"][0]["reason"] == "Succeeded"


def test_container_creating_and_pending() -> None:
    waiting = {"name": "c", "ready": False, "state": {"waiting": {"reason": "ContainerCreating"}}}
    assert row(pod(statuses=[waiting], phase="Pending"))[2] == "ContainerCreating"
    assert row(pod(phase="Pending"))[2] == "Pending"


def test_terminated_without_reason_shows_exit_code_or_signal() -> None:
    exit3 = {"name": "c", "state": {"terminated": {"exitCode": 3}}}
    sig9 = {"name": "c", "state": {"terminated": {"exitCode": 137, "signal": 9}}}
    assert row(pod(statuses=[exit3], phase="Failed"))[2] == "ExitCode:3"
    assert row(pod(statuses=[sig9], phase="Failed"))[2] == "Signal:9"


def test_init_progress() -> None:
    init = [{"name": "i0"}, {"name": "i1"}]
    first_running = [
        {"name": "i0", "state": {"running": {}}, "restartCount": 0},
        {"name": "i1", "state": {"waiting": {"reason": "PodInitializing"}}},
    ]
    obj = pod(init=init, init_statuses=first_running, phase="Pending")
    assert row(obj)[2] == "Init:0/2"
    second = [{"name": "i0", "state": {"terminated": {"exitCode": 0}}}, first_running[0]]
    assert row(pod(init=init, init_statuses=second, phase="Pending"))[2] == "Init:1/2"


def test_init_failures() -> None:
    init = [{"name": "i0"}]
    crash = [{"name": "i0", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]
    assert row(pod(init=init, init_statuses=crash, phase="Pending"))[2] == "Init:CrashLoopBackOff"
    err = [{"name": "i0", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]
    assert row(pod(init=init, init_statuses=err, phase="Pending"))[2] == "Init:Error"
    bare = [{"name": "i0", "state": {"terminated": {"exitCode": 5}}}]
    assert row(pod(init=init, init_statuses=bare, phase="Pending"))[2] == "Init:ExitCode:5"


def test_sidecar_init_container_counts_towards_ready() -> None:
    init = [{"name": "side", "restartPolicy": "Always"}]
    side = [{"name": "side", "started": True, "ready": True, "state": {"running": {}}}]
    obj = pod(
        init=init,
        init_statuses=side,
        statuses=[running()],
        conditions=[{"type": "Initialized", "status": "True"}],
    )
    assert row(obj)[1:3] == ["2/2", "Running"]


def test_completed_container_next_to_running_one_reads_running() -> None:
    done = {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    ready = [{"type": "Ready", "status": "True"}]
    assert row(pod(containers=2, statuses=[done, running()], conditions=ready))[2] == "Running"
    assert row(pod(containers=2, statuses=[done, running()]))[2] == "NotReady"


def test_scheduling_gated() -> None:
    gated = [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]
    assert row(pod(phase="Pending", conditions=gated))[2] == "SchedulingGated"


def test_wide_cells() -> None:
    obj = pod(statuses=[running()])
    obj["spec"]["nodeName"] = "node-1"
    obj["spec"]["readinessGates"] = [{"conditionType": "a"}, {"conditionType": "b"}]
    obj["status"]["podIPs"] = [{"ip": "10.0.0.7"}, {"ip": "fd00::7"}]
    obj["status"]["conditions"] = [
        {"type": "a", "status": "True"},
        {"type": "b", "status": "False"},
    ]
    assert row(obj)[5:] == ["10.0.0.7", "node-1", "<none>", "1/2"]
    assert row(pod())[5:] == ["<none>", "<none>", "<none>", "<none>"]


def test_pod_straight_from_a_user_has_no_status() -> None:
    bare = {"metadata": {"name": "bare"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    assert row(bare) == [
        "bare",
        "0/1",
        "",
        "0",
        "<unknown>",
        "<none>",
        "<none>",
        "<none>",
        "<none>",
    ]
    assert row({})[0] == ""

"""The scheduling queue: priority order, backoff, unschedulable pods and event hints."""

from __future__ import annotations

from typing import Any

from skiff.scheduler.pod_info import pod_info
from skiff.scheduler.queue import NODE_ADD, NODE_TAINT, POD_DELETE, QueuedPod, SchedulingQueue


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pod(name: str, priority: int = 0, **spec: Any) -> Any:
    return pod_info({"metadata": {"name": name, "namespace": "ns", "uid": name},
                     "spec": {"containers": [{"name": "c"}], "priority": priority, **spec}})


def test_higher_priority_first_then_oldest() -> None:
    clock = Clock()
    q = SchedulingQueue(clock)
    q.add(pod("low-old"))
    clock.now += 1
    q.add(pod("high", priority=10))
    clock.now += 1
    q.add(pod("low-new"))
    order = [q.pop_nowait().info.name for _ in range(3)]  # type: ignore[union-attr]
    assert order == ["high", "low-old", "low-new"]
    assert q.pop_nowait() is None


def test_backoff_doubles_from_one_to_ten_seconds() -> None:
    qp = QueuedPod(pod("p"), 0.0)
    expected = [1, 2, 4, 8, 10, 10]
    for attempts, seconds in enumerate(expected, start=1):
        qp.attempts = attempts
        qp.last_failure = 50.0
        assert qp.backoff_expiry() == 50.0 + seconds


def test_unschedulable_pods_wait_for_an_event_their_plugins_care_about() -> None:
    clock = Clock()
    q = SchedulingQueue(clock)
    q.add(pod("p"))
    qp = q.pop_nowait()
    assert qp is not None
    q.failed(qp, {"TaintToleration"})
    assert q.where("ns/p") == "unschedulable"
    assert q.move_for_event(POD_DELETE) == 0
    assert q.where("ns/p") == "unschedulable"
    assert q.move_for_event(NODE_TAINT) == 1
    # Still inside its 1 s backoff: it waits in backoffQ, then becomes active.
    assert q.where("ns/p") == "backoff"
    assert q.pop_nowait() is None
    clock.now += 1.01
    again = q.pop_nowait()
    assert again is not None and again.attempts == 2


def test_an_event_during_the_cycle_sends_the_failure_to_backoff() -> None:
    q = SchedulingQueue(Clock())
    q.add(pod("p"))
    qp = q.pop_nowait()
    assert qp is not None
    q.move_for_event(NODE_ADD)
    q.failed(qp, {"NodeResourcesFit"})
    assert q.where("ns/p") == "backoff"


def test_errors_back_off_and_deleted_pods_disappear() -> None:
    q = SchedulingQueue(Clock())
    q.add(pod("p"))
    qp = q.pop_nowait()
    assert qp is not None
    q.failed(qp, set(), error=True)
    assert q.where("ns/p") == "backoff"
    q.delete("ns/p")
    assert q.where("ns/p") == "" and len(q) == 0


def test_gated_pods_wait_until_their_gates_are_removed() -> None:
    q = SchedulingQueue(Clock())
    q.add(pod("g", schedulingGates=[{"name": "example.com/wait"}]))
    assert q.pop_nowait() is None
    assert q.move_for_event(NODE_ADD) == 0
    q.update(pod("g"))
    qp = q.pop_nowait()
    assert qp is not None and qp.info.name == "g"


def test_long_unschedulable_pods_are_flushed() -> None:
    clock = Clock()
    q = SchedulingQueue(clock)
    q.add(pod("p"))
    qp = q.pop_nowait()
    assert qp is not None
    q.failed(qp, {"NodeAffinity"})
    clock.now += 301
    q.flush_unschedulable()
    assert q.pop_nowait() is not None

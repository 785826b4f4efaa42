"""The scheduler's binding step with a fake pipeline: what is sent, a lost connection
retried once, a conflict taken as done, other failures undoing the assumption."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from skiff.api.errors import StatusError
from skiff.client import Client
from skiff.scheduler.algorithm import Decision
from skiff.scheduler.explain import ANNOTATION
from skiff.scheduler.framework import Diagnosis
from skiff.scheduler.pod_info import pod_info
from skiff.scheduler.queue import QueuedPod
from skiff.scheduler.scheduler import Scheduler
from tests.test_scheduler_plugins import node, pod


class FakePipeline:
    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[tuple[str, str, Any]] = []

    async def request(self, method: str, path: str, body: Any = None,
                      content_type: str = "application/json") -> Any:
        self.sent.append((method, path, body))
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        return {"kind": "Status", "status": "Success"}

    async def close(self) -> None:
        pass


def _scheduler(pipe: FakePipeline) -> tuple[Scheduler, QueuedPod, Decision]:
    sched = Scheduler(Client("https://127.0.0.1:1"), events=False)
    sched.pipeline = pipe  # type: ignore[assignment]
    sched.cache.set_node(node("n1"))
    info = pod_info(pod("p", cpu="1"))
    qp = QueuedPod(info, 0.0)
    sched.queue.add(info)
    sched.cache.assume(info, "n1")
    return sched, qp, Decision("n1", 1, 1, None, Diagnosis(total=1))


async def test_binding_names_the_node_and_carries_the_explanation() -> None:
    sched, qp, decision = _scheduler(FakePipeline())
    await sched._bind(qp, decision, 1)
    ((method, path, body),) = sched.pipeline.sent  # type: ignore[attr-defined]
    assert (method, path) == ("POST", "/api/v1/namespaces/default/pods/p/binding")
    assert body["target"] == {"apiVersion": "v1", "kind": "Node", "name": "n1"}
    assert body["metadata"]["uid"] == "uid-p"
    assert orjson.loads(body["metadata"]["annotations"][ANNOTATION])["node"] == "n1"
    assert sched.scheduled == 1


async def test_a_lost_connection_is_retried_once() -> None:
    sched, qp, decision = _scheduler(FakePipeline(ConnectionError("closed")))
    await sched._bind(qp, decision, 1)
    assert len(sched.pipeline.sent) == 2  # type: ignore[attr-defined]
    assert sched.scheduled == 1 and sched.cache.is_assumed("default/p")


async def test_a_conflict_after_the_retry_is_left_to_the_watch() -> None:
    conflict = StatusError(409, "Conflict", 'pod p is already assigned to node "n1"')
    sched, qp, decision = _scheduler(FakePipeline(ConnectionError("closed"), conflict))
    await sched._bind(qp, decision, 1)
    assert sched.scheduled == 0
    assert "default/p" not in sched.queue.pods


@pytest.mark.parametrize("error", [ConnectionError("closed"),
                                   StatusError(500, "InternalError", "boom")])
async def test_other_failures_undo_the_assumption_and_requeue(error: Exception) -> None:
    # A connection lost twice, or a server error.
    outcomes = [ConnectionError("closed"), error] if isinstance(error, ConnectionError) \
        else [error]
    sched, qp, decision = _scheduler(FakePipeline(*outcomes))
    await sched._bind(qp, decision, 1)
    assert sched.scheduled == 0
    assert not sched.cache.is_assumed("default/p") and "default/p" not in sched.cache.pods
    assert "default/p" in sched.queue.pods

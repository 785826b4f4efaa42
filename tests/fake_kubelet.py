"""A stand-in kubelet for controller tests: binds pods and reports them running and ready.

Workload controllers only see pods become Ready when something runs them. Until a
cluster has simulated or real nodes, tests drive pods through their lifecycle with
this helper, through the API as a kubelet would: bind (pods/binding), report status
(pods/status), and finish graceful deletions (a delete with grace period 0).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.http_client import Client
from skiff.client.informer import Informer, object_key, split_key
from skiff.client.workqueue import WorkQueue, run_workers

Obj = dict[str, Any]


class FakeKubelet:
    """Runs every pod in `namespace` on a node named `node` (no containers really run).

    `ready(pod)` decides whether a running pod reports Ready (default: always);
    `ready_delay` delays readiness after a pod starts, so rollouts are observable.
    """

    def __init__(self, client: Client, namespace: str, *, node: str = "fake-node",
                 ready: Callable[[Obj], bool] | None = None, ready_delay: float = 0.0,
                 nodes: list[str] | None = None) -> None:
        self.client = client
        self.namespace = namespace
        self.nodes = nodes or [node]
        self.ready = ready or (lambda pod: True)
        self.ready_delay = ready_delay
        self.pods = Informer(client, "", "v1", "pods", namespace)
        self.queue = WorkQueue(name="fake-kubelet")
        self.pods.on_add(lambda p: self.queue.add(object_key(p)))
        self.pods.on_update(lambda _o, p: self.queue.add(object_key(p)))
        self._task: asyncio.Task[None] | None = None
        self._informer_task: asyncio.Task[None] | None = None
        self._next_node = 0
        self._started: dict[str, float] = {}

    def poke(self) -> None:
        """Look at every pod again (after `ready` changed its mind)."""
        for key in self.pods.keys():
            self.queue.add(key)

    async def reconcile(self, key: str) -> float | None:
        """Move one pod one step along: bind, run, ready, or finish deleting."""
        pod = self.pods.get(key)
        if pod is None:
            return None
        ns, name = split_key(key)
        md = pod["metadata"]
        try:
            if md.get("deletionTimestamp"):
                await self.client.delete("", "v1", "pods", name, ns, grace_period_seconds=0,
                                         preconditions={"uid": md["uid"]})
                return None
            spec = pod.get("spec") or {}
            if not spec.get("nodeName"):
                node = self.nodes[self._next_node % len(self.nodes)]
                self._next_node += 1
                await self.client.request(
                    "POST", self.client.path("", "v1", "pods", name, ns, "binding"),
                    body={"apiVersion": "v1", "kind": "Binding",
                          "metadata": {"name": name, "namespace": ns},
                          "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
                return None
            loop = asyncio.get_running_loop()
            started = self._started.setdefault(md["uid"], loop.time())
            want_ready = self.ready(pod)
            if want_ready and loop.time() - started < self.ready_delay:
                return self.ready_delay - (loop.time() - started) + 0.01
            await self._report(pod, want_ready)
        except StatusError as err:
            if err.code not in (404, 409):
                raise
        return None

    async def _report(self, pod: Obj, ready: bool) -> None:
        status = pod.get("status") or {}
        ready_cond = m.condition(pod, "Ready")
        is_ready = ready_cond is not None and ready_cond.get("status") == "True"
        if status.get("phase") == "Running" and is_ready == ready:
            return
        now = m.rfc3339()
        flag = "True" if ready else "False"
        containers = (pod.get("spec") or {}).get("containers") or []
        new_status = {
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": f"10.1.{len(self._started) // 250}.{len(self._started) % 250 + 1}",
            "startTime": status.get("startTime") or now,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
                {"type": "Ready", "status": flag, "lastTransitionTime": now},
            ],
            "containerStatuses": [
                {"name": c.get("name", ""), "image": c.get("image", ""), "imageID": "",
                 "ready": ready, "restartCount": 0, "started": True,
                 "state": {"running": {"startedAt": now}}}
                for c in containers if isinstance(c, dict)
            ],
        }
        md = pod["metadata"]
        await self.client.patch("", "v1", "pods", md["name"], {"status": new_status},
                                md["namespace"], patch_type="merge", subresource="status")

    async def __aenter__(self) -> FakeKubelet:
        self._informer_task = self.pods.start()
        self._task = asyncio.create_task(run_workers(self.queue, self.reconcile, 4))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.queue.shutdown()
        self.pods.stop()
        for t in (self._task, self._informer_task):
            if t is not None:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await t

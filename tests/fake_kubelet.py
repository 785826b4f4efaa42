"""A stand-in for the scheduler and kubelet in controller tests.

Workload controllers only see pods become Ready when something runs them. Tests that
need no real or simulated nodes drive pods through their lifecycle with this helper,
through the API as the scheduler and a kubelet would: bind (pods/binding, to the node
a DaemonSet-style `matchFields` affinity names, else round-robin over `nodes`),
report status (pods/status: Running, Ready unless told otherwise), and finish
graceful deletions (the final zero-grace delete). Tests finish pods (Succeeded, or
Failed with an exit code) with `finish_pod`, or report them running with
`set_running`.
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


def target_node(pod: Obj) -> str:
    """The node a pod is pinned to by required `metadata.name` affinity, if any."""
    affinity = ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            if req.get("key") == "metadata.name" and req.get("operator") == "In":
                values = req.get("values") or []
                if len(values) == 1:
                    return values[0]
    return ""


def _container_statuses(pod: Obj, state: Obj, ready: bool) -> list[Obj]:
    return [{"name": c.get("name", ""), "image": c.get("image", ""), "ready": ready,
             "restartCount": 0, "started": ready, "state": state, "imageID": "",
             "containerID": f"fake://{m.uid_of(pod)[:8]}-{c.get('name', '')}"}
            for c in (pod.get("spec") or {}).get("containers") or [] if isinstance(c, dict)]


def running_status(pod: Obj, ready: bool, pod_ip: str = "10.0.0.1") -> Obj:
    """A Running status, Ready or not, as a kubelet reports it."""
    now = m.rfc3339()
    flag = "True" if ready else "False"
    return {
        "phase": "Running",
        "hostIP": "10.0.0.1",
        "podIP": pod_ip,
        "startTime": (pod.get("status") or {}).get("startTime") or now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
            {"type": "Ready", "status": flag, "lastTransitionTime": now},
        ],
        "containerStatuses": _container_statuses(pod, {"running": {"startedAt": now}}, ready),
    }


async def set_running(client: Client, pod: Obj, ready: bool = True) -> Obj:
    """Report the pod Running (and Ready unless told otherwise)."""
    return await _write_status(client, pod, running_status(pod, ready))


async def finish_pod(client: Client, pod: Obj, exit_code: int = 0,
                     conditions: list[Obj] | None = None) -> Obj:
    """Report the pod's containers exited with `exit_code` (0: Succeeded, else Failed)."""
    now = m.rfc3339()
    phase = "Succeeded" if exit_code == 0 else "Failed"
    reason = "Completed" if exit_code == 0 else "Error"
    term = {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": now,
                           "finishedAt": now}}
    status = {
        "phase": phase,
        "startTime": now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": "False", "reason": "PodCompleted",
             "lastTransitionTime": now},
            *(conditions or []),
        ],
        "containerStatuses": _container_statuses(pod, term, False),
    }
    return await _write_status(client, pod, status)


async def _write_status(client: Client, pod: Obj, status: Obj) -> Obj:
    for _ in range(20):
        try:
            fresh = await client.get("", "v1", "pods", m.name_of(pod), m.namespace_of(pod))
            fresh["status"] = status
            return await client.update_status("", "v1", "pods", fresh)
        except StatusError as err:
            if err.code != 409:
                raise
    raise AssertionError(f"could not write the status of pod {m.name_of(pod)}")


class FakeKubelet:
    """Binds, runs and finalizes the deletion of every pod in `namespace`.

    `run=False` only binds. `ready` (a flag, or a function of the pod) decides
    whether a running pod reports Ready; `ready_delay` delays readiness after a pod
    starts, so rollouts are observable. Finished pods (see `finish_pod`) are left alone.
    """

    def __init__(self, client: Client, namespace: str = "", node: str = "fake-node", *,
                 nodes: list[str] | None = None, run: bool = True,
                 ready: bool | Callable[[Obj], bool] = True,
                 ready_delay: float = 0.0) -> None:
        self.client = client
        self.nodes = nodes or [node]
        self.run_pods = run
        self.ready: Callable[[Obj], bool] = ready if callable(ready) else (lambda _p: ready)
        self.ready_delay = ready_delay
        self.pods = Informer(client, "", "v1", "pods", namespace)
        self.queue = WorkQueue(name="fake-kubelet")
        self.pods.on_add(lambda p: self.queue.add(object_key(p)))
        self.pods.on_update(lambda _o, p: self.queue.add(object_key(p)))
        self._tasks: list[asyncio.Task[Any]] = []
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
                # The kubelet's final delete; finalizers may still hold the object a while.
                if int(md.get("deletionGracePeriodSeconds") or 0) != 0:
                    await self.client.delete("", "v1", "pods", name, ns, grace_period_seconds=0,
                                             preconditions={"uid": md["uid"]})
                return None
            if not (pod.get("spec") or {}).get("nodeName"):
                node = target_node(pod)
                if not node:
                    node = self.nodes[self._next_node % len(self.nodes)]
                    self._next_node += 1
                await self.client.request(
                    "POST", self.client.path("", "v1", "pods", name, ns, "binding"),
                    body={"apiVersion": "v1", "kind": "Binding",
                          "metadata": {"name": name, "namespace": ns},
                          "target": {"apiVersion": "v1", "kind": "Node", "name": node}})
                return None
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            if not self.run_pods or phase in ("Succeeded", "Failed"):
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
        ready_cond = m.condition(pod, "Ready")
        is_ready = ready_cond is not None and ready_cond.get("status") == "True"
        if (pod.get("status") or {}).get("phase") == "Running" and is_ready == ready:
            return
        n = len(self._started)
        status = running_status(pod, ready, pod_ip=f"10.1.{n // 250}.{n % 250 + 1}")
        md = pod["metadata"]
        await self.client.patch("", "v1", "pods", md["name"], {"status": status},
                                md["namespace"], patch_type="merge", subresource="status")

    async def start(self) -> None:
        """Start watching (returns once the pod cache is filled)."""
        self._tasks = [self.pods.start(),
                       asyncio.create_task(run_workers(self.queue, self.reconcile, 4))]
        await self.pods.has_synced.wait()

    async def stop(self) -> None:
        """Stop watching."""
        self.queue.shutdown()
        self.pods.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def __aenter__(self) -> FakeKubelet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

"""A stand-in for the scheduler and kubelet in controller tests.

It binds pods through the binding subresource (to the node their DaemonSet-style
`matchFields` affinity names, or to a default node), reports them Running and Ready
through the status subresource, and completes graceful deletions with the final
zero-grace delete — the three things a controller test needs from the rest of the
cluster. Tests finish pods (Succeeded, or Failed with an exit code) with
`finish_pod`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.http_client import Client
from skiff.client.informer import Informer, object_key
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
            for c in (pod.get("spec") or {}).get("containers") or []]


async def set_running(client: Client, pod: Obj, ready: bool = True) -> Obj:
    """Report the pod Running (and Ready unless told otherwise)."""
    now = m.rfc3339()
    status = {
        "phase": "Running",
        "startTime": now,
        "podIP": "10.0.0.1",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True" if ready else "False",
             "lastTransitionTime": now},
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now},
        ],
        "containerStatuses": _container_statuses(pod, {"running": {"startedAt": now}}, ready),
    }
    return await _write_status(client, pod, status)


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
    """Binds, runs and finalizes the deletion of every pod in `namespace`."""

    def __init__(self, client: Client, namespace: str = "", node: str = "fake-node",
                 *, run: bool = True, ready: bool = True) -> None:
        self.client = client
        self.node = node
        self.run_pods = run
        self.ready = ready
        self.pods = Informer(client, "", "v1", "pods", namespace)
        self.queue = WorkQueue(name="fake-kubelet")
        self.pods.on_add(lambda p: self.queue.add(object_key(p)))
        self.pods.on_update(lambda _o, p: self.queue.add(object_key(p)))
        self._tasks: list[asyncio.Task[Any]] = []

    async def reconcile(self, key: str) -> float | None:
        """Move one pod along its lifecycle."""
        pod = self.pods.get(key)
        if pod is None:
            return None
        md = pod["metadata"]
        ns, name = md.get("namespace", ""), md.get("name", "")
        spec = pod.get("spec") or {}
        try:
            if md.get("deletionTimestamp"):
                # The kubelet's final delete; finalizers may still hold the object a while.
                if int(md.get("deletionGracePeriodSeconds") or 0) != 0:
                    await self.client.delete("", "v1", "pods", name, ns, grace_period_seconds=0)
                return None
            if not spec.get("nodeName"):
                body = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                        "target": {"apiVersion": "v1", "kind": "Node",
                                   "name": target_node(pod) or self.node}}
                await self.client.request(
                    "POST", self.client.path("", "v1", "pods", name, ns, "binding"), body=body)
                return None
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            if self.run_pods and phase == "Pending":
                await set_running(self.client, pod, self.ready)
        except StatusError as err:
            if err.code not in (404, 409):
                raise
        return None

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

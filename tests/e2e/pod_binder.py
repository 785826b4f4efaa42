"""A stand-in scheduler for e2e tests on simulated nodes: binds pending pods.

Until the scheduler runs inside `skiff up`, something must bind pods to the
simulated nodes (which then run them). This binds every unbound pod to a Ready,
schedulable node, round robin, through the pods/binding subresource, from a thread
of its own. With a real scheduler present, a pod it bound first makes the binding
here fail with a conflict, which is ignored, so tests keep working either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path
from typing import Any

from skiff.api.errors import StatusError
from skiff.client import Client

Obj = dict[str, Any]


def _ready_schedulable(node: Obj) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


class PodBinder:
    """Binds pending pods to Ready, schedulable nodes until stopped (a context manager)."""

    def __init__(self, kubeconfig: Path, interval: float = 0.05) -> None:
        self.kubeconfig = kubeconfig
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._next = 0

    def __enter__(self) -> PodBinder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        client = Client.from_kubeconfig(self.kubeconfig, component="test-binder")
        try:
            while not self._stop.is_set():
                with contextlib.suppress(StatusError, OSError, TimeoutError):
                    await self._bind_pending(client)
                await asyncio.sleep(self.interval)
        finally:
            await client.close()

    async def _bind_pending(self, client: Client) -> None:
        nodes = sorted((n for n in (await client.list("", "v1", "nodes"))["items"]
                        if _ready_schedulable(n)), key=lambda n: n["metadata"]["name"])
        if not nodes:
            return
        pods = (await client.list("", "v1", "pods", field_selector="spec.nodeName="))["items"]
        for pod in pods:
            md = pod["metadata"]
            if md.get("deletionTimestamp"):
                continue
            node = nodes[self._next % len(nodes)]["metadata"]["name"]
            self._next += 1
            with contextlib.suppress(StatusError):
                await client.request(
                    "POST", client.path("", "v1", "pods", md["name"], md["namespace"],
                                        "binding"),
                    body={"apiVersion": "v1", "kind": "Binding",
                          "metadata": {"name": md["name"], "namespace": md["namespace"]},
                          "target": {"apiVersion": "v1", "kind": "Node", "name": node}})

"""The streaming seam: how an agent-side handler finds a container and talks to it.

Everything the agent's HTTP handlers for logs, exec, attach and port-forward need
goes through `StreamTargets`: resolve `namespace/pod/container` to the runtime's
container (the current instance, or the previous one for `--previous`), run a
command in it (`exec` → an `ExecProcess` with stdin/stdout/stderr streams and
resize), reach the shim that holds its stdio (`attach_socket`, process runtime), or
open a TCP connection into the pod's network (`port_forward`). Errors are
`StreamError`s carrying the HTTP status and the message the kubelet would give.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from skiff.agent import status as st
from skiff.runtime.protocol import RUNNING, ContainerStatus, ExecProcess, RuntimeFailure

if TYPE_CHECKING:
    from skiff.agent.agent import NodeAgent

Obj = dict[str, Any]


class StreamError(Exception):
    """A stream request that cannot be served; `code` is the HTTP status."""

    def __init__(self, code: int, message: str, reason: str = "BadRequest") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason

    def to_status(self) -> Obj:
        """The error as a Kubernetes Status."""
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}


@dataclass
class ContainerTarget:
    """A container a stream addresses."""

    pod: Obj
    spec: Obj
    container: ContainerStatus

    @property
    def running(self) -> bool:
        """Whether the container's process is running."""
        return self.container.state == RUNNING


class StreamTargets:
    """Resolves stream requests to runtime containers (see the module docstring)."""

    def __init__(self, agent: NodeAgent) -> None:
        self.agent = agent

    def pod(self, namespace: str, name: str) -> Obj:
        """The pod as this node knows it; 404 if it is not running here."""
        pod = self.agent.pods.get(f"{namespace}/{name}")
        if pod is None:
            raise StreamError(404, f'pod "{name}" not found', "NotFound")
        return pod

    async def container(self, namespace: str, pod_name: str, container: str,
                        previous: bool = False) -> ContainerTarget:
        """The container instance a request means (the one before it if `previous`)."""
        pod = self.pod(namespace, pod_name)
        spec = (pod.get("spec") or {})
        specs = [*(spec.get("initContainers") or []), *(spec.get("containers") or []),
                 *(spec.get("ephemeralContainers") or [])]
        cspec = next((c for c in specs if c.get("name") == container), None)
        if cspec is None:
            names = " ".join(c.get("name", "") for c in spec.get("containers") or [])
            raise StreamError(400, f"container {container} is not valid for pod {pod_name}"
                                   if not names else
                              f"container {container} is not valid for pod {pod_name}")
        instances = await self.agent.container_instances(pod, container)
        cur = st.latest(instances)
        if previous:
            prev = st.previous(instances)
            if prev is None:
                raise StreamError(400, f'previous terminated container "{container}" in pod '
                                       f'"{pod_name}" not found')
            return ContainerTarget(pod, cspec, prev)
        if cur is None:
            reason = "ContainerCreating"
            for s in [*((pod.get("status") or {}).get("containerStatuses") or []),
                      *((pod.get("status") or {}).get("initContainerStatuses") or [])]:
                if s.get("name") == container:
                    reason = ((s.get("state") or {}).get("waiting") or {}).get("reason",
                                                                               reason)
            raise StreamError(400, f'container "{container}" in pod "{pod_name}" is waiting '
                                   f"to start: {reason}")
        return ContainerTarget(pod, cspec, cur)

    async def exec(self, target: ContainerTarget, command: list[str], *, tty: bool = False,
                   stdin: bool = False) -> ExecProcess:
        """Run `command` in the target container."""
        if not target.running:
            raise StreamError(400, f"container {target.container.name} is not running "
                                   f"(state: {target.container.state})")
        try:
            return await self.agent.runtime.exec(target.container.id, command, tty=tty,
                                                 stdin=stdin)
        except RuntimeFailure as exc:
            raise StreamError(500, exc.message, "InternalError") from None

    async def attach_socket(self, target: ContainerTarget) -> str:
        """The shim socket holding the container's stdio (process runtime)."""
        runtime: Any = self.agent.runtime
        if not hasattr(runtime, "attach_socket"):
            raise StreamError(400, f"the {runtime.name} runtime does not support attach")
        return await runtime.attach_socket(target.container.id)

    async def port_forward(self, namespace: str, pod_name: str,
                           port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to `port` inside the pod's network."""
        pod = self.pod(namespace, pod_name)
        sandbox = await self.agent.sandbox_of(pod)
        if sandbox is None:
            raise StreamError(400, f"pod {pod_name} has no sandbox on this node")
        try:
            return await self.agent.runtime.port_forward(sandbox, port)
        except OSError as exc:
            raise StreamError(500, f"failed to connect to localhost:{port} inside namespace "
                                   f"of pod {pod_name}: {exc}", "InternalError") from None

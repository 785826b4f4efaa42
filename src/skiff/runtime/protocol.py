"""The Runtime protocol: what the node agent asks of a container runtime.

It follows the shape of the CRI (the kubelet's runtime interface) without its gRPC:
a pod runs in a *sandbox* (namespaces and resources shared by its containers); each
container is created, started, stopped and removed inside one, and its status, log
file and streams are reachable by container id. Everything a runtime needs to find
its containers again after the agent restarts (pod uid, container name, attempt) is
carried in the labels it is given and reported back by `list_containers`, so the
agent keeps no state of its own about them.

The streams (exec, attach, port-forward) go through `exec`, `attach` and
`port_forward`; the agent's streaming seam (`skiff.agent.streams`) builds on those.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# Labels every container carries so the agent can map it back to its pod.
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"


class RuntimeFailure(Exception):
    """A runtime operation failed; `reason` is the kubelet-facing reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Mount:
    """A host path that appears at `container_path` inside the container."""

    host_path: str
    container_path: str
    read_only: bool = False


@dataclass
class Resources:
    """Limits the runtime enforces (None: unlimited)."""

    memory_limit_bytes: int | None = None
    cpu_limit_millis: int | None = None
    cpu_request_millis: int | None = None


@dataclass
class SandboxConfig:
    """What the runtime needs to create a pod's sandbox."""

    pod_uid: str
    namespace: str
    name: str
    hostname: str
    log_directory: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class SandboxStatus:
    """A sandbox as the runtime knows it."""

    id: str
    pod_uid: str
    namespace: str
    name: str
    ready: bool
    ip: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerConfig:
    """One container to create in a sandbox."""

    name: str
    attempt: int
    image: str
    command: list[str]
    env: list[tuple[str, str]]
    working_dir: str = ""
    mounts: list[Mount] = field(default_factory=list)
    run_as_user: int | None = None
    run_as_group: int | None = None
    supplemental_groups: list[int] = field(default_factory=list)
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    resources: Resources = field(default_factory=Resources)
    log_path: str = ""
    labels: dict[str, str] = field(default_factory=dict)


# Container states, as the CRI names them.
CREATED = "created"
RUNNING = "running"
EXITED = "exited"
UNKNOWN = "unknown"


@dataclass
class ContainerStatus:
    """A container as the runtime knows it."""

    id: str
    sandbox_id: str
    name: str
    attempt: int
    state: str
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    pid: int = 0
    image: str = ""
    log_path: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerStats:
    """Resource usage of one container at one moment."""

    container_id: str
    timestamp: float
    cpu_usage_ns: int
    memory_working_set_bytes: int


@dataclass
class ContainerEvent:
    """Something happened to a container (it started, or it exited)."""

    container_id: str
    sandbox_id: str
    kind: str  # "started" | "exited"


class ExecProcess(Protocol):
    """A command running in a container: its streams, size and exit code.

    `stdin` is None unless stdin was asked for; `stderr` is None with a tty (the
    terminal carries both output streams on `stdout`).
    """

    stdin: asyncio.StreamWriter | None
    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader | None

    def resize(self, width: int, height: int) -> None:
        """Set the terminal size (no-op without a tty)."""

    async def wait(self) -> int:
        """The exit code, once the command has ended."""

    def kill(self) -> None:
        """End the command now."""


@runtime_checkable
class Runtime(Protocol):
    """A container runtime as the node agent uses it."""

    name: str
    version: str

    async def start(self) -> None:
        """Prepare the runtime (folders, cgroup hierarchy, re-attach to live containers)."""

    async def close(self) -> None:
        """Release the runtime's own resources; containers keep running."""

    async def settle(self) -> None:
        """Wait for operations in flight (container starts) to finish."""

    # -- sandboxes -----------------------------------------------------------------------

    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        """Create (or find) the pod's sandbox; returns its id."""

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop every container of the sandbox and release its namespaces."""

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        """Remove the sandbox and everything it left on the host."""

    async def list_pod_sandboxes(self) -> list[SandboxStatus]:
        """Every sandbox this runtime holds."""

    # -- containers ----------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        """Create a container (not yet running); returns its id."""

    async def start_container(self, container_id: str) -> None:
        """Start a created container; raises RuntimeFailure (StartError) if it cannot run."""

    async def stop_container(self, container_id: str, timeout: float,
                             sig: int = signal.SIGTERM) -> None:
        """Send `sig`, wait up to `timeout` seconds, then SIGKILL; returns once it exited."""

    async def remove_container(self, container_id: str) -> None:
        """Forget an exited container and remove its files (its log stays with the pod)."""

    async def container_status(self, container_id: str) -> ContainerStatus | None:
        """The container's current status, or None if the runtime does not know it."""

    async def list_containers(self, sandbox_id: str = "") -> list[ContainerStatus]:
        """Every container (of one sandbox, if given), running or not."""

    def events(self) -> AsyncIterator[ContainerEvent]:
        """Container starts and exits as they happen (the agent's fast path)."""

    async def container_stats(self, container_id: str) -> ContainerStats | None:
        """CPU and memory usage of a running container."""

    # -- streams -------------------------------------------------------------------------

    async def exec(self, container_id: str, command: list[str], *, tty: bool = False,
                   stdin: bool = False) -> ExecProcess:
        """Run `command` inside the container's namespaces, as its user, with its env."""

    async def port_forward(self, sandbox_id: str,
                           port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to `port` in the sandbox's network."""

"""The `process` runtime: containers as host processes, one shim each.

State lives in files under the runtime's root folder, so a restarted agent finds
everything again:

    sandboxes/<id>/sandbox.json       the pod the sandbox belongs to
    containers/<id>/config.json       what the shim runs (and the container's labels)
    containers/<id>/started.json      written by the shim once the process runs
    containers/<id>/exit.json         written by the shim when it ended
    containers/<id>/rootfs, upper/    the overlay root (gone with the mount namespace)

The shim (see `shim.py`) listens on the abstract unix socket `skiff-shim/<id>`; the
runtime keeps one `wait` request open per running container and turns the answers
into `ContainerEvent`s. Shims are forked from a warm helper process, the zygote
(see `launcher.py` and `zygote.py`), which ends with the runtime; shims do not.

The files are the truth; the runtime reads them all once when it starts and then
keeps what they say in memory, updating it as it learns of starts (the shim's
report) and exits (the answer to `wait`), so a status is not a handful of file
reads. Only a container no waiter follows is looked up on disk again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from skiff.runtime.cgroups import Cgroups
from skiff.runtime.process.exec import ProcessExec, start_exec
from skiff.runtime.process.launcher import ShimLauncher
from skiff.runtime.protocol import (
    CREATED,
    EXITED,
    RUNNING,
    UNKNOWN,
    ContainerConfig,
    ContainerEvent,
    ContainerStats,
    ContainerStatus,
    RuntimeFailure,
    SandboxConfig,
    SandboxStatus,
)

log = logging.getLogger(__name__)

VERSION = "0.1.0"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purpose.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


class ProcessRuntime:
    """Runs containers as processes of this machine (see the module docstring)."""

    name = "process"
    version = VERSION

    def __init__(self, root: Path, *, host_ip: str = "127.0.0.1",
                 cgroup_parent: str = "skiff", overlay: bool = True,
                 skip_mounts_under: tuple[str, ...] = (), zygote: bool = True) -> None:
        self.root = Path(root)
        self.host_ip = host_ip
        self.overlay = overlay
        self.skip_mounts_under = skip_mounts_under
        self.cgroups = Cgroups(cgroup_parent)
        self.launcher = ShimLauncher(use_zygote=zygote, owner=str(self.root))
        self._events: asyncio.Queue[ContainerEvent] = asyncio.Queue()
        self._waiters: dict[str, asyncio.Task[None]] = {}
        self._exited: dict[str, asyncio.Event] = {}
        # sandbox id -> its container ids, so listing one pod's containers does not read
        # every container folder of the node.
        self._by_sandbox: dict[str, set[str]] = {}
        # What the files say (see the module docstring): sandbox.json by sandbox id;
        # config.json, started.json and exit.json by container id.
        self._sandboxes: dict[str, dict[str, Any]] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._started: dict[str, dict[str, Any]] = {}
        self._ended: dict[str, dict[str, Any]] = {}
        # Shim starts in flight: they finish even if the caller is cancelled, so a
        # container never runs without the runtime knowing.
        self._starting: set[asyncio.Task[None]] = set()

    # -- paths ---------------------------------------------------------------------------

    def _sandbox_dir(self, sandbox_id: str) -> Path:
        return self.root / "sandboxes" / sandbox_id

    def _container_dir(self, container_id: str) -> Path:
        return self.root / "containers" / container_id

    @staticmethod
    def _socket_name(container_id: str) -> str:
        return f"skiff-shim/{container_id}"

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Read the state folders and re-attach to every container still running."""
        await asyncio.to_thread(self._load)
        for cid in self._configs:
            if cid in self._started and cid not in self._ended:
                self._watch(cid)
        self.launcher.start()
        log.info("process runtime ready (cgroups: %s)", self.cgroups.mode)

    def _load(self) -> None:
        (self.root / "sandboxes").mkdir(parents=True, exist_ok=True)
        (self.root / "containers").mkdir(parents=True, exist_ok=True)
        for d in (self.root / "sandboxes").iterdir():
            data = _read_json(d / "sandbox.json")
            if data is not None:
                self._sandboxes[data["id"]] = data
        for cdir in (self.root / "containers").iterdir():
            cfg = _read_json(cdir / "config.json")
            if cfg is None:
                continue
            cid = cdir.name
            self._configs[cid] = cfg
            self._by_sandbox.setdefault(cfg["sandbox_id"], set()).add(cid)
            started = _read_json(cdir / "started.json")
            if started is not None:
                self._started[cid] = started
            ended = _read_json(cdir / "exit.json")
            if ended is not None:
                self._ended[cid] = ended

    async def close(self) -> None:
        """Stop following the shims (the containers keep running)."""
        for task in self._waiters.values():
            task.cancel()
        for task in list(self._waiters.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._waiters.clear()
        await self.launcher.close()

    # -- sandboxes -----------------------------------------------------------------------

    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        """A sandbox is a folder naming the pod; its network is the host's."""
        for data in self._sandboxes.values():
            if data["podUID"] == config.pod_uid:
                return str(data["id"])
        sandbox_id = secrets.token_hex(32)
        data = {
            "id": sandbox_id, "podUID": config.pod_uid, "namespace": config.namespace,
            "name": config.name, "hostname": config.hostname, "labels": config.labels,
            "logDirectory": config.log_directory, "createdAt": time.time()}
        await asyncio.to_thread(self._write_sandbox, sandbox_id, data)
        self._sandboxes[sandbox_id] = data
        return sandbox_id

    def _write_sandbox(self, sandbox_id: str, data: dict[str, Any]) -> None:
        d = self._sandbox_dir(sandbox_id)
        d.mkdir(parents=True)
        _write_json(d / "sandbox.json", data)

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Kill whatever of the sandbox still runs."""
        for c in await self.list_containers(sandbox_id):
            if c.state == RUNNING:
                await self.stop_container(c.id, 0, signal.SIGKILL)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        """Remove the sandbox and all its containers."""
        await self.stop_pod_sandbox(sandbox_id)
        for c in await self.list_containers(sandbox_id):
            await self.remove_container(c.id)
        await asyncio.to_thread(shutil.rmtree, self._sandbox_dir(sandbox_id), True)
        self._by_sandbox.pop(sandbox_id, None)
        self._sandboxes.pop(sandbox_id, None)

    async def list_pod_sandboxes(self) -> list[SandboxStatus]:
        """Every sandbox's pod."""
        return [SandboxStatus(id=data["id"], pod_uid=data["podUID"],
                              namespace=data["namespace"], name=data["name"], ready=True,
                              ip=self.host_ip, labels=data.get("labels") or {})
                for data in list(self._sandboxes.values())]

    async def sandbox_ip(self, sandbox_id: str) -> str:
        """The pod's IP: the host's, since process containers share its network."""
        return self.host_ip

    # -- containers ----------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: ContainerConfig) -> str:
        """Write the container's folder and cgroups; nothing runs yet."""
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            raise RuntimeFailure("CreateContainerError", f"sandbox {sandbox_id} not found")
        if not config.command:
            raise RuntimeFailure("CreateContainerError", "no command specified")
        container_id = secrets.token_hex(32)
        cfg = await asyncio.to_thread(self._create_files, container_id, sandbox_id, sandbox,
                                      config)
        self._configs[container_id] = cfg
        self._by_sandbox.setdefault(sandbox_id, set()).add(container_id)
        return container_id

    def _create_files(self, container_id: str, sandbox_id: str, sandbox: dict[str, Any],
                      config: ContainerConfig) -> dict[str, Any]:
        cdir = self._container_dir(container_id)
        cdir.mkdir(parents=True)
        res = config.resources
        cg = self.cgroups.create(container_id, res.memory_limit_bytes, res.cpu_limit_millis,
                                 res.cpu_request_millis)
        Path(config.log_path).parent.mkdir(parents=True, exist_ok=True)
        cfg = {
            "id": container_id, "sandbox_id": sandbox_id, "name": config.name,
            "attempt": config.attempt, "image": config.image, "command": config.command,
            "env": [list(kv) for kv in config.env], "working_dir": config.working_dir,
            "mounts": [{"host_path": m.host_path, "container_path": m.container_path,
                        "read_only": m.read_only} for m in config.mounts],
            "uid": config.run_as_user, "gid": config.run_as_group,
            "groups": config.supplemental_groups, "stdin": config.stdin,
            "stdin_once": config.stdin_once, "tty": config.tty,
            "hostname": sandbox.get("hostname") or "", "log_path": config.log_path,
            "labels": config.labels, "socket": self._socket_name(container_id),
            "cgroup_procs": cg.procs_files, "oom_files": cg.oom_files,
            "overlay": self.overlay,
            "skip_mounts_under": [str(self.root), *self.skip_mounts_under],
            "createdAt": time.time()}
        _write_json(cdir / "config.json", cfg)
        return cfg

    async def start_container(self, container_id: str) -> None:
        """Start the shim and wait for it to say the process runs (or why not)."""
        task = asyncio.ensure_future(self._start_shim(container_id))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)
        await asyncio.shield(task)

    async def settle(self) -> None:
        """Wait for container starts still in flight."""
        if self._starting:
            await asyncio.gather(*list(self._starting), return_exceptions=True)

    async def _start_shim(self, container_id: str) -> None:
        cdir = self._container_dir(container_id)
        if self._config(container_id) is None:
            raise RuntimeFailure("StartError", f"container {container_id} not found")
        self._exited[container_id] = asyncio.Event()
        report = await self.launcher.launch(cdir)
        if "error" in report:
            message = str(report["error"])
            ended = _read_json(cdir / "exit.json")
            if ended is None:
                ended = {"exitCode": 128, "reason": "StartError", "message": message,
                         "finishedAt": time.time()}
                _write_json(cdir / "exit.json", ended)
            self._ended[container_id] = ended
            self._exited[container_id].set()
            raise RuntimeFailure("StartError", message)
        # The shim wrote started.json before it reported the same facts.
        self._started[container_id] = {"pid": int(report.get("pid") or 0),
                                       "startedAt": float(report.get("startedAt") or 0)}
        self._watch(container_id)
        self._events.put_nowait(ContainerEvent(container_id, self._sandbox_of(container_id),
                                               "started"))

    def _sandbox_of(self, container_id: str) -> str:
        return str((self._config(container_id) or {}).get("sandbox_id", ""))

    def _config(self, container_id: str) -> dict[str, Any] | None:
        cfg = self._configs.get(container_id)
        if cfg is None:
            cfg = _read_json(self._container_dir(container_id) / "config.json")
            if cfg is not None:
                self._configs[container_id] = cfg
        return cfg

    def _followed(self, container_id: str) -> bool:
        """Whether a waiter follows the container's shim (it reports the exit)."""
        task = self._waiters.get(container_id)
        return task is not None and not task.done()

    def _watch(self, container_id: str) -> None:
        if container_id in self._waiters and not self._waiters[container_id].done():
            return
        self._exited.setdefault(container_id, asyncio.Event())
        self._waiters[container_id] = asyncio.create_task(self._wait_shim(container_id),
                                                          name=f"shim-wait:{container_id[:12]}")

    async def _wait_shim(self, container_id: str) -> None:
        cdir = self._container_dir(container_id)
        try:
            reader, writer = await asyncio.open_unix_connection(
                "\0" + self._socket_name(container_id))
            try:
                writer.write(b'{"op": "wait"}\n')
                await writer.drain()
                await reader.readline()
            finally:
                writer.close()
        except (OSError, ConnectionError):
            pass
        # The shim writes exit.json before it answers; give it a moment if it died
        # between the two, then speak for a shim that died without a word.
        for _ in range(20):
            if (cdir / "exit.json").exists():
                break
            await asyncio.sleep(0.05)
        ended = _read_json(cdir / "exit.json")
        if ended is None and cdir.exists():
            started = self._started.get(container_id) or \
                _read_json(cdir / "started.json") or {}
            pid = int(started.get("pid") or 0)
            if pid and _pid_alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            ended = {"exitCode": 137, "reason": "Error", "finishedAt": time.time(),
                     "message": "the container's supervisor (shim) ended unexpectedly"}
            _write_json(cdir / "exit.json", ended)
        if ended is not None:
            self._ended[container_id] = ended
        self._exited.setdefault(container_id, asyncio.Event()).set()
        self._events.put_nowait(ContainerEvent(container_id, self._sandbox_of(container_id),
                                               "exited"))

    async def stop_container(self, container_id: str, timeout: float,
                             sig: int = signal.SIGTERM) -> None:
        """Signal the process; SIGKILL it after `timeout` seconds; return once it ended."""
        status = await self.container_status(container_id)
        if status is None or status.state != RUNNING:
            return
        done = self._exited.setdefault(container_id, asyncio.Event())
        self._watch(container_id)
        with contextlib.suppress(OSError):
            os.kill(status.pid, sig)
        if sig != signal.SIGKILL and timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout)
        if not done.is_set():
            with contextlib.suppress(OSError):
                os.kill(status.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 10)

    async def remove_container(self, container_id: str) -> None:
        """Remove the container's folder and cgroups (killing it if it still runs)."""
        status = await self.container_status(container_id)
        if status is not None and status.state == RUNNING:
            await self.stop_container(container_id, 0, signal.SIGKILL)
        task = self._waiters.pop(container_id, None)
        if task is not None and not task.done():
            task.cancel()
        self._exited.pop(container_id, None)
        await asyncio.to_thread(self._remove_files, container_id)
        for ids in self._by_sandbox.values():
            ids.discard(container_id)
        for known in (self._configs, self._started, self._ended):
            known.pop(container_id, None)

    def _remove_files(self, container_id: str) -> None:
        self.cgroups.remove(container_id)
        shutil.rmtree(self._container_dir(container_id), ignore_errors=True)

    def _status(self, container_id: str) -> ContainerStatus | None:
        cfg = self._config(container_id)
        if cfg is None:
            return None
        cdir = self._container_dir(container_id)
        started = self._started.get(container_id)
        if started is None and container_id not in self._ended:
            # Never started by this runtime (or the agent stopped mid-start): look.
            started = _read_json(cdir / "started.json")
            if started is not None:
                self._started[container_id] = started
        ended = self._ended.get(container_id)
        followed = self._followed(container_id)
        if ended is None and started is not None and not followed:
            ended = _read_json(cdir / "exit.json")
            if ended is not None:
                self._ended[container_id] = ended
        st = ContainerStatus(
            id=cfg["id"], sandbox_id=cfg["sandbox_id"], name=cfg["name"],
            attempt=int(cfg.get("attempt") or 0), state=CREATED,
            created_at=float(cfg.get("createdAt") or 0), image=cfg.get("image") or "",
            log_path=cfg.get("log_path") or "", labels=cfg.get("labels") or {})
        if started:
            st.pid = int(started.get("pid") or 0)
            st.started_at = float(started.get("startedAt") or 0)
            st.state = RUNNING
        if ended:
            st.state = EXITED
            st.exit_code = int(ended.get("exitCode") or 0)
            st.reason = str(ended.get("reason") or "")
            st.message = str(ended.get("message") or "")
            st.finished_at = float(ended.get("finishedAt") or 0)
        elif started and not followed and not _pid_alive(st.pid):
            # The process is gone but the exit is not written yet (or never will be).
            st.state = UNKNOWN
        return st

    async def container_status(self, container_id: str) -> ContainerStatus | None:
        """The container's state."""
        return self._status(container_id)

    async def list_containers(self, sandbox_id: str = "") -> list[ContainerStatus]:
        """Every container (of one sandbox, if given)."""
        ids = sorted(self._by_sandbox.get(sandbox_id, ())) if sandbox_id else list(self._configs)
        out = []
        for cid in ids:
            st = self._status(cid)
            if st is not None and (not sandbox_id or st.sandbox_id == sandbox_id):
                out.append(st)
        return out

    async def events(self) -> AsyncIterator[ContainerEvent]:  # type: ignore[override]
        """Starts and exits, in the order they were seen."""
        while True:
            yield await self._events.get()

    async def container_stats(self, container_id: str) -> ContainerStats | None:
        """Usage from the container's cgroups, else from /proc for its main process."""
        usage = self.cgroups.usage(container_id)
        if usage is None:
            st = await self.container_status(container_id)
            if st is None or st.state != RUNNING:
                return None
            usage = _proc_usage(st.pid)
            if usage is None:
                return None
        return ContainerStats(container_id, time.time(), usage[0], usage[1])

    # -- streams -------------------------------------------------------------------------

    async def exec(self, container_id: str, command: list[str], *, tty: bool = False,
                   stdin: bool = False) -> ProcessExec:
        """Run `command` in the container's namespaces (nsenter), cgroups and user."""
        st = await self.container_status(container_id)
        if st is None:
            raise RuntimeFailure("NotFound", f"container {container_id} not found")
        if st.state != RUNNING:
            raise RuntimeFailure("NotRunning", f"container {container_id} is not running")
        cfg = self._config(container_id) or {}
        return await start_exec(st.pid, command, cfg, tty=tty, stdin=stdin)

    async def attach_socket(self, container_id: str) -> str:
        """The abstract socket name of the shim that holds the container's stdio."""
        return self._socket_name(container_id)

    async def port_forward(self, sandbox_id: str,
                           port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to the port on the host network, which process pods share."""
        return await asyncio.open_connection(self.host_ip, port)


def _proc_usage(pid: int) -> tuple[int, int] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu_ns = (int(fields[11]) + int(fields[12])) * 1_000_000_000 // ticks
        rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        return cpu_ns, rss
    except (OSError, ValueError, IndexError):
        return None

"""One step of a pod's life on this node: the kubelet's syncPod, level-triggered.

`sync(key)` reads the pod from the cache and the runtime's view of its containers,
decides what to do next (start the sandbox, set up volumes, run the next init
container, start or restart containers, kill one that failed its liveness probe,
terminate a pod being deleted), does it, and writes the resulting status. It is
safe to run any number of times: every decision is made from the current state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skiff.agent import status as st
from skiff.agent.env import ConfigError, command_line, container_env
from skiff.agent.probes import LIVENESS, READINESS, STARTUP, HandlerError, run_handler
from skiff.agent.volumes import MountError
from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.quantity import int_value, milli_value
from skiff.runtime.protocol import (
    CREATED,
    EXITED,
    LABEL_CONTAINER_NAME,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    RUNNING,
    UNKNOWN,
    ContainerConfig,
    ContainerStatus,
    Mount,
    Resources,
    RuntimeFailure,
    SandboxConfig,
)

if TYPE_CHECKING:
    from skiff.agent.agent import NodeAgent

log = logging.getLogger(__name__)

Obj = dict[str, Any]
FORGET = -1.0
TERMINATION_MESSAGE_LIMIT = 4096
MIN_GRACE_AFTER_HOOK = 2.0


def pod_key(pod: Obj) -> str:
    """`namespace/name` of a pod."""
    md = pod.get("metadata") or {}
    return f"{md.get('namespace', '')}/{md.get('name', '')}"


def pod_full_name(pod: Obj) -> str:
    """`name_namespace(uid)`, the form upstream's messages name a pod by."""
    md = pod.get("metadata") or {}
    return f"{md.get('name', '')}_{md.get('namespace', '')}({md.get('uid', '')})"


def _field_path(containers_key: str, index: int, name: str) -> str:
    return f"spec.{containers_key}{{{name}}}"


class PodState:
    """What the agent remembers about one pod between syncs."""

    def __init__(self) -> None:
        self.waiting: dict[str, tuple[str, str]] = {}
        self.start_time = ""
        self.last_status: Obj | None = None
        self.mount_failures = 0
        self.terminating = False
        self.termination_messages: dict[str, str] = {}
        self.post_start_failed: set[str] = set()
        self.killed_for: dict[str, str] = {}


class PodSyncer:
    """Drives pods toward their spec through the runtime (see the module docstring)."""

    def __init__(self, agent: NodeAgent) -> None:
        self.agent = agent
        self.runtime = agent.runtime
        self.client = agent.client
        self.events = agent.events
        self.volumes = agent.volumes
        self.probes = agent.probes
        self.backoff = agent.backoff
        self.states: dict[str, PodState] = {}
        self._sandboxes: dict[str, str] = {}

    # -- entry point ----------------------------------------------------------------------

    async def sync(self, key: str) -> float | None:
        """Reconcile one pod; returns a delay to look again, or FORGET once it is gone."""
        pod = self.agent.pods.get(key)
        if pod is None:
            await self.agent.housekeeping()
            return FORGET
        uid = pod["metadata"]["uid"]
        state = self.states.setdefault(uid, PodState())
        if pod["metadata"].get("deletionTimestamp"):
            await self.terminate(pod, state)
            return None
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            await self._stop_running(pod, state)
            return None
        return await self._sync_running(pod, state)

    # -- a live pod -----------------------------------------------------------------------

    async def _sandbox(self, pod: Obj) -> str:
        uid = pod["metadata"]["uid"]
        sid = self._sandboxes.get(uid)
        if sid:
            return sid
        md = pod["metadata"]
        spec = pod.get("spec") or {}
        hostname = spec.get("hostname") or md["name"]
        sid = await self.runtime.run_pod_sandbox(SandboxConfig(
            pod_uid=uid, namespace=md.get("namespace", ""), name=md["name"],
            hostname=hostname[:63], log_directory=str(self.agent.pod_log_dir(pod)),
            labels={LABEL_POD_UID: uid, LABEL_POD_NAME: md["name"],
                    LABEL_POD_NAMESPACE: md.get("namespace", "")}))
        self._sandboxes[uid] = sid
        return sid

    def forget_sandbox(self, uid: str) -> None:
        """Drop the cached sandbox id of a pod that went away."""
        self._sandboxes.pop(uid, None)

    async def _containers(self, sandbox_id: str) -> dict[str, list[ContainerStatus]]:
        out: dict[str, list[ContainerStatus]] = {}
        for c in await self.runtime.list_containers(sandbox_id):
            out.setdefault(c.name, []).append(c)
        return out

    async def _sync_running(self, pod: Obj, state: PodState) -> float | None:
        spec = pod.get("spec") or {}
        if not state.start_time:
            state.start_time = (pod.get("status") or {}).get("startTime") or m.rfc3339()
        sandbox_id = await self._sandbox(pod)
        requeue: list[float] = []
        try:
            await self.volumes.setup(pod)
            state.mount_failures = 0
        except MountError as exc:
            state.mount_failures += 1
            self.events.pod(pod, "Warning", "FailedMount",
                            f'MountVolume.SetUp failed for volume "{exc.volume}" : {exc.message}')
            await self._write_status(pod, state, await self._containers(sandbox_id),
                                     initialized=False, sandbox_ready=True)
            # As the kubelet's volume operations: 0.5 s doubling to two minutes.
            return min(0.5 * 2 ** min(state.mount_failures - 1, 8), 120.0)
        containers = await self._containers(sandbox_id)
        policy = spec.get("restartPolicy") or "Always"

        initialized = True
        for index, c in enumerate(spec.get("initContainers") or []):
            name = c["name"]
            cur = st.latest(containers.get(name) or [])
            if cur is not None and cur.state == EXITED and cur.exit_code == 0:
                continue
            initialized = False
            if cur is None:
                await self._start(pod, state, sandbox_id, c, 0, "initContainers", index)
            elif cur.state in (EXITED, UNKNOWN):
                if policy != "Never":
                    delay = await self._maybe_restart(pod, state, sandbox_id, c, cur,
                                                      "initContainers", index)
                    if delay:
                        requeue.append(delay)
            break
        if initialized:
            for index, c in enumerate(spec.get("containers") or []):
                delay = await self._sync_container(pod, state, sandbox_id, c, containers,
                                                   policy, index)
                if delay:
                    requeue.append(delay)
        containers = await self._containers(sandbox_id)
        await self._write_status(pod, state, containers, initialized, sandbox_ready=True)
        await self._gc_dead(containers)
        if any(reason == "CreateContainerConfigError" for reason, _ in state.waiting.values()):
            requeue.append(10.0)
        return min(requeue) if requeue else None

    async def _sync_container(self, pod: Obj, state: PodState, sandbox_id: str, c: Obj,
                              containers: dict[str, list[ContainerStatus]], policy: str,
                              index: int) -> float | None:
        name = c["name"]
        cur = st.latest(containers.get(name) or [])
        if cur is None:
            await self._start(pod, state, sandbox_id, c, 0, "containers", index)
            return None
        if cur.state == RUNNING:
            self.probes.ensure(pod_key(pod), pod, c, cur.id, self.agent.host_ip)
            for kind in (STARTUP, LIVENESS):
                verdict = self.probes.result(cur.id, kind)
                if verdict.ok is False:
                    what = "startup" if kind == STARTUP else "liveness"
                    self.events.pod(pod, "Normal", "Killing",
                                    f"Container {name} failed {what} probe, will be restarted",
                                    _field_path("containers", index, name))
                    grace = self._probe_grace(pod, c, kind)
                    await self._kill(pod, c, cur, grace, emit=False)
                    cur = await self.runtime.container_status(cur.id) or cur
                    break
            if cur.state == RUNNING:
                return None
        if cur.state == CREATED:
            # Created but never started (the agent stopped in between): start it now.
            try:
                await self.runtime.start_container(cur.id)
            except RuntimeFailure:
                pass
            return None
        # Exited (or its shim vanished): restart per policy.
        if policy == "Never" or (policy == "OnFailure" and cur.exit_code == 0):
            self.probes.stop(cur.id)
            self._remember_termination(c, cur, state)
            return None
        return await self._maybe_restart(pod, state, sandbox_id, c, cur, "containers", index)

    async def _maybe_restart(self, pod: Obj, state: PodState, sandbox_id: str, c: Obj,
                             cur: ContainerStatus, containers_key: str,
                             index: int) -> float | None:
        name = c["name"]
        self.probes.stop(cur.id)
        self._remember_termination(c, cur, state)
        key = f"{pod['metadata']['uid']}/{name}"
        remaining = self.backoff.remaining(key, cur.finished_at or time.time())
        if remaining > 0:
            delay = self.backoff.delay(key)
            state.waiting[name] = ("CrashLoopBackOff",
                                   f"back-off {int(delay)}s restarting failed "
                                   f"container={name} pod={pod_full_name(pod)}")
            self.events.pod(pod, "Warning", "BackOff",
                            f"Back-off restarting failed container {name} in pod "
                            f"{pod_full_name(pod)}", _field_path(containers_key, index, name))
            return remaining + 0.01
        self.backoff.next(key)
        await self._start(pod, state, sandbox_id, c, cur.attempt + 1, containers_key, index)
        return None

    def _remember_termination(self, c: Obj, cur: ContainerStatus, state: PodState) -> None:
        if cur.id in state.termination_messages:
            return
        message = ""
        tpath = self.agent.termination_log_path(cur.labels.get(LABEL_POD_UID, ""), cur.name,
                                                cur.attempt)
        with contextlib.suppress(OSError):
            message = tpath.read_bytes()[:TERMINATION_MESSAGE_LIMIT].decode(errors="replace")
        if not message and cur.exit_code != 0 and \
                c.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = self.agent.log_tail_text(cur.log_path, 80, TERMINATION_MESSAGE_LIMIT)
        state.termination_messages[cur.id] = message

    def _probe_grace(self, pod: Obj, c: Obj, kind: str) -> float:
        probe = c.get("livenessProbe" if kind == LIVENESS else "startupProbe") or {}
        if probe.get("terminationGracePeriodSeconds") is not None:
            return float(probe["terminationGracePeriodSeconds"])
        return float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))

    # -- starting a container -------------------------------------------------------------

    async def _start(self, pod: Obj, state: PodState, sandbox_id: str, c: Obj, attempt: int,
                     containers_key: str, index: int) -> None:
        name = c["name"]
        fpath = _field_path(containers_key, index, name)
        md = pod["metadata"]
        spec = pod.get("spec") or {}
        try:
            env, warnings = await container_env(pod_with_ips(pod, self.agent.host_ip), c,
                                                self.agent.fetch_object,
                                                self.agent.allocatable())
            for w in warnings:
                self.events.pod(pod, "Warning", "InvalidEnvironmentVariableNames", w, fpath)
            command = command_line(c, env)
            if not command:
                raise ConfigError(f'the process runtime runs no images: container "{name}" '
                                  f'needs a command (image "{c.get("image", "")}" cannot '
                                  f"supply an entrypoint)")
            uid, gid, groups = self._identity(pod, c)
            mounts = self._mounts(pod, c, attempt)
        except ConfigError as exc:
            state.waiting[name] = ("CreateContainerConfigError", str(exc))
            self.events.pod(pod, "Warning", "Failed", f"Error: {exc}", fpath)
            return
        state.waiting.pop(name, None)
        self.events.pod(pod, "Normal", "Pulled",
                        f'Container image "{c.get("image", "")}" already present on machine',
                        fpath)
        limits = (c.get("resources") or {}).get("limits") or {}
        requests = (c.get("resources") or {}).get("requests") or {}
        resources = Resources(
            memory_limit_bytes=int_value(limits["memory"]) if limits.get("memory") else None,
            cpu_limit_millis=milli_value(limits["cpu"]) if limits.get("cpu") else None,
            cpu_request_millis=milli_value(requests["cpu"]) if requests.get("cpu") else None)
        log_path = self.agent.pod_log_dir(pod) / name / f"{attempt}.log"
        config = ContainerConfig(
            name=name, attempt=attempt, image=c.get("image", ""), command=command, env=env,
            working_dir=c.get("workingDir") or "", mounts=mounts, run_as_user=uid,
            run_as_group=gid, supplemental_groups=groups, stdin=bool(c.get("stdin")),
            stdin_once=bool(c.get("stdinOnce")), tty=bool(c.get("tty")), resources=resources,
            log_path=str(log_path),
            labels={LABEL_POD_UID: md["uid"], LABEL_POD_NAME: md["name"],
                    LABEL_POD_NAMESPACE: md.get("namespace", ""), LABEL_CONTAINER_NAME: name})
        try:
            # The termination-log file need only exist by the start: write it meanwhile.
            cid, _ = await asyncio.gather(
                self.runtime.create_container(sandbox_id, config),
                asyncio.to_thread(_empty_termination_log,
                                  self.agent.termination_log_path(md["uid"], name, attempt)))
        except RuntimeFailure as exc:
            state.waiting[name] = (exc.reason, exc.message)
            self.events.pod(pod, "Warning", "Failed", f"Error: {exc.message}", fpath)
            return
        self.events.pod(pod, "Normal", "Created", f"Created container: {name}", fpath)
        try:
            await self.runtime.start_container(cid)
        except RuntimeFailure as exc:
            self.events.pod(pod, "Warning", "Failed",
                            f"Error: failed to start container \"{name}\": {exc.message}", fpath)
            return
        self.events.pod(pod, "Normal", "Started", f"Started container {name}", fpath)
        hook = (c.get("lifecycle") or {}).get("postStart")
        if hook:
            try:
                await run_handler(self.runtime, cid, c, hook, self.agent.host_ip,
                                  float(spec.get("terminationGracePeriodSeconds", 30) or 30),
                                  self.probes.session())
            except HandlerError as exc:
                self.events.pod(pod, "Warning", "FailedPostStartHook", str(exc), fpath)
                status = await self.runtime.container_status(cid)
                if status is not None:
                    await self._kill(pod, c, status, 0, emit=False)
                return
        self.probes.ensure(pod_key(pod), pod, c, cid, self.agent.host_ip)

    @staticmethod
    def _identity(pod: Obj, c: Obj) -> tuple[int | None, int | None, list[int]]:
        psc = (pod.get("spec") or {}).get("securityContext") or {}
        csc = c.get("securityContext") or {}
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        gid = csc.get("runAsGroup", psc.get("runAsGroup"))
        non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        groups = [int(g) for g in psc.get("supplementalGroups") or []]
        if psc.get("fsGroup") is not None:
            groups.append(int(psc["fsGroup"]))
        full = pod_full_name(pod)
        if non_root:
            if uid is None:
                raise ConfigError(f'container has runAsNonRoot and image will run as root '
                                  f'(pod: "{full}", container: {c.get("name", "")})')
            if int(uid) == 0:
                raise ConfigError(f"container's runAsUser breaks non-root policy "
                                  f'(pod: "{full}", container: {c.get("name", "")})')
        if uid is not None and gid is None:
            gid = 0
        return (int(uid) if uid is not None else None, int(gid) if gid is not None else None,
                groups)

    def _mounts(self, pod: Obj, c: Obj, attempt: int) -> list[Mount]:
        volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
        out = []
        for vm in c.get("volumeMounts") or []:
            vol = volumes.get(vm.get("name"))
            if vol is None:
                raise ConfigError(f"cannot find volume \"{vm.get('name')}\" to mount into "
                                  f"container \"{c.get('name', '')}\"")
            host = self.volumes.volume_path(pod, vol)
            sub = vm.get("subPath") or ""
            if sub:
                host = host / sub
                if not host.exists():
                    host.mkdir(parents=True, exist_ok=True)
            read_only = bool(vm.get("readOnly")) or any(
                k in vol for k in ("configMap", "secret", "projected", "downwardAPI"))
            out.append(Mount(str(host), vm.get("mountPath", ""), read_only))
        tpath = c.get("terminationMessagePath") or "/dev/termination-log"
        tfile = self.agent.termination_log_path(pod["metadata"]["uid"], c["name"], attempt)
        out.append(Mount(str(tfile), tpath, False))
        return out

    # -- stopping ---------------------------------------------------------------------------

    async def _kill(self, pod: Obj, c: Obj, cur: ContainerStatus, grace: float,
                    emit: bool = True, field_path: str = "") -> None:
        """preStop hook, then SIGTERM, then SIGKILL after what is left of the grace period."""
        if emit:
            self.events.pod(pod, "Normal", "Killing", f"Stopping container {c['name']}",
                            field_path)
        self.probes.stop(cur.id)
        started = time.monotonic()
        hook = (c.get("lifecycle") or {}).get("preStop")
        if hook and grace > 0:
            try:
                await asyncio.wait_for(run_handler(self.runtime, cur.id, c, hook,
                                                   self.agent.host_ip, grace,
                                                   self.probes.session()), grace)
            except (HandlerError, TimeoutError) as exc:
                message = str(exc) or "the preStop hook did not finish within the grace period"
                self.events.pod(pod, "Warning", "FailedPreStopHook",
                                f"PreStopHook failed: {message}", field_path)
            grace = max(MIN_GRACE_AFTER_HOOK, grace - (time.monotonic() - started))
        sig = signal.SIGTERM
        stop_signal = (c.get("lifecycle") or {}).get("stopSignal")
        if isinstance(stop_signal, str) and hasattr(signal, stop_signal):
            sig = getattr(signal, stop_signal)
        await self.runtime.stop_container(cur.id, grace, sig if grace > 0 else signal.SIGKILL)

    async def _stop_running(self, pod: Obj, state: PodState) -> None:
        """A pod in a terminal phase keeps no running containers."""
        sid = self._sandboxes.get(pod["metadata"]["uid"])
        if not sid:
            return
        for cur in await self.runtime.list_containers(sid):
            if cur.state == RUNNING:
                await self.runtime.stop_container(cur.id, 0, signal.SIGKILL)
            self.probes.stop(cur.id)

    async def terminate(self, pod: Obj, state: PodState) -> None:
        """Graceful deletion: readiness off, preStop, SIGTERM, grace, SIGKILL, then delete."""
        md = pod["metadata"]
        uid = md["uid"]
        spec = pod.get("spec") or {}
        grace = float(md.get("deletionGracePeriodSeconds",
                             spec.get("terminationGracePeriodSeconds", 30)) or 0)
        sandbox_id = self._sandboxes.get(uid)
        if sandbox_id is None:
            for sb in await self.runtime.list_pod_sandboxes():
                if sb.pod_uid == uid:
                    sandbox_id = sb.id
        if not state.terminating:
            state.terminating = True
            if sandbox_id:
                await self._write_status(pod, state, await self._containers(sandbox_id),
                                         True, sandbox_ready=True)
        if sandbox_id:
            containers = await self._containers(sandbox_id)
            specs = {c["name"]: (c, "containers", i)
                     for i, c in enumerate(spec.get("containers") or [])}
            specs.update({c["name"]: (c, "initContainers", i)
                          for i, c in enumerate(spec.get("initContainers") or [])})
            kills = []
            for name, instances in containers.items():
                cur = st.latest(instances)
                if cur is None or cur.state != RUNNING or name not in specs:
                    continue
                c, key, index = specs[name]
                kills.append(self._kill(pod, c, cur, grace,
                                        field_path=_field_path(key, index, name)))
            if kills:
                await asyncio.gather(*kills)
            containers = await self._containers(sandbox_id)
            for instances in containers.values():
                cur = st.latest(instances)
                if cur is not None:
                    cspec = specs.get(cur.name, ({}, "", 0))[0]
                    self._remember_termination(cspec, cur, state)
            await self._write_status(pod, state, containers, True, sandbox_ready=False)
        await self.cleanup_pod(uid, pod)
        try:
            await self.client.delete("", "v1", "pods", md["name"], md.get("namespace", ""),
                                     grace_period_seconds=0, preconditions={"uid": uid})
        except StatusError as err:
            if err.code not in (404, 409):
                raise

    async def cleanup_pod(self, uid: str, pod: Obj | None = None) -> None:
        """Remove everything a pod had on this node: containers, sandbox, volumes, logs."""
        sandbox_ids = [sb.id for sb in await self.runtime.list_pod_sandboxes()
                       if sb.pod_uid == uid]
        for sid in sandbox_ids:
            for cur in await self.runtime.list_containers(sid):
                self.probes.stop(cur.id)
            await self.runtime.remove_pod_sandbox(sid)
        self._sandboxes.pop(uid, None)
        await self.volumes.teardown(uid)
        self.agent.tokens.forget_pod(uid)
        for d in self.agent.log_dirs_of(uid):
            await asyncio.to_thread(shutil.rmtree, d, True)
        self.backoff.forget(f"{uid}/")
        self.states.pop(uid, None)

    async def _gc_dead(self, containers: dict[str, list[ContainerStatus]]) -> None:
        """Keep the newest instance and the one before it (for --previous) per container."""
        for instances in containers.values():
            ordered = sorted(instances, key=lambda c: (c.attempt, c.created_at))
            for old in ordered[:-2]:
                if old.state in (EXITED, UNKNOWN):
                    with contextlib.suppress(OSError):
                        Path(old.log_path).unlink()
                    await self.runtime.remove_container(old.id)

    # -- status -----------------------------------------------------------------------------

    async def _write_status(self, pod: Obj, state: PodState,
                            containers: dict[str, list[ContainerStatus]], initialized: bool,
                            sandbox_ready: bool) -> None:
        obs = st.Observed(containers=containers, waiting=dict(state.waiting),
                          termination_messages=state.termination_messages,
                          initialized=initialized, sandbox_ready=sandbox_ready,
                          terminating=state.terminating, host_ip=self.agent.host_ip,
                          pod_ip=self.agent.host_ip, start_time=state.start_time,
                          scheme=f"{self.runtime.name}://")
        for c in (pod.get("spec") or {}).get("containers") or []:
            cur = st.latest(containers.get(c["name"]) or [])
            if cur is None or cur.state != RUNNING:
                continue
            started = True
            if c.get("startupProbe"):
                started = self.probes.result(cur.id, STARTUP).ok is True
            obs.started[c["name"]] = started
            ready = started
            if c.get("readinessProbe"):
                ready = ready and self.probes.result(cur.id, READINESS).ok is True
            obs.ready[c["name"]] = ready
        new = st.build_status(pod, obs)
        if state.last_status is not None and \
                st.comparable(state.last_status) == st.comparable(new):
            return
        old = pod.get("status") or {}
        body: Obj = dict(new)
        for k in old:
            if k not in body:
                body[k] = None
        md = pod["metadata"]
        try:
            async with self.events.status_first():
                await self.client.patch("", "v1", "pods", md["name"], {"status": body},
                                        md.get("namespace", ""), subresource="status")
            state.last_status = new
        except StatusError as err:
            if err.code != 404:
                log.warning("status of %s not written: %s", pod_key(pod), err.message)


def _empty_termination_log(path: Path) -> None:
    """The host file behind a container's terminationMessagePath, empty and writable by
    whatever user the container runs as."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    path.chmod(0o666)


def pod_with_ips(pod: Obj, host_ip: str) -> Obj:
    """The pod as the downward API should see it once the sandbox has its IP."""
    out = dict(pod)
    status = dict(out.get("status") or {})
    status.setdefault("hostIP", host_ip)
    status.setdefault("hostIPs", [{"ip": host_ip}])
    status.setdefault("podIP", host_ip)
    status.setdefault("podIPs", [{"ip": host_ip}])
    out["status"] = status
    return out

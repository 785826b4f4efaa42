"""The node agent: registers its Node, heartbeats, and runs the pods bound to it.

Like every component but the API server it is an API client: it watches the pods
whose `spec.nodeName` is its node, reads ConfigMaps and Secrets when containers and
volumes need them, and writes the Node, its Lease, pod statuses and events back.
Its own state lives under `state_dir`: the runtime's folders, the pods' volumes
(`pods/<uid>/`), container logs (`logs/<namespace>_<name>_<uid>/<container>/<n>.log`)
and its serving certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skiff.agent import machine
from skiff.agent.backoff import Backoff
from skiff.agent.events import EventRecorder
from skiff.agent.lease import LeaseRenewer
from skiff.agent.logs import tail_text
from skiff.agent.pod_sync import PodSyncer, pod_key
from skiff.agent.pod_workers import PodWorkers
from skiff.agent.probes import TITLE, ProbeManager
from skiff.agent.server import AgentServer
from skiff.agent.streams import StreamTargets
from skiff.agent.token_manager import TokenManager
from skiff.agent.volumes import VolumeManager
from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.http_client import Client
from skiff.client.informer import Informer
from skiff.runtime.protocol import ContainerStatus, Runtime

log = logging.getLogger(__name__)

Obj = dict[str, Any]
KUBELET_VERSION = "v1.32.4-skiff"
STATUS_INTERVAL = 10.0
STATUS_HEARTBEAT = 60.0
HOUSEKEEPING_INTERVAL = 2.0
RESYNC_INTERVAL = 10.0
STATS_INTERVAL = 5.0


@dataclass
class AgentConfig:
    """How one node agent runs."""

    node_name: str
    state_dir: Path
    host_ip: str = "127.0.0.1"
    server_host: str = "127.0.0.1"
    server_port: int = 0
    client_ca: Path | None = None
    zone: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    cpu: str = ""
    memory: str = ""
    max_pods: int = machine.DEFAULT_MAX_PODS
    lease_duration: int = 40
    lease_interval: float = 10.0


class NodeAgent:
    """One node (see the module docstring)."""

    def __init__(self, client: Client, runtime: Runtime, config: AgentConfig) -> None:
        self.client = client
        self.runtime = runtime
        self.config = config
        self.node_name = config.node_name
        self.host_ip = config.host_ip
        self.state_dir = config.state_dir
        self.logs_dir = self.state_dir / "logs"
        self.node_uid = ""
        self.events = EventRecorder(client, self.node_name)
        self.backoff = Backoff()
        self.tokens = TokenManager(self.request_token)
        self.volumes = VolumeManager(self.state_dir, self.fetch_object, self.tokens.token,
                                     self.allocatable)
        self.probes = ProbeManager(runtime, self._probe_changed, self._probe_failed)
        self.pods = Informer(client, "", "v1", "pods",
                             field_selector=f"spec.nodeName={self.node_name}")
        self.syncer = PodSyncer(self)
        self.workers = PodWorkers(self.syncer.sync)
        self.streams = StreamTargets(self)
        cert, key = self._serving_cert()
        self.server = AgentServer(self, config.server_host, config.server_port, cert, key,
                                  config.client_ca)
        self._tasks: list[asyncio.Task[Any]] = []
        self._cpu_samples: dict[str, list[tuple[float, int]]] = {}
        self._node_cpu: list[tuple[float, int]] = []
        self._last_conditions: list[Obj] = []
        self._last_status_write = 0.0
        # As the kubelet's: starts false, so an agent on a cordoned node reports it.
        self._last_unschedulable = False
        self._housekeeping_lock = asyncio.Lock()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve, register the node, and start watching and syncing pods."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        await self.runtime.start()
        await self.server.start()
        await self.register()
        self.pods.on_add(lambda pod: self.workers.enqueue(pod_key(pod)))
        self.pods.on_update(lambda _old, pod: self.workers.enqueue(pod_key(pod)))
        self.pods.on_delete(lambda pod: self.workers.enqueue(pod_key(pod)))
        lease = LeaseRenewer(self.client, self.node_name, lambda: self.node_uid,
                             self.config.lease_interval, self.config.lease_duration)
        self._tasks = [
            self.pods.start(),
            asyncio.create_task(lease.run(), name="lease"),
            asyncio.create_task(self._node_status_loop(), name="node-status"),
            asyncio.create_task(self._runtime_events(), name="runtime-events"),
            asyncio.create_task(self._housekeeping_loop(), name="housekeeping"),
            asyncio.create_task(self._resync_loop(), name="resync"),
            asyncio.create_task(self._stats_loop(), name="stats"),
        ]
        log.info("node %s up: runtime %s, server https://%s:%d", self.node_name,
                 self.runtime.name, self.config.server_host, self.server.port)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then shut down (containers keep running)."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the agent's own work; containers and their shims keep running."""
        self.pods.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.workers.close()
        await self.probes.close()
        await self.events.close()
        await self.server.stop()
        await self.runtime.close()

    # -- node ---------------------------------------------------------------------------

    def _serving_cert(self) -> tuple[Path, Path]:
        from skiff.apiserver.pki import self_signed_server_cert

        folder = self.state_dir / "pki"
        cert, key = folder / "agent.crt", folder / "agent.key"
        if not (cert.exists() and key.exists()):
            folder.mkdir(parents=True, exist_ok=True)
            c, k = self_signed_server_cert(self.node_name, ("localhost", "127.0.0.1",
                                                            self.host_ip, self.node_name))
            key.touch(mode=0o600)
            key.write_bytes(k)
            cert.write_bytes(c)
        return cert, key

    def capacity(self) -> dict[str, str]:
        """The node's capacity: from flags, else from the machine."""
        total, _ = machine.disk(self.state_dir)
        return {
            "cpu": self.config.cpu or str(machine.cpu_count()),
            "memory": self.config.memory or f"{machine.memory_total() // 1024}Ki",
            "pods": str(self.config.max_pods),
            "ephemeral-storage": f"{total // 1024}Ki",
            "hugepages-1Gi": "0", "hugepages-2Mi": "0",
        }

    def allocatable(self) -> dict[str, str]:
        """What pods may use (capacity: skiff reserves nothing for itself)."""
        return self.capacity()

    def _conditions(self) -> list[Obj]:
        now = m.rfc3339()
        mem_pressure = machine.memory_available() < machine.MEMORY_AVAILABLE_MIN
        total, avail = machine.disk(self.state_dir)
        disk_pressure = total > 0 and avail / total < machine.DISK_AVAILABLE_FRACTION
        pid_max, pid_used = machine.pids()
        pid_pressure = pid_max - pid_used < pid_max * machine.PID_AVAILABLE_FRACTION
        specs = [
            ("MemoryPressure", mem_pressure, "KubeletHasInsufficientMemory",
             "kubelet has insufficient memory available", "KubeletHasSufficientMemory",
             "kubelet has sufficient memory available"),
            ("DiskPressure", disk_pressure, "KubeletHasDiskPressure",
             "kubelet has disk pressure", "KubeletHasNoDiskPressure",
             "kubelet has no disk pressure"),
            ("PIDPressure", pid_pressure, "KubeletHasInsufficientPID",
             "kubelet has insufficient PID available", "KubeletHasSufficientPID",
             "kubelet has sufficient PID available"),
        ]
        out = []
        for ctype, bad, bad_reason, bad_msg, ok_reason, ok_msg in specs:
            out.append({"type": ctype, "status": "True" if bad else "False",
                        "reason": bad_reason if bad else ok_reason,
                        "message": bad_msg if bad else ok_msg,
                        "lastHeartbeatTime": now, "lastTransitionTime": now})
        out.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                    "lastTransitionTime": now})
        return out

    def _node_status(self, old: Obj | None) -> Obj:
        conditions = self._conditions()
        before = {c.get("type"): c for c in ((old or {}).get("status") or {}).get("conditions")
                  or []}
        for c in conditions:
            prev = before.get(c["type"])
            if prev is not None and prev.get("status") == c["status"]:
                c["lastTransitionTime"] = prev.get("lastTransitionTime") or c[
                    "lastTransitionTime"]
        cap = self.capacity()
        return {
            "capacity": cap, "allocatable": self.allocatable(), "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": self.host_ip},
                          {"type": "Hostname", "address": self.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.server.port}},
            "nodeInfo": {
                "machineID": machine.machine_id(), "systemUUID": machine.machine_id(),
                "bootID": machine.boot_id(), "kernelVersion": machine.kernel_version(),
                "osImage": machine.os_image(),
                "containerRuntimeVersion": f"{self.runtime.name}://{self.runtime.version}",
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": machine.arch()},
        }

    def _labels(self) -> dict[str, str]:
        arch = machine.arch()
        labels = {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux",
                  "beta.kubernetes.io/arch": arch}
        if self.config.zone:
            labels["topology.kubernetes.io/zone"] = self.config.zone
        labels.update(self.config.labels)
        return labels

    async def register(self) -> None:
        """Create the Node (or take over the existing one) and report its status."""
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name, "labels": self._labels(),
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                             "volumes.kubernetes.io/controller-managed-"
                                             "attach-detach": "true"}},
                "spec": {}}
        while True:
            try:
                try:
                    created = await self.client.create("", "v1", "nodes", node)
                    self.node_uid = created["metadata"]["uid"]
                    current = created
                except StatusError as err:
                    if err.code != 409:
                        raise
                    current = await self.client.get("", "v1", "nodes", self.node_name)
                    self.node_uid = current["metadata"]["uid"]
                    await self.client.patch("", "v1", "nodes", self.node_name,
                                            {"metadata": {"labels": self._labels()}})
                await self._write_node_status(current)
                return
            except (OSError, StatusError) as exc:
                log.warning("registering node %s failed (%s); retrying", self.node_name, exc)
                await asyncio.sleep(1.0)

    def record_schedulable(self, node: Obj) -> None:
        """As the kubelet: an event when it sees its node cordoned or uncordoned."""
        unschedulable = (node.get("spec") or {}).get("unschedulable") is True
        if unschedulable == self._last_unschedulable:
            return
        self._last_unschedulable = unschedulable
        reason = "NodeNotSchedulable" if unschedulable else "NodeSchedulable"
        self.events.node_event(self.node_uid, "Normal", reason,
                               f"Node {self.node_name} status is now: {reason}")

    async def _write_node_status(self, current: Obj | None = None) -> None:
        if current is None:
            current = await self.client.get("", "v1", "nodes", self.node_name)
        self.record_schedulable(current)
        status = self._node_status(current)
        await self.client.patch("", "v1", "nodes", self.node_name, {"status": status},
                                subresource="status")
        self._last_conditions = [{k: c[k] for k in ("type", "status")}
                                 for c in status["conditions"]]
        self._last_status_write = time.monotonic()

    async def _node_status_loop(self) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL)
            try:
                now = [{"type": c["type"], "status": c["status"]} for c in self._conditions()]
                current = await self.client.get("", "v1", "nodes", self.node_name)
                self.record_schedulable(current)
                ready = m.condition(current, "Ready") or {}
                if now != self._last_conditions or ready.get("status") != "True" or \
                        time.monotonic() - self._last_status_write > STATUS_HEARTBEAT:
                    await self._write_node_status(current)
            except StatusError as err:
                if err.code == 404:
                    # Someone deleted our Node: register again, as the kubelet does.
                    await self.register()
                else:
                    log.warning("node status not written: %s", err.message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep reporting through errors
                log.warning("node status not written: %s", exc)

    # -- pods -----------------------------------------------------------------------------

    def _probe_changed(self, key: str) -> None:
        self.workers.enqueue(key)

    def _probe_failed(self, pod: Obj, container: str, kind: str, message: str) -> None:
        self.events.pod(pod, "Warning", "Unhealthy", f"{TITLE[kind]} probe failed: {message}",
                        f"spec.containers{{{container}}}")

    async def _runtime_events(self) -> None:
        async for event in self.runtime.events():
            if event.kind != "exited":
                continue
            for sb in await self.runtime.list_pod_sandboxes():
                if sb.id == event.sandbox_id:
                    self.workers.enqueue(f"{sb.namespace}/{sb.name}")
                    break

    async def _resync_loop(self) -> None:
        await self.pods.has_synced.wait()
        while True:
            await asyncio.sleep(RESYNC_INTERVAL)
            for pod in self.pods.list():
                self.workers.enqueue(pod_key(pod))

    async def _housekeeping_loop(self) -> None:
        await self.pods.has_synced.wait()
        while True:
            try:
                await self.housekeeping()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("housekeeping failed")
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)

    async def housekeeping(self) -> None:
        """Remove what pods no longer bound here left behind (killed without grace)."""
        if not self.pods.has_synced.is_set():
            return
        async with self._housekeeping_lock:
            live = {p["metadata"]["uid"] for p in self.pods.list()}
            gone = {sb.pod_uid for sb in await self.runtime.list_pod_sandboxes()} - live
            gone |= set(self.volumes.known_pods()) - live
            for uid in gone:
                log.info("cleaning up pod %s, no longer bound to this node", uid)
                await self.syncer.cleanup_pod(uid)

    async def stop_all_pods(self, grace: float = 2.0) -> None:
        """Stop every container of this node and remove what its pods left on the host
        (the pod objects stay; a later agent starts them again)."""
        await self.workers.close()
        await self.runtime.settle()
        sandboxes = await self.runtime.list_pod_sandboxes()
        stops = [self.runtime.stop_container(c.id, grace)
                 for sb in sandboxes for c in await self.runtime.list_containers(sb.id)
                 if c.state == "running"]
        await asyncio.gather(*stops, return_exceptions=True)
        for sb in sandboxes:
            await self.syncer.cleanup_pod(sb.pod_uid)
        for uid in self.volumes.known_pods():
            await self.syncer.cleanup_pod(uid)

    async def sandbox_of(self, pod: Obj) -> str | None:
        """The sandbox id of a pod on this node, if it has one."""
        uid = pod["metadata"]["uid"]
        for sb in await self.runtime.list_pod_sandboxes():
            if sb.pod_uid == uid:
                return sb.id
        return None

    async def container_instances(self, pod: Obj, name: str) -> list[ContainerStatus]:
        """The runtime's instances of one container of a pod."""
        sid = await self.sandbox_of(pod)
        if sid is None:
            return []
        return [c for c in await self.runtime.list_containers(sid) if c.name == name]

    # -- what pods need from the API and the host -----------------------------------------

    async def fetch_object(self, kind: str, namespace: str, name: str) -> Obj | None:
        """A ConfigMap or Secret, or None if it does not exist."""
        plural = {"ConfigMap": "configmaps", "Secret": "secrets"}[kind]
        try:
            return await self.client.get("", "v1", plural, name, namespace)
        except StatusError as err:
            if err.code == 404:
                return None
            raise

    async def request_token(self, namespace: str, sa: str, spec: Obj) -> Obj:
        """A bound service account token: the TokenRequest the API answers with."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": spec}
        path = self.client.path("", "v1", "serviceaccounts", sa, namespace, "token")
        out = await self.client.request("POST", path, body=body)
        return out if isinstance(out, dict) else {}

    def pod_log_dir(self, pod: Obj) -> Path:
        """Where a pod's container logs go."""
        md = pod["metadata"]
        return self.logs_dir / f"{md.get('namespace', '')}_{md['name']}_{md['uid']}"

    def log_dirs_of(self, uid: str) -> list[Path]:
        """Log folders of a pod by uid."""
        if not self.logs_dir.exists():
            return []
        return [p for p in self.logs_dir.iterdir() if p.name.endswith(f"_{uid}")]

    def termination_log_path(self, uid: str, container: str, attempt: int) -> Path:
        """The host file mounted at a container instance's terminationMessagePath."""
        return self.volumes.pod_dir(uid) / "containers" / container / \
            f"{attempt}.termination-log"

    @staticmethod
    def log_tail_text(path: str, lines: int, limit: int) -> str:
        """The last lines of a container log as text."""
        return tail_text(path, lines, limit)

    # -- usage ------------------------------------------------------------------------------

    async def _stats_loop(self) -> None:
        while True:
            try:
                await self._sample()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - stats are best effort
                log.debug("stats sample failed", exc_info=True)
            await asyncio.sleep(STATS_INTERVAL)

    async def _sample(self) -> None:
        now = time.time()
        seen = set()
        for c in await self.runtime.list_containers():
            if c.state != "running":
                continue
            stats = await self.runtime.container_stats(c.id)
            if stats is None:
                continue
            seen.add(c.id)
            samples = self._cpu_samples.setdefault(c.id, [])
            samples.append((now, stats.cpu_usage_ns))
            del samples[:-2]
        for cid in [k for k in self._cpu_samples if k not in seen]:
            del self._cpu_samples[cid]
        self._node_cpu.append((now, _node_cpu_ns()))
        del self._node_cpu[:-2]

    @staticmethod
    def _rate(samples: list[tuple[float, int]]) -> int:
        if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
            return 0
        return int((samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0]))

    async def stats_summary(self) -> Obj:
        """Node and pod usage in the shape of the kubelet's /stats/summary."""
        now = m.rfc3339()
        if len(self._node_cpu) < 2:
            await self._sample()
            await asyncio.sleep(0.2)
            await self._sample()
        mem_total = machine.memory_total()
        mem_avail = machine.memory_available()
        node = {"nodeName": self.node_name,
                "cpu": {"time": now, "usageNanoCores": self._rate(self._node_cpu),
                        "usageCoreNanoSeconds": self._node_cpu[-1][1] if self._node_cpu else 0},
                "memory": {"time": now, "workingSetBytes": mem_total - mem_avail,
                           "availableBytes": mem_avail, "usageBytes": mem_total - mem_avail}}
        pods = []
        for pod in self.pods.list():
            sid = await self.sandbox_of(pod)
            if sid is None:
                continue
            containers = []
            for c in await self.runtime.list_containers(sid):
                if c.state != "running":
                    continue
                stats = await self.runtime.container_stats(c.id)
                if stats is None:
                    continue
                containers.append({
                    "name": c.name, "startTime": m.rfc3339(),
                    "cpu": {"time": now, "usageNanoCores": self._rate(
                        self._cpu_samples.get(c.id, [])),
                        "usageCoreNanoSeconds": stats.cpu_usage_ns},
                    "memory": {"time": now, "workingSetBytes": stats.memory_working_set_bytes}})
            md = pod["metadata"]
            pods.append({"podRef": {"name": md["name"], "namespace": md.get("namespace", ""),
                                    "uid": md["uid"]},
                         "containers": containers,
                         "cpu": {"time": now, "usageNanoCores": sum(
                             c["cpu"]["usageNanoCores"] for c in containers)},
                         "memory": {"time": now, "workingSetBytes": sum(
                             c["memory"]["workingSetBytes"] for c in containers)}})
        return {"node": node, "pods": pods}


def _node_cpu_ns() -> int:
    """CPU time the machine spent not idle, in ns, from /proc/stat."""
    import os

    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(values[:8]) - idle) * 1_000_000_000 // ticks

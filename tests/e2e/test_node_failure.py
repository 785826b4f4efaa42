"""Agents that die and come back: re-attach, unreachable nodes, eviction, cleanup.

A cluster of its own with two node agents, a 3 s node grace period and 2 s default
tolerations, so the whole failure story plays out in seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import KUBECTL, Cluster, Kubectl, start_cluster
from tests.e2e.test_node_agent import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the process runtime needs root")


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Kubectl]]:
    """A two-node cluster with fast failure detection, and kubectl for it."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    data = tmp_path_factory.mktemp("skiff-nodes")
    cluster = start_cluster(data, None, "--nodes", "2", "--node-monitor-grace-period", "3",
                            "--default-toleration-seconds", "2")
    home = tmp_path_factory.mktemp("kubectl-nodes")
    cache = home / ".kube" / "cache"
    cache.mkdir(parents=True)
    kubectl = Kubectl(cluster, cache)
    commands: dict[str, list[str]] = {}
    try:
        wait_for(lambda: kubectl("get", "nodes", "--no-headers").count(" Ready ") == 2)
        wait_for(lambda: len(list((data / "agents").glob("*/agent.pid"))) == 2)
        for node in ("node-1", "node-2"):
            commands[node] = _agent_cmdline(cluster, node)[1]
        yield cluster, kubectl
    finally:
        # An agent a test killed left its containers running: a new agent with
        # --stop-containers-on-exit takes them over and stops them on its way out.
        for node, cmd in commands.items():
            pid_file = data / "agents" / node / "agent.pid"
            if not _alive(int(pid_file.read_text())):
                proc = _restart_agent(cluster, cmd)
                wait_for(lambda p=pid_file, q=proc: _alive(int(p.read_text())) and
                         int(p.read_text()) == q.pid)
        for pid_file in (data / "agents").glob("*/agent.pid"):
            _stop_agent(pid_file)
        cluster.stop()
        leftovers = subprocess.run(["pgrep", "-f", str(data)], capture_output=True,
                                   text=True).stdout.split()
        for pid in leftovers:
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)
        assert leftovers == [], f"processes left behind: {leftovers}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"


def _stop_agent(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)


def _agent_cmdline(cluster: Cluster, node: str) -> tuple[int, list[str]]:
    pid = int((cluster.data_dir / "agents" / node / "agent.pid").read_text())
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return pid, [c.decode() for c in cmd if c]


def _restart_agent(cluster: Cluster, cmd: list[str]) -> subprocess.Popen[bytes]:
    log = open(cluster.data_dir / "agent-restart.log", "ab")  # noqa: SIM115
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _pod(kubectl: Kubectl, name: str) -> dict[str, Any]:
    return json.loads(kubectl("get", "pod", name, "-o", "json"))


def test_agent_restart_reattaches_to_running_containers(
        two_nodes: tuple[Cluster, Kubectl]) -> None:
    cluster, kubectl = two_nodes
    kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Pod
metadata: {name: steady}
spec:
  nodeName: node-1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "i=0; while true; do echo $i; i=$((i+1)); sleep 0.2; done"]
""")
    kubectl("wait", "--for=condition=Ready", "pod/steady", "--timeout=30s")
    before = _pod(kubectl, "steady")["status"]["containerStatuses"][0]
    pid, cmd = _agent_cmdline(cluster, "node-1")
    os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    proc = _restart_agent(cluster, cmd)
    wait_for(lambda: int((cluster.data_dir / "agents" / "node-1" / "agent.pid")
                         .read_text()) == proc.pid)
    time.sleep(2)
    after = _pod(kubectl, "steady")["status"]["containerStatuses"][0]
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == 0 and "running" in after["state"]
    # The restarted agent serves the same container's log.
    first = kubectl("logs", "steady", "--tail=1")
    wait_for(lambda: kubectl("logs", "steady", "--tail=1") != first)
    kubectl("delete", "pod", "steady", "--grace-period=1")


def test_unreachable_node_is_tainted_and_its_pods_evicted(
        two_nodes: tuple[Cluster, Kubectl]) -> None:
    cluster, kubectl = two_nodes
    kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Pod
metadata: {name: stranded}
spec:
  nodeName: node-2
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: tolerant}
spec:
  nodeName: node-2
  terminationGracePeriodSeconds: 1
  tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute}]
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
""")
    kubectl("wait", "--for=condition=Ready", "pod/stranded", "pod/tolerant", "--timeout=30s")
    tolerations = _pod(kubectl, "stranded")["spec"]["tolerations"]
    assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 2} in tolerations
    pid, cmd = _agent_cmdline(cluster, "node-2")
    os.kill(pid, signal.SIGKILL)

    def node() -> dict[str, Any]:
        return json.loads(kubectl("get", "node", "node-2", "-o", "json"))

    def ready_status() -> str:
        return next(c["status"] for c in node()["status"]["conditions"]
                    if c["type"] == "Ready")

    wait_for(lambda: ready_status() == "Unknown", timeout=20)
    assert "NotReady" in kubectl("get", "node", "node-2")
    taints = wait_for(lambda: node()["spec"].get("taints"))
    assert {(t["key"], t["effect"]) for t in taints} == {
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoSchedule")}
    # Past its 2 s toleration the pod is deleted (and stays Terminating: its agent is gone).
    wait_for(lambda: _pod(kubectl, "stranded")["metadata"].get("deletionTimestamp"),
             timeout=20)
    assert not _pod(kubectl, "tolerant")["metadata"].get("deletionTimestamp")
    ev = kubectl("get", "events", "--field-selector", "involvedObject.name=stranded")
    assert "TaintManagerEviction" in ev
    # The node comes back: it reconciles (finishes the deletion) and loses its taint.
    _restart_agent(cluster, cmd)
    kubectl("wait", "--for=delete", "pod/stranded", "--timeout=30s")
    wait_for(lambda: ready_status() == "True", timeout=30)
    wait_for(lambda: not any(t["key"] == "node.kubernetes.io/unreachable"
                             for t in node()["spec"].get("taints") or []), timeout=20)
    assert "Running" in kubectl("get", "pod", "tolerant")
    kubectl("delete", "pod", "tolerant", "--grace-period=1")


def test_pods_of_a_dead_node_are_replaced_on_another(
        two_nodes: tuple[Cluster, Kubectl]) -> None:
    cluster, kubectl = two_nodes
    kubectl("apply", "-f", "-", input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: movers}
spec:
  replicas: 2
  selector: {matchLabels: {app: movers}}
  template:
    metadata: {labels: {app: movers}}
    spec:
      terminationGracePeriodSeconds: 1
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              topologyKey: kubernetes.io/hostname
              labelSelector: {matchLabels: {app: movers}}
      containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
""")
    kubectl("rollout", "status", "deployment/movers", "--timeout=60s")

    def movers() -> list[dict[str, Any]]:
        return json.loads(kubectl("get", "pods", "-l", "app=movers", "-o", "json"))["items"]

    placed = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in movers()}
    assert sorted(placed.values()) == ["node-1", "node-2"]
    victim = next(name for name, node in placed.items() if node == "node-2")
    pid, cmd = _agent_cmdline(cluster, "node-2")
    os.kill(pid, signal.SIGKILL)

    # node-2 goes unreachable, its pod is evicted after the 2 s default toleration, the
    # ReplicaSet makes a replacement, and the scheduler (node-2 is tainted) puts it on node-1.
    def replaced() -> bool:
        live = [p for p in movers() if not p["metadata"].get("deletionTimestamp")]
        return (len(live) == 2 and victim not in {p["metadata"]["name"] for p in live}
                and all(p["spec"].get("nodeName") == "node-1" and
                        (p.get("status") or {}).get("phase") == "Running" for p in live))

    wait_for(replaced, timeout=60)
    # The node comes back and finishes the evicted pod's deletion.
    _restart_agent(cluster, cmd)
    kubectl("wait", "--for=delete", f"pod/{victim}", "--timeout=30s")
    kubectl("delete", "deployment", "movers", "--wait=true", "--timeout=60s")

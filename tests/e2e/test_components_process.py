"""`skiff up` runs the controllers, scheduler and sim agent in one child process.

The child (`skiff components`) starts once the API server is ready, does the cluster's
work through the API, serves its metrics on `--components-metrics-port`, stops with a
clean shutdown and dies with its parent when that is killed.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from skiff.client.metrics import parse
from tests.e2e.conftest import Cluster, eventually, free_port, new_kubectl, start_cluster


def children(pid: int) -> list[int]:
    """Process ids of `pid`'s children."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def cmdline(pid: int) -> list[str]:
    """A process's command line (empty once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return []


def alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def components_of(cluster: Cluster) -> int:
    """The pid of the cluster's `skiff components` child (waits for it)."""
    def find() -> int:
        for pid in children(cluster.proc.pid):
            if "components" in cmdline(pid):
                return pid
        return 0

    return int(eventually(find, "the components process runs", interval=0.05))


def test_components_run_apart_and_report_metrics(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    port = free_port()
    cluster = start_cluster(tmp_path / "data", None, "--sim-nodes", "2",
                            "--components-metrics-port", str(port))
    try:
        pid = components_of(cluster)
        assert pid != cluster.proc.pid
        kc = new_kubectl(cluster, tmp_path_factory)
        kc("create", "deployment", "web", "--image=nginx", "--replicas=3")

        def available() -> bool:
            d = json.loads(kc("get", "deployment", "web", "-o", "json"))
            return (d.get("status") or {}).get("availableReplicas") == 3

        eventually(available, "the deployment's 3 pods are available")
        pods = json.loads(kc("get", "pods", "-o", "json"))["items"]
        assert {p["spec"]["nodeName"] for p in pods} <= {"sim-node-1", "sim-node-2"}

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            metrics = parse(resp.read().decode())
        reconciles = {dict(k)["name"]: v for k, v in
                      metrics["workqueue_work_duration_seconds_count"].items()}
        assert reconciles["deployments"] >= 1 and reconciles["replicasets"] >= 1
        components = {dict(k)["component"] for k in metrics["rest_client_requests_total"]}
        assert {"controller-manager", "scheduler", "sim-agent"} <= components

        assert cluster.stop() == 0
        eventually(lambda: not alive(pid), "the components process stops with skiff up", 10)
        assert "Traceback" not in cluster.log()
    finally:
        cluster.stop(signal.SIGKILL)


def test_components_die_with_a_killed_parent(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "data", None, "--sim-nodes", "1")
    try:
        pid = components_of(cluster)
        os.kill(cluster.proc.pid, signal.SIGKILL)
        cluster.proc.wait(10)
        eventually(lambda: not alive(pid), "the orphaned components process exits", 10)
    finally:
        cluster.stop(signal.SIGKILL)


def test_api_only_cluster_has_no_components_process(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path / "data", None, "--no-controllers")
    try:
        time.sleep(1.0)
        assert [p for p in children(cluster.proc.pid) if "components" in cmdline(p)] == []
    finally:
        cluster.stop()

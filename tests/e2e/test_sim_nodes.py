"""Simulated nodes with the real kubectl: `skiff up --sim-nodes` and `skiff sim-nodes`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Cluster, Kubectl, eventually, new_kubectl, start_cluster


@pytest.fixture(scope="module")
def sim_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("skiff-sim"), None, "--sim-nodes", "2",
                      "--no-scheduler")
    yield c
    c.stop()


@pytest.fixture(scope="module")
def kc(sim_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return new_kubectl(sim_cluster, tmp_path_factory)



def sim_nodes(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `skiff sim-nodes ARGS` against the cluster."""
    return subprocess.run([sys.executable, "-m", "skiff.cli.main", "sim-nodes", "--data-dir",
                           str(cluster.data_dir), *args], capture_output=True, text=True,
                          timeout=60)


def get_json(kc: Kubectl, *args: str) -> dict:
    return json.loads(kc("get", *args, "-o", "json"))


def ready_nodes(kc: Kubectl) -> list[str]:
    nodes = get_json(kc, "nodes")["items"]
    return sorted(n["metadata"]["name"] for n in nodes
                  if any(c["type"] == "Ready" and c["status"] == "True"
                         for c in n["status"]["conditions"]))


def test_sim_nodes_register_ready_with_leases(kc: Kubectl) -> None:
    eventually(lambda: ready_nodes(kc) == ["sim-node-1", "sim-node-2"], "two nodes are Ready")
    out = kc("get", "nodes", "-o", "wide")
    assert "sim://0.1.0" in out and "Ready" in out
    node = get_json(kc, "node", "sim-node-1")
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "sim-node-1"
    assert labels["topology.kubernetes.io/zone"] == "zone-a"
    assert node["status"]["allocatable"]["pods"] == "110"
    eventually(lambda: kc.run("get", "lease", "-n", "kube-node-lease", "sim-node-2",
                              check=False).returncode == 0, "the lease exists")
    lease = get_json(kc, "lease", "-n", "kube-node-lease", "sim-node-2")
    assert lease["spec"]["holderIdentity"] == "sim-node-2"
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"


POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  annotations: {annotations}
spec:
  {node}
  restartPolicy: {restart}
  containers:
  - name: app
    image: nginx:1.27
"""


def make_pod(kc: Kubectl, name: str, node: str = "sim-node-1", restart: str = "Always",
             annotations: str = "{}") -> None:
    node_line = f"nodeName: {node}" if node else ""
    kc("apply", "-f", "-", input=POD.format(name=name, node=node_line, restart=restart,
                                            annotations=annotations))


def phase(kc: Kubectl, name: str) -> str:
    return kc("get", "pod", name, "-o", "jsonpath={.status.phase}")


def test_pod_on_a_sim_node_runs_and_is_ready(kc: Kubectl) -> None:
    make_pod(kc, "web")
    kc("wait", "--for=condition=Ready", "pod/web", "--timeout=30s")
    pod = get_json(kc, "pod", "web")
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["podIP"].startswith("10.64.0.")
    assert pod["status"]["hostIP"] == "172.16.0.1"
    cs = pod["status"]["containerStatuses"][0]
    assert cs["ready"] is True and "running" in cs["state"]
    assert "1/1" in kc("get", "pod", "web")


def test_binding_by_kubectl_create_moves_the_pod_to_running(kc: Kubectl) -> None:
    make_pod(kc, "bound", node="")
    assert phase(kc, "bound") == "Pending"
    # --validate=false: kubectl validates kinds without a PATCH verb against OpenAPI v2,
    # which skiff does not serve.
    kc("create", "--validate=false", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bound"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "sim-node-2"}}))
    kc("wait", "--for=condition=Ready", "pod/bound", "--timeout=30s")
    assert kc("get", "pod", "bound", "-o", "jsonpath={.spec.nodeName}") == "sim-node-2"


def test_graceful_delete_is_finished_by_the_agent(kc: Kubectl) -> None:
    make_pod(kc, "doomed")
    kc("wait", "--for=condition=Ready", "pod/doomed", "--timeout=30s")
    # kubectl waits for the pod to disappear; the 30 s grace period is cut short because
    # the simulated kubelet has nothing to stop.
    kc("delete", "pod", "doomed", "--timeout=20s")
    assert kc.run("get", "pod", "doomed", check=False).returncode != 0


def test_exiting_containers_follow_the_restart_policy(kc: Kubectl) -> None:
    make_pod(kc, "job-ok", restart="Never",
             annotations='{"skiff.dev/sim-exit-after": "1s"}')
    make_pod(kc, "job-bad", restart="Never",
             annotations='{"skiff.dev/sim-exit-after": "1s", "skiff.dev/sim-exit-code": "3"}')
    make_pod(kc, "crashy", restart="OnFailure",
             annotations='{"skiff.dev/sim-exit-after": "1s", "skiff.dev/sim-exit-code": "1"}')
    eventually(lambda: phase(kc, "job-ok") == "Succeeded", "job-ok succeeded")
    eventually(lambda: phase(kc, "job-bad") == "Failed", "job-bad failed")
    bad = get_json(kc, "pod", "job-bad")
    assert bad["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert "Completed" in kc("get", "pod", "job-ok")
    eventually(lambda: int(kc("get", "pod", "crashy", "-o",
                              "jsonpath={.status.containerStatuses[0].restartCount}") or 0) >= 1,
               "crashy restarted")
    assert phase(kc, "crashy") == "Running"


def test_sim_nodes_command_adds_and_removes_nodes(kc: Kubectl, sim_cluster: Cluster) -> None:
    res = sim_nodes(sim_cluster, "add", "gpu-1", "--cpu", "8", "--memory", "64Gi",
                    "--zone", "zone-x", "--label", "disktype=ssd",
                    "--taint", "dedicated=ml:NoSchedule", "--resource", "nvidia.com/gpu=2")
    assert res.returncode == 0, res.stderr
    assert "node/gpu-1 added" in res.stdout
    eventually(lambda: "gpu-1" in ready_nodes(kc), "gpu-1 is Ready")
    node = get_json(kc, "node", "gpu-1")
    assert node["spec"]["taints"] == [{"key": "dedicated", "value": "ml",
                                       "effect": "NoSchedule"}]
    assert node["metadata"]["labels"]["disktype"] == "ssd"
    assert node["status"]["capacity"]["nvidia.com/gpu"] == "2"
    # The running agent picked it up: its lease appears and its pods run.
    eventually(lambda: kc.run("get", "lease", "-n", "kube-node-lease", "gpu-1",
                              check=False).returncode == 0, "gpu-1's lease exists")
    make_pod(kc, "on-gpu", node="gpu-1")
    kc("wait", "--for=condition=Ready", "pod/on-gpu", "--timeout=30s")

    res = sim_nodes(sim_cluster, "add", "--count", "2", "--cpu", "2")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["node/sim-node-3", "added", "node/sim-node-4", "added"]
    again = sim_nodes(sim_cluster, "add", "gpu-1")
    assert again.returncode == 1 and "already exists" in again.stderr

    listed = sim_nodes(sim_cluster, "list").stdout
    assert "gpu-1\tzone=zone-x\tcpu=8" in listed

    res = sim_nodes(sim_cluster, "remove", "gpu-1", "sim-node-4")
    assert res.returncode == 0, res.stderr
    assert kc.run("get", "node", "gpu-1", check=False).returncode != 0
    eventually(lambda: kc.run("get", "pod", "on-gpu", check=False).returncode != 0,
               "the removed node's pod is gone")
    eventually(lambda: kc.run("get", "lease", "-n", "kube-node-lease", "gpu-1",
                              check=False).returncode != 0, "the removed node's lease is gone")
    bad = sim_nodes(sim_cluster, "remove", "nope")
    assert bad.returncode == 1 and 'node "nope" not found' in bad.stderr
    bad = sim_nodes(sim_cluster, "add", "x", "--taint", "oops")
    assert bad.returncode == 1 and "invalid taint" in bad.stderr


def test_lease_is_renewed(kc: Kubectl) -> None:
    def renew_time() -> str:
        return get_json(kc, "lease", "-n", "kube-node-lease", "sim-node-1")["spec"]["renewTime"]

    first = renew_time()
    # Upstream's cadence: every 10 s.
    eventually(lambda: renew_time() != first, "the lease is renewed", timeout=15)


def test_restart_resumes_the_same_nodes(sim_cluster: Cluster, tmp_path: Path) -> None:
    # Placed last: it restarts the module's cluster.
    sim_cluster.stop()
    again = start_cluster(sim_cluster.data_dir, sim_cluster.port, "--sim-nodes", "2",
                          "--no-scheduler")
    try:
        kc = Kubectl(again, tmp_path / "cache")
        eventually(lambda: "sim-node-1" in ready_nodes(kc), "nodes are back")
        names = [n["metadata"]["name"] for n in get_json(kc, "nodes")["items"]]
        # No duplicates for --sim-nodes 2 after a restart; sim-node-3 added later stays.
        assert sorted(names) == ["sim-node-1", "sim-node-2", "sim-node-3"]
        kc("wait", "--for=condition=Ready", "pod/web", "--timeout=30s")
    finally:
        again.stop()
        sim_cluster.proc = again.proc

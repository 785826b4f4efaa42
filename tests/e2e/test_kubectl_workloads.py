"""Workloads with the real kubectl on `skiff up --sim-nodes 3`: Deployments, rollouts,
PodDisruptionBudgets and drain.

Simulated nodes run the pods; `PodBinder` stands in for the scheduler.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from skiff.client import Client
from tests.e2e.conftest import KUBECTL, Cluster, Kubectl, start_cluster
from tests.e2e.pod_binder import PodBinder

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def sim_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("skiff-workloads"), None, "--sim-nodes", "3")
    try:
        with PodBinder(c.kubeconfig):
            yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def kc(sim_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    home = tmp_path_factory.mktemp("kubectl-home")
    cache = home / ".kube" / "cache"
    cache.mkdir(parents=True)
    kubectl = Kubectl(sim_cluster, cache)

    def nodes_ready() -> bool:
        out = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
        return len(out) == 3 and all(
            any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
            for n in out)

    eventually(nodes_ready, "three simulated nodes are Ready")
    return kubectl


def eventually(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.2)


def get_json(kc: Kubectl, *args: str) -> Obj:
    return json.loads(kc("get", *args, "-o", "json"))


def running_pods(kc: Kubectl, ns: str, selector: str) -> list[Obj]:
    pods = get_json(kc, "pods", "-n", ns, "-l", selector)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")
            and p.get("status", {}).get("phase") == "Running"]


class ReadySampler:
    """Counts ready, not-terminating pods of a selector many times a second, in a thread."""

    def __init__(self, cluster: Cluster, ns: str, selector: str) -> None:
        self.cluster, self.ns, self.selector = cluster, ns, selector
        self.samples: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        client = Client.from_kubeconfig(self.cluster.kubeconfig, component="test-sampler")
        try:
            while not self._stop.is_set():
                pods = (await client.list("", "v1", "pods", self.ns,
                                          label_selector=self.selector))["items"]
                live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
                ready = [p for p in live if any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (p.get("status") or {}).get("conditions") or [])]
                self.samples.append((len(ready), len(live)))
                await asyncio.sleep(0.02)
        finally:
            await client.close()

    def __enter__(self) -> ReadySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_deployment_replaces_a_deleted_pod(kc: Kubectl) -> None:
    kc("create", "namespace", "heal")
    kc("create", "deployment", "web", "--image=nginx", "--replicas=3", "-n", "heal")
    kc("rollout", "status", "deployment/web", "-n", "heal", "--timeout=60s")
    pods = running_pods(kc, "heal", "app=web")
    assert len(pods) == 3
    victim = pods[0]["metadata"]["name"]
    kc("delete", "pod", victim, "-n", "heal")

    def replaced() -> bool:
        names = {p["metadata"]["name"] for p in running_pods(kc, "heal", "app=web")}
        return len(names) == 3 and victim not in names

    eventually(replaced, "the deleted pod is replaced by a running one")
    # The Deployment's status follows its ReplicaSet's, which follows the pods.
    eventually(lambda: "3/3" in kc("get", "deployment", "web", "-n", "heal"),
               "the deployment reports 3/3 ready")

    def creates_recorded() -> bool:
        events = kc("get", "events", "-n", "heal", "--field-selector",
                    "reason=SuccessfulCreate")
        return events.count("SuccessfulCreate") >= 4

    eventually(creates_recorded, "four SuccessfulCreate events")


def test_image_change_rolls_out_with_zero_downtime(kc: Kubectl, sim_cluster: Cluster) -> None:
    ns, replicas = "roll", 4
    kc("create", "namespace", ns)
    kc("create", "deployment", "web", "--image=nginx:1", f"--replicas={replicas}", "-n", ns)
    kc("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    with ReadySampler(sim_cluster, ns, "app=web") as sampler:
        kc("set", "image", "deployment/web", "nginx=nginx:2", "-n", ns)
        out = kc("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
        time.sleep(0.3)
    assert 'deployment "web" successfully rolled out' in out
    # Defaults: maxUnavailable 25% of 4 → 1 (rounded down), maxSurge 25% → 1 (rounded up).
    assert sampler.samples, "the sampler saw the rollout"
    assert min(r for r, _ in sampler.samples) >= replicas - 1, sampler.samples
    assert max(n for _, n in sampler.samples) <= replicas + 1, sampler.samples
    images = {p["spec"]["containers"][0]["image"] for p in running_pods(kc, ns, "app=web")}
    assert images == {"nginx:2"}
    d = get_json(kc, "deployment", "web", "-n", ns)
    st = d["status"]
    assert st["updatedReplicas"] == st["availableReplicas"] == st["readyReplicas"] == replicas
    conds = {c["type"]: c["reason"] for c in st["conditions"]}
    assert conds == {"Available": "MinimumReplicasAvailable",
                     "Progressing": "NewReplicaSetAvailable"}
    events = kc("get", "events", "-n", ns, "--field-selector", "reason=ScalingReplicaSet")
    assert "Scaled down replica set" in events and "Scaled up replica set" in events


def test_rollout_history_and_undo(kc: Kubectl) -> None:
    ns = "undo"
    kc("create", "namespace", ns)
    kc("create", "deployment", "app", "--image=nginx:1", "--replicas=2", "-n", ns)
    kc("annotate", "deployment/app", "kubernetes.io/change-cause=first image", "-n", ns)
    kc("rollout", "status", "deployment/app", "-n", ns, "--timeout=60s")
    kc("set", "image", "deployment/app", "nginx=nginx:2", "-n", ns)
    kc("annotate", "deployment/app", "kubernetes.io/change-cause=second image", "--overwrite",
       "-n", ns)
    kc("rollout", "status", "deployment/app", "-n", ns, "--timeout=60s")
    history = kc("rollout", "history", "deployment/app", "-n", ns)
    assert "1         first image" in history and "2         second image" in history
    detail = kc("rollout", "history", "deployment/app", "-n", ns, "--revision=1")
    assert "nginx:1" in detail
    kc("rollout", "undo", "deployment/app", "-n", ns)
    kc("rollout", "status", "deployment/app", "-n", ns, "--timeout=60s")
    d = get_json(kc, "deployment", "app", "-n", ns)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert d["metadata"]["annotations"]["kubernetes.io/change-cause"] == "first image"
    # The first ReplicaSet came back as revision 3: no third ReplicaSet was made.
    rss = get_json(kc, "replicasets", "-n", ns)["items"]
    assert len(rss) == 2
    back = next(r for r in rss if r["spec"]["replicas"] == 2)
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    history = kc("rollout", "history", "deployment/app", "-n", ns)
    assert "2         second image" in history and "3         first image" in history
    # The old ReplicaSet's last pod may still be on its way out.
    eventually(lambda: {p["spec"]["containers"][0]["image"]
                        for p in running_pods(kc, ns, "app=app")} == {"nginx:1"},
               "only nginx:1 pods run")


def test_rollout_pause_resume_and_restart(kc: Kubectl) -> None:
    ns = "pause"
    kc("create", "namespace", ns)
    kc("create", "deployment", "p", "--image=nginx:1", "--replicas=2", "-n", ns)
    kc("rollout", "status", "deployment/p", "-n", ns, "--timeout=60s")
    kc("rollout", "pause", "deployment/p", "-n", ns)
    kc("set", "image", "deployment/p", "nginx=nginx:2", "-n", ns)
    time.sleep(1)
    assert len(get_json(kc, "replicasets", "-n", ns)["items"]) == 1
    d = get_json(kc, "deployment", "p", "-n", ns)
    progressing = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "DeploymentPaused"
    kc("rollout", "resume", "deployment/p", "-n", ns)
    kc("rollout", "status", "deployment/p", "-n", ns, "--timeout=60s")
    assert len(get_json(kc, "replicasets", "-n", ns)["items"]) == 2
    before = {p["metadata"]["name"] for p in running_pods(kc, ns, "app=p")}
    kc("rollout", "restart", "deployment/p", "-n", ns)
    kc("rollout", "status", "deployment/p", "-n", ns, "--timeout=60s")

    def all_new() -> bool:
        now = {p["metadata"]["name"] for p in running_pods(kc, ns, "app=p")}
        return len(now) == 2 and not (now & before)

    eventually(all_new, "every pod was restarted")


def test_drain_is_blocked_by_a_pdb_until_a_replacement_is_ready(
        kc: Kubectl, sim_cluster: Cluster) -> None:
    ns = "drain"
    kc("create", "namespace", ns)
    # Both pods on sim-node-1: the other nodes are cordoned while they are placed.
    kc("cordon", "sim-node-2", "sim-node-3")
    try:
        kc("create", "deployment", "db", "--image=nginx", "--replicas=2", "-n", ns)
        kc("rollout", "status", "deployment/db", "-n", ns, "--timeout=60s")
    finally:
        kc("uncordon", "sim-node-2", "sim-node-3")
    nodes = {p["spec"]["nodeName"] for p in running_pods(kc, ns, "app=db")}
    assert nodes == {"sim-node-1"}
    kc("create", "poddisruptionbudget", "db", "--selector=app=db", "--min-available=1",
       "-n", ns)

    def budget_ready() -> bool:
        pdb = get_json(kc, "pdb", "db", "-n", ns)
        return pdb.get("status", {}).get("disruptionsAllowed") == 1

    eventually(budget_ready, "the budget allows one disruption")
    table = kc("get", "pdb", "db", "-n", ns)
    assert "MIN AVAILABLE" in table and "ALLOWED DISRUPTIONS" in table
    with ReadySampler(sim_cluster, ns, "app=db") as sampler:
        result = kc.run("drain", "sim-node-1", "--ignore-daemonsets", "--timeout=90s",
                        timeout=120)
        time.sleep(0.3)
    assert result.returncode == 0, result.stderr
    # Both pods were evicted at once; the second had to wait for a ready replacement.
    assert ("Cannot evict pod as it would violate the pod's disruption budget."
            in result.stderr), result.stderr
    assert "node/sim-node-1 drained" in result.stdout
    assert min(r for r, _ in sampler.samples) >= 1, sampler.samples
    pods = running_pods(kc, ns, "app=db")
    assert len(pods) == 2 and all(p["spec"]["nodeName"] != "sim-node-1" for p in pods)
    node = get_json(kc, "node", "sim-node-1")
    assert node["spec"]["unschedulable"] is True
    kc("uncordon", "sim-node-1")
    assert "unschedulable" not in get_json(kc, "node", "sim-node-1")["spec"]


def test_eviction_is_refused_with_429_when_the_budget_is_spent(kc: Kubectl) -> None:
    ns = "evict"
    kc("create", "namespace", ns)
    kc("create", "deployment", "one", "--image=nginx", "--replicas=1", "-n", ns)
    kc("rollout", "status", "deployment/one", "-n", ns, "--timeout=60s")
    kc("create", "pdb", "one", "--selector=app=one", "--min-available=1", "-n", ns)
    eventually(lambda: get_json(kc, "pdb", "one", "-n", ns).get("status", {}).get(
        "observedGeneration") == 1, "the budget is observed")
    pod = running_pods(kc, ns, "app=one")[0]["metadata"]["name"]
    eviction = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                           "metadata": {"name": pod, "namespace": ns}})
    res = kc.run("create", "--raw", f"/api/v1/namespaces/{ns}/pods/{pod}/eviction", "-f", "-",
                 input=eviction, check=False)
    assert res.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in res.stderr
    assert running_pods(kc, ns, "app=one")[0]["metadata"]["name"] == pod
    kc("delete", "pdb", "one", "-n", ns)
    kc("create", "--raw", f"/api/v1/namespaces/{ns}/pods/{pod}/eviction", "-f", "-",
       input=eviction)
    gone = get_json(kc, "pods", "-n", ns)["items"]
    evicted = [p for p in gone if p["metadata"]["name"] == pod]
    if evicted:  # still terminating: it carries the eviction's condition
        conds = {c["type"]: c for c in evicted[0]["status"]["conditions"]}
        assert conds["DisruptionTarget"]["reason"] == "EvictionByEvictionAPI"

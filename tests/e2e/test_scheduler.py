"""The scheduler with the real kubectl on simulated nodes: each case on a fresh cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Cluster, Kubectl, eventually, new_kubectl, start_cluster


@pytest.fixture
def kc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    cluster = start_cluster(tmp_path_factory.mktemp("skiff-sched"))
    try:
        yield new_kubectl(cluster, tmp_path_factory)
    finally:
        cluster.stop()


def skiff(cluster: Cluster, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "skiff.cli.main", *args, "--data-dir",
                          str(cluster.data_dir)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def add_nodes(kc: Kubectl, *names: str, cpu: str = "4", zone: str = "zone-a",
              labels: tuple[str, ...] = ()) -> None:
    args = ["sim-nodes", "add", *names, "--cpu", cpu, "--zone", zone]
    for label in labels:
        args += ["--label", label]
    skiff(kc.cluster, *args)
    eventually(lambda: all(kc.run("get", "node", n, check=False).returncode == 0 for n in names),
               "the nodes exist")


def pod(name: str, cpu: str = "100m", labels: dict[str, str] | None = None,
        **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                                     "resources": {"requests": {"cpu": cpu}}}], **spec}}


def apply(kc: Kubectl, *objs: dict) -> None:
    kc("apply", "-f", "-", input="\n".join(json.dumps(o) for o in objs))


def node_of(kc: Kubectl, name: str) -> str:
    return kc("get", "pod", name, "-o", "jsonpath={.spec.nodeName}")


def scheduled_condition(kc: Kubectl, name: str) -> dict:
    conds = json.loads(kc("get", "pod", name, "-o", "json"))["status"].get("conditions") or []
    return next((c for c in conds if c["type"] == "PodScheduled"), {})


def wait_running(kc: Kubectl, *names: str) -> None:
    for n in names:
        kc("wait", "--for=condition=Ready", f"pod/{n}", "--timeout=30s")


def wait_unschedulable(kc: Kubectl, name: str) -> str:
    eventually(lambda: scheduled_condition(kc, name).get("reason") == "Unschedulable",
               f"{name} is reported Unschedulable")
    return scheduled_condition(kc, name)["message"]


def test_pod_that_fits_nowhere_stays_pending_then_schedules_on_a_new_node(kc: Kubectl) -> None:
    add_nodes(kc, "node1", "node2", cpu="2")
    apply(kc, pod("big", cpu="3"))
    message = wait_unschedulable(kc, "big")
    assert message.startswith("0/2 nodes are available: 2 Insufficient cpu.")
    assert "preemption: 0/2 nodes are available: 2 No preemption victims found" in message
    described = kc("describe", "pod", "big")
    assert "FailedScheduling" in described and "2 Insufficient cpu" in described
    assert "Pending" in kc("get", "pod", "big")
    add_nodes(kc, "node3", cpu="4")
    wait_running(kc, "big")
    assert node_of(kc, "big") == "node3"
    events = kc("get", "events", "--field-selector", "involvedObject.name=big")
    assert "Successfully assigned default/big to node3" in events


def test_taint_repels_pods_without_a_toleration(kc: Kubectl) -> None:
    add_nodes(kc, "node1", "node2")
    kc("taint", "nodes", "node1", "dedicated=ml:NoSchedule")
    kc("taint", "nodes", "node2", "dedicated=ml:NoSchedule")
    apply(kc, pod("plain"), pod("ml", tolerations=[
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]))
    wait_running(kc, "ml")
    message = wait_unschedulable(kc, "plain")
    assert message.startswith("0/2 nodes are available: 2 node(s) had untolerated taint "
                              "{dedicated: ml}.")
    assert "2 Preemption is not helpful for scheduling" in message
    # Removing the taint is an event that could make the pod fit: it is retried.
    kc("taint", "nodes", "node1", "dedicated=ml:NoSchedule-")
    wait_running(kc, "plain")
    assert node_of(kc, "plain") == "node1"


def test_node_selector_disktype_ssd(kc: Kubectl) -> None:
    add_nodes(kc, "hdd1", "hdd2")
    add_nodes(kc, "ssd1", labels=("disktype=ssd",))
    apply(kc, *(pod(f"db{i}", nodeSelector={"disktype": "ssd"}) for i in range(3)))
    wait_running(kc, "db0", "db1", "db2")
    assert {node_of(kc, f"db{i}") for i in range(3)} == {"ssd1"}
    apply(kc, pod("picky", nodeSelector={"disktype": "nvme"}))
    assert "3 node(s) didn't match Pod's node affinity/selector" in \
        wait_unschedulable(kc, "picky")


def test_required_and_preferred_node_affinity(kc: Kubectl) -> None:
    add_nodes(kc, "a1", zone="zone-a")
    add_nodes(kc, "b1", "b2", zone="zone-b")
    add_nodes(kc, "b3", zone="zone-b", labels=("gpu=yes",))
    required = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-b"]}]}]}}}
    preferred = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 80, "preference": {"matchExpressions": [
            {"key": "gpu", "operator": "Exists"}]}}]}}
    apply(kc, *(pod(f"req{i}", affinity=required) for i in range(4)),
          pod("pref", affinity=preferred))
    wait_running(kc, *(f"req{i}" for i in range(4)), "pref")
    assert {node_of(kc, f"req{i}") for i in range(4)} <= {"b1", "b2", "b3"}
    assert node_of(kc, "pref") == "b3"


def test_topology_spread_across_three_zones(kc: Kubectl) -> None:
    for zone in ("zone-a", "zone-b", "zone-c"):
        add_nodes(kc, f"{zone}-1", f"{zone}-2", zone=zone)
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
               "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    names = [f"web{i}" for i in range(6)]
    apply(kc, *(pod(n, labels={"app": "web"}, topologySpreadConstraints=spread)
                for n in names))
    wait_running(kc, *names)
    zones: dict[str, int] = {}
    for n in names:
        zone = node_of(kc, n).rsplit("-", 1)[0]
        zones[zone] = zones.get(zone, 0) + 1
    assert zones == {"zone-a": 2, "zone-b": 2, "zone-c": 2}


def test_pod_anti_affinity_one_per_node(kc: Kubectl) -> None:
    add_nodes(kc, "n1", "n2", "n3")
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app": "cache"}},
        "topologyKey": "kubernetes.io/hostname"}]}}
    names = [f"cache{i}" for i in range(3)]
    apply(kc, *(pod(n, labels={"app": "cache"}, affinity=anti) for n in names))
    wait_running(kc, *names)
    assert sorted(node_of(kc, n) for n in names) == ["n1", "n2", "n3"]
    apply(kc, pod("cache3", labels={"app": "cache"}, affinity=anti))
    message = wait_unschedulable(kc, "cache3")
    assert "3 node(s) didn't match pod anti-affinity rules" in message


def test_preemption_by_priority(kc: Kubectl) -> None:
    add_nodes(kc, "small", cpu="2")
    kc("create", "priorityclass", "low", "--value=10")
    kc("create", "priorityclass", "high", "--value=1000", "--description=urgent")
    assert "high" in kc("get", "priorityclass")
    apply(kc, pod("victim", cpu="1500m", priorityClassName="low"))
    wait_running(kc, "victim")
    apply(kc, pod("urgent", cpu="1500m", priorityClassName="high"))
    assert kc("get", "pod", "urgent", "-o", "jsonpath={.spec.priority}") == "1000"
    wait_running(kc, "urgent")
    assert node_of(kc, "urgent") == "small"
    eventually(lambda: kc.run("get", "pod", "victim", check=False).returncode != 0,
               "the victim is gone")
    events = kc("get", "events", "-o", "json")
    reasons = {(e["involvedObject"]["name"], e["reason"]) for e in json.loads(events)["items"]}
    assert ("victim", "Preempted") in reasons
    assert ("urgent", "Scheduled") in reasons
    res = kc.run("run", "bad", "--image=x", "--overrides",
                 '{"spec":{"priorityClassName":"missing"}}', check=False)
    assert res.returncode != 0
    assert "no PriorityClass with name missing was found" in res.stderr


def test_explanations(kc: Kubectl) -> None:
    add_nodes(kc, "node1", "node2")
    kc("taint", "nodes", "node1", "dedicated=ml:NoSchedule")
    apply(kc, pod("web"), pod("huge", cpu="64"))
    wait_running(kc, "web")
    raw = kc("get", "pod", "web", "-o",
             "jsonpath={.metadata.annotations.scheduler\\.skiff\\.dev/explanation}")
    recorded = json.loads(raw)
    assert recorded["result"] == "Scheduled" and recorded["node"] == "node2"
    assert recorded["rejectedBy"] == {"TaintToleration": 1}
    out = skiff(kc.cluster, "explain", "pod", "web")
    assert "Scheduled on node2" in out
    assert "node1  rejected by TaintToleration: node(s) had untolerated taint {dedicated: ml}" \
        in out
    assert "node2  feasible, score" in out
    wait_unschedulable(kc, "huge")
    out = skiff(kc.cluster, "explain", "pod", "huge")
    assert "Unschedulable: 0/2 nodes are available" in out
    assert "node2  rejected by NodeResourcesFit: Insufficient cpu" in out
    assert not kc("get", "pods", "--field-selector", "spec.nodeName=node1",
                  "-o", "name").strip()

"""StatefulSets and DaemonSets with the real kubectl on `skiff up --sim-nodes`.

The scheduler binds the pods and the simulated nodes run them, so these are the
controllers working as they do in use: kubectl scale, set image, rollout
status/history/undo, and nodes joining and leaving through `skiff sim-nodes`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import KUBECTL, Cluster, Kubectl, eventually, new_kubectl, start_cluster


@pytest.fixture(scope="module")
def sim_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("skiff-sts-ds"), None, "--sim-nodes", "2")
    yield c
    c.stop()


@pytest.fixture(scope="module")
def kc(sim_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return new_kubectl(sim_cluster, tmp_path_factory)



class PodWatch:
    """`kubectl get pods -w --output-watch-events` in the background, line by line."""

    def __init__(self, kc: Kubectl, selector: str) -> None:
        assert KUBECTL is not None
        self.proc = subprocess.Popen(
            [KUBECTL, "--cache-dir", str(kc.cache_dir), "get", "pods", "-l", selector, "-w",
             "--output-watch-events", "-o",
             "jsonpath={.type} {.object.metadata.name} "
             "{.object.metadata.deletionTimestamp}{\"\\n\"}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=kc.env())
        self.lines: list[list[str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.split())

    def first_seen(self) -> list[str]:
        """Pod names in the order they first appeared."""
        out: list[str] = []
        for fields in self.lines:
            if len(fields) >= 2 and fields[1] not in out:
                out.append(fields[1])
        return out

    def deletion_order(self) -> list[str]:
        """Pod names in the order they started going away."""
        out: list[str] = []
        for fields in self.lines:
            going = fields[0] == "DELETED" or len(fields) >= 3
            if going and fields[1] not in out:
                out.append(fields[1])
        return out

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


STS = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 0
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: nginx, image: "nginx:1"}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"""


def images(kc: Kubectl, selector: str) -> list[str]:
    return kc("get", "pods", "-l", selector, "-o",
              "jsonpath={.items[*].spec.containers[0].image}").split()


def test_statefulset_scales_in_order_and_rolls_back(kc: Kubectl) -> None:
    kc("apply", "-f", "-", input=STS)
    watch = PodWatch(kc, "app=web")
    try:
        time.sleep(0.5)
        kc("scale", "sts", "web", "--replicas=3")
        out = kc("rollout", "status", "sts/web", "--timeout=60s")
        assert "roll out complete: 3 new pods have been updated" in out
        assert watch.first_seen() == ["web-0", "web-1", "web-2"]
    finally:
        watch.stop()
    pod = json.loads(kc("get", "pod", "web-1", "-o", "json"))
    assert pod["spec"]["hostname"] == "web-1" and pod["spec"]["subdomain"] == "web"
    assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "web-1"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-1"}} in (
        pod["spec"]["volumes"])
    assert pod["spec"]["nodeName"].startswith("sim-node-")
    assert kc("get", "sts", "web", "--no-headers").split()[1] == "3/3"

    kc("set", "image", "sts/web", "nginx=nginx:2")
    kc("rollout", "status", "sts/web", "--timeout=60s")
    assert images(kc, "app=web") == ["nginx:2"] * 3
    history = kc("rollout", "history", "sts/web")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    assert "nginx:1" in kc("rollout", "history", "sts/web", "--revision=1")
    kc("rollout", "undo", "sts/web")
    kc("rollout", "status", "sts/web", "--timeout=60s")
    assert images(kc, "app=web") == ["nginx:1"] * 3
    status = json.loads(kc("get", "sts", "web", "-o", "json"))["status"]
    assert status["currentRevision"] == status["updateRevision"]
    assert status["readyReplicas"] == status["updatedReplicas"] == 3

    watch = PodWatch(kc, "app=web")
    try:
        time.sleep(0.5)
        kc("scale", "sts", "web", "--replicas=0")
        eventually(lambda: kc("get", "pods", "-l", "app=web", "-o", "name") == "",
                   "every web pod is gone")
        assert watch.deletion_order() == ["web-2", "web-1", "web-0"]
    finally:
        watch.stop()
    events = kc("get", "events", "--field-selector", "involvedObject.name=web")
    assert "create Pod web-0 in StatefulSet web successful" in events
    assert "delete Pod web-2 in StatefulSet web successful" in events


DS = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: "agent:1"}]
"""


def sim_nodes(cluster: Cluster, *args: str) -> None:
    res = subprocess.run([sys.executable, "-m", "skiff.cli.main", "sim-nodes", "--data-dir",
                          str(cluster.data_dir), *args], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr


def nodes_running(kc: Kubectl, selector: str) -> set[str]:
    out = kc("get", "pods", "-l", selector, "-o", "jsonpath={range .items[*]}"
             "{.spec.nodeName} {.status.phase} {.metadata.deletionTimestamp}{\"\\n\"}{end}")
    return {f[0] for f in (line.split() for line in out.splitlines())
            if len(f) == 2 and f[1] == "Running"}


def test_daemonset_follows_nodes_and_rolls_out(kc: Kubectl, sim_cluster: Cluster) -> None:
    kc("apply", "-f", "-", input=DS)
    assert "successfully rolled out" in kc("rollout", "status", "ds/agent", "--timeout=60s")
    assert nodes_running(kc, "app=agent") == {"sim-node-1", "sim-node-2"}

    sim_nodes(sim_cluster, "add", "joiner")
    eventually(lambda: nodes_running(kc, "app=agent") == {"sim-node-1", "sim-node-2",
                                                          "joiner"},
               "a pod runs on the node that joined")
    row = kc("get", "ds", "agent", "--no-headers").split()
    assert row[1:6] == ["3", "3", "3", "3", "3"]
    sim_nodes(sim_cluster, "remove", "joiner")
    eventually(lambda: kc("get", "pods", "-l", "app=agent", "--no-headers").count("\n") == 2,
               "the pod of the node that left goes with it")
    eventually(lambda: kc("get", "ds", "agent", "--no-headers").split()[1] == "2",
               "two nodes desired again")

    kc("set", "image", "ds/agent", "agent=agent:2")
    kc("rollout", "status", "ds/agent", "--timeout=60s")
    assert images(kc, "app=agent") == ["agent:2"] * 2
    kc("rollout", "undo", "ds/agent")
    kc("rollout", "status", "ds/agent", "--timeout=60s")
    assert images(kc, "app=agent") == ["agent:1"] * 2
    history = kc("rollout", "history", "ds/agent")
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]
    pod = json.loads(kc("get", "pods", "-l", "app=agent", "-o", "json"))["items"][0]
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchFields"][0]["values"] == [pod["spec"]["nodeName"]]

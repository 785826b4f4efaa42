"""A HorizontalPodAutoscaler scaling a CPU-burning Deployment on real node agents.

Usage comes from the agents (their /stats/summary, served as metrics.k8s.io by the
API server); the HPA controller reads it every `--hpa-sync-period` seconds. The
Deployment's containers burn CPU until a file appears in a hostPath folder the test
owns, so the test decides when the load stops. CPU limits keep the burn to a fifth
of a core per pod on a shared machine.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cluster, Kubectl, eventually, new_kubectl, start_cluster

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the process runtime needs root")

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: burner}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: burner}}}}
  template:
    metadata: {{labels: {{app: burner}}}}
    spec:
      terminationGracePeriodSeconds: 1
      volumes:
      - name: ctl
        hostPath: {{path: {ctl}, type: Directory}}
      containers:
      - name: burn
        image: busybox
        command: [sh, -c, "while [ ! -e /ctl/stop ]; do :; done; exec sleep 3600"]
        volumeMounts: [{{name: ctl, mountPath: /ctl}}]
        resources:
          requests: {{cpu: 100m}}
          limits: {{cpu: 200m}}
"""

HPA = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: burner}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burner}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      policies: [{type: Percent, value: 200, periodSeconds: 1}]
    scaleDown:
      stabilizationWindowSeconds: 3
      policies: [{type: Percent, value: 100, periodSeconds: 1}]
"""


@pytest.fixture(scope="module")
def hpa_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two node agents and an autoscaler that looks every second."""
    data = tmp_path_factory.mktemp("skiff-hpa")
    c = start_cluster(data, None, "--nodes", "2", "--hpa-sync-period", "1")
    yield c
    c.stop()
    leftovers = subprocess.run(["pgrep", "-f", str(data)], capture_output=True,
                               text=True).stdout
    assert leftovers == "", f"processes left behind: {leftovers}"


@pytest.fixture(scope="module")
def kubectl(hpa_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """kubectl bound to the cluster, once both nodes are Ready."""
    k = new_kubectl(hpa_cluster, tmp_path_factory)
    eventually(lambda: k("get", "nodes", "--no-headers").count(" Ready ") == 2,
               "both nodes are Ready")
    return k


def _get(kubectl: Kubectl, *what: str) -> dict[str, Any]:
    return json.loads(kubectl("get", *what, "-o", "json"))


def _replicas(kubectl: Kubectl) -> tuple[int, int]:
    """(spec.replicas, readyReplicas) of the Deployment."""
    d = _get(kubectl, "deployment", "burner")
    return int(d["spec"].get("replicas") or 0), int(d["status"].get("readyReplicas") or 0)


def test_hpa_scales_a_busy_deployment_up_then_down(kubectl: Kubectl, tmp_path: Path) -> None:
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    kubectl("apply", "-f", "-", input=DEPLOYMENT.format(ctl=ctl))
    eventually(lambda: _replicas(kubectl) == (1, 1), "the first replica is ready")
    kubectl("apply", "-f", "-", input=HPA)

    # Usage reaches the metrics API (two samples of the agent's stats) …
    eventually(lambda: "burner-" in kubectl.run("top", "pods", "--no-headers",
                                                check=False).stdout,
               "kubectl top pods shows the burner", timeout=30)
    # … the HPA sees ~200% of the request against a 50% target and scales to its max.
    eventually(lambda: _replicas(kubectl)[0] == 3, "the HPA scales the Deployment to 3",
               timeout=40)
    hpa = _get(kubectl, "hpa", "burner")
    utilization = hpa["status"]["currentMetrics"][0]["resource"]["current"][
        "averageUtilization"]
    assert utilization > 50
    assert hpa["status"]["desiredReplicas"] == 3
    described = kubectl("describe", "hpa", "burner")
    assert "SuccessfulRescale" in described and "New size: 3" in described
    eventually(lambda: _replicas(kubectl)[1] == 3, "three replicas are ready", timeout=30)
    pods = _get(kubectl, "pods", "-l", "app=burner")["items"]
    assert {p["spec"]["nodeName"] for p in pods} <= {"node-1", "node-2"}

    # The load stops: usage falls to nothing and, past the 3 s stabilization window,
    # the HPA scales back to its minimum.
    (ctl / "stop").touch()
    eventually(lambda: _replicas(kubectl)[0] == 1, "the HPA scales the Deployment to 1",
               timeout=45)
    hpa = _get(kubectl, "hpa", "burner")
    assert hpa["status"]["desiredReplicas"] == 1
    assert "New size: 1" in kubectl("describe", "hpa", "burner")
    eventually(lambda: len(_get(kubectl, "pods", "-l", "app=burner")["items"]) == 1,
               "the extra pods are gone", timeout=30)
    kubectl("delete", "hpa", "burner")
    kubectl("delete", "deployment", "burner", "--wait=false")

"""The HorizontalPodAutoscaler table: TARGETS for every metric type, and its columns."""

import json
from datetime import UTC, datetime
from typing import Any

from skiff.api.tables import to_table

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
KEY = "autoscaling/horizontalpodautoscalers"
FIELDS = {
    "Resource": "resource",
    "ContainerResource": "containerResource",
    "Pods": "pods",
    "Object": "object",
    "External": "external",
}


def hpa(metrics: list[dict[str, Any]], current: list[dict[str, Any]] | None = None) -> Any:
    obj: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": metrics,
        },
        "status": {"currentReplicas": 2},
    }
    if current is not None:
        obj["status"]["currentMetrics"] = current
    return obj


def spec(type_: str, name: str = "m", **target: Any) -> dict[str, Any]:
    """A metric spec; Resource kinds name a resource, the others a metric."""
    source: dict[str, Any] = {"target": target}
    if type_ in ("Resource", "ContainerResource"):
        source["name"] = name
    else:
        source["metric"] = {"name": name}
    return {"type": type_, FIELDS[type_]: source}


def status(type_: str, name: str = "m", **current: Any) -> dict[str, Any]:
    """A metric status carrying `current`."""
    return {"type": type_, FIELDS[type_]: {"name": name, "current": current}}


def targets(obj: dict[str, Any]) -> str:
    cells = to_table(KEY, [obj], now=NOW)["rows"][0]["cells"]
    assert isinstance(cells[2], str)
    return cells[2]


def test_resource_targets() -> None:
    util = spec("Resource", "cpu", type="Utilization", averageUtilization=80)
    assert targets(hpa([util])) == "cpu: <unknown>/80%"
    now_util = status("Resource", "cpu", averageUtilization=35)
    assert targets(hpa([util], [now_util])) == "cpu: 35%/80%"
    # A utilization target without a percentage reads <auto>.
    assert targets(hpa([spec("Resource", "cpu", type="Utilization")])) == "cpu: <unknown>/<auto>"
    avg = spec("Resource", "memory", type="AverageValue", averageValue="1024Mi")
    now_avg = status("Resource", "memory", averageValue="512Mi")
    assert targets(hpa([avg], [now_avg])) == "memory: 512Mi/1Gi"
    assert targets(hpa([avg])) == "memory: <unknown>/1Gi"
    container = spec("ContainerResource", "cpu", type="AverageValue", averageValue="500m")
    assert targets(hpa([container])) == "cpu: <unknown>/500m"


def test_pods_object_and_external_targets() -> None:
    pods = spec("Pods", type="AverageValue", averageValue="1k")
    assert targets(hpa([pods])) == "<unknown>/1k"
    assert targets(hpa([pods], [status("Pods", averageValue="250")])) == "250/1k"
    obj_value = spec("Object", type="Value", value="10")
    assert targets(hpa([obj_value], [status("Object", value="4")])) == "4/10"
    ext_avg = spec("External", type="AverageValue", averageValue="30")
    assert targets(hpa([ext_avg])) == "<unknown>/30 (avg)"
    assert targets(hpa([ext_avg], [status("External", averageValue="12")])) == "12/30 (avg)"
    assert targets(hpa([{"type": "Bogus"}])) == "<unknown type>"


def test_more_than_two_metrics_are_summarised() -> None:
    cpu = spec("Resource", "cpu", type="Utilization", averageUtilization=80)
    mem = spec("Resource", "memory", type="Utilization", averageUtilization=70)
    pods = spec("Pods", type="AverageValue", averageValue="10")
    assert targets(hpa([cpu, mem, pods])) == (
        "cpu: <unknown>/80%, memory: <unknown>/70% + 1 more..."
    )
    assert targets(hpa([])) == "<none>"


def test_columns_and_counts() -> None:
    table = to_table(KEY, [hpa([])], now=NOW)
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"), ("Reference", "string"), ("Targets", "string"),
        ("MinPods", "string"), ("MaxPods", "string"), ("Replicas", "string"), ("Age", "string"),
    ]  # fmt: skip
    assert table["rows"][0]["cells"] == ["web", "Deployment/web", "<none>", "1", 5, 2, "60m"]


def test_v1_hpa_without_a_target_gets_the_default_cpu_target() -> None:
    v1 = {
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": "old", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3},
    }
    assert targets(v1) == "cpu: <unknown>/80%"
    v1["spec"]["targetCPUUtilizationPercentage"] = 50
    assert targets(v1) == "cpu: <unknown>/50%"
    # Metrics carried in the annotation stand in for the default.
    del v1["spec"]["targetCPUUtilizationPercentage"]
    pods = spec("Pods", type="AverageValue", averageValue="10")
    v1["metadata"]["annotations"] = {"autoscaling.alpha.kubernetes.io/metrics": json.dumps([pods])}
    assert targets(v1) == "<unknown>/10"

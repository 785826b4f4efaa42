"""autoscaling/v1 HorizontalPodAutoscalers are autoscaling/v2 ones in an older shape.

Objects are stored as v2. v1 knows only a CPU utilization target, so, as upstream,
everything else a v2 object holds travels in annotations when read as v1 and comes
back from them when a v1 object is written: other metrics, current metrics,
conditions and scaling behavior. A v1 client that edits an HPA therefore keeps
the v2 fields it never saw.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from skiff.api.defaults.autoscaling import DEFAULT_CPU_UTILIZATION

Obj = dict[str, Any]

METRICS = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR = "autoscaling.alpha.kubernetes.io/behavior"
_CARRIED = (METRICS, CURRENT_METRICS, CONDITIONS, BEHAVIOR)


def _is_cpu_utilization(metric: Any) -> bool:
    if not isinstance(metric, dict) or metric.get("type") != "Resource":
        return False
    res = metric.get("resource") or {}
    target = res.get("target") or {}
    return res.get("name") == "cpu" and target.get("type") == "Utilization"


def _load(ann: dict[str, Any], key: str) -> Any:
    raw = ann.pop(key, None)
    if not isinstance(raw, str):
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def to_v2(obj: Obj) -> Obj:
    """An autoscaling/v1 HPA as the autoscaling/v2 object it is stored as."""
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v2"
    md = out.get("metadata") if isinstance(out.get("metadata"), dict) else {}
    ann = dict(md.get("annotations") or {})
    spec = out.get("spec") if isinstance(out.get("spec"), dict) else None
    if spec is not None:
        metrics: list[Any] = []
        cpu = spec.pop("targetCPUUtilizationPercentage", None)
        if cpu is not None:
            metrics.append({"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}})
        extra = _load(ann, METRICS)
        if isinstance(extra, list):
            metrics += [x for x in extra if not _is_cpu_utilization(x)]
        if not metrics:
            # v1 once left the CPU target implicit; as upstream, conversion makes it explicit
            # here, where the metrics carried in annotations are known too.
            metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
        spec["metrics"] = metrics
        behavior = _load(ann, BEHAVIOR)
        if isinstance(behavior, dict):
            spec["behavior"] = behavior
    status = out.get("status") if isinstance(out.get("status"), dict) else None
    current = _load(ann, CURRENT_METRICS)
    conditions = _load(ann, CONDITIONS)
    if status is not None:
        metrics = []
        cpu = status.pop("currentCPUUtilizationPercentage", None)
        if cpu is not None:
            metrics.append({"type": "Resource", "resource": {
                "name": "cpu", "current": {"averageUtilization": cpu}}})
        if isinstance(current, list):
            metrics += [x for x in current if not (
                isinstance(x, dict) and x.get("type") == "Resource"
                and (x.get("resource") or {}).get("name") == "cpu" and cpu is not None)]
        if metrics:
            status["currentMetrics"] = metrics
        if isinstance(conditions, list):
            status["conditions"] = conditions
    for key in _CARRIED:
        ann.pop(key, None)
    if md:
        if ann:
            md["annotations"] = ann
        else:
            md.pop("annotations", None)
    return out


def to_v1(obj: Obj) -> Obj:
    """A stored autoscaling/v2 HPA in its autoscaling/v1 shape."""
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v1"
    md = out.setdefault("metadata", {})
    ann = dict(md.get("annotations") or {})
    spec = out.get("spec") or {}
    metrics = spec.pop("metrics", None) or []
    others = []
    for metric in metrics:
        if _is_cpu_utilization(metric) and "targetCPUUtilizationPercentage" not in spec:
            spec["targetCPUUtilizationPercentage"] = metric["resource"]["target"].get(
                "averageUtilization")
        else:
            others.append(metric)
    if others:
        ann[METRICS] = orjson.dumps(others).decode()
    behavior = spec.pop("behavior", None)
    if behavior:
        ann[BEHAVIOR] = orjson.dumps(behavior).decode()
    status = out.get("status")
    if isinstance(status, dict):
        current = status.pop("currentMetrics", None) or []
        rest = []
        for metric in current:
            res = metric.get("resource") or {} if isinstance(metric, dict) else {}
            value = (res.get("current") or {}).get("averageUtilization")
            if (metric.get("type") == "Resource" and res.get("name") == "cpu"
                    and value is not None
                    and "currentCPUUtilizationPercentage" not in status):
                status["currentCPUUtilizationPercentage"] = value
            else:
                rest.append(metric)
        if rest:
            ann[CURRENT_METRICS] = orjson.dumps(rest).decode()
        conditions = status.pop("conditions", None)
        if conditions:
            ann[CONDITIONS] = orjson.dumps(conditions).decode()
        status.setdefault("currentReplicas", 0)
        status.setdefault("desiredReplicas", 0)
    if ann:
        md["annotations"] = ann
    return out

"""The table of HorizontalPodAutoscalers (both versions print alike)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from skiff.api.conversion.hpa import to_v2
from skiff.api.tables.age import age
from skiff.api.tables.columns import Printer, age_column, column, meta, name_column, sub, text


def _target(metric: dict[str, Any], current: dict[str, Any] | None) -> str:
    mtype = metric.get("type")
    if mtype not in ("Resource", "ContainerResource"):
        return f"<{str(mtype or 'unknown').lower()}>"
    source = metric.get("resource" if mtype == "Resource" else "containerResource") or {}
    target = source.get("target") or {}
    now = ((current or {}).get("resource" if mtype == "Resource" else "containerResource")
           or {}).get("current") or {}
    if target.get("type") == "Utilization":
        have = now.get("averageUtilization")
        shown = f"{have}%" if have is not None else "<unknown>"
        return f"{source.get('name', '')}: {shown}/{target.get('averageUtilization')}%"
    want = target.get("averageValue") or target.get("value")
    have = now.get("averageValue") or now.get("value")
    return f"{source.get('name', '')}: {have if have is not None else '<unknown>'}/{want}"


def _targets(obj: dict[str, Any]) -> str:
    metrics = sub(obj, "spec").get("metrics") or []
    if not metrics:
        return "<none>"
    currents = sub(obj, "status").get("currentMetrics") or []
    parts = []
    for i, metric in enumerate(metrics):
        if not isinstance(metric, dict):
            continue
        current = currents[i] if i < len(currents) and isinstance(currents[i], dict) else None
        parts.append(_target(metric, current))
    if len(parts) > 2:
        return ", ".join(parts[:2]) + f" + {len(parts) - 2} more..."
    return ", ".join(parts)


def _hpa(obj: dict[str, Any], now: datetime) -> list[Any]:
    if obj.get("apiVersion") == "autoscaling/v1":
        obj = to_v2(obj)
    spec, status = sub(obj, "spec"), sub(obj, "status")
    ref = spec.get("scaleTargetRef") or {}
    minimum = spec.get("minReplicas")
    return [
        text(meta(obj).get("name")),
        f"{text(ref.get('kind'))}/{text(ref.get('name'))}",
        _targets(obj),
        "<unset>" if minimum is None else str(minimum),
        int(spec.get("maxReplicas") or 0),
        int(status.get("currentReplicas") or 0),
        age(obj, now),
    ]


PRINTERS = {
    "autoscaling/horizontalpodautoscalers": Printer(
        [
            name_column(),
            column("Reference", "string", "The workload being scaled."),
            column("Targets", "string", "Current and target value of each metric."),
            column("MinPods", "string", "Lower limit of replicas."),
            column("MaxPods", "integer", "Upper limit of replicas."),
            column("Replicas", "integer", "Current number of replicas."),
            age_column(),
        ],
        _hpa,
    ),
}

"""The table of HorizontalPodAutoscalers (both versions print alike)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from skiff.api.conversion.hpa import to_v2
from skiff.api.quantity import canonicalize
from skiff.api.tables.age import age
from skiff.api.tables.columns import (
    Printer,
    age_column,
    column,
    integer,
    meta,
    name_column,
    sub,
    text,
)

UNKNOWN = "<unknown>"
# How many metrics TARGETS spells out before summarising the rest as "+ N more...".
TARGETS_SHOWN = 2
# The spec and status field that holds each metric type's source.
SOURCE_FIELDS = {
    "Resource": "resource",
    "ContainerResource": "containerResource",
    "Pods": "pods",
    "Object": "object",
    "External": "external",
}


def _quantity(value: Any) -> str:
    """A quantity in canonical form; "<nil>" where upstream prints an absent one."""
    if value is None:
        return "<nil>"
    try:
        return canonicalize(value)
    except (ValueError, TypeError):
        return str(value)


def _current(status_metric: dict[str, Any] | None, field: str) -> dict[str, Any] | None:
    """The `current` values of one metric's status, or None when the status lacks that source.

    Statuses pair with specs by position, as upstream pairs them, whatever their type.
    """
    if status_metric is None or not isinstance(status_metric.get(field), dict):
        return None
    return sub(status_metric, field, "current")


def _target(metric: dict[str, Any], status_metric: dict[str, Any] | None) -> str:
    mtype = text(metric.get("type"))
    field = SOURCE_FIELDS.get(mtype)
    if field is None:
        return "<unknown type>"
    source = sub(metric, field)
    target = sub(source, "target")
    current = _current(status_metric, field)
    if mtype in ("Object", "External"):
        if target.get("averageValue") is not None:
            have = UNKNOWN
            if current is not None and current.get("averageValue") is not None:
                have = _quantity(current.get("averageValue"))
            return f"{have}/{_quantity(target.get('averageValue'))} (avg)"
        have = UNKNOWN if current is None else _quantity(current.get("value"))
        return f"{have}/{_quantity(target.get('value'))}"
    if mtype == "Pods":
        have = UNKNOWN if current is None else _quantity(current.get("averageValue"))
        return f"{have}/{_quantity(target.get('averageValue'))}"
    # Resource and ContainerResource name the resource they measure.
    name = text(source.get("name"))
    if target.get("averageValue") is not None:
        have = UNKNOWN if current is None else _quantity(current.get("averageValue"))
        return f"{name}: {have}/{_quantity(target.get('averageValue'))}"
    have = UNKNOWN
    if current is not None and current.get("averageUtilization") is not None:
        have = f"{current.get('averageUtilization')}%"
    utilization = target.get("averageUtilization")
    want = "<auto>" if utilization is None else f"{utilization}%"
    return f"{name}: {have}/{want}"


def _targets(obj: dict[str, Any]) -> str:
    metrics = [m for m in sub(obj, "spec").get("metrics") or [] if isinstance(m, dict)]
    if not metrics:
        return "<none>"
    currents = sub(obj, "status").get("currentMetrics")
    currents = currents if isinstance(currents, list) else []
    parts = []
    for i, metric in enumerate(metrics):
        current = currents[i] if i < len(currents) and isinstance(currents[i], dict) else None
        parts.append(_target(metric, current))
    if len(parts) > TARGETS_SHOWN:
        shown = ", ".join(parts[:TARGETS_SHOWN])
        return f"{shown} + {len(parts) - TARGETS_SHOWN} more..."
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
        integer(spec.get("maxReplicas")),
        integer(status.get("currentReplicas")),
        age(obj, now),
    ]


PRINTERS = {
    "autoscaling/horizontalpodautoscalers": Printer(
        [
            name_column(),
            column("Reference", "string", "The workload being scaled."),
            column("Targets", "string", "Current and target value of each metric."),
            column("MinPods", "string", "Lower limit of replicas."),
            # Upstream declares these "string" although their cells are integers.
            column("MaxPods", "string", "Upper limit of replicas."),
            column("Replicas", "string", "Current number of replicas."),
            age_column(),
        ],
        _hpa,
    ),
}

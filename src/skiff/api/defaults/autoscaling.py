"""Defaults of HorizontalPodAutoscalers (autoscaling/v2, and v1 in its own shape)."""

from __future__ import annotations

from typing import Any

from skiff.api.defaults.util import obj_at, setdefault

DEFAULT_CPU_UTILIZATION = 80


def scale_up_rules(rules: dict[str, Any] | None) -> dict[str, Any]:
    """Scale-up rules with upstream's defaults filled in: no stabilization, the faster of
    +4 pods or +100% every 15 s."""
    out: dict[str, Any] = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                           "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                        {"type": "Percent", "value": 100,
                                         "periodSeconds": 15}]}
    for key, value in (rules or {}).items():
        if value is not None:
            out[key] = value
    return out


def scale_down_rules(rules: dict[str, Any] | None) -> dict[str, Any]:
    """Scale-down rules with upstream's defaults: a 300 s stabilization window, up to
    100% of the pods every 15 s."""
    out: dict[str, Any] = {"stabilizationWindowSeconds": 300, "selectPolicy": "Max",
                           "policies": [{"type": "Percent", "value": 100,
                                         "periodSeconds": 15}]}
    for key, value in (rules or {}).items():
        if value is not None:
            out[key] = value
    return out


def default_hpa(obj: dict[str, Any]) -> None:
    """minReplicas 1; v2: an 80% CPU target when no metric is given, and a given
    behavior completed with the default rules."""
    spec = obj_at(obj, "spec")
    if spec is None:
        return
    setdefault(spec, "minReplicas", 1)
    if obj.get("apiVersion") == "autoscaling/v1":
        return
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization",
                                      "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    behavior = obj_at(spec, "behavior")
    if behavior is not None:
        up, down = behavior.get("scaleUp"), behavior.get("scaleDown")
        if up is None or isinstance(up, dict):
            behavior["scaleUp"] = scale_up_rules(up)
        if down is None or isinstance(down, dict):
            behavior["scaleDown"] = scale_down_rules(down)

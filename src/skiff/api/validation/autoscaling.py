"""Validation of HorizontalPodAutoscalers (autoscaling/v2; v1 objects are checked in
their v2 form, which holds everything v1 can say)."""

from __future__ import annotations

from typing import Any

from skiff.api.conversion.hpa import to_v2
from skiff.api.validation import field
from skiff.api.validation.checks import dicts, enum, get_dict, get_int, get_list, get_str
from skiff.api.validation.field import Cause

METRIC_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
TARGET_TYPES = ("AverageValue", "Utilization", "Value")
POLICY_TYPES = ("Percent", "Pods")
SELECT_POLICIES = ("Disabled", "Max", "Min")
MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW = 3600


def _scale_target(spec: dict[str, Any], errs: list[Cause]) -> None:
    ref = get_dict(spec, "scaleTargetRef", "spec", errs)
    for key in ("kind", "name"):
        if not get_str(ref, key, "spec.scaleTargetRef", errs):
            errs.append(field.required(f"spec.scaleTargetRef.{key}"))


def _replicas(spec: dict[str, Any], errs: list[Cause]) -> None:
    minimum = get_int(spec, "minReplicas", "spec", errs)
    maximum = get_int(spec, "maxReplicas", "spec", errs)
    if minimum is not None and minimum < 1:
        errs.append(field.invalid("spec.minReplicas", minimum,
                                  "must be greater than or equal to 1"))
    if maximum is None:
        if "maxReplicas" not in spec:
            errs.append(field.invalid("spec.maxReplicas", 0, "must be greater than 0"))
    elif maximum < 1:
        errs.append(field.invalid("spec.maxReplicas", maximum, "must be greater than 0"))
    elif minimum is not None and maximum < minimum:
        errs.append(field.invalid("spec.maxReplicas", maximum,
                                  "must be greater than or equal to `minReplicas`"))


def _metric(metric: dict[str, Any], path: str, errs: list[Cause]) -> None:
    mtype = enum(metric, "type", path, errs, METRIC_TYPES, required=True)
    if mtype not in ("Resource", "ContainerResource"):
        return
    key = "resource" if mtype == "Resource" else "containerResource"
    source = metric.get(key)
    if not isinstance(source, dict):
        errs.append(field.required(f"{path}.{key}", "must populate information for the "
                                                    "given metric source"))
        return
    sp = f"{path}.{key}"
    if not get_str(source, "name", sp, errs):
        errs.append(field.required(f"{sp}.name"))
    target = get_dict(source, "target", sp, errs)
    tp = f"{sp}.target"
    ttype = enum(target, "type", tp, errs, TARGET_TYPES, required=True)
    if ttype == "Utilization":
        util = get_int(target, "averageUtilization", tp, errs)
        if util is None:
            errs.append(field.required(f"{tp}.averageUtilization"))
        elif util <= 0:
            errs.append(field.invalid(f"{tp}.averageUtilization", util, "must be greater than 0"))
    elif ttype == "AverageValue" and target.get("averageValue") is None:
        errs.append(field.required(f"{tp}.averageValue"))


def _rules(rules: dict[str, Any], path: str, errs: list[Cause]) -> None:
    window = get_int(rules, "stabilizationWindowSeconds", path, errs)
    if window is not None and not 0 <= window <= MAX_STABILIZATION_WINDOW:
        errs.append(field.invalid(f"{path}.stabilizationWindowSeconds", window,
                                  f"must be less than or equal to {MAX_STABILIZATION_WINDOW}"
                                  if window > 0 else "must be greater than or equal to zero"))
    enum(rules, "selectPolicy", path, errs, SELECT_POLICIES)
    pp = f"{path}.policies"
    policies = get_list(rules, "policies", path, errs)
    if "policies" in rules and not policies:
        errs.append(field.required(pp, "must specify at least one Policy"))
    for i, policy in dicts(policies, pp, errs):
        p = field.index(pp, i)
        enum(policy, "type", p, errs, POLICY_TYPES, required=True)
        value = get_int(policy, "value", p, errs)
        if value is None or value <= 0:
            errs.append(field.invalid(f"{p}.value", value or 0, "must be greater than zero"))
        period = get_int(policy, "periodSeconds", p, errs)
        if period is None or period <= 0:
            errs.append(field.invalid(f"{p}.periodSeconds", period or 0,
                                      "must be greater than zero"))
        elif period > MAX_PERIOD_SECONDS:
            errs.append(field.invalid(f"{p}.periodSeconds", period,
                                      f"must be less than or equal to {MAX_PERIOD_SECONDS}"))


def validate_hpa(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Scale target, replica bounds, metrics and behavior."""
    if obj.get("apiVersion") == "autoscaling/v1":
        obj = to_v2(obj)
    errs: list[Cause] = []
    spec = get_dict(obj, "spec", "", errs)
    _scale_target(spec, errs)
    _replicas(spec, errs)
    for i, metric in dicts(get_list(spec, "metrics", "spec", errs), "spec.metrics", errs):
        _metric(metric, field.index("spec.metrics", i), errs)
    behavior = get_dict(spec, "behavior", "spec", errs)
    for key in ("scaleUp", "scaleDown"):
        rules = get_dict(behavior, key, "spec.behavior", errs)
        if rules:
            _rules(rules, f"spec.behavior.{key}", errs)
    return errs

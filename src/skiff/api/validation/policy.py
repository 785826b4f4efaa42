"""Validation of policy/v1 PodDisruptionBudgets."""

from __future__ import annotations

from typing import Any

from skiff.api.validation import field
from skiff.api.validation.checks import enum, get_dict
from skiff.api.validation.field import Cause
from skiff.api.validation.intstr import validate_int_or_percent
from skiff.api.validation.metadata import validate_label_selector

UNHEALTHY_POD_EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")


def validate_pdb(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """minAvailable or maxUnavailable (not both), each a count or a percentage up to 100%;
    a well-formed selector; a known unhealthy-pod eviction policy."""
    errs: list[Cause] = []
    spec = get_dict(obj, "spec", "", errs)
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        errs.append(field.invalid("spec", spec, "minAvailable and maxUnavailable cannot be "
                                                "both set"))
    for name, value in (("minAvailable", min_available), ("maxUnavailable", max_unavailable)):
        if value is not None:
            errs += validate_int_or_percent(value, f"spec.{name}", max_percent=100)
    selector = spec.get("selector")
    if selector is not None:
        if isinstance(selector, dict):
            errs += validate_label_selector(selector, "spec.selector")
        else:
            errs.append(field.type_invalid("spec.selector", selector, "object"))
    enum(spec, "unhealthyPodEvictionPolicy", "spec", errs, UNHEALTHY_POD_EVICTION_POLICIES)
    return errs

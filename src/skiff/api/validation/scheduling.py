"""Validation of scheduling.k8s.io PriorityClasses."""

from __future__ import annotations

from typing import Any

from skiff.api.validation import field
from skiff.api.validation.checks import MAX_INT32, get_bool, get_int, get_str
from skiff.api.validation.field import Cause

HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_PREFIX = "system-"
# The classes the API server creates itself, with their fixed values.
SYSTEM_CLASSES = {"system-node-critical": 2_000_001_000, "system-cluster-critical": 2_000_000_000}
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")


def validate_priorityclass(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Value range (user classes at most 1e9), reserved names, immutable value and policy."""
    errs: list[Cause] = []
    name = (obj.get("metadata") or {}).get("name") or ""
    value = get_int(obj, "value", "", errs)
    if value is None and "value" not in obj:
        errs.append(field.required("value"))
    elif value is not None and not -MAX_INT32 - 1 <= value <= MAX_INT32:
        errs.append(field.invalid("value", value, "must be a 32-bit integer"))
    get_bool(obj, "globalDefault", "", errs)
    get_str(obj, "description", "", errs)
    policy = get_str(obj, "preemptionPolicy", "", errs)
    if policy and policy not in PREEMPTION_POLICIES:
        errs.append(field.not_supported("preemptionPolicy", policy, PREEMPTION_POLICIES))
    if name.startswith(SYSTEM_PREFIX):
        known = SYSTEM_CLASSES.get(name)
        if known is None or (value is not None and value != known):
            why = (f"{name} is not a known system priority class" if known is None
                   else f"value of {name} PriorityClass must be {known}")
            errs.append(field.forbidden("metadata.name", "priority class names with 'system-' "
                                                         "prefix are reserved for system use "
                                                         f"only. error: {why}"))
    elif value is not None and value > HIGHEST_USER_DEFINABLE_PRIORITY:
        errs.append(field.forbidden("value", "maximum allowed value of a user defined priority "
                                             f"is {HIGHEST_USER_DEFINABLE_PRIORITY}"))
    if old is not None:
        if obj.get("value") != old.get("value"):
            errs.append(field.forbidden("value", "may not be changed in an update."))
        if obj.get("preemptionPolicy") != old.get("preemptionPolicy"):
            errs.append(field.invalid("preemptionPolicy", obj.get("preemptionPolicy"),
                                      "field is immutable"))
    return errs

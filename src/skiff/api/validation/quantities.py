"""Validation of container resource maps (`requests`/`limits`) and other quantities."""

from __future__ import annotations

import re
from typing import Any

from skiff.api import quantity
from skiff.api.validation import field
from skiff.api.validation.field import Cause
from skiff.api.validation.names import qualified_name

_STANDARD = {"cpu", "memory", "ephemeral-storage", "storage", "pods"}
_HUGEPAGES = re.compile(r"hugepages-.+")


def validate_quantity(value: Any, path: str) -> list[Cause]:
    """A single non-negative quantity."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return [field.type_invalid(path, value, "string")]
    try:
        q = quantity.parse_quantity(value)
    except ValueError as e:
        return [field.invalid(path, value, str(e))]
    if q < 0:
        return [field.invalid(path, value, "must be greater than or equal to 0")]
    return []


def _resource_name(name: str, path: str) -> list[Cause]:
    if name in _STANDARD or _HUGEPAGES.fullmatch(name):
        return []
    msgs = qualified_name(name)
    if msgs:
        return [field.invalid(path, name, m) for m in msgs]
    if "/" not in name:
        return [field.invalid(path, name, "must be a standard resource type or fully qualified")]
    return []


def validate_resource_list(rl: Any, path: str) -> tuple[list[Cause], dict[str, Any]]:
    """A requests or limits map; returns causes and the entries that parsed."""
    if rl is None:
        return [], {}
    if not isinstance(rl, dict):
        return [field.type_invalid(path, rl, "object")], {}
    errs: list[Cause] = []
    parsed = {}
    for name, value in rl.items():
        p = field.key(path, name)
        errs += _resource_name(name, p)
        bad = validate_quantity(value, p)
        errs += bad
        if not bad:
            parsed[name] = quantity.parse_quantity(value)
    return errs, parsed


def validate_requirements(res: Any, path: str) -> list[Cause]:
    """Container `resources`: both maps valid and each request within its limit."""
    if res is None:
        return []
    if not isinstance(res, dict):
        return [field.type_invalid(path, res, "object")]
    errs, limits = validate_resource_list(res.get("limits"), field.child(path, "limits"))
    req_errs, requests = validate_resource_list(res.get("requests"), field.child(path, "requests"))
    errs += req_errs
    for name, req in requests.items():
        lim = limits.get(name)
        if lim is not None and req > lim:
            errs.append(field.invalid(
                field.key(field.child(path, "requests"), name),
                quantity.format_quantity(req),
                f"must be less than or equal to {name} limit of {quantity.format_quantity(lim)}",
            ))
    return errs

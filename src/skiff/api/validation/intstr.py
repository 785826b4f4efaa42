"""IntOrString fields written as a count or a percentage (maxSurge, maxUnavailable)."""

from __future__ import annotations

import re
from typing import Any

from skiff.api.validation import field
from skiff.api.validation.field import Cause

_PERCENT = re.compile(r"[0-9]+%")
PERCENT_ERROR = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  "
    "or '93%', regex used for validation is '[0-9]+%')"
)


def validate_int_or_percent(
    value: Any, path: str, *, max_percent: int | None = None
) -> list[Cause]:
    """A non-negative integer or `N%` (with N ≤ `max_percent` when given)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return [field.type_invalid(path, value, "integer or string")]
    if isinstance(value, int):
        if value < 0:
            return [field.invalid(path, value, "must be greater than or equal to 0")]
        return []
    if not _PERCENT.fullmatch(value):
        return [field.invalid(path, value, PERCENT_ERROR)]
    if max_percent is not None and int(value[:-1]) > max_percent:
        return [field.invalid(path, value, f"must not be greater than {max_percent}%")]
    return []


def is_zero(value: Any) -> bool:
    """Whether an IntOrString amount is 0 or `0%`."""
    return value in (0, "0%") or (isinstance(value, str) and value.rstrip("%") == "0")

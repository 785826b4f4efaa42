"""Type-safe accessors and the small numeric and enum checks every kind shares.

Objects arrive as arbitrary JSON, so every read goes through these helpers: a field of
the wrong type becomes a `FieldValueTypeInvalid` cause instead of an exception that
would surface as a 500.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from skiff.api.validation import field
from skiff.api.validation.field import Cause

MAX_INT32 = 2**31 - 1


def get_dict(obj: dict[str, Any], name: str, path: str, errs: list[Cause]) -> dict[str, Any]:
    """`obj[name]` as a dict; {} (and a cause) when it is another type, {} when absent."""
    value = obj.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errs.append(field.type_invalid(field.child(path, name), value, "object"))
        return {}
    return value


def get_list(obj: dict[str, Any], name: str, path: str, errs: list[Cause]) -> list[Any]:
    """`obj[name]` as a list; [] (and a cause) when it is another type, [] when absent."""
    value = obj.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        errs.append(field.type_invalid(field.child(path, name), value, "array"))
        return []
    return value


def get_str(obj: dict[str, Any], name: str, path: str, errs: list[Cause]) -> str:
    """`obj[name]` as a string; "" (and a cause) when it is another type."""
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        errs.append(field.type_invalid(field.child(path, name), value, "string"))
        return ""
    return value


def get_int(obj: dict[str, Any], name: str, path: str, errs: list[Cause]) -> int | None:
    """`obj[name]` as an integer, None when absent or of another type (with a cause)."""
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        errs.append(field.type_invalid(field.child(path, name), value, "integer"))
        return None
    return value


def get_bool(obj: dict[str, Any], name: str, path: str, errs: list[Cause]) -> bool | None:
    """`obj[name]` as a boolean, None when absent or of another type (with a cause)."""
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        errs.append(field.type_invalid(field.child(path, name), value, "boolean"))
        return None
    return value


def dicts(items: list[Any], path: str, errs: list[Cause]) -> list[tuple[int, dict[str, Any]]]:
    """The elements of a list that are objects, with their indexes; others become causes."""
    out = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            out.append((i, item))
        else:
            errs.append(field.type_invalid(field.index(path, i), item, "object"))
    return out


def nonnegative(obj: dict[str, Any], name: str, path: str, errs: list[Cause]) -> int | None:
    """An optional integer that must be ≥ 0."""
    value = get_int(obj, name, path, errs)
    if value is not None and value < 0:
        errs.append(field.invalid(field.child(path, name), value,
                                  "must be greater than or equal to 0"))
    return value


def positive(obj: dict[str, Any], name: str, path: str, errs: list[Cause]) -> int | None:
    """An optional integer that must be > 0."""
    value = get_int(obj, name, path, errs)
    if value is not None and value <= 0:
        errs.append(field.invalid(field.child(path, name), value, "must be greater than 0"))
    return value


def in_range(
    obj: dict[str, Any], name: str, path: str, errs: list[Cause], low: int, high: int
) -> int | None:
    """An optional integer within [low, high]."""
    value = get_int(obj, name, path, errs)
    if value is not None and not low <= value <= high:
        errs.append(field.invalid(field.child(path, name), value,
                                  f"must be between {low} and {high}, inclusive"))
    return value


def enum(
    obj: dict[str, Any], name: str, path: str, errs: list[Cause], allowed: Iterable[str],
    *, required: bool = False,
) -> str:
    """An optional (or required) string from a fixed set."""
    value = get_str(obj, name, path, errs)
    p = field.child(path, name)
    if not value:
        if required and obj.get(name) in (None, ""):
            errs.append(field.required(p))
        return value
    allowed = list(allowed)
    if value not in allowed:
        errs.append(field.not_supported(p, value, allowed))
    return value


def name_check(
    value: str, path: str, errs: list[Cause], checker: Any, *, required: bool = True
) -> None:
    """Run one of `names`' checkers on `value`, turning its messages into causes."""
    if not value:
        if required:
            errs.append(field.required(path))
        return
    for msg in checker(value):
        errs.append(field.invalid(path, value, msg))

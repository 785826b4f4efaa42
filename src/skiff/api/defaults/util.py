"""Tiny helpers for in-place defaulting of plain-dict objects.

Defaulting runs before validation, so it must tolerate anything: a helper that finds
the wrong type where it expected an object simply does nothing and leaves the
complaint to the validator.
"""

from __future__ import annotations

from typing import Any


def obj_at(parent: Any, key: str, *, create: bool = False) -> dict[str, Any] | None:
    """`parent[key]` when it is a dict; creates it when asked and absent."""
    if not isinstance(parent, dict):
        return None
    value = parent.get(key)
    if value is None and create:
        value = parent[key] = {}
    return value if isinstance(value, dict) else None


def items_at(parent: Any, key: str) -> list[dict[str, Any]]:
    """The dict elements of `parent[key]` when it is a list; [] otherwise."""
    if not isinstance(parent, dict):
        return []
    value = parent.get(key)
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, dict)]


def setdefault(d: dict[str, Any] | None, key: str, value: Any) -> None:
    """Set `d[key]` when absent or null (upstream defaults nil pointers, not zero values)."""
    if isinstance(d, dict) and d.get(key) is None:
        d[key] = value

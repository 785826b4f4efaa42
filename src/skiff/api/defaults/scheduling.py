"""Defaults of scheduling.k8s.io kinds."""

from __future__ import annotations

from typing import Any


def default_priorityclass(obj: dict[str, Any]) -> None:
    """preemptionPolicy defaults to PreemptLowerPriority."""
    obj.setdefault("preemptionPolicy", "PreemptLowerPriority")

"""Validation of coordination.k8s.io Leases (used for leader election and node heartbeats)."""

from __future__ import annotations

from typing import Any

from skiff.api.validation.checks import enum, get_dict, get_str, nonnegative, positive
from skiff.api.validation.field import Cause


def validate_lease(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Lease durations and counters."""
    errs: list[Cause] = []
    spec = get_dict(obj, "spec", "", errs)
    positive(spec, "leaseDurationSeconds", "spec", errs)
    nonnegative(spec, "leaseTransitions", "spec", errs)
    for key in ("holderIdentity", "acquireTime", "renewTime", "preferredHolder"):
        get_str(spec, key, "spec", errs)
    strategy = get_str(spec, "strategy", "spec", [])
    if strategy:
        enum(spec, "strategy", "spec", errs, ("OldestEmulationVersion",))
    return errs

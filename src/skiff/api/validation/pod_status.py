"""Validation of a pod's status subresource writes (upstream's ValidatePodStatusUpdate).

A status write cannot change the spec (the server keeps the stored one), so, as
upstream, it is not validated again: only the status a kubelet reports is checked —
addresses, condition types, and that containers that must not restart stay terminated.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from skiff.api.validation import field
from skiff.api.validation.field import Cause
from skiff.api.validation.names import qualified_name

# Condition types the system defines; any other must be a qualified name.
_SYSTEM_CONDITIONS = frozenset({"PodScheduled", "Ready", "Initialized", "ContainersReady",
                                "PodReadyToStartContainers", "DisruptionTarget",
                                "PodResizePending", "PodResizeInProgress"})
_IP_MESSAGE = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _addresses(status: dict[str, Any], name: str) -> list[Cause]:
    """podIPs/hostIPs: valid addresses, at most one per family, no duplicates."""
    path = f"status.{name}"
    errs: list[Cause] = []
    families: list[int] = []
    seen: set[str] = set()
    entries = _list(status.get(name))
    for i, entry in enumerate(entries):
        ip = _dict(entry).get("ip")
        p = field.index(path, i)
        try:
            families.append(ipaddress.ip_address(ip if isinstance(ip, str) else "").version)
        except ValueError:
            errs.append(field.invalid(field.child(p, "ip"), ip, _IP_MESSAGE))
            continue
        if ip in seen:
            errs.append(field.duplicate(p, entry))
        seen.add(ip)
    if len(entries) > 1 and (len(entries) > 2 or len(set(families)) != len(families)):
        errs.append(field.invalid(path, entries, "may specify no more than one IP for each "
                                                 "IP family"))
    return errs


def _stays_terminated(new: list[Any], old: list[Any], policy: str, path: str) -> list[Cause]:
    """Containers that will not be restarted may not come back from terminated."""
    if policy == "Always":
        return []
    before = {c.get("name"): c for c in old if isinstance(c, dict)}
    errs: list[Cause] = []
    for i, cs in enumerate(new):
        if not isinstance(cs, dict):
            continue
        prev = before.get(cs.get("name"))
        if prev is None:
            continue
        was = _dict(_dict(prev.get("state")).get("terminated"))
        if not was or "terminated" in _dict(cs.get("state")):
            continue
        if policy == "Never" or was.get("exitCode") == 0:
            errs.append(field.forbidden(field.child(field.index(path, i), "state"),
                                        "may not be transitioned to non-terminated state"))
    return errs


def validate_pod_status(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Causes for a pod status write replacing `old`'s status."""
    errs: list[Cause] = []
    status = obj.get("status")
    if status is None:
        return errs
    if not isinstance(status, dict):
        return [field.type_invalid("status", status, "object")]
    for i, cond in enumerate(_list(status.get("conditions"))):
        ctype = _dict(cond).get("type")
        if isinstance(ctype, str) and ctype not in _SYSTEM_CONDITIONS:
            p = field.child(field.index("status.conditions", i), "type")
            errs += [field.invalid(p, ctype, msg) for msg in qualified_name(ctype)]
    errs += _addresses(status, "podIPs")
    errs += _addresses(status, "hostIPs")
    if old is not None:
        policy = str(_dict(old.get("spec")).get("restartPolicy") or "Always")
        old_status = _dict(old.get("status"))
        # Init containers are left out: sidecars among them restart whatever the policy.
        errs += _stays_terminated(_list(status.get("containerStatuses")),
                                  _list(old_status.get("containerStatuses")), policy,
                                  "status.containerStatuses")
    return errs

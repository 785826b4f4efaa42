"""Tables for Leases, CustomResourceDefinitions and every kind without its own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from skiff.api.tables.age import age, parse_time
from skiff.api.tables.columns import Printer, age_column, column, meta, name_column, sub, text


def _name(obj: dict[str, Any]) -> str:
    return text(meta(obj).get("name"))


def _lease(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), text(sub(obj, "spec").get("holderIdentity")), age(obj, now)]


def _priority_class(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), obj.get("value", 0), bool(obj.get("globalDefault")), age(obj, now),
            text(obj.get("preemptionPolicy"))]


def created_at(obj: dict[str, Any]) -> str:
    """creationTimestamp as an RFC 3339 UTC instant, as upstream's generic table shows it."""
    moment = parse_time(meta(obj).get("creationTimestamp"))
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _crd(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), created_at(obj)]


def _int_or_na(value: Any) -> str:
    return "N/A" if value is None else str(value)


def _pdb(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = sub(obj, "spec"), sub(obj, "status")
    return [_name(obj), _int_or_na(spec.get("minAvailable")),
            _int_or_na(spec.get("maxUnavailable")), int(status.get("disruptionsAllowed") or 0),
            age(obj, now)]


def _default(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), age(obj, now)]


PRINTERS = {
    "coordination.k8s.io/leases": Printer(
        [
            name_column(),
            column("Holder", "string", "The identity that holds the lease."),
            age_column(),
        ],
        _lease,
    ),
    "scheduling.k8s.io/priorityclasses": Printer(
        [
            name_column(),
            column("Value", "integer", "The priority of pods of this class."),
            column("Global-Default", "boolean", "Whether pods without a class get this one."),
            age_column(),
            column("PreemptionPolicy", "string", "Whether these pods may preempt others."),
        ],
        _priority_class,
    ),
    "policy/poddisruptionbudgets": Printer(
        [
            name_column(),
            column("Min Available", "string", "Pods that must stay available."),
            column("Max Unavailable", "string", "Pods that may be unavailable."),
            column("Allowed Disruptions", "integer", "Evictions allowed right now."),
            age_column(),
        ],
        _pdb,
    ),
    "apiextensions.k8s.io/customresourcedefinitions": Printer(
        [
            name_column(),
            column("Created At", "date", "When the server created the object."),
        ],
        _crd,
    ),
}

DEFAULT = Printer([name_column(), age_column()], _default)

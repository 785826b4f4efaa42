"""Defaults of CustomResourceDefinitions."""

from __future__ import annotations

from typing import Any

from skiff.api.defaults.util import items_at, obj_at, setdefault


def default_crd(obj: dict[str, Any]) -> None:
    """Conversion strategy None, derived singular/listKind, the initial storedVersions."""
    spec = obj_at(obj, "spec")
    if spec is None:
        return
    conversion = obj_at(spec, "conversion", create=True)
    setdefault(conversion, "strategy", "None")
    webhook = obj_at(conversion, "webhook")
    service = obj_at(obj_at(webhook, "clientConfig"), "service")
    setdefault(service, "port", 443)
    names = obj_at(spec, "names")
    kind = names.get("kind") if names is not None else None
    if names is not None and isinstance(kind, str) and kind:
        if not names.get("singular"):
            names["singular"] = kind.lower()
        if not names.get("listKind"):
            names["listKind"] = f"{kind}List"
    status = obj_at(obj, "status", create=True)
    storage = [v.get("name") for v in items_at(spec, "versions") if v.get("storage") is True]
    if status is not None and not status.get("storedVersions") and len(storage) == 1:
        status["storedVersions"] = storage

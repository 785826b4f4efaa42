"""The scale subresource: an autoscaling/v1 Scale view of a workload."""

from __future__ import annotations

from typing import Any

from skiff.api import meta as m
from skiff.api.resources import ResourceType
from skiff.api.selectors.labels import from_label_selector_dict, selector_from_set


def _selector_string(rt: ResourceType, obj: dict[str, Any]) -> str:
    assert rt.scale is not None
    if rt.crd:
        path = rt.scale.label_selector
        value = m.get_path(obj, path.lstrip(".")) if path else None
        return value if isinstance(value, str) else ""
    sel = (obj.get("spec") or {}).get("selector")
    if not isinstance(sel, dict):
        return ""
    try:
        if rt.kind == "ReplicationController":
            return selector_from_set(sel).to_string()
        return from_label_selector_dict(sel).to_string()
    except Exception:  # noqa: BLE001 - a stored bad selector must not break reads
        return ""


def scale_of(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The Scale object for a workload."""
    assert rt.scale is not None
    md = obj["metadata"]
    spec_replicas = m.get_path(obj, rt.scale.spec_replicas.lstrip("."))
    status_replicas = m.get_path(obj, rt.scale.status_replicas.lstrip("."))
    status: dict[str, Any] = {"replicas": status_replicas if isinstance(status_replicas, int)
                              else 0}
    selector = _selector_string(rt, obj)
    if selector:
        status["selector"] = selector
    scale_md = {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                   "creationTimestamp") if k in md}
    # Upstream's ScaleSpec.replicas is omitempty (its status' is not): a scale of zero
    # reads back as `"spec": {}`.
    spec = {"replicas": spec_replicas} if isinstance(spec_replicas, int) and spec_replicas else {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_md,
        "spec": spec,
        "status": status,
    }


def set_replicas(rt: ResourceType, obj: dict[str, Any], replicas: int) -> None:
    """Write a new desired replica count into the workload."""
    assert rt.scale is not None
    m.set_path(obj, rt.scale.spec_replicas.lstrip("."), replicas)

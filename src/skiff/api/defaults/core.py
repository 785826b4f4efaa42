"""Defaults of core (v1) kinds other than Pods."""

from __future__ import annotations

import base64
from typing import Any

from skiff.api.defaults.util import items_at, obj_at, setdefault

CLIENT_IP_TIMEOUT = 10800


def default_service(obj: dict[str, Any]) -> None:
    """Service type, affinity, port protocol/targetPort, traffic and IP-family policies."""
    spec = obj_at(obj, "spec", create=True)
    if spec is None:
        return
    setdefault(spec, "type", "ClusterIP")
    setdefault(spec, "sessionAffinity", "None")
    if spec.get("sessionAffinity") == "ClientIP":
        cfg = obj_at(spec, "sessionAffinityConfig", create=True)
        setdefault(obj_at(cfg, "clientIP", create=True), "timeoutSeconds", CLIENT_IP_TIMEOUT)
    for port in items_at(spec, "ports"):
        setdefault(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    svc_type = spec.get("type")
    if svc_type in ("NodePort", "LoadBalancer"):
        setdefault(spec, "externalTrafficPolicy", "Cluster")
    if svc_type == "LoadBalancer":
        setdefault(spec, "allocateLoadBalancerNodePorts", True)
    if svc_type != "ExternalName":
        setdefault(spec, "internalTrafficPolicy", "Cluster")
        setdefault(spec, "ipFamilyPolicy", "SingleStack")
        setdefault(spec, "ipFamilies", ["IPv4"])


def default_secret(obj: dict[str, Any]) -> None:
    """Type Opaque; `stringData` is write-only and folds into `data` (base64) here."""
    setdefault(obj, "type", "Opaque")
    string_data = obj.get("stringData")
    if not isinstance(string_data, dict):
        return
    data = obj_at(obj, "data", create=True)
    if data is None:
        return
    for k, v in string_data.items():
        if isinstance(v, str):
            data[k] = base64.b64encode(v.encode()).decode()
    del obj["stringData"]


def default_namespace(obj: dict[str, Any]) -> None:
    """The Active phase of a new namespace and its `kubernetes.io/metadata.name` label.

    The `kubernetes` finalizer is not a default: it is set once, at creation (see
    the API server's admission), so that finalizing can empty the list.
    """
    status = obj_at(obj, "status", create=True)
    setdefault(status, "phase", "Active")
    # Upstream labels every namespace with its own name (always overwritten, so
    # the label cannot be removed or changed) for namespace selectors to match.
    meta = obj_at(obj, "metadata", create=True)
    name = meta.get("name") if meta is not None else None
    if isinstance(name, str) and name:
        labels = meta.get("labels")
        if not isinstance(labels, dict):
            labels = meta["labels"] = {}
        labels["kubernetes.io/metadata.name"] = name


def default_node(obj: dict[str, Any]) -> None:
    """A node that reports no allocatable resources can use its whole capacity."""
    status = obj_at(obj, "status")
    capacity = obj_at(status, "capacity")
    if capacity and status is not None and not status.get("allocatable"):
        status["allocatable"] = dict(capacity)


def default_endpoints(obj: dict[str, Any]) -> None:
    """Endpoint ports speak TCP unless told otherwise."""
    for subset in items_at(obj, "subsets"):
        for port in items_at(subset, "ports"):
            setdefault(port, "protocol", "TCP")


def default_pvc_spec(spec: dict[str, Any] | None) -> None:
    """PersistentVolumeClaim spec (StatefulSet claim templates)."""
    setdefault(spec, "volumeMode", "Filesystem")

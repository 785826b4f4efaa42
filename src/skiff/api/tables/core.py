"""Tables for the core kinds other than pods and events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from skiff.api.tables.age import age
from skiff.api.tables.columns import (
    AGE_DESCRIPTION,
    Printer,
    age_column,
    column,
    count,
    integer,
    items,
    meta,
    name_column,
    sub,
    text,
)
from skiff.api.tables.selectors import format_labels

NONE = "<none>"
ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"
ROLE_LABEL = "kubernetes.io/role"
# How many endpoint addresses the ENDPOINTS cell lists before "+ N more...".
ENDPOINTS_SHOWN = 3


def _name(obj: dict[str, Any]) -> str:
    return text(meta(obj).get("name"))


def _namespace(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), text(sub(obj, "status").get("phase")), age(obj, now)]


def _configmap(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), count(obj.get("data")) + count(obj.get("binaryData")), age(obj, now)]


def _secret(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), text(obj.get("type")), count(obj.get("data")), age(obj, now)]


def _serviceaccount(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), count(obj.get("secrets")), age(obj, now)]


def _join_host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def format_endpoints(obj: dict[str, Any]) -> str:
    """The ENDPOINTS cell: up to three `ip:port` pairs, then how many more there are."""
    subsets = [s for s in items(obj.get("subsets")) if isinstance(s, dict)]
    if not subsets:
        return NONE
    shown: list[str] = []
    total = 0
    for subset in subsets:
        addresses = [a for a in items(subset.get("addresses")) if isinstance(a, dict)]
        ports = [p for p in items(subset.get("ports")) if isinstance(p, dict)]
        # A headless service may have no ports; its endpoints are bare IPs.
        pairs = (
            [text(a.get("ip")) for a in addresses]
            if not ports
            else [
                _join_host_port(text(a.get("ip")), integer(p.get("port")))
                for p in ports
                for a in addresses
            ]
        )
        total += len(pairs)
        shown.extend(pairs[: max(0, ENDPOINTS_SHOWN - len(shown))])
    joined = ",".join(shown)
    if total > ENDPOINTS_SHOWN:
        return f"{joined} + {total - ENDPOINTS_SHOWN} more..."
    return joined


def _endpoints(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [_name(obj), format_endpoints(obj), age(obj, now)]


def _load_balancer_ips(obj: dict[str, Any]) -> list[str]:
    found: set[str] = set()
    for ing in items(sub(obj, "status", "loadBalancer").get("ingress")):
        if isinstance(ing, dict):
            value = text(ing.get("ip")) or text(ing.get("hostname"))
            if value:
                found.add(value)
    return sorted(found)


def service_external_ip(obj: dict[str, Any]) -> str:
    """The EXTERNAL-IP cell, which depends on the service type."""
    spec = sub(obj, "spec")
    type_ = text(spec.get("type")) or "ClusterIP"
    external = [text(i) for i in items(spec.get("externalIPs"))]
    if type_ in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if type_ == "LoadBalancer":
        found = _load_balancer_ips(obj) + external
        return ",".join(found) if found else "<pending>"
    if type_ == "ExternalName":
        return text(spec.get("externalName"))
    return "<unknown>"


def service_ports(obj: dict[str, Any]) -> str:
    """The PORT(S) cell: `port/proto`, or `port:nodePort/proto` when a node port is open."""
    pieces = []
    for p in items(sub(obj, "spec").get("ports")):
        if not isinstance(p, dict):
            continue
        proto = text(p.get("protocol")) or "TCP"
        node_port = integer(p.get("nodePort"))
        port = integer(p.get("port"))
        pieces.append(f"{port}:{node_port}/{proto}" if node_port > 0 else f"{port}/{proto}")
    return ",".join(pieces) or NONE


def _service(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec = sub(obj, "spec")
    cluster_ips = [text(i) for i in items(spec.get("clusterIPs"))]
    cluster_ip = cluster_ips[0] if cluster_ips else text(spec.get("clusterIP"))
    return [
        _name(obj),
        text(spec.get("type")) or "ClusterIP",
        cluster_ip or NONE,
        service_external_ip(obj),
        service_ports(obj),
        age(obj, now),
        format_labels(spec.get("selector")),
    ]


def node_status(obj: dict[str, Any]) -> str:
    """`Ready`, `NotReady` or `Unknown`, plus `SchedulingDisabled` for a cordoned node."""
    words: list[str] = []
    ready = None
    for cond in items(sub(obj, "status").get("conditions")):
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            ready = cond
    if ready is not None:
        words.append("Ready" if ready.get("status") == "True" else "NotReady")
    else:
        words.append("Unknown")
    if sub(obj, "spec").get("unschedulable") is True:
        words.append("SchedulingDisabled")
    return ",".join(words)


def node_roles(obj: dict[str, Any]) -> str:
    """Roles from `node-role.kubernetes.io/<role>` keys and the `kubernetes.io/role` value."""
    roles: set[str] = set()
    labels = meta(obj).get("labels")
    for key, value in (labels if isinstance(labels, dict) else {}).items():
        if key.startswith(ROLE_LABEL_PREFIX) and len(key) > len(ROLE_LABEL_PREFIX):
            roles.add(key[len(ROLE_LABEL_PREFIX) :])
        elif key == ROLE_LABEL and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or NONE


def _node_address(obj: dict[str, Any], type_: str) -> str:
    for addr in items(sub(obj, "status").get("addresses")):
        if isinstance(addr, dict) and addr.get("type") == type_:
            return text(addr.get("address"))
    return NONE


def _node(obj: dict[str, Any], now: datetime) -> list[Any]:
    info = sub(obj, "status", "nodeInfo")
    return [
        _name(obj),
        node_status(obj),
        node_roles(obj),
        age(obj, now),
        text(info.get("kubeletVersion")),
        _node_address(obj, "InternalIP"),
        _node_address(obj, "ExternalIP"),
        text(info.get("osImage")) or "<unknown>",
        text(info.get("kernelVersion")) or "<unknown>",
        text(info.get("containerRuntimeVersion")) or "<unknown>",
    ]


PRINTERS = {
    "core/namespaces": Printer(
        [
            name_column(),
            column("Status", "string", "The namespace's lifecycle phase."),
            age_column(),
        ],
        _namespace,
    ),
    "core/configmaps": Printer(
        [
            name_column(),
            column("Data", "string", "How many keys the config map holds."),
            age_column(),
        ],
        _configmap,
    ),
    "core/secrets": Printer(
        [
            name_column(),
            column("Type", "string", "The kind of secret, which says what keys it must hold."),
            column("Data", "string", "How many keys the secret holds."),
            age_column(),
        ],
        _secret,
    ),
    "core/serviceaccounts": Printer(
        [
            name_column(),
            column("Secrets", "string", "How many secrets the account lists."),
            age_column(),
        ],
        _serviceaccount,
    ),
    "core/endpoints": Printer(
        [
            name_column(),
            column("Endpoints", "string", "Addresses and ports that back the service."),
            age_column(),
        ],
        _endpoints,
    ),
    "core/services": Printer(
        [
            name_column(),
            column("Type", "string", "How the service is exposed."),
            column("Cluster-IP", "string", "The virtual IP that load-balances to the service."),
            column("External-IP", "string", "Addresses reachable from outside the cluster."),
            column("Port(s)", "string", "The ports the service exposes."),
            column("Age", "string", AGE_DESCRIPTION),
            column("Selector", "string", "Labels of the pods the service routes to.", priority=1),
        ],
        _service,
    ),
    "core/nodes": Printer(
        [
            name_column(),
            column("Status", "string", "Whether the node is ready and accepts new pods."),
            column("Roles", "string", "The node's roles, taken from its labels."),
            column("Age", "string", AGE_DESCRIPTION),
            column("Version", "string", "The version the node agent reports."),
            column("Internal-IP", "string", "The node's address inside the cluster.", priority=1),
            column("External-IP", "string", "The node's address outside the cluster.", priority=1),
            column("OS-Image", "string", "The operating system the node runs.", priority=1),
            column("Kernel-Version", "string", "The node's kernel version.", priority=1),
            column(
                "Container-Runtime",
                "string",
                "The node's container runtime and version.",
                priority=1,
            ),
        ],
        _node,
    ),
}

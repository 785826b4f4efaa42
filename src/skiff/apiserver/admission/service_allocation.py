"""Service admission: cluster IPs and node ports are allocated by the server.

Allocations are derived from the stored Services (level-triggered: nothing to
leak or repair after a crash), and checked again by the store's
compare-and-swap when two creates race for the same address.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import orjson

from skiff.api.errors import invalid
from skiff.store.sqlite import SQLiteStore

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORT_RANGE = (30000, 32767)
_PREFIX = "/registry/core/services/"


def _in_use(store: SQLiteStore, exclude_key: str) -> tuple[set[str], set[int]]:
    ips: set[str] = set()
    ports: set[int] = set()
    res = store._list_latest(_PREFIX, "", 0)  # noqa: SLF001 - same-process fast path
    for kv in res.items:
        if kv.key == exclude_key:
            continue
        svc = orjson.loads(kv.value)
        spec = svc.get("spec") or {}
        for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
            if ip and ip != "None":
                ips.add(ip)
        for p in spec.get("ports") or []:
            if isinstance(p, dict) and isinstance(p.get("nodePort"), int):
                ports.add(p["nodePort"])
    return ips, ports


def _free_ip(used: set[str], name: str, namespace: str) -> str:
    if name == "kubernetes" and namespace == "default":
        return str(SERVICE_CIDR.network_address + 1)
    size = SERVICE_CIDR.num_addresses
    for _ in range(64):
        candidate = str(SERVICE_CIDR.network_address + random.randrange(2, size - 1))
        if candidate not in used:
            return candidate
    for offset in range(2, size - 1):
        candidate = str(SERVICE_CIDR.network_address + offset)
        if candidate not in used:
            return candidate
    raise invalid("", "Service", name, [{"reason": "FieldValueInvalid", "field": "spec.clusterIP",
                                         "message": "range is full"}])


def allocate(store: SQLiteStore, key: str, svc: dict[str, Any], old: dict[str, Any] | None
             ) -> None:
    """Fill in clusterIP(s) and nodePorts; reject addresses that are taken or out of range."""
    spec = svc.setdefault("spec", {})
    md = svc.get("metadata") or {}
    name = md.get("name", "")
    ips, ports = _in_use(store, key)
    stype = spec.get("type", "ClusterIP")
    if stype == "ExternalName":
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    else:
        old_ip = ((old or {}).get("spec") or {}).get("clusterIP")
        ip = spec.get("clusterIP") or old_ip
        if not ip:
            ip = _free_ip(ips, name, md.get("namespace", ""))
        elif ip != "None" and ip != old_ip:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                addr = None
            if addr is None or addr not in SERVICE_CIDR:
                raise invalid("", "Service", name, [{
                    "reason": "FieldValueInvalid", "field": "spec.clusterIPs[0]",
                    "message": f'Invalid value: "{ip}": failed to allocate IP {ip}: the provided '
                               f"IP ({ip}) is not in the valid range. The range of valid IPs is "
                               f"{SERVICE_CIDR}"}])
            if ip in ips:
                raise invalid("", "Service", name, [{
                    "reason": "FieldValueInvalid", "field": "spec.clusterIPs[0]",
                    "message": f'Invalid value: ["{ip}"]: failed to allocate IP {ip}: provided '
                               "IP is already allocated"}])
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]
    if stype in ("NodePort", "LoadBalancer"):
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                     for p in ((old or {}).get("spec") or {}).get("ports") or []
                     if isinstance(p, dict)}
        for i, p in enumerate(spec.get("ports") or []):
            if not isinstance(p, dict):
                continue
            np = p.get("nodePort") or old_ports.get((p.get("port"), p.get("protocol", "TCP")))
            if np:
                if np in ports and np not in old_ports.values():
                    raise invalid("", "Service", name, [{
                        "reason": "FieldValueInvalid", "field": f"spec.ports[{i}].nodePort",
                        "message": f"Invalid value: {np}: provided port is already allocated"}])
            else:
                lo, hi = NODE_PORT_RANGE
                free = [n for n in range(lo, hi + 1) if n not in ports]
                if not free:
                    raise invalid("", "Service", name, [{
                        "reason": "FieldValueInvalid", "field": f"spec.ports[{i}].nodePort",
                        "message": "range is full"}])
                np = random.choice(free)
            p["nodePort"] = np
            ports.add(np)
    else:
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.pop("nodePort", None)

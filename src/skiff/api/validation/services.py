"""Validation of Services."""

from __future__ import annotations

import ipaddress
from typing import Any

from skiff.api.validation import field
from skiff.api.validation.checks import dicts, enum, get_dict, get_int, get_list, get_str
from skiff.api.validation.field import Cause
from skiff.api.validation.metadata import validate_labels
from skiff.api.validation.names import dns1123_label, dns1123_subdomain
from skiff.api.validation.pod_spec import PROTOCOLS
from skiff.api.validation.ports import port_number, validate_port_or_name

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NODE_PORT_RANGE = (30000, 32767)


def _validate_ports(spec: dict[str, Any], svc_type: str, errs: list[Cause]) -> None:
    ports = get_list(spec, "ports", "spec", errs)
    if not ports and svc_type != "ExternalName" and isinstance(spec.get("ports", []), list):
        errs.append(field.required("spec.ports"))
    names: set[str] = set()
    seen: set[str] = set()
    node_ports: set[str] = set()
    for i, port in dicts(ports, "spec.ports", errs):
        p = field.index("spec.ports", i)
        name = get_str(port, "name", p, errs)
        if not name and len(ports) > 1:
            errs.append(field.required(field.child(p, "name")))
        elif name:
            errs += [field.invalid(field.child(p, "name"), name, m) for m in dns1123_label(name)]
            if name in names:
                errs.append(field.duplicate(field.child(p, "name"), name))
            names.add(name)
        number = get_int(port, "port", p, errs)
        if number is None and "port" not in port:
            errs.append(field.required(field.child(p, "port")))
        elif number is not None:
            errs += port_number(number, field.child(p, "port"))
        protocol = enum(port, "protocol", p, errs, PROTOCOLS) or "TCP"
        if number is not None:
            key = f"{number}/{protocol}"
            if key in seen:
                errs.append(field.duplicate(p, key))
            seen.add(key)
        if port.get("targetPort") is not None:
            errs += validate_port_or_name(port["targetPort"], field.child(p, "targetPort"))
        node_port = get_int(port, "nodePort", p, errs)
        if node_port:
            np = field.child(p, "nodePort")
            if svc_type in ("ClusterIP", "ExternalName"):
                errs.append(field.forbidden(np, f"may not be used when `type` is '{svc_type}'"))
            elif not NODE_PORT_RANGE[0] <= node_port <= NODE_PORT_RANGE[1]:
                errs.append(field.invalid(
                    np, node_port, "provided port is not in the valid range. The range of valid "
                    f"ports is {NODE_PORT_RANGE[0]}-{NODE_PORT_RANGE[1]}"))
            key = f"{node_port}/{protocol}"
            if key in node_ports:
                errs.append(field.duplicate(np, key))
            node_ports.add(key)


def _validate_ip(value: str, path: str, errs: list[Cause]) -> None:
    if value in ("", "None"):
        return
    try:
        ipaddress.ip_address(value)
    except ValueError:
        errs.append(field.invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or "
                                  "2001:db8::ffff)"))


def validate_service(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """A Service's type, ports, selector, IP settings, and clusterIP immutability."""
    errs: list[Cause] = []
    spec = get_dict(obj, "spec", "", errs)
    svc_type = enum(spec, "type", "spec", errs, SERVICE_TYPES) or "ClusterIP"
    if svc_type == "ExternalName":
        ext = get_str(spec, "externalName", "spec", errs)
        if not ext:
            errs.append(field.required("spec.externalName"))
        else:
            errs += [field.invalid("spec.externalName", ext, m)
                     for m in dns1123_subdomain(ext.rstrip("."))]
    _validate_ports(spec, svc_type, errs)
    selector = get_dict(spec, "selector", "spec", errs)
    if selector:
        errs += validate_labels(selector, "spec.selector")
    affinity = enum(spec, "sessionAffinity", "spec", errs, ("ClientIP", "None"))
    cfg = get_dict(spec, "sessionAffinityConfig", "spec", errs)
    client_ip = get_dict(cfg, "clientIP", "spec.sessionAffinityConfig", errs)
    timeout = get_int(client_ip, "timeoutSeconds", "spec.sessionAffinityConfig.clientIP", errs)
    if timeout is not None:
        tp = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
        if affinity != "ClientIP":
            errs.append(field.invalid(tp, timeout, "must not be set when `sessionAffinity` is "
                                      "None"))
        elif not 0 < timeout <= 86400:
            errs.append(field.invalid(tp, timeout, "must be greater than 0 and less than 86400"))
    cluster_ip = get_str(spec, "clusterIP", "spec", errs)
    _validate_ip(cluster_ip, "spec.clusterIP", errs)
    for i, ip in enumerate(get_list(spec, "clusterIPs", "spec", errs)):
        if isinstance(ip, str):
            _validate_ip(ip, field.index("spec.clusterIPs", i), errs)
    for i, ip in enumerate(get_list(spec, "externalIPs", "spec", errs)):
        if isinstance(ip, str):
            _validate_ip(ip, field.index("spec.externalIPs", i), errs)
    etp = enum(spec, "externalTrafficPolicy", "spec", errs, ("Cluster", "Local"))
    if etp and svc_type not in ("NodePort", "LoadBalancer"):
        errs.append(field.invalid("spec.externalTrafficPolicy", etp,
                                  "may only be set when `type` is 'NodePort' or 'LoadBalancer'"))
    enum(spec, "internalTrafficPolicy", "spec", errs, ("Cluster", "Local"))
    enum(spec, "ipFamilyPolicy", "spec", errs,
         ("SingleStack", "PreferDualStack", "RequireDualStack"))
    for i, fam in enumerate(get_list(spec, "ipFamilies", "spec", errs)):
        if fam not in ("IPv4", "IPv6"):
            errs.append(field.not_supported(field.index("spec.ipFamilies", i), fam,
                                            ("IPv4", "IPv6")))
    if old is not None:
        old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        old_ip = old_spec.get("clusterIP") or ""
        if old_ip and cluster_ip != old_ip and svc_type != "ExternalName":
            errs.append(field.invalid("spec.clusterIP", cluster_ip, "field is immutable"))
    return errs

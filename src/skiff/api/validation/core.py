"""Validation of core (v1) kinds other than Services, ConfigMaps and Secrets."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from skiff.api.validation import field
from skiff.api.validation.checks import dicts, enum, get_dict, get_list, get_str, in_range
from skiff.api.validation.field import Cause
from skiff.api.validation.names import qualified_name
from skiff.api.validation.pod_spec import PROTOCOLS, TAINT_EFFECTS, validate_pod_spec

POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def validate_pod(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """A Pod's spec, and on update upstream's narrow set of mutable spec fields."""
    if "spec" not in obj:
        return [field.required("spec")]
    errs = validate_pod_spec(obj.get("spec"), "spec")
    if old is not None and isinstance(obj.get("spec"), dict) and isinstance(old.get("spec"), dict):
        errs += _pod_update(obj["spec"], old["spec"])
    return errs


def _pod_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    # Start from the old spec and copy over only what may change; anything else
    # that differs afterwards is a forbidden change.
    merged = copy.deepcopy(old)
    for list_name in ("containers", "initContainers"):
        new_list, merged_list = new.get(list_name), merged.get(list_name)
        if (isinstance(new_list, list) and isinstance(merged_list, list)
                and len(new_list) == len(merged_list)):
            for n, m in zip(new_list, merged_list, strict=True):
                if isinstance(n, dict) and isinstance(m, dict) and "image" in n:
                    m["image"] = n["image"]
    if "activeDeadlineSeconds" in new:
        new_ads, old_ads = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
        if (old_ads is not None and isinstance(new_ads, int) and isinstance(old_ads, int)
                and new_ads > old_ads):
            errs.append(field.invalid("spec.activeDeadlineSeconds", new_ads,
                                      "must be less than or equal to previous value"))
        merged["activeDeadlineSeconds"] = new_ads
    elif old.get("activeDeadlineSeconds") is not None:
        errs.append(field.invalid("spec.activeDeadlineSeconds", None,
                                  "must not update from a positive integer to nil value"))
        merged.pop("activeDeadlineSeconds", None)
    old_tol = old.get("tolerations") or []
    new_tol = new.get("tolerations") or []
    if isinstance(new_tol, list) and isinstance(old_tol, list):
        if not all(t in new_tol for t in old_tol):
            errs.append(field.forbidden("spec.tolerations",
                                        "existing toleration can not be modified except its "
                                        "tolerationSeconds"))
        merged.pop("tolerations", None)
        if "tolerations" in new:
            merged["tolerations"] = new["tolerations"]
    old_grace = old.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and new.get(
            "terminationGracePeriodSeconds") == 1:
        merged["terminationGracePeriodSeconds"] = 1
    if merged != new:
        errs.append(field.forbidden("spec", POD_UPDATE_FORBIDDEN))
    return errs


def validate_namespace(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Namespace finalizers must be qualified names."""
    errs: list[Cause] = []
    spec = get_dict(obj, "spec", "", errs)
    for i, fin in enumerate(get_list(spec, "finalizers", "spec", errs)):
        p = field.index("spec.finalizers", i)
        if not isinstance(fin, str):
            errs.append(field.type_invalid(p, fin, "string"))
            continue
        errs += [field.invalid(p, fin, m) for m in qualified_name(fin)]
    status = get_dict(obj, "status", "", errs)
    enum(status, "phase", "status", errs, ("Active", "Terminating"))
    return errs


def validate_node(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Node taints and pod CIDR."""
    errs: list[Cause] = []
    spec = get_dict(obj, "spec", "", errs)
    seen: set[tuple[str, str]] = set()
    for i, taint in dicts(get_list(spec, "taints", "spec", errs), "spec.taints", errs):
        p = field.index("spec.taints", i)
        key = get_str(taint, "key", p, errs)
        if not key:
            errs.append(field.required(field.child(p, "key")))
        else:
            errs += [field.invalid(field.child(p, "key"), key, m) for m in qualified_name(key)]
        effect = enum(taint, "effect", p, errs, TAINT_EFFECTS, required=True)
        if (key, effect) in seen:
            errs.append(field.duplicate(p, f"{key}:{effect}"))
        seen.add((key, effect))
    cidr = get_str(spec, "podCIDR", "spec", errs)
    if cidr:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            errs.append(field.invalid("spec.podCIDR", cidr, "must be a valid CIDR value, "
                                      "(e.g. 10.9.8.0/24 or 2001:db8::/64)"))
    return errs


def validate_endpoints(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Endpoints subsets: IP addresses and ports."""
    errs: list[Cause] = []
    for i, subset in dicts(get_list(obj, "subsets", "", errs), "subsets", errs):
        sp = field.index("subsets", i)
        for list_name in ("addresses", "notReadyAddresses"):
            lp = field.child(sp, list_name)
            for j, addr in dicts(get_list(subset, list_name, sp, errs), lp, errs):
                ap = field.index(lp, j)
                ip = get_str(addr, "ip", ap, errs)
                try:
                    ipaddress.ip_address(ip)
                except ValueError:
                    errs.append(field.invalid(field.child(ap, "ip"), ip,
                                              "must be a valid IP address"))
        pp = field.child(sp, "ports")
        for j, port in dicts(get_list(subset, "ports", sp, errs), pp, errs):
            p = field.index(pp, j)
            if port.get("port") is None:
                errs.append(field.required(field.child(p, "port")))
            in_range(port, "port", p, errs, 1, 65535)
            enum(port, "protocol", p, errs, PROTOCOLS)
    return errs


def validate_core_event(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """A core/v1 Event must concern an object in its own namespace."""
    errs: list[Cause] = []
    involved = get_dict(obj, "involvedObject", "", errs)
    ns = get_str(involved, "namespace", "involvedObject", errs)
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    event_ns = meta.get("namespace") or ""
    if ns and event_ns and ns != event_ns:
        errs.append(field.invalid("involvedObject.namespace", ns,
                                  "does not match event.namespace"))
    get_str(obj, "reason", "", errs)
    get_str(obj, "message", "", errs)
    in_range(obj, "count", "", errs, 0, 2**31 - 1)
    return errs


def validate_events_v1(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """An events.k8s.io/v1 Event: the fields its newer API makes mandatory."""
    errs: list[Cause] = []
    for key in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
        if not get_str(obj, key, "", errs):
            errs.append(field.required(key))
    enum(obj, "type", "", errs, ("Normal", "Warning"), required=True)
    get_dict(obj, "regarding", "", errs)
    return errs

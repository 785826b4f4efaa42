"""Validation of CustomResourceDefinitions (apiextensions.k8s.io/v1)."""

from __future__ import annotations

from typing import Any

from skiff.api.validation import field
from skiff.api.validation.checks import dicts, enum, get_bool, get_dict, get_list, get_str
from skiff.api.validation.field import Cause
from skiff.api.validation.names import dns1123_label, dns1123_subdomain, rfc1035_label


def _validate_names(names: dict[str, Any], errs: list[Cause]) -> None:
    p = "spec.names"
    for key in ("plural", "singular"):
        value = get_str(names, key, p, errs)
        if not value:
            if key == "plural":
                errs.append(field.required(field.child(p, key)))
            continue
        errs += [field.invalid(field.child(p, key), value, m) for m in dns1123_label(value)]
    for key in ("kind", "listKind"):
        value = get_str(names, key, p, errs)
        if not value:
            errs.append(field.required(field.child(p, key)))
        elif not value[0].isalpha() or not value.replace("_", "").isalnum():
            errs.append(field.invalid(field.child(p, key), value,
                                      "may have mixed case, but should otherwise match: "
                                      "[a-z]([-a-z0-9]*[a-z0-9])?"))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(field.invalid("spec.names.listKind", names["listKind"],
                                  "kind and listKind may not be the same"))
    for i, short in enumerate(get_list(names, "shortNames", p, errs)):
        sp = field.index(field.child(p, "shortNames"), i)
        if not isinstance(short, str):
            errs.append(field.type_invalid(sp, short, "string"))
        else:
            errs += [field.invalid(sp, short, m) for m in dns1123_label(short)]


def _validate_versions(spec: dict[str, Any], errs: list[Cause]) -> None:
    versions = get_list(spec, "versions", "spec", errs)
    if not versions:
        if isinstance(spec.get("versions", []), list):
            errs.append(field.required("spec.versions", "must have exactly one version marked "
                                       "as storage version"))
        return
    seen: set[str] = set()
    storage = served = 0
    for i, ver in dicts(versions, "spec.versions", errs):
        p = field.index("spec.versions", i)
        name = get_str(ver, "name", p, errs)
        if not name:
            errs.append(field.required(field.child(p, "name")))
        else:
            errs += [field.invalid(field.child(p, "name"), name, m)
                     for m in rfc1035_label(name)]
            if name in seen:
                errs.append(field.duplicate(field.child(p, "name"), name))
            seen.add(name)
        storage += bool(get_bool(ver, "storage", p, errs))
        served += bool(get_bool(ver, "served", p, errs))
        schema = get_dict(ver, "schema", p, errs)
        sp = field.child(field.child(p, "schema"), "openAPIV3Schema")
        root = get_dict(schema, "openAPIV3Schema", field.child(p, "schema"), errs)
        if not root:
            errs.append(field.required(sp, "schemas are required"))
        elif not root.get("type"):
            errs.append(field.required(field.child(sp, "type"), "must not be empty at the root"))
        elif root.get("type") != "object":
            errs.append(field.invalid(field.child(sp, "type"), root.get("type"),
                                      "must be object at the root"))
    if storage != 1:
        errs.append(field.invalid("spec.versions", versions,
                                  "must have exactly one version marked as storage version"))
    if served == 0:
        errs.append(field.invalid("spec.versions", versions,
                                  "must have at least one version marked as served"))


def validate_crd(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """A CRD's group, names, scope, versions and schemas; group and scope are immutable."""
    errs: list[Cause] = []
    if obj.get("spec") is None:
        return [field.required("spec")]
    spec = get_dict(obj, "spec", "", errs)
    group = get_str(spec, "group", "spec", errs)
    if not group:
        errs.append(field.required("spec.group"))
    else:
        errs += [field.invalid("spec.group", group, m) for m in dns1123_subdomain(group)]
        if "." not in group:
            errs.append(field.invalid("spec.group", group, "should be a domain with at least "
                                      "one dot"))
    names = get_dict(spec, "names", "spec", errs)
    _validate_names(names, errs)
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    plural = names.get("plural")
    if isinstance(plural, str) and plural and group and meta.get("name") != f"{plural}.{group}":
        errs.append(field.invalid("metadata.name", meta.get("name"),
                                  'must be spec.names.plural+"."+spec.group'))
    enum(spec, "scope", "spec", errs, ("Cluster", "Namespaced"), required=True)
    _validate_versions(spec, errs)
    conversion = get_dict(spec, "conversion", "spec", errs)
    strategy = enum(conversion, "strategy", "spec.conversion", errs, ("None", "Webhook"))
    if strategy == "Webhook":
        hook = get_dict(conversion, "webhook", "spec.conversion", errs)
        if not hook.get("clientConfig"):
            errs.append(field.required("spec.conversion.webhook.clientConfig",
                                       "required when strategy is set to Webhook"))
    if old is not None and isinstance(old.get("spec"), dict):
        for key in ("group", "scope"):
            if spec.get(key) != old["spec"].get(key):
                errs.append(field.invalid(field.child("spec", key), spec.get(key),
                                          "field is immutable"))
    return errs

"""`metadata` validation shared by every kind, on create and on update.

Returns field causes rather than raising so a kind's validator can add its own
spec causes and report everything in one 422, as a real API server does. Messages
and field paths follow upstream (Kubernetes 1.32) because kubectl prints them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from skiff.api import errors
from skiff.api.validation import field
from skiff.api.validation.names import (
    dns1123_label,
    dns1123_subdomain,
    label_value,
    qualified_name,
    validate_generate_name,
)

Cause = dict[str, str]
NameValidator = Callable[[str], list[str]]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
FIELD_IMMUTABLE = "field is immutable"
FINALIZER_ORPHAN = "orphan"
FINALIZER_FOREGROUND = "foregroundDeletion"

# Kinds that may never own anything (an Event owner would be collected with it).
_BANNED_OWNERS = {("", "v1", "Event")}


def _invalid_json(path: str, value: Any, detail: str) -> Cause:
    # Lists and structs render as JSON in upstream's Invalid errors.
    rendered = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return errors.cause(errors.FIELD_INVALID, path, f"Invalid value: {rendered}: {detail}")


def _str(meta: dict[str, Any], name: str) -> str:
    value = meta.get(name)
    return value if isinstance(value, str) else ""


def _dict(meta: dict[str, Any], name: str) -> dict[str, Any]:
    value = meta.get(name)
    return value if isinstance(value, dict) else {}


def _list(meta: dict[str, Any], name: str) -> list[Any]:
    value = meta.get(name)
    return value if isinstance(value, list) else []


def validate_labels(labels: dict[str, Any] | None, path: str) -> list[Cause]:
    """Label keys must be qualified names and values valid label values.

    Both kinds of problem are reported on the map's own path, with the bad key or
    value as the shown value, exactly as upstream does.
    """
    causes: list[Cause] = []
    for k, v in (labels or {}).items():
        for msg in qualified_name(k):
            causes.append(field.invalid(path, k, msg))
        if not isinstance(v, str):
            causes.append(field.type_invalid(field.key(path, k), v, "string"))
            continue
        for msg in label_value(v):
            causes.append(field.invalid(path, v, msg))
    return causes


def validate_annotations(annotations: dict[str, Any] | None, path: str) -> list[Cause]:
    """Annotation keys are qualified names (case-insensitive); all of them fit in 256 KiB."""
    causes: list[Cause] = []
    total = 0
    for k, v in (annotations or {}).items():
        for msg in qualified_name(k.lower()):
            causes.append(field.invalid(path, k, msg))
        total += len(k.encode()) + len(str(v).encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(field.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


def _valid_api_version(api_version: str) -> bool:
    # "<version>" or "<group>/<version>", with a non-empty version.
    parts = api_version.split("/")
    return len(parts) <= 2 and parts[-1] != ""


def _owner_order(ref: dict[str, Any]) -> dict[str, Any]:
    # Upstream renders an OwnerReference struct in Go field order.
    order = ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")
    return {k: ref[k] for k in order if ref.get(k) is not None}


def validate_owner_references(refs: list[Any], path: str) -> list[Cause]:
    """Each owner names apiVersion, kind, name and uid; at most one is the controller."""
    causes: list[Cause] = []
    first_controller = ""
    for i, ref in enumerate(refs):
        p = field.index(path, i)
        if not isinstance(ref, dict):
            causes.append(field.type_invalid(p, ref, "object"))
            continue
        api_version = _str(ref, "apiVersion")
        if not api_version:
            causes.append(field.required(field.child(p, "apiVersion"), "must not be empty"))
        elif not _valid_api_version(api_version):
            causes.append(field.invalid(field.child(p, "apiVersion"), api_version,
                                        "must be <group>/<version> or <version>"))
        for name in ("kind", "name", "uid"):
            if not _str(ref, name):
                causes.append(field.required(field.child(p, name), "must not be empty"))
        group, _, version = api_version.rpartition("/")
        kind = _str(ref, "kind")
        if (group, version, kind) in _BANNED_OWNERS:
            causes.append(_invalid_json(p, _owner_order(ref),
                                        f"{group}/{version}, Kind={kind} "
                                        "is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{kind}/{_str(ref, 'name')}"
            if first_controller:
                causes.append(_invalid_json(
                    path, [_owner_order(r) if isinstance(r, dict) else r for r in refs],
                    "Only one reference can have Controller set to true. "
                    f'Found "true" in references for {first_controller} and {current}',
                ))
            else:
                first_controller = current
    return causes


def validate_finalizers(finalizers: list[Any], path: str) -> list[Cause]:
    """Finalizers are qualified names; `orphan` and `foregroundDeletion` exclude each other."""
    causes: list[Cause] = []
    for f in finalizers:
        if not isinstance(f, str):
            causes.append(field.type_invalid(path, f, "string"))
            continue
        for msg in qualified_name(f):
            causes.append(field.invalid(path, f, msg))
    if FINALIZER_ORPHAN in finalizers and FINALIZER_FOREGROUND in finalizers:
        causes.append(_invalid_json(
            path, finalizers,
            f"finalizer {FINALIZER_ORPHAN} and {FINALIZER_FOREGROUND} cannot be both set",
        ))
    return causes


def _validate_generation(meta: dict[str, Any], path: str) -> list[Cause]:
    generation = meta.get("generation")
    if isinstance(generation, int) and not isinstance(generation, bool) and generation < 0:
        return [field.invalid(field.child(path, "generation"), generation,
                              "must be greater than or equal to 0")]
    return []


def _common(meta: dict[str, Any], path: str) -> list[Cause]:
    causes = _validate_generation(meta, path)
    causes += validate_labels(_dict(meta, "labels"), field.child(path, "labels"))
    causes += validate_annotations(_dict(meta, "annotations"), field.child(path, "annotations"))
    causes += validate_owner_references(_list(meta, "ownerReferences"),
                                        field.child(path, "ownerReferences"))
    return causes


def validate_object_meta(
    meta: dict[str, Any],
    namespaced: bool,
    *,
    name_validator: NameValidator = dns1123_subdomain,
    path: str = "metadata",
) -> list[Cause]:
    """Causes for a new object's metadata; empty when it may be created.

    Call it after the server has generated a name from `generateName` and filled
    the namespace from the URL, as upstream does: "name or generateName is
    required" then really means neither was given. `name_validator` is the kind's
    name rule (`dns1123_label` for namespaces, `rfc1035_label` for services, ...).
    """
    causes: list[Cause] = []
    generate_name = _str(meta, "generateName")
    if generate_name:
        for msg in validate_generate_name(generate_name, name_validator):
            causes.append(field.invalid(field.child(path, "generateName"), generate_name, msg))
    name = _str(meta, "name")
    if not name:
        causes.append(field.required(field.child(path, "name"), "name or generateName is required"))
    else:
        for msg in name_validator(name):
            causes.append(field.invalid(field.child(path, "name"), name, msg))
    namespace = _str(meta, "namespace")
    ns_path = field.child(path, "namespace")
    if namespaced:
        if not namespace:
            causes.append(field.required(ns_path))
        else:
            causes += [field.invalid(ns_path, namespace, m) for m in dns1123_label(namespace)]
    elif namespace:
        causes.append(field.forbidden(ns_path, "not allowed on this type"))
    causes += _common(meta, path)
    causes += validate_finalizers(_list(meta, "finalizers"), field.child(path, "finalizers"))
    return causes


def _go_string_slice(values: list[str]) -> str:
    # Go's %#v of a []string, which upstream puts in the new-finalizers message.
    return "[]string{" + ", ".join(json.dumps(v) for v in values) + "}"


def _immutable(new: dict[str, Any], old: dict[str, Any], name: str, path: str) -> list[Cause]:
    if new.get(name) == old.get(name):
        return []
    value = new.get(name)
    p = field.child(path, name)
    if value is None:
        return [errors.cause(errors.FIELD_INVALID, p, f"Invalid value: null: {FIELD_IMMUTABLE}")]
    return [field.invalid(p, value, FIELD_IMMUTABLE)]


def validate_object_meta_update(
    new_meta: dict[str, Any],
    old_meta: dict[str, Any],
    *,
    path: str = "metadata",
    require_resource_version: bool = True,
) -> list[Cause]:
    """Causes for replacing `old_meta` with `new_meta`; empty when the update may proceed.

    Upstream's update path first copies uid, creationTimestamp and the deletion
    fields from the old object when the client left them out, and fills in the
    stored resourceVersion for unconditional updates; do that before calling this,
    or pass `require_resource_version=False`.
    """
    causes: list[Cause] = []
    if old_meta.get("deletionTimestamp"):
        added = sorted(set(_list(new_meta, "finalizers")) - set(_list(old_meta, "finalizers")))
        if added:
            causes.append(field.forbidden(
                field.child(path, "finalizers"),
                "no new finalizers can be added if the object is being deleted, "
                f"found new finalizers {_go_string_slice(added)}",
            ))
    if require_resource_version and not _str(new_meta, "resourceVersion"):
        causes.append(field.invalid(field.child(path, "resourceVersion"), "",
                                    "must be specified for an update"))
    causes += _validate_generation(new_meta, path)
    new_gen, old_gen = new_meta.get("generation"), old_meta.get("generation")
    if isinstance(new_gen, int) and isinstance(old_gen, int) and new_gen < old_gen:
        causes.append(field.invalid(field.child(path, "generation"), new_gen,
                                    "must not be decremented"))
    for name in ("name", "namespace"):
        # An absent name/namespace is the empty string, as in Go.
        if _str(new_meta, name) != _str(old_meta, name):
            causes.append(field.invalid(field.child(path, name), _str(new_meta, name),
                                        FIELD_IMMUTABLE))
    for name in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        causes += _immutable(new_meta, old_meta, name, path)
    causes += _common(new_meta, path)
    return causes


def validate_label_selector(sel: dict[str, Any] | None, path: str) -> list[Cause]:
    """Causes for a `metav1.LabelSelector` (Deployment, ReplicaSet, Job selectors, ...).

    Only the syntax: whether a kind requires a non-empty selector, or one that
    matches its template, is the kind's own rule.
    """
    if sel is None:
        return []
    causes = validate_labels(_dict(sel, "matchLabels"), field.child(path, "matchLabels"))
    for i, expr in enumerate(_list(sel, "matchExpressions")):
        p = field.index(field.child(path, "matchExpressions"), i)
        if not isinstance(expr, dict):
            causes.append(field.type_invalid(p, expr, "object"))
            continue
        op = expr.get("operator")
        values = _list(expr, "values")
        values_path = field.child(p, "values")
        if op in ("In", "NotIn"):
            if not values:
                causes.append(field.required(
                    values_path, "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                causes.append(field.forbidden(
                    values_path, "may not be specified when `operator` is 'Exists' or "
                                 "'DoesNotExist'"))
        else:
            causes.append(field.invalid(field.child(p, "operator"), op if op is not None else "",
                                        "not a valid selector operator"))
        key = _str(expr, "key")
        for msg in qualified_name(key):
            causes.append(field.invalid(field.child(p, "key"), key, msg))
        for j, v in enumerate(values):
            if not isinstance(v, str):
                causes.append(field.type_invalid(field.index(values_path, j), v, "string"))
                continue
            for msg in label_value(v):
                causes.append(field.invalid(field.index(values_path, j), v, msg))
    return causes

"""OpenAPI v3 documents, one per group-version, and the index that lists them.

kubectl fetches `/openapi/v3` and then one document per group-version: `apply`
and `create` look for a `fieldValidation` parameter on each kind's operations to
decide that the server validates fields, `explain` walks `components.schemas`,
and client-side apply uses strategic merge only where a document advertises it.
Documents are deterministic so their hash changes exactly when their content
does; the caller caches them until the registry changes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from skiff.api.openapi import parameters as P
from skiff.api.resources import Registry, ResourceType
from skiff.api.schema.builtin import builtin_components, ref, schema_name_for
from skiff.api.schema.node import Schema

INFO = {"title": "Kubernetes", "version": "v1.32.4"}
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
STATUS = META + "Status"
DELETE_OPTIONS = META + "DeleteOptions"
WATCH_EVENT = META + "WatchEvent"
LIST_META = META + "ListMeta"
PATCH_SCHEMA = META + "Patch"
SCALE_GVK = {"group": "autoscaling", "version": "v1", "kind": "Scale"}

PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
)
SMP = "application/strategic-merge-patch+json"
RESPONSE_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")


def gv_path(group: str, version: str) -> str:
    """The URL prefix of a group-version without the leading slash (`api/v1`)."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_index(registry: Registry,
                  crd_components: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The `/openapi/v3` root: one entry per served group-version, with a content hash.

    The hash is of the full document, so pass the CRD components when custom
    kinds are served to have their schema changes show up too.
    """
    paths: dict[str, Any] = {}
    gvs = sorted({(rt.group, rt.version) for rt in registry})
    for group, version in gvs:
        doc = openapi_group_version(registry, group, version, crd_components or {})
        paths[gv_path(group, version)] = {
            "serverRelativeURL": f"/openapi/v3/{gv_path(group, version)}?hash={document_hash(doc)}"
        }
    return {"paths": paths}


def document_hash(doc: dict[str, Any]) -> str:
    """A stable digest of a document, as the `hash` query parameter carries it."""
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha512(data).hexdigest().upper()


def openapi_group_version(registry: Registry, group: str, version: str,
                          crd_components: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The full OpenAPI v3 document for one group-version."""
    resources = sorted(registry.in_group_version(group, version), key=lambda r: r.plural)
    by_gvk = _index_by_gvk(crd_components)
    own: dict[str, Schema] = {}
    paths: dict[str, Any] = {}
    for rt in resources:
        kind_ref, list_ref = _kind_refs(rt, by_gvk, own)
        _add_resource_paths(paths, rt, kind_ref, list_ref)
    schemas = _closure(_refs_in(paths) | set(own), {**crd_components, **own})
    return {
        "openapi": "3.0.0",
        "info": dict(INFO),
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


def _index_by_gvk(crd_components: dict[str, Schema]) -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, schema in crd_components.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            out[(gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", ""))] = name
    return out


def _kind_refs(rt: ResourceType, by_gvk: dict[tuple[str, str, str], str],
               own: dict[str, Schema]) -> tuple[str, str]:
    """Component names of a resource's kind and list kind, adding any that are missing."""
    builtin = schema_name_for(rt.group, rt.version, rt.kind)
    if builtin and not rt.crd:
        item = builtin
    else:
        item = by_gvk.get((rt.group, rt.version, rt.kind)) or _fallback_name(rt)
        if item not in by_gvk.values():
            own[item] = _free_form(rt)
    listed = schema_name_for(rt.group, rt.version, rt.list_kind)
    if listed and not rt.crd:
        return item, listed
    list_name = by_gvk.get((rt.group, rt.version, rt.list_kind)) or f"{item}List"
    if list_name not in by_gvk.values():
        own[list_name] = _list_schema(rt, item)
    return item, list_name


def _fallback_name(rt: ResourceType) -> str:
    return ".".join([*reversed((rt.group or "core").split(".")), rt.version, rt.kind])


def _gvk(rt: ResourceType, kind: str | None = None) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": kind or rt.kind}


def _free_form(rt: ResourceType) -> Schema:
    return {
        "description": f"{rt.kind} objects (no schema published).",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": ref(META + "ObjectMeta"),
        },
        "x-kubernetes-group-version-kind": [_gvk(rt)],
    }


def _list_schema(rt: ResourceType, item: str) -> Schema:
    return {
        "description": f"A list of {rt.plural}.",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": ref(LIST_META),
            "items": {"type": "array", "items": ref(item)},
        },
        "x-kubernetes-group-version-kind": [_gvk(rt, rt.list_kind)],
    }


def _content(schema: Schema, types: Iterable[str] = RESPONSE_TYPES) -> dict[str, Any]:
    return {t: {"schema": schema} for t in types}


def _ok(schema_name: str, code: str = "200", description: str = "OK") -> dict[str, Any]:
    return {code: {"description": description, "content": _content(ref(schema_name))}}


_UNAUTHORIZED = {"401": {"description": "Unauthorized"}}


def _op_id(action: str, rt: ResourceType, scope: str, suffix: str = "") -> str:
    group = "".join(p.capitalize() for p in (rt.group.split(".")[0] or "core").split("-"))
    return f"{action}{group}{rt.version.capitalize()}{scope}{rt.kind}{suffix}"


def _operation(rt: ResourceType, action: str, op_id: str, gvk: dict[str, str],
               params: list[dict[str, Any]], responses: dict[str, Any],
               body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": [gv_path(rt.group, rt.version).replace("/", "_")],
        "description": f"{action} {rt.kind}",
        "operationId": op_id,
        "parameters": params,
        "responses": {**responses, **_UNAUTHORIZED},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if body is not None:
        op["requestBody"] = body
    return op


def _body(schema_name: str) -> dict[str, Any]:
    return {"content": {"*/*": {"schema": ref(schema_name)}}, "required": True}


def _patch_body(rt: ResourceType) -> dict[str, Any]:
    types = list(PATCH_TYPES)
    if not rt.crd:
        # Only built-ins: kubectl trusts an advertised SMP to come with merge keys.
        types.append(SMP)
    return {"content": _content(ref(PATCH_SCHEMA), sorted(types)), "required": True}


def _add_resource_paths(paths: dict[str, Any], rt: ResourceType, item: str,
                        listed: str) -> None:
    prefix = "/" + gv_path(rt.group, rt.version)
    verbs = set(rt.verbs)
    gvk = _gvk(rt)
    scope = "Namespaced" if rt.namespaced else ""
    base = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else \
        f"{prefix}/{rt.plural}"
    common = [P.NAMESPACE, P.PRETTY] if rt.namespaced else [P.PRETTY]

    collection: dict[str, Any] = {}
    if "list" in verbs:
        collection["get"] = _operation(
            rt, "list", _op_id("list", rt, scope), gvk, list(P.LIST),
            {"200": {"description": "OK", "content": {
                **_content(ref(listed)),
                "application/json;stream=watch": {"schema": ref(WATCH_EVENT)},
            }}})
    if "create" in verbs:
        collection["post"] = _operation(
            rt, "create", _op_id("create", rt, scope), gvk, list(P.WRITE),
            {**_ok(item), **_ok(item, "201", "Created"), **_ok(item, "202", "Accepted")},
            _body(item))
    if "deletecollection" in verbs:
        collection["delete"] = _operation(
            rt, "deletecollection", _op_id("deleteCollection", rt, scope), gvk,
            P.DELETE + P.LIST, _ok(STATUS), _body(DELETE_OPTIONS))
    if collection:
        paths[base] = {**collection, "parameters": common}

    item_ops: dict[str, Any] = {}
    if "get" in verbs:
        item_ops["get"] = _operation(rt, "get", _op_id("read", rt, scope), gvk, [], _ok(item))
    if "update" in verbs:
        item_ops["put"] = _operation(
            rt, "update", _op_id("replace", rt, scope), gvk, list(P.WRITE),
            {**_ok(item), **_ok(item, "201", "Created")}, _body(item))
    if "patch" in verbs:
        item_ops["patch"] = _operation(
            rt, "patch", _op_id("patch", rt, scope), gvk, list(P.PATCH),
            {**_ok(item), **_ok(item, "201", "Created")}, _patch_body(rt))
    if "delete" in verbs:
        item_ops["delete"] = _operation(
            rt, "delete", _op_id("delete", rt, scope), gvk, list(P.DELETE),
            {**_ok(item), **_ok(item, "202", "Accepted")}, _body(DELETE_OPTIONS))
    if item_ops:
        paths[f"{base}/{{name}}"] = {**item_ops, "parameters": [P.NAME, *common]}

    if rt.namespaced and "list" in verbs:
        paths[f"{prefix}/{rt.plural}"] = {
            "get": _operation(rt, "list", _op_id("list", rt, "", "ForAllNamespaces"), gvk,
                              list(P.LIST), _ok(listed)),
            "parameters": [P.PRETTY],
        }
    if "watch" in verbs:
        _add_watch_paths(paths, rt, prefix, scope, common)
    for sub in ("status", "scale"):
        if sub in rt.subresources:
            _add_subresource(paths, rt, f"{base}/{{name}}/{sub}", sub, item, scope, common)


def _add_watch_paths(paths: dict[str, Any], rt: ResourceType, prefix: str, scope: str,
                     common: list[dict[str, Any]]) -> None:
    gvk = _gvk(rt)
    event = _ok(WATCH_EVENT)
    base = f"{prefix}/watch/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else \
        f"{prefix}/watch/{rt.plural}"
    paths[base] = {"get": _operation(rt, "watchlist", _op_id("watch", rt, scope, "List"), gvk,
                                     list(P.LIST), event), "parameters": common}
    paths[f"{base}/{{name}}"] = {
        "get": _operation(rt, "watch", _op_id("watch", rt, scope), gvk, list(P.LIST), event),
        "parameters": [P.NAME, *common],
    }
    if rt.namespaced:
        paths[f"{prefix}/watch/{rt.plural}"] = {
            "get": _operation(rt, "watchlist", _op_id("watch", rt, "", "ListForAllNamespaces"),
                              gvk, list(P.LIST), event),
            "parameters": [P.PRETTY],
        }


def _add_subresource(paths: dict[str, Any], rt: ResourceType, path: str, sub: str,
                     item: str, scope: str, common: list[dict[str, Any]]) -> None:
    if sub == "scale":
        schema = schema_name_for("autoscaling", "v1", "Scale") or item
        gvk = dict(SCALE_GVK)
    else:
        schema, gvk = item, _gvk(rt)
    suffix = sub.capitalize()
    paths[path] = {
        "get": _operation(rt, "get", _op_id("read", rt, scope, suffix), gvk, [], _ok(schema)),
        "put": _operation(rt, "update", _op_id("replace", rt, scope, suffix), gvk, list(P.WRITE),
                          {**_ok(schema), **_ok(schema, "201", "Created")}, _body(schema)),
        "patch": _operation(rt, "patch", _op_id("patch", rt, scope, suffix), gvk,
                            list(P.PATCH), {**_ok(schema), **_ok(schema, "201", "Created")},
                            _patch_body(rt)),
        "parameters": [P.NAME, *common],
    }


def _refs_in(value: Any) -> set[str]:
    out: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            r = v.get("$ref")
            if isinstance(r, str):
                out.add(r.rsplit("/", 1)[-1])
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return out


@lru_cache(maxsize=512)
def _builtin_closure(name: str) -> frozenset[str]:
    comps = builtin_components()
    seen: set[str] = set()
    todo = [name]
    while todo:
        n = todo.pop()
        if n in seen or n not in comps:
            continue
        seen.add(n)
        todo.extend(_refs_in(comps[n]) - seen)
    return frozenset(seen)


def _closure(roots: set[str], own: dict[str, Schema]) -> dict[str, Schema]:
    comps = builtin_components()
    out: dict[str, Schema] = {}
    todo = list(roots)
    while todo:
        n = todo.pop()
        if n in out:
            continue
        if n in own:
            out[n] = own[n]
            todo.extend(_refs_in(own[n]) - out.keys())
        elif n in comps:
            for m in _builtin_closure(n):
                out[m] = comps[m]
        elif n == PATCH_SCHEMA:
            out[n] = {
                "description": "A patch document; its format is given by the Content-Type.",
                "type": "object",
            }
    return out

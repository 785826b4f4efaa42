"""Component schemas for custom resources.

A CRD version's `openAPIV3Schema` describes the object, but upstream serves it in
OpenAPI with the parts every object shares filled in: `apiVersion` and `kind` as
strings, `metadata` as the real ObjectMeta, and the GVK extension kubectl uses to
find the schema for a kind.
"""

from __future__ import annotations

import copy
from typing import Any

from skiff.api.schema.node import Schema

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
_REF = "#/components/schemas/"

_API_VERSION = {
    "type": "string",
    "description": "The versioned schema of this representation of an object "
    "(`group/version`). Servers reject values they do not serve.",
}
_KIND = {
    "type": "string",
    "description": "The kind of object this document describes, in CamelCase.",
}
_METADATA_DESCRIPTION = (
    "Standard object metadata: name, namespace, labels, annotations and the fields the "
    "server maintains."
)


def crd_component_name(group: str, version: str, kind: str) -> str:
    """Upstream's component name for a custom kind: the group reversed, then version, kind."""
    return ".".join([*reversed(group.split(".")), version, kind])


def _version_entry(crd: dict[str, Any], version: str) -> dict[str, Any]:
    for v in (crd.get("spec") or {}).get("versions") or []:
        if v.get("name") == version:
            return v
    raise KeyError(f"CRD {crd.get('metadata', {}).get('name')} has no version {version}")


def crd_component(crd: dict[str, Any], version: str) -> Schema:
    """The component schema for one served version of a CRD's kind."""
    spec = crd.get("spec") or {}
    entry = _version_entry(crd, version)
    raw = ((entry.get("schema") or {}).get("openAPIV3Schema")) or {}
    schema: Schema = copy.deepcopy(raw)
    if not raw:
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema.setdefault("type", "object")
    if spec.get("preserveUnknownFields"):
        schema["x-kubernetes-preserve-unknown-fields"] = True
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {**_API_VERSION, **_only_description(props.get("apiVersion"))}
    props["kind"] = {**_KIND, **_only_description(props.get("kind"))}
    # Users may constrain metadata.name in the schema, but the served shape is ObjectMeta.
    props["metadata"] = {"allOf": [{"$ref": _REF + OBJECT_META}],
                         "description": _METADATA_DESCRIPTION}
    names = spec.get("names") or {}
    schema["x-kubernetes-group-version-kind"] = [
        {"group": spec.get("group", ""), "version": version, "kind": names.get("kind", "")}
    ]
    return schema


def crd_list_component(crd: dict[str, Any], version: str, item_component: str) -> Schema:
    """The component schema of a custom kind's list, for list operation responses."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    list_kind = names.get("listKind") or f"{names.get('kind', '')}List"
    return {
        "description": f"A list of {names.get('plural', 'objects')}.",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": dict(_API_VERSION),
            "kind": dict(_KIND),
            "metadata": {"allOf": [{"$ref": _REF + LIST_META}]},
            "items": {"type": "array", "items": {"$ref": _REF + item_component}},
        },
        "x-kubernetes-group-version-kind": [
            {"group": spec.get("group", ""), "version": version, "kind": list_kind}
        ],
    }


def _only_description(schema: Schema | None) -> Schema:
    if schema and schema.get("description"):
        return {"description": schema["description"]}
    return {}

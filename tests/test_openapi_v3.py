"""OpenAPI v3 index and per-group-version documents."""

from __future__ import annotations

import json

from skiff.api.builtin_kinds import register_builtins
from skiff.api.openapi.v3 import SMP, openapi_group_version, openapi_index
from skiff.api.resources import Registry, ResourceType
from skiff.api.schema.crd import crd_component, crd_component_name

METHODS = ("get", "put", "post", "delete", "patch")

WIDGET_CRD = {
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "names": {"kind": "Widget", "plural": "widgets", "listKind": "WidgetList"},
        "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
            "type": "object", "description": "A widget.",
            "properties": {"spec": {"type": "object",
                                    "properties": {"size": {"type": "integer"}}}},
        }}}],
    },
}


def _registry() -> Registry:
    r = Registry()
    register_builtins(r)
    return r


def _widget(r: Registry) -> dict[str, dict]:
    r.register(ResourceType("example.com", "v1", "Widget", "widgets",
                            crd="widgets.example.com", subresources=("status",)))
    return {crd_component_name("example.com", "v1", "Widget"): crd_component(WIDGET_CRD, "v1")}


def _ops(doc: dict):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_index_lists_group_versions_with_hash() -> None:
    idx = openapi_index(_registry())
    assert "api/v1" in idx["paths"]
    assert "apis/apps/v1" in idx["paths"]
    url = idx["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    assert openapi_index(_registry()) == idx


def test_hash_changes_when_a_crd_is_added() -> None:
    r = _registry()
    before = openapi_index(r)
    comps = _widget(r)
    after = openapi_index(r, comps)
    assert "apis/example.com/v1" in after["paths"]
    assert "apis/example.com/v1" not in before["paths"]
    changed = dict(comps)
    name = next(iter(changed))
    changed[name] = {**changed[name], "description": "Changed."}
    again = openapi_index(r, changed)
    assert again["paths"]["apis/example.com/v1"] != after["paths"]["apis/example.com/v1"]
    assert again["paths"]["apis/apps/v1"] == after["paths"]["apis/apps/v1"]


def test_every_operation_has_gvk_and_action() -> None:
    r = _registry()
    for group, versions in r.groups().items():
        doc = openapi_group_version(r, group, versions[0], {})
        assert doc["openapi"].startswith("3.")
        ops = list(_ops(doc))
        assert ops
        for path, method, op in ops:
            assert "x-kubernetes-group-version-kind" in op, (path, method)
            assert op["x-kubernetes-action"] in {
                "get", "list", "watch", "watchlist", "create", "update", "patch", "delete",
                "deletecollection"}, (path, method)
            if method in ("patch", "put", "post"):
                names = {p["name"] for p in op["parameters"]}
                assert {"fieldValidation", "dryRun", "fieldManager"} <= names, (path, method)
        # Every $ref resolves inside the document.
        schemas = doc["components"]["schemas"]
        for ref in _refs(doc):
            assert ref in schemas, ref


def _refs(value) -> set[str]:
    text = json.dumps(value)
    out = set()
    for part in text.split('"$ref": "#/components/schemas/')[1:]:
        out.add(part.split('"', 1)[0])
    return out


def test_deployment_paths_and_patch_types() -> None:
    doc = openapi_group_version(_registry(), "apps", "v1", {})
    item = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps", "version": "v1", "kind": "Deployment"}
    assert {p["name"] for p in patch["parameters"]} >= {"force", "fieldValidation"}
    assert set(patch["requestBody"]["content"]) == {
        "application/json-patch+json", "application/merge-patch+json",
        "application/apply-patch+yaml", SMP}
    assert "/apis/apps/v1/deployments" in doc["paths"]
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["get"]["x-kubernetes-group-version-kind"]["kind"] == "Scale"
    status = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"]
    assert status["put"]["x-kubernetes-action"] == "update"
    collection = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]
    assert collection["get"]["x-kubernetes-action"] == "list"
    assert collection["delete"]["x-kubernetes-action"] == "deletecollection"


def test_cluster_scoped_and_create_only_kinds() -> None:
    doc = openapi_group_version(_registry(), "", "v1", {})
    assert "/api/v1/nodes/{name}" in doc["paths"]
    assert "/api/v1/namespaces/{namespace}/nodes" not in doc["paths"]
    bindings = doc["paths"]["/api/v1/namespaces/{namespace}/bindings"]
    assert set(bindings) == {"post", "parameters"}
    assert "/api/v1/namespaces/{namespace}/bindings/{name}" not in doc["paths"]


def test_explain_critical_schemas_have_descriptions() -> None:
    doc = openapi_group_version(_registry(), "", "v1", {})
    schemas = doc["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "version": "v1", "kind": "Pod"}]
    assert pod["description"]
    spec = schemas["io.k8s.api.core.v1.PodSpec"]
    assert spec["properties"]["containers"]["description"]
    for field in schemas["io.k8s.api.core.v1.Container"]["properties"].values():
        assert field.get("description") or "$ref" in field, field
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    # Nothing from other groups leaks into the core document.
    assert "io.k8s.api.apps.v1.Deployment" not in schemas


def test_crd_document_has_no_strategic_merge() -> None:
    r = _registry()
    doc = openapi_group_version(r, "example.com", "v1", _widget(r))
    schemas = doc["components"]["schemas"]
    assert schemas["com.example.v1.Widget"]["description"] == "A widget."
    assert "com.example.v1.WidgetList" in schemas
    for _path, method, op in _ops(doc):
        if method == "patch":
            assert SMP not in op["requestBody"]["content"]
    item = doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]
    assert item["get"]["x-kubernetes-group-version-kind"]["kind"] == "Widget"


def test_documents_are_deterministic() -> None:
    a = json.dumps(openapi_group_version(_registry(), "apps", "v1", {}))
    b = json.dumps(openapi_group_version(_registry(), "apps", "v1", {}))
    assert a == b

"""Built-in component schemas generated from the client's models."""

from __future__ import annotations

from skiff.api.builtin_kinds import BUILTIN
from skiff.api.schema.builtin import (
    builtin_components,
    crd_component,
    node_for,
    schema_name_for,
)
from skiff.api.schema.fields import unknown_fields
from skiff.api.schema.node import SchemaNode


def test_every_served_kind_has_a_named_schema_with_gvk() -> None:
    comps = builtin_components()
    for rt in BUILTIN:
        name = schema_name_for(rt.group, rt.version, rt.kind)
        assert name is not None, rt.kind
        gvk = comps[name]["x-kubernetes-group-version-kind"]
        assert gvk == [{"group": rt.group, "version": rt.version, "kind": rt.kind}]


def test_upstream_component_names() -> None:
    assert schema_name_for("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert schema_name_for("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert schema_name_for("events.k8s.io", "v1", "Event") == "io.k8s.api.events.v1.Event"
    assert schema_name_for("", "v1", "Event") == "io.k8s.api.core.v1.Event"
    assert schema_name_for("example.com", "v1", "Widget") is None
    comps = builtin_components()
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in comps
    # PodTemplateSpec is a core type even when a Deployment reaches it.
    assert "io.k8s.api.core.v1.PodTemplateSpec" in comps
    assert "io.k8s.api.apps.v1.PodTemplateSpec" not in comps


def test_pod_spec_containers_merge_by_name() -> None:
    spec = node_for("", "v1", "Pod").field("spec")
    containers = spec.field("containers")
    assert containers.patch_merge_key == "name"
    assert containers.patch_strategy == "merge"
    assert containers.list_type == "map"
    assert spec.field("tolerations").list_type == "atomic"
    assert spec.field("volumes").patch_strategy == "merge,retainKeys"


def test_container_lists_and_meta() -> None:
    c = node_for("", "v1", "Pod").field("spec").field("containers").items()
    assert c.field("ports").list_map_keys == ("containerPort", "protocol")
    assert c.field("env").patch_merge_key == "name"
    assert c.field("volumeMounts").patch_merge_key == "mountPath"
    meta = node_for("", "v1", "Pod").field("metadata")
    assert meta.field("finalizers").list_type == "set"
    assert meta.field("ownerReferences").list_map_keys == ("uid",)
    svc = node_for("", "v1", "Service").field("spec").field("ports")
    assert svc.list_map_keys == ("port", "protocol")


def test_deployment_navigates_to_container_image() -> None:
    dep = node_for("apps", "v1", "Deployment")
    assert dep is not None
    template = dep.field("spec").field("template")
    image = template.field("spec").field("containers").items().field("image")
    assert image.type == "string"
    assert "image" in image.description.lower()
    assert dep.field("spec").field("strategy").patch_strategy == "retainKeys"
    assert dep.field("spec").field("replicas").type == "integer"
    assert template.field("metadata").field("labels").is_map


def test_int_or_string_and_quantities() -> None:
    rolling = node_for("apps", "v1", "Deployment").field("spec").field("strategy")
    assert rolling.field("rollingUpdate").field("maxSurge").int_or_string
    port = node_for("", "v1", "Service").field("spec").field("ports").items()
    assert port.field("targetPort").int_or_string
    assert not port.field("port").int_or_string
    limits = (node_for("", "v1", "Pod").field("spec").field("containers").items()
              .field("resources").field("limits"))
    assert limits.is_map
    types = {s["type"] for s in limits.field("cpu").raw["oneOf"]}
    assert types == {"string", "number"}


def test_required_fields_and_descriptions() -> None:
    comps = builtin_components()
    container = comps["io.k8s.api.core.v1.Container"]
    assert "name" in container["required"]
    assert container["description"]
    assert "Attributes" not in container["description"]
    pod = comps["io.k8s.api.core.v1.Pod"]
    assert pod["description"].startswith("Pod is a collection")


def test_atomic_struct_types() -> None:
    sel = node_for("apps", "v1", "Deployment").field("spec").field("selector")
    assert sel.map_type == "atomic"


def test_crd_component_shapes_the_root() -> None:
    crd = {
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object",
                                        "properties": {"size": {"type": "integer"}}}},
            }}}],
        }
    }
    comp = crd_component(crd, "v1")
    assert comp["x-kubernetes-group-version-kind"] == [
        {"group": "example.com", "version": "v1", "kind": "Widget"}
    ]
    node = SchemaNode(comp, builtin_components())
    assert node.field("kind").type == "string"
    assert node.field("metadata").field("name").type == "string"
    obj = {"apiVersion": "example.com/v1", "kind": "Widget",
           "metadata": {"name": "a", "bogus": 1}, "spec": {"size": 1, "colour": "red"}}
    assert unknown_fields(obj, node) == ["metadata.bogus", "spec.colour"]
    # The CRD's own schema dict is not modified.
    assert "apiVersion" not in crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"]


def test_building_does_not_import_the_client() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from skiff.api.schema.builtin import builtin_components\n"
        "assert len(builtin_components()) > 100\n"
        "assert 'kubernetes' not in sys.modules, 'client imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_class_names_map_to_packages() -> None:
    from skiff.api.schema.names import component_name, split_class

    assert split_class("CoreV1Event") == ("core", "v1", "Event")
    assert component_name("V1ObjectMeta", "io.k8s.api.apps") == (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
    assert component_name("V1JobSpec", "io.k8s.api.batch") == "io.k8s.api.batch.v1.JobSpec"
    assert component_name("EventsV1EventSeries", "io.k8s.api.core") == (
        "io.k8s.api.events.v1.EventSeries")

"""Strategic merge patch, driven by small hand-written OpenAPI schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skiff.api.errors import StatusError
from skiff.api.patch import apply_strategic_merge_patch
from skiff.api.schema.node import SchemaNode


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


STRING = {"type": "string"}
INT = {"type": "integer"}
STRING_MAP = {"type": "object", "additionalProperties": STRING}


def merge_list(items: dict[str, Any], key: str | None = None, strategy: str = "merge") -> dict:
    schema: dict[str, Any] = {
        "type": "array",
        "items": items,
        "x-kubernetes-patch-strategy": strategy,
    }
    if key:
        schema["x-kubernetes-patch-merge-key"] = key
    return schema


COMPONENTS: dict[str, dict[str, Any]] = {
    "Deployment": {
        "type": "object",
        "properties": {"metadata": ref("ObjectMeta"), "spec": ref("DeploymentSpec")},
    },
    "ObjectMeta": {
        "type": "object",
        "properties": {
            "name": STRING,
            "labels": STRING_MAP,
            "annotations": STRING_MAP,
            "finalizers": merge_list(STRING),
        },
    },
    "DeploymentSpec": {
        "type": "object",
        "properties": {
            "replicas": INT,
            "template": ref("PodTemplateSpec"),
            "strategy": {
                "type": "object",
                "x-kubernetes-patch-strategy": "retainKeys",
                "properties": {
                    "type": STRING,
                    "rollingUpdate": {"type": "object", "properties": {"maxSurge": INT}},
                },
            },
        },
    },
    "PodTemplateSpec": {
        "type": "object",
        "properties": {"metadata": ref("ObjectMeta"), "spec": ref("PodSpec")},
    },
    "PodSpec": {
        "type": "object",
        "properties": {
            "containers": merge_list(ref("Container"), "name"),
            "tolerations": {"type": "array", "items": ref("Toleration")},
            "volumes": merge_list(ref("Volume"), "name", "merge,retainKeys"),
            "nodeSelector": STRING_MAP,
            "securityContext": {
                "type": "object",
                "properties": {"runAsUser": INT, "runAsGroup": INT},
            },
        },
    },
    "Container": {
        "type": "object",
        "properties": {
            "name": STRING,
            "image": STRING,
            "args": {"type": "array", "items": STRING},
            "env": merge_list(ref("EnvVar"), "name"),
            "ports": merge_list(ref("ContainerPort"), "containerPort"),
        },
    },
    "EnvVar": {"type": "object", "properties": {"name": STRING, "value": STRING}},
    "ContainerPort": {
        "type": "object",
        "properties": {"containerPort": INT, "protocol": STRING, "name": STRING},
    },
    "Toleration": {
        "type": "object",
        "properties": {"key": STRING, "effect": STRING, "value": STRING},
    },
    "Volume": {
        "type": "object",
        "properties": {
            "name": STRING,
            "emptyDir": {"type": "object", "properties": {"medium": STRING}},
            "hostPath": {"type": "object", "properties": {"path": STRING}},
            "configMap": {"type": "object", "properties": {"name": STRING}},
        },
    },
}

DEPLOYMENT = SchemaNode(ref("Deployment"), COMPONENTS)
POD_SPEC = SchemaNode(ref("PodSpec"), COMPONENTS)
META = SchemaNode(ref("ObjectMeta"), COMPONENTS)


def deployment(**pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec},
        },
    }


def pod_spec(out: dict[str, Any]) -> dict[str, Any]:
    return out["spec"]["template"]["spec"]


def patch_pod_spec(live: dict[str, Any], spec_patch: dict[str, Any]) -> dict[str, Any]:
    return apply_strategic_merge_patch(
        live, {"spec": {"template": {"spec": spec_patch}}}, DEPLOYMENT
    )


def names(items: list[dict[str, Any]]) -> list[Any]:
    return [item["name"] for item in items]


NGINX = {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}
SIDECAR = {"name": "sidecar", "image": "busybox"}


# --- lists merged by key ----------------------------------------------------------


def test_kubectl_client_side_apply_patch() -> None:
    live = deployment(containers=[copy.deepcopy(NGINX)])
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "nginx"}],
                    "containers": [{"image": "nginx:1.27", "name": "nginx"}],
                }
            }
        }
    }
    out = apply_strategic_merge_patch(live, patch, DEPLOYMENT)
    assert pod_spec(out) == {
        "containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]
    }
    assert out["spec"]["replicas"] == 2
    assert out["metadata"] == live["metadata"]


def test_containers_merge_by_name() -> None:
    live = deployment(containers=[copy.deepcopy(NGINX), copy.deepcopy(SIDECAR)])
    out = patch_pod_spec(live, {"containers": [{"name": "sidecar", "image": "busybox:2"}]})
    assert pod_spec(out)["containers"] == [NGINX, {"name": "sidecar", "image": "busybox:2"}]


def test_new_container_goes_first_without_an_order_list() -> None:
    # The kubectl patch docs' example: adding patch-demo-ctr-2 to a deployment
    # that has patch-demo-ctr lists the new container first.
    live = deployment(containers=[{"name": "patch-demo-ctr", "image": "nginx"}])
    out = patch_pod_spec(live, {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]})
    assert names(pod_spec(out)["containers"]) == ["patch-demo-ctr-2", "patch-demo-ctr"]


def test_patch_items_keep_patch_order_and_server_items_interleave() -> None:
    live = deployment(containers=[{"name": n} for n in ["a", "b", "c", "d"]])
    out = patch_pod_spec(live, {"containers": [{"name": "c", "x": 1}, {"name": "a"}]})
    # c and a take the patch's order; a server-only element goes before a patch
    # element only if it preceded it on the server: b (server 1) before c (2),
    # d (3) after both c and a.
    assert names(pod_spec(out)["containers"]) == ["b", "c", "a", "d"]


def test_set_element_order_appends_and_reorders() -> None:
    live = deployment(containers=[{"name": "a"}, {"name": "b"}])
    out = patch_pod_spec(
        live,
        {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "c"}, {"name": "a"}],
            "containers": [{"name": "c", "image": "new"}],
        },
    )
    assert pod_spec(out)["containers"] == [
        {"name": "b"},
        {"name": "c", "image": "new"},
        {"name": "a"},
    ]


def test_set_element_order_places_server_only_items_by_live_order() -> None:
    live = deployment(containers=[{"name": "a"}, {"name": "x"}, {"name": "b"}])
    out = patch_pod_spec(
        live,
        {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}], "containers": []},
    )
    # x preceded b on the server, so it stays in front of it.
    assert names(pod_spec(out)["containers"]) == ["x", "b", "a"]


def test_set_element_order_must_agree_with_patch_list() -> None:
    live = deployment(containers=[{"name": "a"}, {"name": "b"}])
    with pytest.raises(StatusError) as err:
        patch_pod_spec(
            live,
            {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b"}, {"name": "a"}],
            },
        )
    assert err.value.code == 400
    assert "doesn't match $setElementOrder/ list" in err.value.message


def test_nested_merge_lists_env_and_ports() -> None:
    live = deployment(
        containers=[
            {
                "name": "app",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
            }
        ]
    )
    out = patch_pod_spec(
        live,
        {
            "containers": [
                {
                    "name": "app",
                    "env": [{"name": "B", "value": "20"}, {"name": "A", "$patch": "delete"}],
                    "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
                }
            ]
        },
    )
    (app,) = pod_spec(out)["containers"]
    assert app["env"] == [{"name": "B", "value": "20"}]
    assert app["ports"] == [
        {"containerPort": 80, "protocol": "TCP", "name": "http"},
        {"containerPort": 443},
    ]


def test_delete_list_element_by_merge_key() -> None:
    live = deployment(containers=[copy.deepcopy(NGINX), copy.deepcopy(SIDECAR)])
    out = patch_pod_spec(live, {"containers": [{"name": "sidecar", "$patch": "delete"}]})
    assert pod_spec(out)["containers"] == [NGINX]


def test_replace_whole_list_with_patch_directive() -> None:
    live = deployment(containers=[copy.deepcopy(NGINX), copy.deepcopy(SIDECAR)])
    out = patch_pod_spec(
        live, {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}
    )
    assert pod_spec(out)["containers"] == [{"name": "only", "image": "x"}]


def test_missing_merge_key_is_rejected() -> None:
    live = deployment(containers=[copy.deepcopy(NGINX)])
    with pytest.raises(StatusError) as err:
        patch_pod_spec(live, {"containers": [{"image": "x"}]})
    assert err.value.code == 400
    assert err.value.message == "map: map[image:x] does not contain declared merge key: name"


# --- primitive lists ----------------------------------------------------------------


def test_finalizers_merge_as_a_set() -> None:
    live = {"metadata": {"finalizers": ["a", "b"]}}
    out = apply_strategic_merge_patch(live, {"metadata": {"finalizers": ["c", "a"]}}, DEPLOYMENT)
    assert out["metadata"]["finalizers"] == ["c", "a", "b"]


def test_delete_from_primitive_list() -> None:
    live = {"metadata": {"finalizers": ["a", "b", "c"]}}
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}
    out = apply_strategic_merge_patch(live, patch, DEPLOYMENT)
    assert out == {"metadata": {"finalizers": ["a", "c"]}}


def test_primitive_set_element_order_with_deletion() -> None:
    live = {"metadata": {"finalizers": ["a", "b", "c"]}}
    patch = {
        "metadata": {
            "$setElementOrder/finalizers": ["c", "a", "d"],
            "$deleteFromPrimitiveList/finalizers": ["b"],
            "finalizers": ["d"],
        }
    }
    out = apply_strategic_merge_patch(live, patch, DEPLOYMENT)
    assert out == {"metadata": {"finalizers": ["c", "a", "d"]}}


def test_delete_from_primitive_list_must_be_a_list() -> None:
    with pytest.raises(StatusError) as err:
        apply_strategic_merge_patch(
            {"metadata": {"finalizers": ["a"]}},
            {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
            DEPLOYMENT,
        )
    assert (err.value.code, err.value.message) == (400, "invalid patch format of primitive list")


def test_list_without_strategy_is_replaced() -> None:
    # The kubectl patch docs' tolerations example: the list is replaced, not merged.
    live = deployment(
        tolerations=[{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}]
    )
    out = patch_pod_spec(live, {"tolerations": [{"effect": "NoSchedule", "key": "disktype"}]})
    assert pod_spec(out)["tolerations"] == [{"effect": "NoSchedule", "key": "disktype"}]


def test_list_of_lists_is_422() -> None:
    with pytest.raises(StatusError) as err:
        apply_strategic_merge_patch(
            {"metadata": {"finalizers": [["a"]]}}, {"metadata": {"finalizers": [["b"]]}}, DEPLOYMENT
        )
    assert (err.value.code, err.value.message) == (422, "lists of lists are not supported")


# --- maps and directives ----------------------------------------------------------


def test_null_deletes_and_maps_merge() -> None:
    live = deployment(nodeSelector={"disk": "ssd", "zone": "a"}, containers=[])
    out = patch_pod_spec(live, {"nodeSelector": {"zone": None, "gpu": "yes"}})
    assert pod_spec(out)["nodeSelector"] == {"disk": "ssd", "gpu": "yes"}
    out = patch_pod_spec(live, {"nodeSelector": None})
    assert "nodeSelector" not in pod_spec(out)


def test_labels_merge_as_free_form_map() -> None:
    live = deployment()
    patch = {"metadata": {"labels": {"tier": "front", "app": None}}}
    out = apply_strategic_merge_patch(live, patch, DEPLOYMENT)
    assert out["metadata"]["labels"] == {"tier": "front"}


def test_patch_replace_on_map() -> None:
    live = deployment(securityContext={"runAsUser": 1, "runAsGroup": 2})
    out = patch_pod_spec(live, {"securityContext": {"$patch": "replace", "runAsUser": 5}})
    assert pod_spec(out)["securityContext"] == {"runAsUser": 5}


def test_patch_delete_on_map_empties_it() -> None:
    live = deployment(securityContext={"runAsUser": 1})
    out = patch_pod_spec(live, {"securityContext": {"$patch": "delete"}})
    assert pod_spec(out)["securityContext"] == {}
    out = patch_pod_spec(deployment(), {"securityContext": {"$patch": "delete"}})
    assert "securityContext" not in pod_spec(out)


def test_patch_merge_on_map_is_the_default_merge() -> None:
    live = deployment(securityContext={"runAsUser": 1})
    out = patch_pod_spec(live, {"securityContext": {"$patch": "merge", "runAsGroup": 3}})
    assert pod_spec(out)["securityContext"] == {"runAsUser": 1, "runAsGroup": 3}


def test_unknown_patch_directive_is_400() -> None:
    with pytest.raises(StatusError) as err:
        patch_pod_spec(deployment(securityContext={}), {"securityContext": {"$patch": "zap"}})
    assert err.value.code == 400
    assert err.value.message == "unknown patch type: zap in map: map[$patch:zap]"


def test_patch_merge_inside_a_list_is_400() -> None:
    with pytest.raises(StatusError) as err:
        patch_pod_spec(deployment(containers=[]), {"containers": [{"$patch": "merge"}]})
    assert err.value.code == 400


def test_retain_keys_switches_a_volume_source() -> None:
    live = deployment(volumes=[{"name": "data", "emptyDir": {"medium": "Memory"}}])
    out = patch_pod_spec(
        live,
        {
            "volumes": [
                {"name": "data", "hostPath": {"path": "/srv"}, "$retainKeys": ["hostPath", "name"]}
            ]
        },
    )
    assert pod_spec(out)["volumes"] == [{"name": "data", "hostPath": {"path": "/srv"}}]


def test_retain_keys_must_cover_the_patch() -> None:
    live = deployment(volumes=[{"name": "data", "emptyDir": {}}])
    for bad in (["name"], "name"):
        with pytest.raises(StatusError) as err:
            patch_pod_spec(
                live, {"volumes": [{"name": "data", "hostPath": {}, "$retainKeys": bad}]}
            )
        assert (err.value.code, err.value.message) == (400, "invalid patch format of retainKeys")


def test_directives_never_leak_into_new_fields() -> None:
    live = deployment()
    out = patch_pod_spec(
        live,
        {
            "$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"name": "a", "env": [{"name": "X", "value": None}]}],
            "volumes": [
                {"name": "v", "configMap": {"name": "c"}, "$retainKeys": ["configMap", "name"]},
                {"name": "gone", "$patch": "delete"},
            ],
            "securityContext": {"$patch": "replace", "runAsUser": 1, "runAsGroup": None},
            "tolerations": [{"key": "k", "value": None}],
        },
    )
    assert pod_spec(out) == {
        "containers": [{"name": "a", "env": [{"name": "X"}]}],
        "volumes": [{"name": "v", "configMap": {"name": "c"}}],
        "securityContext": {"runAsUser": 1},
        "tolerations": [{"key": "k"}],
    }


def test_dollar_keys_that_are_not_directives_are_data() -> None:
    live = {"spec": {"schema": {"$ref": "a"}}}
    out = apply_strategic_merge_patch(live, {"spec": {"schema": {"$schema": "b"}}}, None)
    assert out == {"spec": {"schema": {"$ref": "a", "$schema": "b"}}}


def test_without_schema_maps_merge_and_lists_replace() -> None:
    live = deployment(containers=[copy.deepcopy(NGINX)])
    out = apply_strategic_merge_patch(
        live, {"spec": {"template": {"spec": {"containers": [SIDECAR]}}}}, None
    )
    assert pod_spec(out)["containers"] == [SIDECAR]
    assert out["spec"]["replicas"] == 2


def test_type_change_takes_the_patch_value() -> None:
    out = apply_strategic_merge_patch({"a": {"b": 1}}, {"a": [1]}, None)
    assert out == {"a": [1]}


def test_inputs_are_not_modified_and_result_is_independent() -> None:
    live = deployment(
        containers=[copy.deepcopy(NGINX), copy.deepcopy(SIDECAR)],
        volumes=[{"name": "v", "emptyDir": {}}],
    )
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}],
                    "containers": [
                        {"name": "nginx", "image": "x", "ports": [{"containerPort": 81}]}
                    ],
                    "volumes": [{"name": "v", "hostPath": {}, "$retainKeys": ["name", "hostPath"]}],
                }
            }
        }
    }
    live_before, patch_before = copy.deepcopy(live), copy.deepcopy(patch)
    out = apply_strategic_merge_patch(live, patch, DEPLOYMENT)
    assert live == live_before and patch == patch_before
    for container in pod_spec(out)["containers"]:
        container["image"] = "mutated"
        container.setdefault("ports", []).append({"containerPort": 1})
    pod_spec(out)["volumes"][0]["hostPath"]["path"] = "/x"
    assert live == live_before and patch == patch_before


def test_bad_patch_bodies() -> None:
    with pytest.raises(StatusError) as err:
        apply_strategic_merge_patch({}, [], DEPLOYMENT)  # type: ignore[arg-type]
    assert err.value.code == 400
    with pytest.raises(StatusError) as err:
        apply_strategic_merge_patch(
            {}, {"spec": {"template": {"spec": {"$setElementOrder/containers": "x"}}}}, DEPLOYMENT
        )
    assert err.value.code == 400


def test_merging_with_pod_spec_node_directly() -> None:
    out = apply_strategic_merge_patch(
        {"containers": [{"name": "a", "image": "1"}]},
        {"containers": [{"name": "a", "image": "2"}]},
        POD_SPEC,
    )
    assert out == {"containers": [{"name": "a", "image": "2"}]}


def test_retain_keys_on_a_map_drops_the_old_union_member() -> None:
    live = deployment()
    live["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    out = apply_strategic_merge_patch(live, patch, DEPLOYMENT)
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_apply_removing_a_container() -> None:
    # What client-side apply sends after a container is dropped from the manifest.
    live = deployment(containers=[copy.deepcopy(NGINX), copy.deepcopy(SIDECAR)])
    out = patch_pod_spec(
        live,
        {
            "$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [{"$patch": "delete", "name": "sidecar"}],
        },
    )
    assert pod_spec(out)["containers"] == [NGINX]

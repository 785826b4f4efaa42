"""Server-side apply: merging, pruning, ownership, conflicts and forcing."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skiff.api.apply import apply, reset_fields, update_managed_fields
from skiff.api.errors import StatusError
from skiff.api.schema.node import SchemaNode

S = {"type": "string"}
INT = {"type": "integer"}
T0, T1, T2, T3 = (f"2024-05-01T10:00:0{i}Z" for i in range(4))


def obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def lst(items: dict[str, Any], list_type: str | None = None, keys: list[str] | None = None):
    d: dict[str, Any] = {"type": "array", "items": items}
    if list_type:
        d["x-kubernetes-list-type"] = list_type
    if keys:
        d["x-kubernetes-list-map-keys"] = keys
    return d


COMPONENTS = {
    "ObjectMeta": obj(
        name=S,
        namespace=S,
        uid=S,
        labels={"type": "object", "additionalProperties": S},
        annotations={"type": "object", "additionalProperties": S},
        finalizers=lst(S, "set"),
    ),
    "Container": obj(
        name=S,
        image=S,
        args=lst(S),
        ports=lst(
            obj(containerPort=INT, protocol={"type": "string", "default": "TCP"}),
            "map",
            ["containerPort", "protocol"],
        ),
    ),
    "Deployment": obj(
        apiVersion=S,
        kind=S,
        metadata={"$ref": "#/components/schemas/ObjectMeta"},
        spec=obj(
            replicas=INT,
            paused={"type": "boolean"},
            selector={
                "type": "object",
                "x-kubernetes-map-type": "atomic",
                "properties": {"matchLabels": {"type": "object", "additionalProperties": S}},
            },
            template=obj(
                spec=obj(
                    containers={
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Container"},
                        "x-kubernetes-patch-strategy": "merge",
                        "x-kubernetes-patch-merge-key": "name",
                    }
                )
            ),
        ),
        status=obj(replicas=INT),
    ),
}
DEPLOY = SchemaNode({"$ref": "#/components/schemas/Deployment"}, COMPONENTS)


def config(replicas: int | None = 3, image: str = "nginx:1.27", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "template": {"spec": {"containers": [{"name": "nginx", "image": image}]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    spec.update(extra)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": spec,
    }


def managers(o: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["manager"]: e for e in o["metadata"].get("managedFields", [])}


def containers(o: dict[str, Any]) -> list[dict[str, Any]]:
    return o["spec"]["template"]["spec"]["containers"]


def ssa(
    live: dict[str, Any] | None,
    cfg: dict[str, Any],
    manager: str = "kubectl",
    force: bool = False,
    now: str = T0,
) -> dict[str, Any]:
    return apply(live, cfg, manager, force, DEPLOY, "apps/v1", now)


def conflict_of(call: Any) -> StatusError:
    with pytest.raises(StatusError) as ei:
        call()
    assert ei.value.code == 409 and ei.value.reason == "Conflict"
    return ei.value


def test_apply_creates_the_object_and_records_the_applier() -> None:
    o = ssa(None, config())
    assert o["spec"] == config()["spec"]
    assert o["metadata"]["labels"] == {"app": "web"}
    (e,) = o["metadata"]["managedFields"]
    assert e == {
        "manager": "kubectl",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:template": {
                    "f:spec": {
                        "f:containers": {
                            'k:{"name":"nginx"}': {".": {}, "f:image": {}, "f:name": {}}
                        }
                    }
                },
            },
        },
    }


def test_reapply_without_a_field_removes_it() -> None:
    o = ssa(None, config(paused=True))
    o2 = ssa(o, config(), now=T1)
    assert "paused" not in o2["spec"]
    assert o2["spec"]["replicas"] == 3
    assert "f:paused" not in managers(o2)["kubectl"]["fieldsV1"]["f:spec"]
    assert managers(o2)["kubectl"]["time"] == T1


def test_reapply_without_a_list_item_or_label_removes_it() -> None:
    cfg = config()
    containers(cfg).append({"name": "sidecar", "image": "busybox"})
    cfg["metadata"]["labels"]["tier"] = "fe"
    o = ssa(None, cfg)
    o2 = ssa(o, config(), now=T1)
    assert [c["name"] for c in containers(o2)] == ["nginx"]
    assert o2["metadata"]["labels"] == {"app": "web"}


def test_dropping_a_whole_structure_removes_it() -> None:
    cfg = config()
    cfg["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    o = ssa(None, cfg)
    cfg2 = config()
    del cfg2["metadata"]["labels"]
    o2 = ssa(o, cfg2, now=T1)
    assert "selector" not in o2["spec"]
    assert "labels" not in o2["metadata"]
    assert o2["metadata"]["name"] == "web"


def test_field_dropped_by_one_applier_stays_while_another_owns_it() -> None:
    o = ssa(None, config(paused=True), "a")
    o = ssa(o, config(paused=True), "b", now=T1)  # same values: shared, no conflict
    both = managers(o)
    assert "f:paused" in both["a"]["fieldsV1"]["f:spec"]
    assert "f:paused" in both["b"]["fieldsV1"]["f:spec"]
    o2 = ssa(o, config(), "a", now=T2)
    assert o2["spec"]["paused"] is True
    assert "f:paused" not in managers(o2)["a"]["fieldsV1"]["f:spec"]
    assert "f:paused" in managers(o2)["b"]["fieldsV1"]["f:spec"]


def test_fields_set_by_an_updater_survive_the_appliers_prune() -> None:
    o = ssa(None, config(paused=True))
    edited = copy.deepcopy(o)
    edited["metadata"]["annotations"] = {"note": "x"}
    update_managed_fields(o, edited, "kubectl-annotate", "Update", DEPLOY, T1)
    o2 = ssa(edited, config(), now=T2)
    assert o2["metadata"]["annotations"] == {"note": "x"}
    assert "paused" not in o2["spec"]


def test_unowned_server_fields_are_kept() -> None:
    o = ssa(None, config())
    o["metadata"]["uid"] = "u-1"
    o["status"] = {"replicas": 3}
    o2 = ssa(o, config(replicas=None), now=T1)
    assert o2["metadata"]["uid"] == "u-1"
    assert o2["status"] == {"replicas": 3}
    assert "replicas" not in o2["spec"]


def test_two_appliers_with_different_values_conflict() -> None:
    o = ssa(None, config(), "a")
    err = conflict_of(lambda: ssa(o, config(replicas=5), "b", now=T1))
    assert err.message == 'Apply failed with 1 conflict: conflict with "a": .spec.replicas'
    assert err.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "a"',
                "field": ".spec.replicas",
            }
        ]
    }


def test_force_takes_ownership_away() -> None:
    o = ssa(None, config(), "a")
    o2 = ssa(o, config(replicas=5, image="nginx:2"), "b", force=True, now=T1)
    assert o2["spec"]["replicas"] == 5
    assert containers(o2)[0]["image"] == "nginx:2"
    a = managers(o2)["a"]["fieldsV1"]
    assert "f:replicas" not in a["f:spec"]
    assert (
        "f:image" not in a["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']
    )
    # "a" still shares the untouched fields, and re-applying its old config now conflicts.
    assert a["f:metadata"] == {"f:labels": {"f:app": {}}}
    conflict_of(lambda: ssa(o2, config(), "a", now=T2))


def test_kubectl_scale_then_server_side_apply_conflicts() -> None:
    # kubectl create -f (client-side apply) records an Update manager, kubectl scale
    # changes the count, and the first `kubectl apply --server-side` hits it.
    created = config()
    update_managed_fields(None, created, "kubectl-client-side-apply", "Update", DEPLOY, T0)
    scaled = copy.deepcopy(created)
    scaled["spec"]["replicas"] = 5
    update_managed_fields(created, scaled, "kubectl", "Update", DEPLOY, T1, "scale")
    assert managers(scaled)["kubectl"]["subresource"] == "scale"

    cfg = config(replicas=4)
    err = conflict_of(lambda: ssa(scaled, cfg, "kubectl-apply", now=T2))
    assert err.message == (
        'Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale"'
        " using apps/v1: .spec.replicas"
    )

    # Without the scale, the conflict names the client-side applier.
    err = conflict_of(lambda: ssa(created, cfg, "kubectl-apply", now=T2))
    assert err.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply"'
        " using apps/v1: .spec.replicas"
    )
    assert err.details["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
            "field": ".spec.replicas",
        }
    ]
    # Applying the values already there is not a conflict: ownership is shared.
    shared = ssa(created, config(), "kubectl-apply", now=T2)
    assert set(managers(shared)) == {"kubectl-apply", "kubectl-client-side-apply"}


def test_plural_conflicts_are_grouped_by_manager() -> None:
    created = config()
    update_managed_fields(None, created, "mgr", "Update", DEPLOY, T0)
    o = ssa(
        created,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"paused": False},
        },
        "other",
        now=T1,
    )
    cfg = config(replicas=9, image="nginx:9", paused=True)
    err = conflict_of(lambda: ssa(o, cfg, "kubectl", now=T2))
    assert err.message == (
        "Apply failed with 3 conflicts: "
        'conflicts with "mgr" using apps/v1:\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="nginx"].image\n'
        'conflicts with "other":\n'
        "- .spec.paused"
    )
    assert [c["field"] for c in err.details["causes"]] == [
        ".spec.replicas",
        '.spec.template.spec.containers[name="nginx"].image',
        ".spec.paused",
    ]


def test_list_map_items_merge_by_key() -> None:
    live = config()
    containers(live).insert(0, {"name": "init", "image": "busybox", "args": ["a"]})
    update_managed_fields(None, live, "other", "Update", DEPLOY, T0)
    cfg = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "sidecar", "image": "envoy"},
                        {"name": "init", "args": ["a"], "ports": [{"containerPort": 80}]},
                    ]
                }
            }
        },
    }
    o = ssa(live, cfg, now=T1)
    assert containers(o) == [
        {"name": "sidecar", "image": "envoy"},
        {"name": "init", "image": "busybox", "args": ["a"], "ports": [{"containerPort": 80}]},
        {"name": "nginx", "image": "nginx:1.27"},
    ]
    mine = managers(o)["kubectl"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert mine['k:{"name":"init"}'] == {
        ".": {},
        "f:args": {},
        "f:name": {},
        "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
    }


def test_atomic_values_are_replaced_whole() -> None:
    cfg = config()
    containers(cfg)[0]["args"] = ["a", "b"]
    cfg["spec"]["selector"] = {"matchLabels": {"app": "web", "x": "y"}}
    o = ssa(None, cfg)
    cfg2 = copy.deepcopy(cfg)
    containers(cfg2)[0]["args"] = ["c"]
    cfg2["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    o2 = ssa(o, cfg2, now=T1)
    assert containers(o2)[0]["args"] == ["c"]
    assert o2["spec"]["selector"] == {"matchLabels": {"app": "web"}}


def test_set_lists_merge_by_value() -> None:
    live = config()
    live["metadata"]["finalizers"] = ["a", "b"]
    update_managed_fields(None, live, "ctrl", "Update", DEPLOY, T0)
    cfg = config()
    cfg["metadata"]["finalizers"] = ["c", "a"]
    o = ssa(live, cfg, now=T1)
    assert o["metadata"]["finalizers"] == ["c", "a", "b"]
    fins = managers(o)["kubectl"]["fieldsV1"]["f:metadata"]["f:finalizers"]
    assert fins == {'v:"a"': {}, 'v:"c"': {}}


def test_without_schema_maps_merge_and_lists_are_atomic() -> None:
    live = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1, "tags": ["a", "b"], "extra": {"keep": True}},
    }
    update_managed_fields(None, live, "ctrl", "Update", None, T0)
    cfg = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"tags": ["c"]},
    }
    o = apply(live, cfg, "me", True, None, "example.com/v1", T1)
    assert o["spec"] == {"size": 1, "tags": ["c"], "extra": {"keep": True}}
    assert managers(o)["me"]["fieldsV1"] == {"f:spec": {".": {}, "f:tags": {}}}
    assert "f:tags" not in managers(o)["ctrl"]["fieldsV1"]["f:spec"]


def test_status_is_not_owned_through_the_main_resource() -> None:
    cfg = config()
    cfg["status"] = {"replicas": 7}
    ignored = reset_fields(("status", "scale"), "")
    o = apply(None, cfg, "kubectl", False, DEPLOY, "apps/v1", T0, ignored=ignored)
    assert "f:status" not in managers(o)["kubectl"]["fieldsV1"]


def test_apply_that_changes_nothing_keeps_the_time() -> None:
    o = ssa(None, config())
    o2 = ssa(o, config(), now=T3)
    assert o2 == o


def test_managed_fields_in_the_applied_config_are_rejected() -> None:
    cfg = config()
    cfg["metadata"]["managedFields"] = []
    with pytest.raises(StatusError) as ei:
        ssa(None, cfg)
    assert ei.value.code == 400
    assert ei.value.message == "metadata.managedFields must be nil"


def test_list_item_without_its_key_is_a_bad_request() -> None:
    cfg = config()
    containers(cfg).append({"image": "nameless"})
    with pytest.raises(StatusError) as ei:
        ssa(None, cfg)
    assert ei.value.code == 400
    assert "omits all key fields" in ei.value.message


@pytest.mark.parametrize(
    ("live_names", "applied_names", "merged"),
    [
        (["a", "b", "c"], ["a", "x", "c"], ["a", "b", "x", "c"]),
        (["a", "b", "c"], ["c", "x", "a"], ["b", "c", "x", "a"]),
        (["a"], ["x", "y"], ["a", "x", "y"]),
    ],
)
def test_list_merge_keeps_live_only_items_between_shared_ones(
    live_names: list[str], applied_names: list[str], merged: list[str]
) -> None:
    live = config()
    containers(live)[:] = [{"name": n} for n in live_names]
    update_managed_fields(None, live, "other", "Update", DEPLOY, T0)
    cfg = config()
    containers(cfg)[:] = [{"name": n} for n in applied_names]
    o = ssa(live, cfg, now=T1)
    assert [c["name"] for c in containers(o)] == merged


def test_apply_leaves_its_inputs_alone() -> None:
    live = ssa(None, config(paused=True))
    cfg = config(replicas=4)
    containers(cfg).append({"name": "b", "image": "x"})
    before_live, before_cfg = copy.deepcopy(live), copy.deepcopy(cfg)
    out = ssa(live, cfg, now=T1)
    assert live == before_live and cfg == before_cfg
    containers(out)[0]["image"] = "changed"
    out["metadata"]["labels"]["new"] = "1"
    assert live == before_live and cfg == before_cfg

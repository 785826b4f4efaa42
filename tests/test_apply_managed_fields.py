"""managedFields bookkeeping for ordinary writes (operation Update)."""

from __future__ import annotations

import copy
from typing import Any

from skiff.api.apply import reset_fields, update_managed_fields
from skiff.api.schema.node import SchemaNode

S = {"type": "string"}
INT = {"type": "integer"}
T0, T1, T2 = "2024-05-01T10:00:00Z", "2024-05-01T10:00:01Z", "2024-05-01T10:00:02Z"


def obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


DEPLOY = SchemaNode(
    obj(
        apiVersion=S,
        kind=S,
        metadata=obj(
            name=S,
            namespace=S,
            uid=S,
            resourceVersion=S,
            generation=INT,
            creationTimestamp=S,
            labels={"type": "object", "additionalProperties": S},
            annotations={"type": "object", "additionalProperties": S},
        ),
        spec=obj(replicas=INT, paused={"type": "boolean"}),
        status=obj(replicas=INT),
    )
)


def deployment(replicas: int = 1, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "u-1",
            "resourceVersion": "7",
            "generation": 1,
            "creationTimestamp": T0,
            "labels": dict(labels),
        },
        "spec": {"replicas": replicas},
    }


def entries(o: dict[str, Any]) -> list[dict[str, Any]]:
    return o["metadata"].get("managedFields", [])


def by_manager(o: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["manager"]: e for e in entries(o)}


def created(manager: str = "kubectl-create") -> dict[str, Any]:
    o = deployment(1, app="web")
    update_managed_fields(None, o, manager, "Update", DEPLOY, T0)
    return o


def test_create_records_every_field_set_except_server_metadata() -> None:
    o = created()
    assert entries(o) == [
        {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": "apps/v1",
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {".": {}, "f:replicas": {}},
            },
        }
    ]


def test_update_moves_changed_fields_to_the_writer() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 3
    update_managed_fields(old, new, "kubectl-scale", "Update", DEPLOY, T1)
    m = by_manager(new)
    assert m["kubectl-scale"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert m["kubectl-scale"]["time"] == T1
    assert m["kubectl-create"]["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {},  # still owns the structure itself, now without children
    }
    assert m["kubectl-create"]["time"] == T0


def test_removed_fields_leave_every_owner_and_empty_entries_go() -> None:
    old = deployment(1)
    update_managed_fields(None, old, "a", "Update", DEPLOY, T0)
    mid = copy.deepcopy(old)
    mid["metadata"]["labels"] = {"x": "1"}
    update_managed_fields(old, mid, "b", "Update", DEPLOY, T1)
    new = copy.deepcopy(mid)
    del new["metadata"]["labels"]
    update_managed_fields(mid, new, "c", "Update", DEPLOY, T2)
    m = by_manager(new)
    assert "b" not in m  # it owned only the label, now gone
    assert "c" not in m  # removing things gives no ownership
    assert m["a"]["fieldsV1"] == {"f:spec": {".": {}, "f:replicas": {}}}


def test_unchanged_write_does_not_touch_times() -> None:
    old = created()
    new = copy.deepcopy(old)
    update_managed_fields(old, new, "kubectl-create", "Update", DEPLOY, T2)
    assert entries(new) == entries(old)
    new2 = copy.deepcopy(old)
    update_managed_fields(old, new2, "someone-else", "Update", DEPLOY, T2)
    assert [e["manager"] for e in entries(new2)] == ["kubectl-create"]


def test_same_manager_accumulates_and_updates_time() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["paused"] = True
    update_managed_fields(old, new, "kubectl-create", "Update", DEPLOY, T1)
    (e,) = entries(new)
    assert e["time"] == T1
    assert e["fieldsV1"]["f:spec"] == {".": {}, "f:paused": {}, "f:replicas": {}}


def test_entries_are_keyed_by_api_version_and_subresource() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 2
    update_managed_fields(old, new, "kubectl-create", "Update", DEPLOY, T1, "scale")
    newer = copy.deepcopy(new)
    newer["apiVersion"] = "apps/v1beta2"
    newer["spec"]["paused"] = True
    update_managed_fields(new, newer, "kubectl-create", "Update", DEPLOY, T2)
    keys = [(e["manager"], e["apiVersion"], e.get("subresource", "")) for e in entries(newer)]
    assert keys == [
        ("kubectl-create", "apps/v1", ""),
        ("kubectl-create", "apps/v1", "scale"),
        ("kubectl-create", "apps/v1beta2", ""),
    ]


def test_client_can_reset_managed_fields_with_an_empty_list() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["metadata"]["managedFields"] = []
    update_managed_fields(old, new, "kubectl-edit", "Update", DEPLOY, T1)
    assert "managedFields" not in new["metadata"]


def test_client_rewritten_managed_fields_are_kept() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["metadata"]["managedFields"][0]["manager"] = "renamed"
    update_managed_fields(old, new, "kubectl-edit", "Update", DEPLOY, T1)
    assert [e["manager"] for e in entries(new)] == ["renamed"]


def test_client_omitting_managed_fields_keeps_the_stored_ones() -> None:
    old = created()
    new = copy.deepcopy(old)
    del new["metadata"]["managedFields"]
    new["spec"]["replicas"] = 4
    update_managed_fields(old, new, "kubectl-replace", "Update", DEPLOY, T1)
    assert set(by_manager(new)) == {"kubectl-create", "kubectl-replace"}


def test_subresource_writes_ignore_managed_fields_in_the_body() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["metadata"]["managedFields"] = []
    new["status"] = {"replicas": 1}
    ignored = reset_fields(("status", "scale"), "status")
    update_managed_fields(old, new, "ctrl", "Update", DEPLOY, T1, "status", ignored=ignored)
    m = by_manager(new)
    assert m["ctrl"]["fieldsV1"] == {"f:status": {".": {}, "f:replicas": {}}}
    assert m["ctrl"]["subresource"] == "status"
    assert "kubectl-create" in m


def test_status_is_not_tracked_on_the_main_resource() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 1}
    ignored = reset_fields(("status",), "")
    update_managed_fields(old, new, "x", "Update", DEPLOY, T1, ignored=ignored)
    assert "x" not in by_manager(new)


def test_entries_are_sorted_appliers_first_then_by_time() -> None:
    old = created()
    old["metadata"]["managedFields"].append(
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "time": T2,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:tier": {}}}},
        }
    )
    old["metadata"]["labels"]["tier"] = "fe"
    new = copy.deepcopy(old)
    new["spec"]["paused"] = False
    update_managed_fields(old, new, "z-late", "Update", DEPLOY, T1)
    assert [e["manager"] for e in entries(new)] == ["kubectl", "kubectl-create", "z-late"]


def test_too_many_updaters_fold_into_ancient_changes() -> None:
    o = created()
    for i in range(12):
        new = copy.deepcopy(o)
        new["metadata"]["labels"][f"l{i}"] = "v"
        update_managed_fields(o, new, f"m{i:02}", "Update", DEPLOY, f"2024-05-01T11:00:{i:02}Z")
        o = new
    names = [e["manager"] for e in entries(o)]
    assert len(names) == 10
    assert "ancient-changes" in names
    assert "m11" in names and "kubectl-create" not in names


def test_unplaceable_lists_keep_the_stored_managed_fields() -> None:
    node = SchemaNode(
        obj(
            spec=obj(
                items={
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": obj(name=S),
                }
            )
        )
    )
    old = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "a"}, "spec": {"items": []}}
    update_managed_fields(None, old, "m", "Update", node, T0)
    new = copy.deepcopy(old)
    new["spec"]["items"] = [{"other": 1}]
    update_managed_fields(old, new, "n", "Update", node, T1)
    assert new["metadata"]["managedFields"] == old["metadata"]["managedFields"]


def test_untouched_entries_are_carried_over_as_stored() -> None:
    # A status writer leaves the creator's entry alone: same content, same time, same
    # order (oldest first), whether or not the body sends managedFields back.
    old = created()
    for sent in (True, False):
        new = copy.deepcopy(old)
        if not sent:
            del new["metadata"]["managedFields"]
        new["status"] = {"replicas": 1}
        ignored = reset_fields(("status",), "status")
        update_managed_fields(old, new, "agent", "Update", DEPLOY, T1, "status",
                              ignored=ignored)
        assert [e["manager"] for e in entries(new)] == ["kubectl-create", "agent"]
        assert entries(new)[0] == entries(old)[0]


def test_an_entry_losing_a_field_is_re_encoded() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 5
    update_managed_fields(old, new, "scaler", "Update", DEPLOY, T1)
    m = by_manager(new)
    assert "f:replicas" not in m["kubectl-create"]["fieldsV1"].get("f:spec", {})
    assert m["scaler"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert m["kubectl-create"]["time"] == T0

"""Field sets: the fieldsV1 encoding, path printing and what an object owns."""

from __future__ import annotations

import json
from typing import Any

import pytest

from skiff.api.apply.fieldset import FieldSet, index, key, make_path, path_string, value
from skiff.api.apply.ownership import ensure_named_fields, to_field_set
from skiff.api.apply.shape import SchemaMismatch
from skiff.api.schema.node import SchemaNode

S = {"type": "string"}
INT = {"type": "integer"}


def obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def lst(items: dict[str, Any], list_type: str | None = None, keys: list[str] | None = None):
    d: dict[str, Any] = {"type": "array", "items": items}
    if list_type:
        d["x-kubernetes-list-type"] = list_type
    if keys:
        d["x-kubernetes-list-map-keys"] = keys
    return d


CONTAINER = obj(name=S, image=S, args=lst(S))
POD = SchemaNode(
    obj(
        metadata=obj(
            name=S,
            labels={"type": "object", "additionalProperties": S},
            finalizers=lst(S, "set"),
        ),
        spec=obj(
            containers={
                "type": "array",
                "items": CONTAINER,
                # No list-type: the strategic-merge-patch markers imply a map list.
                "x-kubernetes-patch-strategy": "merge",
                "x-kubernetes-patch-merge-key": "name",
            },
            nodeSelector={
                "type": "object",
                "additionalProperties": S,
                "x-kubernetes-map-type": "atomic",
            },
        ),
    )
)

UPSTREAM_EXAMPLE = (
    '{"f:metadata":{"f:labels":{"f:app":{}}},'
    '"f:spec":{"f:containers":{"k:{\\"name\\":\\"nginx\\"}":{".":{},"f:image":{}}}}}'
)


def test_round_trip_of_upstream_example() -> None:
    encoded = json.loads(UPSTREAM_EXAMPLE)
    s = FieldSet.from_fields_v1(encoded)
    assert make_path("metadata", "labels", "app") in s
    assert make_path("spec", "containers", key({"name": "nginx"})) in s
    assert make_path("spec", "containers", key({"name": "nginx"}), "image") in s
    assert make_path("spec") not in s
    assert len(s) == 3
    assert json.dumps(s.to_fields_v1(), separators=(",", ":")) == UPSTREAM_EXAMPLE


def test_encoding_orders_self_then_fields_keys_values_indexes() -> None:
    base = make_path("spec", "x")
    s = FieldSet(
        [
            base,
            (*base, index(2)),
            (*base, value("b")),
            (*base, value("a")),
            (*base, key({"name": "z"})),
            make_path("spec", "x", "y"),
        ]
    )
    inner = s.to_fields_v1()["f:spec"]["f:x"]
    assert list(inner) == [".", "f:y", 'k:{"name":"z"}', 'v:"a"', 'v:"b"', "i:2"]
    assert FieldSet.from_fields_v1(s.to_fields_v1()) == s


def test_decoding_canonicalizes_keys_and_values() -> None:
    s = FieldSet.from_fields_v1({"f:ports": {'k:{ "protocol": "TCP", "containerPort": 80 }': {}}})
    assert s.to_fields_v1() == {"f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {}}}
    assert make_path("ports", key({"protocol": "TCP", "containerPort": 80})) in s


@pytest.mark.parametrize(
    "bad",
    [
        {"x:foo": {}},
        {"f:a": 1},
        {"k:{not json": {}},
        {"k:[1]": {}},
        {".": {}},
        [],
    ],
)
def test_malformed_fields_v1_is_rejected(bad: Any) -> None:
    with pytest.raises(ValueError):
        FieldSet.from_fields_v1(bad)


def test_path_strings_match_upstream() -> None:
    p = make_path("spec", "containers", key({"name": "nginx"}), "image")
    assert path_string(p) == '.spec.containers[name="nginx"].image'
    ports = make_path("ports", key({"protocol": "TCP", "containerPort": 80}))
    assert path_string(ports) == '.ports[containerPort=80,protocol="TCP"]'
    assert path_string(make_path("finalizers", value("a"))) == '.finalizers[="a"]'
    assert path_string(make_path("args", index(3))) == ".args[3]"


def test_to_field_set_follows_schema_granularity() -> None:
    pod = {
        "metadata": {"name": "p", "labels": {"app": "web"}, "finalizers": ["a", "b"]},
        "spec": {
            "containers": [{"name": "c", "image": "i", "args": ["x", "y"]}],
            "nodeSelector": {"disk": "ssd"},
        },
    }
    got = {path_string(p) for p in to_field_set(pod, POD)}
    assert got == {
        ".metadata.name",
        ".metadata.labels.app",
        '.metadata.finalizers[="a"]',
        '.metadata.finalizers[="b"]',
        '.spec.containers[name="c"]',
        '.spec.containers[name="c"].name',
        '.spec.containers[name="c"].image',
        '.spec.containers[name="c"].args',  # atomic list: owned whole
        ".spec.nodeSelector",  # atomic map: owned whole
    }


def test_to_field_set_without_schema_owns_every_key_and_lists_whole() -> None:
    cr = {"spec": {"size": 3, "items": [{"a": 1}], "empty": {}}}
    got = {path_string(p) for p in to_field_set(cr, None)}
    assert got == {".spec", ".spec.size", ".spec.items", ".spec.empty"}


def test_empty_and_null_named_fields_are_owned() -> None:
    got = {path_string(p) for p in to_field_set({"metadata": {"labels": {}}, "spec": None}, POD)}
    assert got == {".metadata.labels", ".spec"}


def test_list_map_item_without_its_key_is_rejected() -> None:
    with pytest.raises(SchemaMismatch, match="omits all key fields"):
        to_field_set({"spec": {"containers": [{"image": "x"}]}}, POD)


def test_ensure_named_fields_adds_structures_not_map_keys() -> None:
    s = FieldSet([make_path("metadata", "labels", "app"), make_path("spec", "containers")])
    got = {path_string(p) for p in ensure_named_fields(s, POD)}
    assert got == {
        ".metadata",
        ".metadata.labels",
        ".metadata.labels.app",
        ".spec",
        ".spec.containers",
    }


def test_set_algebra_and_subtrees() -> None:
    a = FieldSet([make_path("a"), make_path("b", "c"), make_path("b", "d")])
    b = FieldSet([make_path("a")])
    assert a - b == FieldSet([make_path("b", "c"), make_path("b", "d")])
    assert a & b == b
    assert (a | b) == a
    assert a.without_subtrees([make_path("b")]) == b
    assert not FieldSet()

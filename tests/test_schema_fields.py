"""Strict field checking: duplicates, unknown fields, pruning and type errors."""

from __future__ import annotations

import pytest

from skiff.api.errors import FIELD_TYPE_INVALID
from skiff.api.schema.builtin import node_for
from skiff.api.schema.fields import (
    decode_json_strict,
    prune_unknown,
    type_errors,
    unknown_fields,
)
from skiff.api.schema.node import SchemaNode


def _pod() -> SchemaNode:
    node = node_for("", "v1", "Pod")
    assert node is not None
    return node


def test_duplicate_keys_are_reported_with_paths() -> None:
    body = (b'{"metadata": {"name": "a", "name": "b"}, "spec": {"containers": '
            b'[{"name": "x", "image": "i", "image": "j"}]}}')
    obj, dups = decode_json_strict(body)
    assert dups == ["metadata.name", "spec.containers[0].image"]
    assert obj["metadata"]["name"] == "b"
    assert type(obj["metadata"]) is dict


def test_no_duplicates() -> None:
    obj, dups = decode_json_strict(b'{"a": [1, {"b": 2}]}')
    assert obj == {"a": [1, {"b": 2}]}
    assert dups == []


def test_malformed_json_raises() -> None:
    with pytest.raises(ValueError):
        decode_json_strict(b'{"a": ')
    with pytest.raises(ValueError):
        decode_json_strict(b'{"a": NaN}')


def test_unknown_fields_paths() -> None:
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"any-key": "v"}, "colour": "x"},
        "spec": {
            "foo": 1,
            "containers": [{"name": "c", "image": "i"}, {"name": "d", "bar": True,
                                                        "ports": [{"containerPort": 1, "x": 2}]}],
        },
    }
    assert unknown_fields(pod, _pod()) == [
        "metadata.colour",
        "spec.foo",
        "spec.containers[1].bar",
        "spec.containers[1].ports[0].x",
    ]


def test_free_form_and_int_or_string_are_not_unknown() -> None:
    node = node_for("apps", "v1", "ControllerRevision")
    obj = {"metadata": {"name": "r"}, "revision": 1, "data": {"anything": {"goes": 1}}}
    assert unknown_fields(obj, node) == []
    svc = {"spec": {"ports": [{"port": 80, "targetPort": "http"}]}}
    assert unknown_fields(svc, node_for("", "v1", "Service")) == []


def test_preserve_unknown_and_embedded_resource() -> None:
    schema = {
        "type": "object",
        "properties": {
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                     "properties": {"known": {"type": "object", "properties": {}}}},
            "embedded": {"type": "object", "x-kubernetes-embedded-resource": True,
                         "properties": {"spec": {"type": "object", "properties": {}}}},
        },
    }
    node = SchemaNode(schema, node_for("", "v1", "Pod").components)
    obj = {"free": {"x": 1, "known": {"y": 2}},
           "embedded": {"apiVersion": "v1", "kind": "X", "metadata": {"name": "n", "z": 1},
                        "spec": {"w": 1}, "extra": 1}}
    assert unknown_fields(obj, node) == [
        "free.known.y", "embedded.metadata.z", "embedded.spec.w", "embedded.extra",
    ]


def test_prune_unknown_drops_in_place() -> None:
    obj = {"metadata": {"name": "p", "zz": 1}, "spec": {"containers": [{"name": "c", "q": 1}]}}
    dropped = prune_unknown(obj, _pod())
    assert dropped == ["metadata.zz", "spec.containers[0].q"]
    assert obj == {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    assert unknown_fields(obj, _pod()) == []


def test_type_errors_name_field_and_type() -> None:
    obj = {
        "metadata": {"name": 5, "labels": {"a": "b", "c": 1}},
        "spec": {"containers": {"name": "c"}, "restartPolicy": None,
                 "terminationGracePeriodSeconds": "30"},
    }
    causes = type_errors(obj, _pod())
    fields = {c["field"]: c for c in causes}
    assert set(fields) == {"metadata.name", "metadata.labels.c", "spec.containers",
                           "spec.terminationGracePeriodSeconds"}
    c = fields["spec.containers"]
    assert c["reason"] == FIELD_TYPE_INVALID
    assert "must be of type array" in c["message"]
    assert '"object"' in c["message"]
    assert "must be of type integer" in fields["spec.terminationGracePeriodSeconds"]["message"]


def test_type_errors_accept_valid_objects() -> None:
    dep = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {
            "replicas": 2,
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"spec": {"containers": [{
                "name": "c", "image": "i",
                "resources": {"limits": {"cpu": 1.5, "memory": "1Gi"}},
                "ports": [{"containerPort": 80}],
                "livenessProbe": {"httpGet": {"port": "http"}},
            }]}},
        },
    }
    assert type_errors(dep, node_for("apps", "v1", "Deployment")) == []


def test_type_errors_int_or_string_and_quantity() -> None:
    dep = {"spec": {"strategy": {"rollingUpdate": {"maxSurge": True}},
                    "template": {"spec": {"containers": [{
                        "name": "c", "resources": {"requests": {"cpu": [1]}}}]}}}}
    fields = [c["field"] for c in type_errors(dep, node_for("apps", "v1", "Deployment"))]
    assert fields == ["spec.strategy.rollingUpdate.maxSurge",
                      "spec.template.spec.containers[0].resources.requests.cpu"]

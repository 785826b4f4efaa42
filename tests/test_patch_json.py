"""JSON patch (RFC 6902) with upstream's error codes and quirks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skiff.api.errors import StatusError
from skiff.api.patch import apply_json_patch
from skiff.api.patch.json_patch import MAX_COPY_BYTES, MAX_OPERATIONS


def fails(doc: Any, ops: Any) -> StatusError:
    with pytest.raises(StatusError) as err:
        apply_json_patch(doc, ops)
    return err.value


DOC = {
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {"replicas": 1, "containers": [{"name": "a", "image": "nginx"}]},
}


def test_add_replace_remove() -> None:
    ops = [
        {"op": "add", "path": "/metadata/labels/tier", "value": "front"},
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "remove", "path": "/metadata/labels/app"},
    ]
    out = apply_json_patch(DOC, ops)
    assert out["metadata"]["labels"] == {"tier": "front"}
    assert out["spec"]["replicas"] == 3


def test_array_add_at_index_at_end_and_negative() -> None:
    doc = {"a": [1, 2, 3]}
    assert apply_json_patch(doc, [{"op": "add", "path": "/a/1", "value": 9}]) == {"a": [1, 9, 2, 3]}
    assert apply_json_patch(doc, [{"op": "add", "path": "/a/-", "value": 9}]) == {"a": [1, 2, 3, 9]}
    assert apply_json_patch(doc, [{"op": "add", "path": "/a/3", "value": 9}]) == {"a": [1, 2, 3, 9]}
    assert apply_json_patch(doc, [{"op": "remove", "path": "/a/-1"}]) == {"a": [1, 2]}


def test_container_image_by_index() -> None:
    ops = [{"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:1.27"}]
    assert apply_json_patch(DOC, ops)["spec"]["containers"][0]["image"] == "nginx:1.27"


def test_pointer_escaping() -> None:
    doc = {"metadata": {"annotations": {"example.com/a~b": "x"}}}
    ops = [
        {"op": "test", "path": "/metadata/annotations/example.com~1a~0b", "value": "x"},
        {"op": "add", "path": "/metadata/annotations/k8s.io~1c", "value": "y"},
        {"op": "remove", "path": "/metadata/annotations/example.com~1a~0b"},
    ]
    assert apply_json_patch(doc, ops) == {"metadata": {"annotations": {"k8s.io/c": "y"}}}


def test_move_and_copy() -> None:
    doc = {"a": {"x": 1}, "b": []}
    out = apply_json_patch(
        doc,
        [
            {"op": "copy", "from": "/a", "path": "/b/-"},
            {"op": "move", "from": "/a/x", "path": "/c"},
        ],
    )
    assert out == {"a": {}, "b": [{"x": 1}], "c": 1}


def test_copy_is_independent_of_its_source() -> None:
    out = apply_json_patch(
        {"a": {"x": [1]}},
        [
            {"op": "copy", "from": "/a", "path": "/b"},
            {"op": "add", "path": "/b/x/-", "value": 2},
        ],
    )
    assert out == {"a": {"x": [1]}, "b": {"x": [1, 2]}}


def test_test_operation_passes_and_fails() -> None:
    ops = [{"op": "test", "path": "/spec/replicas", "value": 1}]
    assert apply_json_patch(DOC, ops) == DOC
    err = fails(DOC, [{"op": "test", "path": "/spec/replicas", "value": 2}])
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message == "testing value /spec/replicas failed: test failed"


def test_test_tells_booleans_from_numbers() -> None:
    err = fails({"a": 1}, [{"op": "test", "path": "/a", "value": True}])
    assert err.code == 422


def test_test_null_matches_missing_member() -> None:
    assert apply_json_patch({"a": 1}, [{"op": "test", "path": "/b", "value": None}]) == {"a": 1}
    assert fails({"a": 1}, [{"op": "test", "path": "/b", "value": 0}]).code == 422


def test_replace_of_missing_object_member_adds_it_like_upstream() -> None:
    out = apply_json_patch({"a": {}}, [{"op": "replace", "path": "/a/b", "value": 1}])
    assert out == {"a": {"b": 1}}


def test_failed_patch_is_all_or_nothing_and_inputs_untouched() -> None:
    doc = copy.deepcopy(DOC)
    ops = [
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "test", "path": "/spec/replicas", "value": 1},
    ]
    ops_before = copy.deepcopy(ops)
    assert fails(doc, ops).code == 422
    assert doc == DOC and ops == ops_before
    out = apply_json_patch(doc, [{"op": "add", "path": "/spec/x", "value": {"y": [1]}}])
    out["spec"]["containers"][0]["image"] = "changed"
    assert doc == DOC


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        (
            [{"op": "remove", "path": "/spec/nope"}],
            "error in remove for path: '/spec/nope': "
            "Unable to remove nonexistent key: nope: missing value",
        ),
        (
            [{"op": "add", "path": "/nope/x", "value": 1}],
            'add operation does not apply: doc is missing path: "/nope/x": missing value',
        ),
        (
            [{"op": "replace", "path": "/spec/containers/5", "value": 1}],
            "replace operation does not apply: doc is missing key: /spec/containers/5: "
            "missing value",
        ),
        (
            [{"op": "add", "path": "/spec/containers/7", "value": {}}],
            "error in add for path: '/spec/containers/7': "
            "Unable to access invalid index: 7: invalid index referenced",
        ),
        ([{"op": "frobnicate", "path": "/a"}], "Unexpected kind: frobnicate"),
        ([{"path": "/a"}], "Unexpected kind: unknown"),
        ([{"op": "add", "value": 1}], "add operation failed to decode path: missing value"),
        ([{"op": "add", "path": "/a"}], "add operation, missing value field: missing value"),
        (
            [{"op": "move", "path": "/a"}],
            "move operation failed to decode from: operation, missing from field: missing value",
        ),
        (
            [{"op": "copy", "from": "/nope/x", "path": "/a"}],
            "copy operation does not apply: doc is missing from path: /nope/x: missing value",
        ),
    ],
)
def test_failing_operations_are_422_with_upstream_text(ops: Any, message: str) -> None:
    err = fails(DOC, ops)
    assert (err.code, err.reason, err.message) == (422, "Invalid", message)


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
        ("x", "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
        ([["add"]], "json: cannot unmarshal array into Go value of type jsonpatch.Operation"),
    ],
)
def test_malformed_patch_bodies_are_400(ops: Any, message: str) -> None:
    err = fails(DOC, ops)
    assert (err.code, err.reason, err.message) == (400, "BadRequest", message)


def test_null_patch_is_a_no_op() -> None:
    assert apply_json_patch(DOC, None) == DOC


def test_too_many_operations_is_413() -> None:
    ops = [{"op": "test", "path": "/spec/replicas", "value": 1}] * (MAX_OPERATIONS + 1)
    err = fails(DOC, ops)
    assert err.code == 413
    assert f"maximum operations in a JSON patch is {MAX_OPERATIONS}, got" in err.message


def test_copy_growth_is_bounded() -> None:
    doc = {"a": "x" * (MAX_COPY_BYTES // 4)}
    ops = [{"op": "copy", "from": "/a", "path": f"/b{i}"} for i in range(5)]
    err = fails(doc, ops)
    assert err.code == 422
    assert "accumulated size increase of copy" in err.message
    assert apply_json_patch(doc, ops[:3])["b2"] == doc["a"]

"""JSON merge patch (RFC 7386)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skiff.api.errors import StatusError
from skiff.api.patch import apply_merge_patch

# The examples from RFC 7386, appendix A: (target, patch, result).
RFC_CASES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC_CASES)
def test_rfc_examples(target: Any, patch: Any, expected: Any) -> None:
    assert apply_merge_patch(target, patch) == expected


def test_lists_are_replaced_not_merged() -> None:
    # The kubectl docs' point: a merge patch replaces the whole container list.
    live = {"spec": {"containers": [{"name": "a", "image": "nginx"}], "replicas": 2}}
    patch = {"spec": {"containers": [{"name": "b", "image": "redis"}]}}
    assert apply_merge_patch(live, patch) == {
        "spec": {"containers": [{"name": "b", "image": "redis"}], "replicas": 2}
    }


def test_scale_patch_sets_nested_field() -> None:
    live = {"metadata": {"name": "web"}, "spec": {"replicas": 1}}
    out = apply_merge_patch(live, {"spec": {"replicas": 3}})
    assert out == {"metadata": {"name": "web"}, "spec": {"replicas": 3}}


def test_inputs_are_not_modified_and_result_is_independent() -> None:
    live = {"a": {"b": [1, 2]}, "c": {"d": 1}}
    patch = {"a": {"x": {"y": 1}}, "c": None}
    live_before, patch_before = copy.deepcopy(live), copy.deepcopy(patch)
    out = apply_merge_patch(live, patch)
    assert live == live_before and patch == patch_before
    out["a"]["b"].append(3)
    out["a"]["x"]["y"] = 2
    assert live == live_before and patch == patch_before


@pytest.mark.parametrize("patch", [None, 5, "x", True])
def test_null_and_scalar_patches_are_bad_requests(patch: Any) -> None:
    with pytest.raises(StatusError) as err:
        apply_merge_patch({"a": 1}, patch)
    assert err.value.code == 400
    assert err.value.reason == "BadRequest"
    assert err.value.message == "Invalid JSON Patch"

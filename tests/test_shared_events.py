"""Watch lines built from stored bytes without decoding them."""

from __future__ import annotations

import orjson

from skiff.apiserver.shared_events import with_resource_version


def test_resource_version_is_put_into_the_top_level_metadata() -> None:
    stored = orjson.dumps({"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": "a", "labels": {"x": "y"}},
                           "spec": {"template": {"metadata": {"name": "inner"}}}})
    out = with_resource_version(stored, 42)
    assert out is not None
    obj = orjson.loads(out)
    assert obj["metadata"] == {"resourceVersion": "42", "name": "a", "labels": {"x": "y"}}
    assert "resourceVersion" not in obj["spec"]["template"]["metadata"]


def test_empty_metadata_gets_no_trailing_comma() -> None:
    out = with_resource_version(b'{"kind":"X","metadata":{}}', 7)
    assert out is not None and orjson.loads(out)["metadata"] == {"resourceVersion": "7"}


def test_values_of_another_shape_are_left_to_the_decoder() -> None:
    # A nested "metadata" before the top-level one, or none at all.
    assert with_resource_version(b'{"spec":{"metadata":{}},"metadata":{"name":"a"}}', 1) is None
    assert with_resource_version(b'{"a":["{"],"metadata":{"name":"a"}}', 1) is None
    assert with_resource_version(b'{"kind":"X"}', 1) is None
    # A string that merely mentions it is not mistaken for the field.
    tricky = orjson.dumps({"kind": 'x"metadata":', "metadata": {"name": "a"}})
    out = with_resource_version(tricky, 3)
    assert out is not None and orjson.loads(out)["metadata"]["resourceVersion"] == "3"

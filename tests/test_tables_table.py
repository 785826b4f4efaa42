"""The Table envelope: metadata, column definitions, row objects, robustness."""

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from skiff.api.builtin_kinds import BUILTIN, VIRTUAL
from skiff.api.tables import to_table
from skiff.api.tables.table import PRINTERS

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "p",
        "namespace": "default",
        "uid": "u-1",
        "resourceVersion": "42",
        "labels": {"app": "web"},
        "creationTimestamp": "2024-05-01T11:59:55Z",
    },
    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
}


def test_envelope_with_partial_object_metadata() -> None:
    t = to_table(
        "core/pods", [POD], now=NOW, list_meta={"resourceVersion": "1005", "continue": "abc"}
    )
    assert t["kind"] == "Table"
    assert t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "1005", "continue": "abc"}
    for c in t["columnDefinitions"]:
        assert set(c) == {"name", "type", "format", "description", "priority"}
        assert c["description"]
    obj = t["rows"][0]["object"]
    assert obj == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": POD["metadata"],
    }
    # The row's metadata is a copy: the caller may mutate the table freely.
    obj["metadata"]["labels"]["app"] = "changed"
    assert POD["metadata"]["labels"]["app"] == "web"
    assert t["rows"][0]["cells"][4] == "5s"
    orjson.dumps(t)  # serialisable as is


def test_include_object_modes() -> None:
    full = to_table("core/pods", [POD], now=NOW, include_object="Object")
    assert full["rows"][0]["object"] == POD
    none = to_table("core/pods", [POD], now=NOW, include_object="None")
    assert "object" not in none["rows"][0]
    odd = to_table("core/pods", [POD], now=NOW, include_object="bogus")
    assert odd["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert to_table("core/pods", [], now=NOW)["metadata"] == {}


def test_every_builtin_kind_has_a_printer_or_the_default() -> None:
    keys = {rt.key for rt in BUILTIN}
    special = keys - VIRTUAL
    assert special <= set(PRINTERS)


@pytest.mark.parametrize("key", sorted(PRINTERS))
@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"metadata": None, "spec": None, "status": None},
        {"metadata": ["x"], "spec": "x", "status": 3},
        {"metadata": {"name": "n"}, "spec": {"containers": "oops", "ports": [1]}, "status": []},
        {"metadata": {"name": "n"}, "status": {"conditions": [None, "x"], "podIPs": "?"}},
        {
            "metadata": {"name": "n", "creationTimestamp": 5, "labels": ["x"]},
            "status": {
                "containerStatuses": [{"restartCount": "x", "state": {"terminated": "no"}}],
                "initContainerStatuses": [{"restartCount": None, "state": {"terminated": {}}}],
            },
        },
    ],
)
def test_printers_survive_odd_objects(key: str, obj: dict[str, Any]) -> None:
    t = to_table(key, [obj], now=NOW)
    assert len(t["rows"][0]["cells"]) == len(t["columnDefinitions"])


@pytest.mark.parametrize("key", sorted(PRINTERS))
def test_name_column_and_wide_columns(key: str) -> None:
    cols = to_table(key, [], now=NOW)["columnDefinitions"]
    assert [c for c in cols if c["format"] == "name"][0]["name"] == "Name"
    assert all(c["priority"] in (0, 1) for c in cols)
    assert all(c["type"] in ("string", "integer", "boolean", "date", "number") for c in cols)

"""Custom resource tables and the JSONPath dialect of CRD printer columns."""

from datetime import UTC, datetime
from typing import Any

import pytest

from skiff.api.tables import to_table
from skiff.api.tables.jsonpath import JSONPathError, parse

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

WIDGET = {
    "apiVersion": "example.com/v1",
    "kind": "Widget",
    "metadata": {
        "name": "w1",
        "creationTimestamp": "2024-05-01T11:00:00Z",
        "labels": {"app.kubernetes.io/name": "shop"},
    },
    "spec": {"replicas": 3, "size": 2.5, "paused": False, "tags": ["a", "b"], "ports": [
        {"name": "http", "port": 80},
        {"name": "grpc", "port": 9090},
    ]},
    "status": {
        "conditions": [
            {"type": "Synced", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "Waiting"},
        ],
        "lastSync": "2024-05-01T11:58:00Z",
    },
}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".spec.replicas", [3]),
        ("spec.replicas", [3]),
        ("{.spec.replicas}", [3]),
        (".spec.tags[0]", ["a"]),
        (".spec.tags[-1]", ["b"]),
        (".spec.tags[*]", ["a", "b"]),
        (".spec.tags[0:1]", ["a"]),
        (".spec.ports[*].port", [80, 9090]),
        (".spec.ports[1].name", ["grpc"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["False"]),
        (".status.conditions[?(@.type=='Ready')].reason", ["Waiting"]),
        ('.status.conditions[?(@.status!="True")].type', ["Ready"]),
        (".status.conditions[?(@.reason)].type", ["Ready"]),
        (".spec.ports[?(@.port > 100)].name", ["grpc"]),
        (".metadata.labels['app.kubernetes.io/name']", ["shop"]),
        ("..port", [80, 9090]),
        (".spec.missing.deeper", []),
        (".spec.tags[7]", []),
    ],
)
def test_jsonpath(path: str, expected: list[Any]) -> None:
    assert parse(path).find(WIDGET) == expected


@pytest.mark.parametrize("path", [".spec.tags[", ".a[?(@.x==)]", ".a['x", ".a[1:2:0]"])
def test_jsonpath_rejects_malformed_paths(path: str) -> None:
    with pytest.raises(JSONPathError):
        parse(path)


COLUMNS = [
    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        "description": "Whether the widget is ready.",
    },
    {"name": "Size", "type": "number", "jsonPath": ".spec.size", "priority": 1},
    {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused", "priority": 1},
    {"name": "Tags", "type": "string", "jsonPath": ".spec.tags", "priority": 1},
    {"name": "Synced", "type": "date", "jsonPath": ".status.lastSync", "format": "date-time"},
    {"name": "Missing", "type": "string", "jsonPath": ".status.nothing"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def test_crd_columns() -> None:
    t = to_table("example.com/widgets", [WIDGET], now=NOW, crd_columns=COLUMNS)
    defs = t["columnDefinitions"]
    assert [d["name"] for d in defs] == [
        "Name", "Replicas", "Ready", "Size", "Paused", "Tags", "Synced", "Missing", "Age",
    ]  # fmt: skip
    assert [d["priority"] for d in defs] == [0, 0, 0, 1, 1, 1, 0, 0, 0]
    assert defs[0]["format"] == "name"
    assert defs[2]["description"] == "Whether the widget is ready."
    assert ".spec.replicas" in defs[1]["description"]
    assert defs[6]["format"] == "date-time"
    assert t["rows"][0]["cells"] == ["w1", 3, "False", 2.5, False, '["a","b"]', "2m", None, "60m"]


def test_crd_cells_of_the_wrong_type_are_empty() -> None:
    cols = [
        {"name": "N", "type": "integer", "jsonPath": ".spec.tags"},
        {"name": "B", "type": "boolean", "jsonPath": ".spec.replicas"},
        {"name": "D", "type": "date", "jsonPath": ".spec.tags[0]"},
        {"name": "S", "type": "string", "jsonPath": ".spec.paused"},
        {"name": "Bad", "type": "string", "jsonPath": ".spec.tags["},
    ]
    t = to_table("example.com/widgets", [WIDGET], now=NOW, crd_columns=cols)
    assert t["rows"][0]["cells"] == ["w1", None, None, "<invalid>", "false", None]


def test_crd_without_columns_prints_name_and_age() -> None:
    t = to_table("example.com/widgets", [WIDGET], now=NOW, crd_columns=[])
    assert [(d["name"], d["type"]) for d in t["columnDefinitions"]] == [
        ("Name", "string"),
        ("Age", "date"),
    ]
    assert t["rows"][0]["cells"] == ["w1", "60m"]
    bare = to_table("example.com/widgets", [{}], now=NOW, crd_columns=COLUMNS)
    # Nothing found is an empty cell, even for the AGE-like date column (as upstream).
    assert bare["rows"][0]["cells"] == ["", None, None, None, None, None, None, None, None]

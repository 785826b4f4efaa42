"""Field selector parsing, escaping, matching and per-resource field checks."""

from __future__ import annotations

import pytest

from skiff.api.builtin_kinds import BUILTIN
from skiff.api.errors import StatusError
from skiff.api.selectors.fields import (
    EQUALS,
    NOT_EQUALS,
    FieldRequirement,
    escape_value,
    exact_name,
    object_fields,
    parse_field_selector,
    parse_for_resource,
    unescape_value,
)

PODS = next(rt for rt in BUILTIN if rt.plural == "pods")
POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node-a", "restartPolicy": "Always"},
    "status": {"phase": "Running"},
}


def _get(values: dict[str, str]):
    return values.get


@pytest.mark.parametrize(
    ("text", "reqs"),
    [
        ("a=b", [("a", EQUALS, "b")]),
        ("a==b", [("a", EQUALS, "b")]),
        ("a!=b", [("a", NOT_EQUALS, "b")]),
        ("a=", [("a", EQUALS, "")]),
        ("b=2,a=1", [("a", EQUALS, "1"), ("b", EQUALS, "2")]),
        ("a=1,,b=2", [("a", EQUALS, "1"), ("b", EQUALS, "2")]),
        (r"a=x\,y", [("a", EQUALS, "x,y")]),
        (r"a=x\=y", [("a", EQUALS, "x=y")]),
        (r"a=x\\y", [("a", EQUALS, "x\\y")]),
        (r"a=x\\,b=y", [("a", EQUALS, "x\\"), ("b", EQUALS, "y")]),
        ("a = b", [("a ", EQUALS, " b")]),
        ("", []),
    ],
)
def test_parse(text: str, reqs: list[tuple[str, str, str]]) -> None:
    sel = parse_field_selector(text)
    assert [(r.field, r.operator, r.value) for r in sel.requirements] == reqs
    assert sel.empty is (not reqs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "invalid selector: 'a'; can't understand 'a'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        (r"a=b\x", r"invalid field selector: invalid escape sequence: \x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(StatusError) as info:
        parse_field_selector(text)
    assert (info.value.code, info.value.reason, info.value.message) == (400, "BadRequest", message)


@pytest.mark.parametrize("value", ["plain", "a,b", "a=b", "a\\b", "\\,=\\", ""])
def test_escape_round_trip(value: str) -> None:
    assert unescape_value(escape_value(value)) == value
    sel = parse_field_selector("f=" + escape_value(value))
    assert sel.requirements == (FieldRequirement("f", EQUALS, value),)
    assert parse_field_selector(sel.to_string()) == sel


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ("a=1", {"a": "1"}, True),
        ("a=1", {"a": "2"}, False),
        ("a!=1", {"a": "2"}, True),
        ("a!=1", {"a": "1"}, False),
        ("a=", {}, True),
        ("a!=", {}, False),
        ("a!=x", {}, True),
        ("a=1,b=2", {"a": "1", "b": "2"}, True),
        ("a=1,b=2", {"a": "1", "b": "3"}, False),
        ("", {}, True),
    ],
)
def test_matches(text: str, fields: dict[str, str], expected: bool) -> None:
    assert parse_field_selector(text).matches(_get(fields)) is expected


def test_resource_fields() -> None:
    get = object_fields(PODS, POD)
    assert parse_for_resource("metadata.name=web-1", PODS).matches(get)
    assert parse_for_resource("metadata.namespace=default,status.phase=Running", PODS).matches(get)
    assert parse_for_resource("spec.nodeName=node-a", PODS).matches(get)
    assert not parse_for_resource("spec.nodeName=", PODS).matches(get)
    assert parse_for_resource("spec.schedulerName=", PODS).matches(get)


def test_unknown_field_rejected_in_sorted_order() -> None:
    with pytest.raises(StatusError) as info:
        parse_for_resource("zzz=1,spec.bogus=2,metadata.name=x", PODS)
    assert info.value.code == 400
    assert info.value.message == "field label not supported: spec.bogus"


def test_common_fields_allowed_for_every_kind() -> None:
    for rt in BUILTIN:
        parse_for_resource("metadata.name=a,metadata.namespace=b", rt)


def test_exact_name() -> None:
    assert exact_name("metadata.name=web") == "web"
    assert exact_name("metadata.name==web,status.phase=Running") == "web"
    assert exact_name(parse_field_selector("metadata.name=web")) == "web"
    assert exact_name("metadata.name!=web") is None
    assert exact_name("status.phase=Running") is None
    assert exact_name("") is None
    assert exact_name(None) is None


def test_to_string_is_sorted_and_escaped() -> None:
    sel = parse_field_selector(r"b!=x\,y,a=1")
    assert sel.to_string() == r"a=1,b!=x\,y"
    assert str(sel) == sel.to_string()
    assert sel == parse_field_selector(sel.to_string())

"""Label selector parsing, matching, canonical form and error texts."""

from __future__ import annotations

import pytest

from skiff.api.errors import StatusError
from skiff.api.selectors.labels import (
    EVERYTHING,
    NOTHING,
    LabelSelector,
    SelectorSyntaxError,
    from_label_selector_dict,
    parse_label_selector,
    parse_label_selector_or_raise,
    selector_from_set,
)

WEB = {"app": "web", "tier": "front", "n": "5"}


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("app=web", WEB, True),
        ("app==web", WEB, True),
        ("app=db", WEB, False),
        ("app!=db", WEB, True),
        ("app!=web", WEB, False),
        ("missing!=x", WEB, True),
        ("app in (web,db)", WEB, True),
        ("app in (db)", WEB, False),
        ("app notin (db)", WEB, True),
        ("app notin (web)", WEB, False),
        ("missing notin (x)", WEB, True),
        ("missing in (x)", WEB, False),
        ("app", WEB, True),
        ("missing", WEB, False),
        ("!missing", WEB, True),
        ("!app", WEB, False),
        ("app=web,tier=front", WEB, True),
        ("app=web,tier=back", WEB, False),
        ("app=web, !missing ,tier in (front)", WEB, True),
        ("n>4", WEB, True),
        ("n>5", WEB, False),
        ("n<6", WEB, True),
        ("app>1", WEB, False),
        ("x=", {"x": ""}, True),
        ("x=", {}, False),
        ("x in ()", {"x": ""}, True),
        ("x in (a,)", {"x": ""}, True),
        ("x in (,a)", {"x": ""}, True),
        ("x in (a,,b)", {"x": ""}, True),
        ("x in (a,b)", {"x": ""}, False),
        ("", WEB, True),
        ("   ", None, True),
        ("app=web", None, False),
        ("!app", None, True),
        ("\tapp\n=\rweb ", WEB, True),
        ("in in (in)", {"in": "in"}, True),
        ("notin notin (in)", {"notin": "x"}, True),
        ("example.com/role=db", {"example.com/role": "db"}, True),
    ],
)
def test_matching(text: str, labels: dict[str, str] | None, expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("tier in (b,a),app=web", "app=web,tier in (a,b)"),
        ("z,!y,x==1,w!=2", "w!=2,x==1,!y,z"),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        ("a  =  b", "a=b"),
        ("a>1,b<2", "a>1,b<2"),
        ("x in (b,a,b)", "x in (a,b)"),
        ("", ""),
    ],
)
def test_canonical_string(text: str, canonical: str) -> None:
    sel = parse_label_selector(text)
    assert sel.to_string() == canonical
    assert str(sel) == canonical
    # The canonical form parses back to the same selector.
    assert parse_label_selector(canonical) == sel


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a!b", "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"),
        ("a,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("!=a", "found '!=', expected: !, identifier, or 'end of string'"),
        ("!!a", "unable to parse requirement: found '!', expected: identifier"),
        ("a=(b)", "unable to parse requirement: found '(', expected: identifier"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in", "unable to parse requirement: found '' expected: '('"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in (b,", "unable to parse requirement: found '', expected: ',', or identifier"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("a>x", "unable to parse requirement: values[0]: Invalid value: \"x\": "
                "for 'Gt', 'Lt' operators, the value must be an integer"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(StatusError) as info:
        parse_label_selector(text)
    assert info.value.code == 400
    assert info.value.reason == "BadRequest"
    assert info.value.message == message


def test_invalid_key_message() -> None:
    with pytest.raises(StatusError) as info:
        parse_label_selector("-bad=x")
    assert info.value.message.startswith(
        'unable to parse requirement: <nil>: Invalid value: "-bad": '
        "name part must consist of alphanumeric characters"
    )
    assert "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used" in info.value.message


def test_invalid_values_are_aggregated() -> None:
    with pytest.raises(StatusError) as info:
        parse_label_selector("a in (-y,-x)")
    msg = info.value.message
    assert msg.startswith('unable to parse requirement: [values[0][a]: Invalid value: "-x": '
                          "a valid label must be an empty string")
    assert ', values[1][a]: Invalid value: "-y": ' in msg
    assert msg.endswith("]")


def test_too_long_value() -> None:
    with pytest.raises(StatusError) as info:
        parse_label_selector("a=" + "v" * 64)
    assert "must be no more than 63 characters" in info.value.message


def test_non_http_callers_get_plain_exception() -> None:
    with pytest.raises(SelectorSyntaxError):
        parse_label_selector_or_raise("a b")


def test_everything_and_nothing() -> None:
    assert EVERYTHING.empty and EVERYTHING.matches(None) and EVERYTHING.matches({"a": "b"})
    assert not NOTHING.empty and not NOTHING.matches({}) and not NOTHING.matches({"a": "b"})
    assert NOTHING.to_string() == ""
    assert parse_label_selector("").empty
    assert parse_label_selector(None).empty
    assert not parse_label_selector("a").empty


def test_dict_none_selects_nothing_and_empty_selects_everything() -> None:
    assert from_label_selector_dict(None) is NOTHING
    assert from_label_selector_dict({}).empty
    assert from_label_selector_dict({"matchLabels": {}, "matchExpressions": []}).empty


def test_dict_form() -> None:
    sel = from_label_selector_dict({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["b", "a"]},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"key": "track", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    })
    assert sel.to_string() == "app=web,env notin (prod),!legacy,tier in (a,b),track"
    assert sel.matches({"app": "web", "tier": "a", "track": "x"})
    assert not sel.matches({"app": "web", "tier": "a", "track": "x", "legacy": "1"})
    assert not sel.matches({"app": "web", "tier": "c", "track": "x"})
    assert not sel.matches({"app": "web", "tier": "a", "track": "x", "env": "prod"})


@pytest.mark.parametrize(
    ("sel", "message"),
    [
        ({"matchExpressions": [{"key": "a", "operator": "Foo"}]},
         '"Foo" is not a valid label selector operator'),
        ({"matchExpressions": [{"key": "a", "operator": "In"}]},
         "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
         'values: Invalid value: ["x"]: values set must be empty for exists and does not exist'),
        ({"matchLabels": {"a": "-x"}},
         'values[0][a]: Invalid value: "-x": a valid label must be an empty string'),
        ({"matchLabels": {"a/b/c": "x"}}, 'key: Invalid value: "a/b/c": a qualified name'),
    ],
)
def test_dict_form_errors(sel: dict, message: str) -> None:
    with pytest.raises(StatusError) as info:
        from_label_selector_dict(sel)
    assert info.value.code == 400
    assert info.value.message.startswith(message)


def test_set_fast_path() -> None:
    sel = selector_from_set({"app": "web", "tier": "front"})
    assert sel.to_string() == "app=web,tier=front"
    assert sel.matches(WEB)
    assert not sel.matches({"app": "web"})
    assert not sel.matches(None)
    assert selector_from_set({}).empty and selector_from_set(None).empty
    # Same answers as the general path.
    assert sel == parse_label_selector("tier=front,app=web")


def test_conflicting_equalities_match_nothing() -> None:
    sel = parse_label_selector("a=x,a=y")
    assert not sel.matches({"a": "x"}) and not sel.matches({"a": "y"})


def test_requires_exact_match() -> None:
    sel = parse_label_selector("app=web,tier in (a),env in (a,b),x!=y")
    assert sel.requires_exact_match("app") == "web"
    assert sel.requires_exact_match("tier") == "a"
    assert sel.requires_exact_match("env") is None
    assert sel.requires_exact_match("x") is None
    assert sel.requires_exact_match("nope") is None


def test_hashable_and_repr() -> None:
    a, b = parse_label_selector("a=b"), parse_label_selector("a = b")
    assert a == b and hash(a) == hash(b)
    assert len({a, b, NOTHING, EVERYTHING}) == 3
    assert "a=b" in repr(a) and "nothing" in repr(NOTHING)
    assert isinstance(a, LabelSelector)

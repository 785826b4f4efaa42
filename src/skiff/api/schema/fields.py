"""Strict field checking: duplicate, unknown and wrongly typed fields.

`fieldValidation=Strict` (kubectl's default) must reject a body that repeats a
key or names a field the schema does not have; `Warn` and `Ignore` drop such
fields instead, and custom resources are always pruned to their structural
schema. Paths are reported the way upstream's strict decoder prints them
(`spec.containers[0].foo`), so kubectl users see familiar messages.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from skiff.api.errors import FIELD_TYPE_INVALID, cause
from skiff.api.schema.node import SchemaNode

# Fields every embedded resource carries whether or not its schema lists them.
_EMBEDDED_FIELDS = ("apiVersion", "kind", "metadata")
_OBJECT_META = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


class _DupDict(dict[str, Any]):
    """A decoded object that had repeated keys (last value wins, as upstream)."""

    __slots__ = ("dups",)
    dups: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = dict(pairs)
    if len(d) == len(pairs):
        return d
    seen: set[str] = set()
    dups: list[str] = []
    for k, _ in pairs:
        if k in seen and k not in dups:
            dups.append(k)
        seen.add(k)
    out = _DupDict(pairs)
    out.dups = dups
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON number {name}")


def decode_json_strict(body: bytes) -> tuple[Any, list[str]]:
    """Decode JSON and name every repeated key by its path (`metadata.name`).

    Raises ValueError for malformed JSON. Objects that had repeated keys keep the
    last value, as upstream's decoder does; they are plain dicts afterwards.
    """
    obj = json.loads(body, object_pairs_hook=_pairs, parse_constant=_reject_constant)
    found: list[str] = []
    if _has_dups(obj):
        obj = _collect(obj, "", found)
    return obj, found


# A key is a string followed by a colon. Without whitespace before colons and without
# \u escapes, `":` appears in a body exactly once per key plus once per escaped quote
# followed by a colon inside strings, and orjson re-encodes those the same way; so a
# body has no repeated key when re-encoding its decoded form keeps the count.
_SPACED_COLON = re.compile(rb'"\s+:')


def duplicate_fields(raw: bytes, decoded: Any) -> list[str]:
    """Paths of repeated keys in the JSON `raw`, whose decoded form is `decoded`."""
    if b"\\u" not in raw and not _SPACED_COLON.search(raw):
        try:
            again = orjson.dumps(decoded)
        except TypeError:
            again = b""
        if again and again.count(b'":') == raw.count(b'":'):
            return []
    try:
        return decode_json_strict(raw)[1]
    except ValueError:
        return []


def _has_dups(value: Any) -> bool:
    if isinstance(value, _DupDict):
        return True
    if isinstance(value, dict):
        return any(_has_dups(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_dups(v) for v in value)
    return False


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _collect(value: Any, path: str, found: list[str]) -> Any:
    if isinstance(value, dict):
        if isinstance(value, _DupDict):
            found.extend(_join(path, k) for k in value.dups)
        return {k: _collect(v, _join(path, k), found) for k, v in value.items()}
    if isinstance(value, list):
        return [_collect(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


# Top-level fields whose own fields are remembered one by one.
_BY_FIELD = ("metadata", "status")
# Top-level values remembered per schema node, and the largest one worth remembering.
_MEMO_ENTRIES = 1024
_MEMO_MAX_BYTES = 32 * 1024


def field_problems(obj: dict[str, Any], node: SchemaNode, types: bool = True,
                   stored: dict[str, Any] | None = None,
                   ) -> tuple[list[dict[str, str]], list[str]]:
    """`type_errors` (unless `types` is false) and `unknown_fields` of an object at once.

    The answer for each top-level field depends only on its value, and most values
    repeat: a ReplicaSet's pods share their spec, and a status write sends back the
    stored spec and metadata unchanged. An identical encoding (which also tells `1`
    from `true`) gets the remembered answer instead of a walk through the schema.
    """
    memo: dict[tuple[str, str, bool, bytes], tuple[list[dict[str, str]], list[str]]]
    memo = node.memo.setdefault("problems", {})
    type_out: list[dict[str, str]] = []
    unknown_out: list[str] = []
    stored = stored or {}
    for k, v in obj.items():
        if k in stored and _same(v, stored[k]):
            continue
        if k in _BY_FIELD and isinstance(v, dict):
            # Metadata and status as a whole are unique to each object (name, uid,
            # addresses), but their labels, owners and conditions repeat: remember
            # their fields one by one.
            stored_md = stored.get(k)
            if not isinstance(stored_md, dict):
                stored_md = {}
            for mk, mv in v.items():
                if mk in stored_md and _same(mv, stored_md[mk]):
                    continue
                found = _remembered(memo, k, mk, {k: {mk: mv}}, mv, node, types)
                type_out += found[0]
                unknown_out += found[1]
            continue
        found = _remembered(memo, k, "", {k: v}, v, node, types)
        type_out += found[0]
        unknown_out += found[1]
    return type_out, unknown_out


def _same(a: Any, b: Any) -> bool:
    """Equal, and spelled the same (`==` takes `true` for `1`)."""
    if a != b:
        return False
    if not isinstance(a, dict | list | float | int):
        return type(a) is type(b)
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except (TypeError, orjson.JSONEncodeError):
        return False


def _remembered(memo: dict[Any, Any], k: str, sub: str, part: dict[str, Any], value: Any,
                node: SchemaNode, types: bool) -> tuple[list[dict[str, str]], list[str]]:
    """The problems of `part` (one field of an object, holding `value` below it)."""
    key = None
    if isinstance(value, dict | list) and value:
        try:
            encoded = orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError):
            encoded = b""
        if encoded and len(encoded) <= _MEMO_MAX_BYTES:
            key = (k, sub, types, encoded)
    found = memo.get(key) if key is not None else None
    if found is None:
        t: list[dict[str, str]] = []
        u: list[str] = []
        if types:
            _walk_types(part, node, "", t)
        _walk_unknown(part, node, "", u, drop=False)
        found = (t, u)
        if key is not None:
            if len(memo) >= _MEMO_ENTRIES:
                memo.clear()
            memo[key] = found
    return found


def unknown_fields(obj: dict[str, Any], node: SchemaNode) -> list[str]:
    """Dotted paths of fields the schema does not declare (strict decoding)."""
    out: list[str] = []
    _walk_unknown(obj, node, "", out, drop=False)
    return out


def prune_unknown(obj: Any, node: SchemaNode) -> list[str]:
    """Remove undeclared fields in place; return the paths removed."""
    out: list[str] = []
    _walk_unknown(obj, node, "", out, drop=True)
    return out


def _embedded_meta(node: SchemaNode, key: str) -> SchemaNode | None:
    if key == "metadata":
        return SchemaNode({"$ref": _OBJECT_META}, node.components)
    return None


def _walk_unknown(value: Any, node: SchemaNode | None, path: str, out: list[str],
                  drop: bool) -> None:
    if node is None or node.int_or_string:
        return
    if isinstance(value, list):
        items = node.items()
        if items is not None:
            for i, v in enumerate(value):
                if isinstance(v, dict | list):
                    _walk_unknown(v, items, f"{path}[{i}]", out, drop)
        return
    if not isinstance(value, dict):
        return
    raw = node.raw
    props = node.properties
    if node.is_map:
        child = node.field("")
        for k, v in value.items():
            if isinstance(v, dict | list):
                _walk_unknown(v, child, _join(path, k), out, drop)
        return
    if not props and node.preserves_unknown_fields:
        return
    keep_unknown = bool(raw.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(raw.get("x-kubernetes-embedded-resource"))
    ap = raw.get("additionalProperties")
    for k in list(value):
        v = value[k]
        # Scalars have nothing below them: only containers are walked into.
        nested = isinstance(v, dict | list)
        if k in props:
            if nested:
                _walk_unknown(v, node.field(k), _join(path, k), out, drop)
        elif embedded and k in _EMBEDDED_FIELDS:
            if nested:
                _walk_unknown(v, _embedded_meta(node, k), _join(path, k), out, drop)
        elif isinstance(ap, dict):
            if nested:
                _walk_unknown(v, node.field(k), _join(path, k), out, drop)
        elif not keep_unknown and ap is not True:
            out.append(_join(path, k))
            if drop:
                del value[k]


_JSON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value, as validation messages name it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _matches(value: Any, expected: str) -> bool:
    if isinstance(value, bool):
        return expected == "boolean"
    if expected == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _JSON_TYPES.get(expected, (object,)))


def type_errors(obj: Any, node: SchemaNode) -> list[dict[str, str]]:
    """Causes for values whose JSON type contradicts the schema.

    Downstream code indexes into objects freely; checking types once here turns a
    would-be crash into a 4xx naming the field. `null` is accepted anywhere: it
    means "unset", as upstream's decoder treats it.
    """
    out: list[dict[str, str]] = []
    _walk_types(obj, node, "", out)
    return out


def _type_cause(path: str, value: Any, expected: str) -> dict[str, str]:
    actual = json_type(value)
    where = path or "<root>"
    return cause(
        FIELD_TYPE_INVALID,
        path,
        f'Invalid value: "{actual}": {where} in body must be of type {expected}: "{actual}"',
    )


def _type_rule(node: SchemaNode) -> tuple[str, Any]:
    """How values at `node` are type-checked: ("ios"|"alts"|"type"|"any", detail)."""
    rule = node.memo.get("type_rule")
    if rule is None:
        alternatives = tuple(s.get("type") for s in node.raw.get("oneOf") or ()
                             if s.get("type"))
        if node.int_or_string:
            rule = ("ios", None)
        elif alternatives and not node.raw.get("type"):
            rule = ("alts", alternatives)
        elif node.type is None:
            rule = ("any", None)
        else:
            rule = ("type", node.type)
        node.memo["type_rule"] = rule
    return rule


_SCALAR_TYPES = {"string": str, "boolean": bool}


def _walk_types(value: Any, node: SchemaNode | None, path: str,
                out: list[dict[str, str]]) -> None:
    if node is None or value is None:
        return
    how, detail = _type_rule(node)
    if how == "ios":
        if not (isinstance(value, (int, str)) and not isinstance(value, bool)):
            out.append(_type_cause(path, value, "integer or string"))
        return
    if how == "alts":
        if not any(_matches(value, t) for t in detail):
            out.append(_type_cause(path, value, " or ".join(detail)))
        return
    if how == "any":
        return
    expected = detail
    if not _matches(value, expected):
        out.append(_type_cause(path, value, expected))
        return
    if expected == "array":
        items = node.items()
        for i, v in enumerate(value):
            _walk_types(v, items, f"{path}[{i}]", out)
    elif expected == "object":
        props = node.properties
        open_keys = node.is_map or isinstance(node.raw.get("additionalProperties"), dict)
        for k, v in value.items():
            if k in props or open_keys:
                child = node.field(k)
                if child is None or v is None:
                    continue
                # Most values are plain strings and booleans where the schema wants
                # them: check those here rather than one call (and path) each.
                rule = child.memo.get("type_rule")
                if rule is not None and rule[0] == "type":
                    simple = _SCALAR_TYPES.get(rule[1])
                    if simple is not None and type(v) is simple:
                        continue
                _walk_types(v, child, _join(path, k), out)
            elif k == "metadata" and node.raw.get("x-kubernetes-embedded-resource"):
                _walk_types(v, _embedded_meta(node, k), _join(path, k), out)

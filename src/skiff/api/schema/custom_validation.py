"""Validation and defaulting of custom resources against their CRD's schema.

CRD schemas are structural OpenAPI v3: this checks the value constraints they
can express (types, required fields, enums, bounds, lengths, patterns, item and
property counts) and applies `default`s, with upstream's field paths and message
wording so kubectl users see the errors they know.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import orjson

from skiff.api.errors import (
    FIELD_INVALID,
    FIELD_NOT_SUPPORTED,
    FIELD_REQUIRED,
    FIELD_TOO_LONG,
    FIELD_TOO_MANY,
    FIELD_TYPE_INVALID,
    cause,
)

Schema = dict[str, Any]
Cause = dict[str, str]
_SKIP_ROOT = ("apiVersion", "kind", "metadata")


def _go(value: Any) -> str:
    """A value as upstream prints it in messages (JSON for strings and containers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _type_ok(value: Any, schema: Schema) -> bool:
    t = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, int | str) and not isinstance(value, bool)
    if t is None:
        return True
    if t == "object":
        return isinstance(value, dict)
    if t == "array":
        return isinstance(value, list)
    if t == "string":
        return isinstance(value, str)
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool) or (
            isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t == "boolean":
        return isinstance(value, bool)
    return True


@lru_cache(maxsize=512)
def _pattern(p: str) -> re.Pattern[str] | None:
    try:
        return re.compile(p)
    except re.error:
        return None


def validate_custom(obj: dict[str, Any], schema: Schema) -> list[Cause]:
    """Every constraint violation in `obj` (an already-defaulted custom object)."""
    out: list[Cause] = []
    props = schema.get("properties") or {}
    for name in schema.get("required") or []:
        if name not in _SKIP_ROOT and name not in obj:
            out.append(cause(FIELD_REQUIRED, name, "Required value"))
    for key, value in obj.items():
        if key in _SKIP_ROOT or key not in props:
            continue
        _check(value, props[key], key, out)
    return out


def _check(value: Any, schema: Schema, path: str, out: list[Cause]) -> None:
    if value is None:
        if not schema.get("nullable"):
            out.append(cause(FIELD_TYPE_INVALID, path,
                             f'Invalid value: "null": {path} in body must be of type '
                             f'{schema.get("type", "object")}: "null"'))
        return
    if not _type_ok(value, schema):
        t = schema.get("type") or "integer or string"
        got = {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
            type(value), "number")
        out.append(cause(FIELD_TYPE_INVALID, path,
                         f'Invalid value: "{got}": {path} in body must be of type {t}: "{got}"'))
        return
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        supported = ", ".join(_go(e) for e in enum)
        out.append(cause(FIELD_NOT_SUPPORTED, path,
                         f"Unsupported value: {_go(value)}: supported values: {supported}"))
    if isinstance(value, str):
        _check_string(value, schema, path, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(value, schema, path, out)
    elif isinstance(value, list):
        _check_list(value, schema, path, out)
    elif isinstance(value, dict):
        _check_object(value, schema, path, out)


def _check_string(value: str, schema: Schema, path: str, out: list[Cause]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        out.append(cause(FIELD_TOO_LONG, path,
                         f"Too long: may not be more than {schema['maxLength']} bytes"))
    if "minLength" in schema and len(value) < schema["minLength"]:
        out.append(cause(FIELD_INVALID, path,
                         f"Invalid value: {_go(value)}: {path} in body should be at least "
                         f"{schema['minLength']} chars long"))
    pat = schema.get("pattern")
    if pat:
        rx = _pattern(pat)
        if rx is not None and not rx.search(value):
            out.append(cause(FIELD_INVALID, path,
                             f"Invalid value: {_go(value)}: {path} in body should match "
                             f"'{pat}'"))


def _check_number(value: float, schema: Schema, path: str, out: list[Cause]) -> None:
    lo = schema.get("minimum")
    if lo is not None:
        if schema.get("exclusiveMinimum") and value <= lo:
            out.append(cause(FIELD_INVALID, path, f"Invalid value: {_go(value)}: {path} in "
                                                  f"body should be greater than {lo}"))
        elif value < lo:
            out.append(cause(FIELD_INVALID, path, f"Invalid value: {_go(value)}: {path} in "
                                                  f"body should be greater than or equal to "
                                                  f"{lo}"))
    hi = schema.get("maximum")
    if hi is not None:
        if schema.get("exclusiveMaximum") and value >= hi:
            out.append(cause(FIELD_INVALID, path, f"Invalid value: {_go(value)}: {path} in "
                                                  f"body should be less than {hi}"))
        elif value > hi:
            out.append(cause(FIELD_INVALID, path, f"Invalid value: {_go(value)}: {path} in "
                                                  f"body should be less than or equal to {hi}"))
    mult = schema.get("multipleOf")
    if mult and value % mult:
        out.append(cause(FIELD_INVALID, path, f"Invalid value: {_go(value)}: {path} in body "
                                              f"should be a multiple of {mult}"))


def _check_list(value: list[Any], schema: Schema, path: str, out: list[Cause]) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        out.append(cause(FIELD_TOO_MANY, path, f"Too many: {len(value)}: must have at most "
                                               f"{schema['maxItems']} items"))
    if "minItems" in schema and len(value) < schema["minItems"]:
        out.append(cause(FIELD_INVALID, path, f"Invalid value: {len(value)}: {path} in body "
                                              f"should have at least {schema['minItems']} "
                                              "items"))
    if schema.get("uniqueItems") or schema.get("x-kubernetes-list-type") == "set":
        seen: set[bytes] = set()
        for i, item in enumerate(value):
            key = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
            if key in seen:
                out.append(cause("FieldValueDuplicate", f"{path}[{i}]",
                                 f"Duplicate value: {_go(item)}"))
            seen.add(key)
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _check(item, items, f"{path}[{i}]", out)


def _check_object(value: dict[str, Any], schema: Schema, path: str, out: list[Cause]) -> None:
    for name in schema.get("required") or []:
        if name not in value:
            out.append(cause(FIELD_REQUIRED, f"{path}.{name}", "Required value"))
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        out.append(cause(FIELD_TOO_MANY, path, f"Too many: {len(value)}: must have at most "
                                               f"{schema['maxProperties']} items"))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        out.append(cause(FIELD_INVALID, path, f"Invalid value: {len(value)}: {path} in body "
                                              f"should have at least "
                                              f"{schema['minProperties']} properties"))
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    for k, v in value.items():
        sub = props.get(k)
        if sub is None and isinstance(extra, dict):
            sub = extra
        if sub is not None:
            _check(v, sub, f"{path}.{k}", out)


def apply_custom_defaults(obj: dict[str, Any], schema: Schema) -> None:
    """Fill in the schema's `default`s for absent fields, as the API server does."""
    props = schema.get("properties") or {}
    for key, sub in props.items():
        if key in _SKIP_ROOT:
            continue
        _default_field(obj, key, sub)


def _default_field(parent: dict[str, Any], key: str, schema: Schema) -> None:
    if key not in parent and "default" in schema:
        parent[key] = orjson.loads(orjson.dumps(schema["default"]))
    value = parent.get(key)
    _default_value(value, schema)


def _default_value(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        for k, sub in (schema.get("properties") or {}).items():
            _default_field(value, k, sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for v in value.values():
                _default_value(v, extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default_value(item, schema["items"])

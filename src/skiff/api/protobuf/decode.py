"""Turn Kubernetes protobuf messages into the JSON-shaped dicts the rest of skiff uses.

Upstream's Go marshaller writes every non-pointer field, zero or not, so the wire is
full of empty strings and zeros that the JSON form of the same object would omit. The
rule here mirrors what matters in JSON: a field whose Go type is a pointer is kept
whenever it is on the wire (its presence is meaningful, e.g. `replicas: 0` or
`emptyDir: {}`); any other field is kept only when it is non-zero. Lists and maps are
kept when non-empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from skiff.api.protobuf.special import SPECIAL, encode_bytes
from skiff.api.protobuf.types import LIST_WRAPPERS, MESSAGES
from skiff.api.protobuf.wire import (
    FIXED32,
    FIXED64,
    LEN,
    VARINT,
    ProtoError,
    as_double,
    as_float,
    iter_fields,
    read_varint,
    signed,
    unzigzag,
)

MAX_DEPTH = 64


class Field(NamedTuple):
    """One compiled entry of the type table."""

    json: str
    scalar: str | None  # scalar type name, or None for a message / map
    message: str | None  # message name for message fields and message-valued maps
    is_map: bool
    repeated: bool
    pointer: bool
    inline: bool


_VARINT_SCALARS: dict[str, Callable[[int], Any]] = {
    "int32": lambda v: signed(v, 32),
    "int64": lambda v: signed(v, 64),
    "uint32": lambda v: v & 0xFFFFFFFF,
    "uint64": lambda v: v,
    "sint32": lambda v: unzigzag(v & 0xFFFFFFFF),
    "sint64": unzigzag,
    "bool": lambda v: v != 0,
}
_FIXED64_SCALARS: dict[str, Callable[[int], Any]] = {
    "fixed64": lambda v: v,
    "sfixed64": lambda v: signed(v, 64),
    "double": as_double,
}
_FIXED32_SCALARS: dict[str, Callable[[int], Any]] = {
    "fixed32": lambda v: v,
    "sfixed32": lambda v: signed(v, 32),
    "float": as_float,
}
_WIRE_OF: dict[str, int] = {
    **dict.fromkeys(_VARINT_SCALARS, VARINT),
    **dict.fromkeys(_FIXED64_SCALARS, FIXED64),
    **dict.fromkeys(_FIXED32_SCALARS, FIXED32),
    "string": LEN,
    "bytes": LEN,
}
_WIRE_NAMES = {VARINT: "varint", FIXED64: "fixed64", LEN: "length-delimited", FIXED32: "fixed32"}


def _compile() -> dict[str, dict[int, Field]]:
    compiled: dict[str, dict[int, Field]] = {}
    for name, fields in MESSAGES.items():
        out: dict[int, Field] = {}
        for number, (json, typ, flags) in fields.items():
            is_map = typ.startswith("map:")
            target = typ[4:] if is_map else typ
            message = target[1:] if target.startswith("@") else None
            out[number] = Field(
                json=json,
                scalar=None if message else target,
                message=message,
                is_map=is_map,
                repeated="r" in flags,
                pointer="p" in flags,
                inline="i" in flags,
            )
        compiled[name] = out
    return compiled


TABLE = _compile()


def _wire_error(wt: int, expected: int) -> ProtoError:
    return ProtoError(
        f"wire type {_WIRE_NAMES.get(wt, wt)}, expected {_WIRE_NAMES.get(expected, expected)}"
    )


def _scalar(typ: str, buf: bytes, wt: int, a: int, b: int) -> Any:
    expected = _WIRE_OF[typ]
    if wt != expected:
        raise _wire_error(wt, expected)
    if typ == "string":
        return buf[a:b].decode("utf-8", "replace")
    if typ == "bytes":
        return encode_bytes(buf[a:b])
    if wt == VARINT:
        return _VARINT_SCALARS[typ](a)
    if wt == FIXED64:
        return _FIXED64_SCALARS[typ](a)
    return _FIXED32_SCALARS[typ](a)


def _packed(typ: str, buf: bytes, pos: int, end: int) -> list[Any]:
    """Unpack a packed repeated numeric field (proto3-style clients may send these)."""
    out: list[Any] = []
    wire = _WIRE_OF[typ]
    while pos < end:
        if wire == VARINT:
            value, pos = read_varint(buf, pos, end)
            out.append(_VARINT_SCALARS[typ](value))
        else:
            width = 8 if wire == FIXED64 else 4
            if pos + width > end:
                raise ProtoError("truncated packed field")
            raw = int.from_bytes(buf[pos : pos + width], "little")
            conv = _FIXED64_SCALARS if wire == FIXED64 else _FIXED32_SCALARS
            out.append(conv[typ](raw))
            pos += width
    return out


def decode_value(message: str, buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, bool]:
    """Decode one message-typed value; returns (JSON value, is Go zero value)."""
    special = SPECIAL.get(message)
    if special is not None:
        return special(buf, pos, end)
    if message in LIST_WRAPPERS:
        obj = decode_message(message, buf, pos, end, depth)
        items = obj.get("items", [])
        return items, not items
    obj = decode_message(message, buf, pos, end, depth)
    return obj, not obj


def _map_entry(field: Field, buf: bytes, pos: int, end: int, depth: int) -> tuple[str, Any]:
    key = ""
    value: Any = None
    seen_value = False
    for number, wt, a, b in iter_fields(buf, pos, end):
        if number == 1:
            if wt != LEN:
                raise _wire_error(wt, LEN)
            key = buf[a:b].decode("utf-8", "replace")
        elif number == 2:
            seen_value = True
            if field.message is not None:
                if wt != LEN:
                    raise _wire_error(wt, LEN)
                value, _ = decode_value(field.message, buf, a, b, depth + 1)
            else:
                assert field.scalar is not None
                value = _scalar(field.scalar, buf, wt, a, b)
    if not seen_value:
        # An entry without a value holds the value type's zero.
        if field.message is not None:
            value, _ = decode_value(field.message, buf, 0, 0, depth + 1)
        else:
            value = {"string": "", "bytes": "", "bool": False}.get(field.scalar or "", 0)
    return key, value


def decode_message(
    message: str,
    buf: bytes,
    pos: int,
    end: int,
    depth: int = 0,
    out: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Decode buf[pos:end] as `message` into `out` (fresh if None), JSON-shaped."""
    if depth > MAX_DEPTH:
        raise ProtoError("message nesting is too deep")
    fields = TABLE.get(message)
    if fields is None:
        raise ProtoError(f"no decoder for message {message}")
    if out is None:
        out = {}
    for number, wt, a, b in iter_fields(buf, pos, end):
        field = fields.get(number)
        if field is None:
            continue  # written by a newer client; JSON decoding drops unknown fields too
        try:
            _decode_field(field, out, buf, wt, a, b, depth)
        except ProtoError as e:
            e.path.append(field.json or str(number))
            raise
    return out


def _decode_field(
    field: Field, out: dict[str, Any], buf: bytes, wt: int, a: int, b: int, depth: int
) -> None:
    if field.is_map:
        if wt != LEN:
            raise _wire_error(wt, LEN)
        key, value = _map_entry(field, buf, a, b, depth)
        out.setdefault(field.json, {})[key] = value
        return
    if field.message is not None:
        if wt != LEN:
            raise _wire_error(wt, LEN)
        if field.inline:
            decode_message(field.message, buf, a, b, depth + 1, out)
            return
        if field.repeated:
            value, _ = decode_value(field.message, buf, a, b, depth + 1)
            out.setdefault(field.json, []).append(value)
            return
        if field.message not in SPECIAL and field.message not in LIST_WRAPPERS:
            # A repeated occurrence of a singular message merges into the first.
            prior = out.get(field.json)
            target = prior if isinstance(prior, dict) else {}
            decode_message(field.message, buf, a, b, depth + 1, target)
            if target or field.pointer:
                out[field.json] = target
            return
        value, zero = decode_value(field.message, buf, a, b, depth + 1)
        if field.pointer or not zero:
            out[field.json] = value
        else:
            out.pop(field.json, None)
        return
    assert field.scalar is not None
    if field.repeated:
        if wt == LEN and field.scalar not in ("string", "bytes"):
            values = _packed(field.scalar, buf, a, b)
            if values:
                out.setdefault(field.json, []).extend(values)
            return
        out.setdefault(field.json, []).append(_scalar(field.scalar, buf, wt, a, b))
        return
    value = _scalar(field.scalar, buf, wt, a, b)
    if field.pointer or value:
        out[field.json] = value
    else:
        out.pop(field.json, None)

"""Kubernetes types whose JSON form differs from their protobuf message shape.

Each decoder takes the message bytes buf[pos:end] and returns (JSON value, is zero).
"Zero" is the Go zero value: a non-pointer field holding it is left out of the object,
as JSON's omitempty would, so absent and zero mean the same thing downstream.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from skiff.api.protobuf.wire import LEN, VARINT, ProtoError, iter_fields, signed

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _seconds_nanos(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    seconds = nanos = 0
    for number, wt, a, _ in iter_fields(buf, pos, end):
        if number in (1, 2) and wt != VARINT:
            raise ProtoError(f"field {number}: wire type {wt}, expected varint")
        if number == 1:
            seconds = signed(a, 64)
        elif number == 2:
            nanos = signed(a, 32)
    return seconds, nanos


def _instant(seconds: int, micros: int) -> datetime:
    try:
        return _EPOCH + timedelta(seconds=seconds, microseconds=micros)
    except OverflowError:
        raise ProtoError(f"timestamp {seconds}s is out of range") from None


def decode_time(buf: bytes, pos: int, end: int) -> tuple[Any, bool]:
    """metav1.Time: whole seconds (upstream drops nanos), RFC 3339 in UTC."""
    if pos == end:
        return None, True
    seconds, _ = _seconds_nanos(buf, pos, end)
    return _instant(seconds, 0).strftime("%Y-%m-%dT%H:%M:%SZ"), False


def decode_micro_time(buf: bytes, pos: int, end: int) -> tuple[Any, bool]:
    """metav1.MicroTime: RFC 3339 with exactly six fractional digits."""
    if pos == end:
        return None, True
    seconds, nanos = _seconds_nanos(buf, pos, end)
    if not 0 <= nanos < 1_000_000_000:
        raise ProtoError(f"nanos {nanos} out of range")
    return _instant(seconds, nanos // 1000).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), False


_UNITS = (("h", 3600 * 10**9), ("m", 60 * 10**9))


def go_duration(nanos: int) -> str:
    """Format nanoseconds like Go's time.Duration.String, which metav1.Duration's JSON uses."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    n = abs(nanos)
    if n < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3), ("ns", 1)):
            if n >= size:
                return sign + _fraction(n, size) + unit
    out = ""
    # Go prints every unit below the largest one present: 1h0m0s, 1m0s.
    started = False
    for unit, size in _UNITS:
        if started or n >= size:
            started = True
            out += f"{n // size}{unit}"
            n %= size
    return sign + out + _fraction(n, 10**9) + "s"


def _fraction(n: int, size: int) -> str:
    whole, rest = divmod(n, size)
    if not rest:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}." + f"{rest:0{digits}d}".rstrip("0")


def decode_duration(buf: bytes, pos: int, end: int) -> tuple[Any, bool]:
    """metav1.Duration: nanoseconds on the wire, a Go duration string in JSON."""
    nanos = 0
    for number, wt, a, _ in iter_fields(buf, pos, end):
        if number == 1:
            if wt != VARINT:
                raise ProtoError(f"field 1: wire type {wt}, expected varint")
            nanos = signed(a, 64)
    return go_duration(nanos), nanos == 0


def _one_string(buf: bytes, pos: int, end: int) -> str | None:
    value = None
    for number, wt, a, b in iter_fields(buf, pos, end):
        if number == 1:
            if wt != LEN:
                raise ProtoError(f"field 1: wire type {wt}, expected length-delimited")
            value = buf[a:b].decode("utf-8", "replace")
    return value


def decode_quantity(buf: bytes, pos: int, end: int) -> tuple[Any, bool]:
    """resource.Quantity: its canonical string travels as field 1."""
    text = _one_string(buf, pos, end)
    if not text:
        return "0", True
    return text, False


def decode_int_or_string(buf: bytes, pos: int, end: int) -> tuple[Any, bool]:
    """intstr.IntOrString: a type tag picks the int or the string arm."""
    kind = int_val = 0
    str_val = ""
    for number, wt, a, b in iter_fields(buf, pos, end):
        if number in (1, 2):
            if wt != VARINT:
                raise ProtoError(f"field {number}: wire type {wt}, expected varint")
            if number == 1:
                kind = signed(a, 64)
            else:
                int_val = signed(a, 32)
        elif number == 3:
            if wt != LEN:
                raise ProtoError(f"field 3: wire type {wt}, expected length-delimited")
            str_val = buf[a:b].decode("utf-8", "replace")
    if kind == 1:
        return str_val, False
    if kind != 0:
        raise ProtoError(f"IntOrString type {kind} is neither 0 (int) nor 1 (string)")
    return int_val, int_val == 0


def _raw_json(buf: bytes, pos: int, end: int) -> tuple[Any, bool]:
    raw = b""
    for number, wt, a, b in iter_fields(buf, pos, end):
        if number == 1:
            if wt != LEN:
                raise ProtoError(f"field 1: wire type {wt}, expected length-delimited")
            raw = buf[a:b]
    if not raw:
        return None, True
    try:
        return orjson.loads(raw), False
    except orjson.JSONDecodeError as e:
        raise ProtoError(f"embedded object is not valid JSON: {e}") from None


def decode_raw_extension(buf: bytes, pos: int, end: int) -> tuple[Any, bool]:
    """runtime.RawExtension: the embedded object, which clients send as JSON bytes."""
    return _raw_json(buf, pos, end)


def decode_fields_v1(buf: bytes, pos: int, end: int) -> tuple[Any, bool]:
    """metav1.FieldsV1: the managed-fields set, JSON bytes on the wire."""
    return _raw_json(buf, pos, end)


def encode_bytes(raw: bytes) -> str:
    """Bytes fields are base64 in JSON, as encoding/json renders []byte."""
    return base64.b64encode(raw).decode("ascii")


SPECIAL: dict[str, Callable[[bytes, int, int], tuple[Any, bool]]] = {
    "meta.v1.Time": decode_time,
    "meta.v1.MicroTime": decode_micro_time,
    "meta.v1.Duration": decode_duration,
    "meta.v1.FieldsV1": decode_fields_v1,
    "runtime.RawExtension": decode_raw_extension,
    "intstr.IntOrString": decode_int_or_string,
    "resource.Quantity": decode_quantity,
    "resource.QuantityValue": decode_quantity,
}

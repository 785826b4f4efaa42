"""Protobuf wire-format primitives.

Only reading: skiff answers in JSON, so it never has to produce protobuf. Positions are
plain indices into one `bytes` object, so nested messages are decoded without copying.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT = 0
FIXED64 = 1
LEN = 2
FIXED32 = 5

_MASK64 = (1 << 64) - 1
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


class ProtoError(ValueError):
    """Malformed protobuf input; `path` names the fields it was found under."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def __str__(self) -> str:
        where = ".".join(reversed(self.path))
        return f"{where}: {self.message}" if where else self.message


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read one varint at `pos`; returns (value, next position)."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ProtoError(f"truncated varint at byte {pos}")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise ProtoError(f"varint longer than 10 bytes at byte {pos}")


def iter_fields(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Walk the fields of one message occupying buf[pos:end].

    Yields (field number, wire type, a, b): for varints and fixed-width values `a` is the
    raw unsigned value and `b` is unused; for length-delimited fields buf[a:b] is the
    payload. Groups (wire types 3 and 4) are rejected: no Kubernetes type uses them.
    """
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        number = key >> 3
        wt = key & 7
        if number == 0 or number > 0x1FFFFFFF:
            raise ProtoError(f"invalid field number {number} at byte {pos}")
        if wt == VARINT:
            value, pos = read_varint(buf, pos, end)
            yield number, wt, value, 0
        elif wt == LEN:
            length, pos = read_varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                raise ProtoError(f"field {number}: length {length} runs past the end")
            yield number, wt, pos, stop
            pos = stop
        elif wt == FIXED64:
            if pos + 8 > end:
                raise ProtoError(f"field {number}: truncated fixed64")
            yield number, wt, int.from_bytes(buf[pos : pos + 8], "little"), 0
            pos += 8
        elif wt == FIXED32:
            if pos + 4 > end:
                raise ProtoError(f"field {number}: truncated fixed32")
            yield number, wt, int.from_bytes(buf[pos : pos + 4], "little"), 0
            pos += 4
        else:
            raise ProtoError(f"field {number}: unsupported wire type {wt}")


def signed(value: int, bits: int) -> int:
    """Reinterpret an unsigned wire value as two's complement, truncated to `bits`."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def unzigzag(value: int) -> int:
    """Undo sint32/sint64 zigzag encoding."""
    return (value >> 1) ^ -(value & 1)


def as_double(raw: int) -> float:
    """Reinterpret a fixed64's bits as an IEEE double."""
    return float(_DOUBLE.unpack(raw.to_bytes(8, "little"))[0])


def as_float(raw: int) -> float:
    """Reinterpret a fixed32's bits as an IEEE single."""
    return float(_FLOAT.unpack(raw.to_bytes(4, "little"))[0])

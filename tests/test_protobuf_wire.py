"""Wire-format primitives: varints, field walking, and the errors malformed input gives."""

from __future__ import annotations

import pytest

from skiff.api.protobuf.wire import (
    FIXED32,
    FIXED64,
    LEN,
    VARINT,
    ProtoError,
    as_double,
    iter_fields,
    read_varint,
    signed,
    unzigzag,
)


def test_read_varint_single_and_multi_byte() -> None:
    assert read_varint(b"\x01", 0, 1) == (1, 1)
    assert read_varint(b"\xac\x02", 0, 2) == (300, 2)
    ten = b"\xff" * 9 + b"\x01"
    assert read_varint(ten, 0, len(ten)) == ((1 << 64) - 1, 10)


def test_read_varint_truncated_and_overlong() -> None:
    with pytest.raises(ProtoError, match="truncated varint"):
        read_varint(b"\x80\x80", 0, 2)
    with pytest.raises(ProtoError, match="longer than 10"):
        read_varint(b"\xff" * 11, 0, 11)


def test_read_varint_respects_end_bound() -> None:
    # The byte after `end` belongs to someone else and must not complete the varint.
    with pytest.raises(ProtoError):
        read_varint(b"\x80\x01", 0, 1)


def test_signed_and_zigzag() -> None:
    minus_one = (1 << 64) - 1
    assert signed(minus_one, 64) == -1
    assert signed(minus_one, 32) == -1
    assert signed(5, 32) == 5
    assert signed(0x80000000, 32) == -(1 << 31)
    assert [unzigzag(n) for n in (0, 1, 2, 3)] == [0, -1, 1, -2]


def test_iter_fields_all_wire_types() -> None:
    buf = (
        b"\x08\x96\x01"  # 1: varint 150
        + b"\x12\x03abc"  # 2: "abc"
        + b"\x19" + bytes.fromhex("000000000000f83f")  # 3: double 1.5
        + b"\x25\x01\x00\x00\x00"  # 4: fixed32 1
    )
    got = list(iter_fields(buf, 0, len(buf)))
    assert got[0] == (1, VARINT, 150, 0)
    number, wt, a, b = got[1]
    assert (number, wt, buf[a:b]) == (2, LEN, b"abc")
    assert got[2][:2] == (3, FIXED64) and as_double(got[2][2]) == 1.5
    assert got[3] == (4, FIXED32, 1, 0)


@pytest.mark.parametrize(
    ("buf", "message"),
    [
        (b"\x12\x05ab", "runs past the end"),
        (b"\x19\x00\x00", "truncated fixed64"),
        (b"\x25\x00", "truncated fixed32"),
        (b"\x0b", "unsupported wire type 3"),
        (b"\x00\x01", "invalid field number 0"),
        (b"\x08", "truncated varint"),
    ],
)
def test_iter_fields_rejects_malformed(buf: bytes, message: str) -> None:
    with pytest.raises(ProtoError, match=message):
        list(iter_fields(buf, 0, len(buf)))


def test_proto_error_renders_path() -> None:
    e = ProtoError("bad")
    e.path.extend(["port", "spec"])
    assert str(e) == "spec.port: bad"

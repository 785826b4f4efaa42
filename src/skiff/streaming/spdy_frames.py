"""SPDY/3.1 frames: encoding, incremental decoding and header-block compression.

A frame starts with 8 bytes. Control frames set the top bit and carry a version (3)
and a type; data frames carry a 31-bit stream id. Both then hold 8 bits of flags and
a 24-bit payload length:

    control: 1 | version:15 | type:16 | flags:8 | length:24 | payload
    data:    0 | stream-id:31         | flags:8 | length:24 | data

Header blocks (in SYN_STREAM, SYN_REPLY and HEADERS) are a 32-bit count of pairs,
each a 32-bit length and name, a 32-bit length and value (several values joined by
NUL), compressed with one zlib stream per direction and connection, primed with the
SPDY dictionary and sync-flushed after every block. Names are lower case.

Only what the Kubernetes streaming protocols use is modelled; other control frames
(and SETTINGS contents) decode to `Unknown`/`Settings` and are ignored by sessions.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from skiff.streaming.spdy_dictionary import DICTIONARY

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes.
PROTOCOL_ERROR = 1
INVALID_STREAM = 2
REFUSED_STREAM = 3
CANCEL = 5
INTERNAL_ERROR = 6

MAX_LENGTH = (1 << 24) - 1
# A header block larger than this (decompressed) is refused rather than buffered.
MAX_HEADER_BLOCK = 1 << 20

Headers = dict[str, list[str]]


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3.1."""


@dataclass
class Data:
    """A DATA frame."""

    stream_id: int
    data: bytes
    flags: int = 0

    @property
    def fin(self) -> bool:
        """Whether this is the sender's last frame on the stream."""
        return bool(self.flags & FLAG_FIN)


@dataclass
class SynStream:
    """A SYN_STREAM frame: the peer opens a stream."""

    stream_id: int
    headers: Headers
    flags: int = 0
    associated_id: int = 0
    priority: int = 0

    @property
    def fin(self) -> bool:
        """Whether the opener will send nothing on the stream."""
        return bool(self.flags & FLAG_FIN)


@dataclass
class SynReply:
    """A SYN_REPLY frame: accepts a stream the peer opened."""

    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0


@dataclass
class RstStream:
    """A RST_STREAM frame: ends a stream abnormally."""

    stream_id: int
    status: int = CANCEL


@dataclass
class Settings:
    """A SETTINGS frame (id → value)."""

    values: dict[int, int] = field(default_factory=dict)
    flags: int = 0


@dataclass
class Ping:
    """A PING frame; the receiver echoes pings the peer started."""

    ping_id: int


@dataclass
class GoAway:
    """A GOAWAY frame: the sender takes no new streams."""

    last_stream_id: int = 0
    status: int = 0


@dataclass
class HeadersFrame:
    """A HEADERS frame: more headers for a stream."""

    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass
class WindowUpdate:
    """A WINDOW_UPDATE frame (flow control; peers in this project do not need it)."""

    stream_id: int
    delta: int


@dataclass
class Unknown:
    """A control frame of a type this module does not model."""

    kind: int
    flags: int
    payload: bytes


Frame = (Data | SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame
         | WindowUpdate | Unknown)


def _control(kind: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_LENGTH:
        raise ValueError("control frame too large")
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def header_block(headers: Headers) -> bytes:
    """The uncompressed name/value block of `headers` (names lower-cased)."""
    out = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        raw_name = name.lower().encode("latin-1")
        raw_value = "\0".join(values).encode("latin-1")
        out.append(struct.pack(">I", len(raw_name)) + raw_name)
        out.append(struct.pack(">I", len(raw_value)) + raw_value)
    return b"".join(out)


def parse_header_block(block: bytes) -> Headers:
    """The headers in an uncompressed name/value block."""
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        pos = 4
        headers: Headers = {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + n]
            pos += 4 + n
            (v,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4:pos + 4 + v]
            pos += 4 + v
            if len(name) != n or len(value) != v or not name:
                raise ProtocolError("truncated header block")
            headers.setdefault(name.decode("latin-1").lower(), []).extend(
                value.decode("latin-1").split("\0"))
        return headers
    except struct.error:
        raise ProtocolError("truncated header block") from None


class FrameEncoder:
    """Encodes frames for one direction of one connection (it owns the zlib stream)."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(zdict=DICTIONARY)

    def _headers(self, headers: Headers) -> bytes:
        return self._zlib.compress(header_block(headers)) + self._zlib.flush(zlib.Z_SYNC_FLUSH)

    def encode(self, frame: Frame) -> bytes:
        """The bytes of `frame` on the wire."""
        if isinstance(frame, Data):
            if len(frame.data) > MAX_LENGTH:
                raise ValueError("data frame too large")
            return struct.pack(">II", frame.stream_id & 0x7FFFFFFF,
                               (frame.flags << 24) | len(frame.data)) + frame.data
        if isinstance(frame, SynStream):
            body = struct.pack(">IIBB", frame.stream_id, frame.associated_id,
                               (frame.priority & 7) << 5, 0)
            return _control(SYN_STREAM, frame.flags, body + self._headers(frame.headers))
        if isinstance(frame, SynReply):
            return _control(SYN_REPLY, frame.flags, struct.pack(">I", frame.stream_id)
                            + self._headers(frame.headers))
        if isinstance(frame, HeadersFrame):
            return _control(HEADERS, frame.flags, struct.pack(">I", frame.stream_id)
                            + self._headers(frame.headers))
        if isinstance(frame, RstStream):
            return _control(RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status))
        if isinstance(frame, Ping):
            return _control(PING, 0, struct.pack(">I", frame.ping_id))
        if isinstance(frame, GoAway):
            return _control(GOAWAY, 0, struct.pack(">II", frame.last_stream_id, frame.status))
        if isinstance(frame, WindowUpdate):
            return _control(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id, frame.delta))
        if isinstance(frame, Settings):
            body = struct.pack(">I", len(frame.values)) + b"".join(
                struct.pack(">II", key & 0xFFFFFF, value) for key, value in frame.values.items())
            return _control(SETTINGS, frame.flags, body)
        raise TypeError(f"cannot encode {type(frame).__name__}")


class FrameDecoder:
    """Turns the bytes of one direction of a connection into frames, as they arrive."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._zlib = zlib.decompressobj(zdict=DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return every frame they complete."""
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            word, flags_length = struct.unpack_from(">II", self._buffer, 0)
            length = flags_length & 0xFFFFFF
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            flags = flags_length >> 24
            if word & 0x80000000:
                version = (word >> 16) & 0x7FFF
                if version != VERSION:
                    raise ProtocolError(f"unsupported SPDY version {version}")
                frames.append(self._control(word & 0xFFFF, flags, payload))
            else:
                frames.append(Data(word & 0x7FFFFFFF, payload, flags))
        return frames

    def _headers(self, compressed: bytes) -> Headers:
        try:
            block = self._zlib.decompress(compressed, MAX_HEADER_BLOCK)
        except zlib.error as exc:
            raise ProtocolError(f"bad header compression: {exc}") from None
        if self._zlib.unconsumed_tail:
            raise ProtocolError("header block too large")
        return parse_header_block(block)

    def _control(self, kind: int, flags: int, payload: bytes) -> Frame:
        def need(n: int) -> None:
            if len(payload) < n:
                raise ProtocolError(f"control frame {kind} too short")

        if kind == SYN_STREAM:
            need(10)
            sid, assoc, prio, _slot = struct.unpack_from(">IIBB", payload, 0)
            return SynStream(sid & 0x7FFFFFFF, self._headers(payload[10:]), flags,
                             assoc & 0x7FFFFFFF, prio >> 5)
        if kind == SYN_REPLY:
            need(4)
            (sid,) = struct.unpack_from(">I", payload, 0)
            return SynReply(sid & 0x7FFFFFFF, self._headers(payload[4:]), flags)
        if kind == HEADERS:
            need(4)
            (sid,) = struct.unpack_from(">I", payload, 0)
            return HeadersFrame(sid & 0x7FFFFFFF, self._headers(payload[4:]), flags)
        if kind == RST_STREAM:
            need(8)
            sid, status = struct.unpack_from(">II", payload, 0)
            return RstStream(sid & 0x7FFFFFFF, status)
        if kind == PING:
            need(4)
            return Ping(struct.unpack_from(">I", payload, 0)[0])
        if kind == GOAWAY:
            need(4)
            last = struct.unpack_from(">I", payload, 0)[0] & 0x7FFFFFFF
            status = struct.unpack_from(">I", payload, 4)[0] if len(payload) >= 8 else 0
            return GoAway(last, status)
        if kind == WINDOW_UPDATE:
            need(8)
            sid, delta = struct.unpack_from(">II", payload, 0)
            return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        if kind == SETTINGS:
            need(4)
            (count,) = struct.unpack_from(">I", payload, 0)
            need(4 + 8 * count)
            values = {}
            for i in range(count):
                key, value = struct.unpack_from(">II", payload, 4 + 8 * i)
                values[key & 0xFFFFFF] = value
            return Settings(values, flags)
        return Unknown(kind, flags, payload)

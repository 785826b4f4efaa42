"""SPDY/3.1 framing and the server-side session (skiff.streaming.spdy_*)."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest

from skiff.streaming import spdy_frames as sf
from skiff.streaming.spdy_dictionary import DICTIONARY
from skiff.streaming.spdy_session import SpdySession


def test_dictionary_is_the_spdy3_one() -> None:
    # Peers check the dictionary by its Adler-32 (the zlib FDICT id).
    assert len(DICTIONARY) == 1423
    assert zlib.adler32(DICTIONARY) == 0xE3C6A7C2
    assert DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert DICTIONARY.endswith(b"charset=utf-8charset=iso-8859-1,utf-,*,enq=0.")


def test_header_block_round_trip_lowercases_and_joins_values() -> None:
    block = sf.header_block({"streamType": ["stdout"], "X-Multi": ["a", "b"]})
    assert block[:4] == struct.pack(">I", 2)
    assert sf.parse_header_block(block) == {"streamtype": ["stdout"], "x-multi": ["a", "b"]}


def test_truncated_header_block_is_a_protocol_error() -> None:
    block = sf.header_block({"port": ["80"]})
    with pytest.raises(sf.ProtocolError):
        sf.parse_header_block(block[:-1])


def test_control_frame_layout() -> None:
    enc = sf.FrameEncoder()
    raw = enc.encode(sf.Ping(7))
    assert raw == bytes.fromhex("80030006" "00000004" "00000007")
    raw = enc.encode(sf.RstStream(3, sf.CANCEL))
    assert raw == bytes.fromhex("80030003" "00000008" "00000003" "00000005")
    raw = enc.encode(sf.Data(5, b"hi", sf.FLAG_FIN))
    assert raw == bytes.fromhex("00000005" "01000002") + b"hi"
    raw = enc.encode(sf.GoAway(9, 0))
    assert raw == bytes.fromhex("80030007" "00000008" "00000009" "00000000")


def test_frames_round_trip_and_decode_incrementally() -> None:
    enc, dec = sf.FrameEncoder(), sf.FrameDecoder()
    frames: list[sf.Frame] = [
        sf.SynStream(1, {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]},
                     priority=2),
        sf.SynStream(3, {"streamtype": ["data"], "port": ["80"], "requestid": ["0"]},
                     flags=sf.FLAG_FIN),
        sf.SynReply(1),
        sf.HeadersFrame(3, {"x": ["y"]}),
        sf.Data(3, b"payload" * 100),
        sf.Data(3, b"", sf.FLAG_FIN),
        sf.RstStream(1, sf.PROTOCOL_ERROR),
        sf.Ping(1),
        sf.GoAway(3, 0),
        sf.WindowUpdate(3, 1000),
        sf.Settings({4: 100}),
    ]
    wire = b"".join(enc.encode(f) for f in frames)
    got: list[sf.Frame] = []
    # One byte at a time: frames and the shared zlib stream survive any split.
    for i in range(len(wire)):
        got += dec.feed(wire[i:i + 1])
    assert got == frames


def test_header_blocks_share_one_zlib_stream_per_direction() -> None:
    enc = sf.FrameEncoder()
    first = enc.encode(sf.SynStream(1, {"streamtype": ["stdout"]}))
    second = enc.encode(sf.SynStream(3, {"streamtype": ["stdout"]}))
    # The second block refers back to the first: it is shorter and cannot be
    # decoded by a fresh decoder.
    assert len(second) < len(first)
    with pytest.raises(sf.ProtocolError):
        sf.FrameDecoder().feed(second)
    dec = sf.FrameDecoder()
    assert [f.stream_id for f in dec.feed(first + second)] == [1, 3]  # type: ignore[union-attr]


def test_wrong_version_is_rejected() -> None:
    raw = struct.pack(">HHI", 0x8002, sf.PING, 4) + struct.pack(">I", 1)
    with pytest.raises(sf.ProtocolError):
        sf.FrameDecoder().feed(raw)


def test_unknown_control_frames_are_kept_opaque() -> None:
    raw = struct.pack(">HHI", 0x8003, 42, 3) + b"abc"
    assert sf.FrameDecoder().feed(raw) == [sf.Unknown(42, 0, b"abc")]


class MemoryPipe:
    """One end of an in-memory duplex byte pipe."""

    def __init__(self, inbox: asyncio.Queue[bytes], outbox: asyncio.Queue[bytes]) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.closed = False

    async def read(self) -> bytes:
        return await self.inbox.get()

    async def write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("closed")
        await self.outbox.put(data)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.outbox.put(b"")


class Client:
    """A minimal SPDY client speaking to a session through a MemoryPipe."""

    def __init__(self) -> None:
        self.to_server: asyncio.Queue[bytes] = asyncio.Queue()
        self.to_client: asyncio.Queue[bytes] = asyncio.Queue()
        self.server_pipe = MemoryPipe(self.to_server, self.to_client)
        self.enc = sf.FrameEncoder()
        self.dec = sf.FrameDecoder()
        self.pending: list[sf.Frame] = []

    async def send(self, frame: sf.Frame) -> None:
        await self.to_server.put(self.enc.encode(frame))

    async def frame(self) -> sf.Frame | None:
        while not self.pending:
            data = await asyncio.wait_for(self.to_client.get(), 2)
            if not data:
                return None
            self.pending += self.dec.feed(data)
        return self.pending.pop(0)

    async def eof(self) -> None:
        await self.to_server.put(b"")


async def test_session_replies_to_streams_and_carries_data_both_ways() -> None:
    c = Client()
    session = SpdySession(c.server_pipe)
    serve = asyncio.create_task(session.serve())
    await c.send(sf.SynStream(1, {"streamtype": ["stdin"]}))
    assert await c.frame() == sf.SynReply(1)
    stream = await session.accept()
    assert stream is not None and stream.header("streamType") == "stdin"
    await c.send(sf.Data(1, b"hello "))
    await c.send(sf.Data(1, b"world", sf.FLAG_FIN))
    assert await stream.read() == b"hello "
    assert await stream.read() == b"world"
    assert await stream.read() == b""
    await stream.write(b"x" * 70000)
    first, second = await c.frame(), await c.frame()
    assert isinstance(first, sf.Data) and isinstance(second, sf.Data)
    assert len(first.data) == 65536 and first.data + second.data == b"x" * 70000
    await stream.close()
    assert await c.frame() == sf.Data(1, b"", sf.FLAG_FIN)
    assert 1 not in session.streams  # both sides finished
    await c.send(sf.Ping(5))
    assert await c.frame() == sf.Ping(5)
    await session.close()
    assert await c.frame() == sf.GoAway(1, 0)
    assert await c.frame() is None
    await c.eof()
    await serve
    assert await session.accept() is None


async def test_session_refuses_invalid_streams() -> None:
    c = Client()
    session = SpdySession(c.server_pipe, validate=lambda h: None if "port" in h else "no port")
    serve = asyncio.create_task(session.serve())
    await c.send(sf.SynStream(1, {"streamtype": ["data"]}))
    assert await c.frame() == sf.RstStream(1, sf.REFUSED_STREAM)
    await c.send(sf.SynStream(2, {"port": ["80"]}))  # even ids are the server's
    assert await c.frame() == sf.RstStream(2, sf.PROTOCOL_ERROR)
    await c.send(sf.SynStream(5, {"port": ["80"]}))
    assert await c.frame() == sf.SynReply(5)
    await c.send(sf.SynStream(3, {"port": ["80"]}))  # ids must grow
    assert await c.frame() == sf.RstStream(3, sf.PROTOCOL_ERROR)
    await c.eof()
    await serve


async def test_reset_and_connection_end_wake_readers() -> None:
    c = Client()
    session = SpdySession(c.server_pipe)
    serve = asyncio.create_task(session.serve())
    await c.send(sf.SynStream(1, {"streamtype": ["data"]}))
    await c.send(sf.SynStream(3, {"streamtype": ["error"]}))
    a, b = await session.accept(), await session.accept()
    assert a is not None and b is not None
    reader = asyncio.create_task(a.read())
    await c.send(sf.RstStream(1, sf.CANCEL))
    assert await asyncio.wait_for(reader, 2) == b""
    assert a.was_reset
    with pytest.raises(ConnectionResetError):
        await a.write(b"late")
    other = asyncio.create_task(b.read())
    await c.eof()
    assert await asyncio.wait_for(other, 2) == b""
    await serve
    assert session.closed.is_set()


async def test_garbage_ends_the_session_with_goaway() -> None:
    c = Client()
    session = SpdySession(c.server_pipe)
    serve = asyncio.create_task(session.serve())
    await c.to_server.put(struct.pack(">HHI", 0x8001, sf.SYN_STREAM, 0))
    await asyncio.wait_for(serve, 2)
    frame = await c.frame()
    assert isinstance(frame, sf.GoAway) and frame.status == 1

"""Byte pipes for upgraded connections: after a 101, over a WebSocket, or a plain socket.

aiohttp knows only the WebSocket upgrade; an `Upgrade: SPDY/3.1` request is to it a
plain POST. `accept_upgrade` answers any upgrade with `101 Switching Protocols` and
takes the connection over: from then on the client's bytes go to a `RawConnection`
instead of aiohttp's HTTP parser. The API server relays upgraded connections to node
agents this way, and agents serve SPDY on it.

Every pipe has the same three calls (`read` → bytes, b"" at the end; `write`;
`close`), so the SPDY session runs unchanged over a TCP connection, a taken-over
aiohttp connection, or a WebSocket whose binary messages carry SPDY (port-forward's
`SPDY/3.1+portforward.k8s.io` tunnelling).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Protocol

from aiohttp import WSMsgType, web

# How much a reader buffers before the connection stops reading from the socket.
READ_LIMIT = 256 * 1024


class BytePipe(Protocol):
    """A bidirectional byte stream."""

    async def read(self) -> bytes:
        """The next bytes available; b"" once the peer is done."""

    async def write(self, data: bytes) -> None:
        """Send bytes (waits while the peer is slow to take them)."""

    async def close(self) -> None:
        """Flush and close both directions."""


class _Feeder:
    """Takes the place of aiohttp's HTTP parser on a connection that was taken over."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


class RawConnection:
    """An aiohttp connection after a 101: raw bytes both ways."""

    def __init__(self, request: web.BaseRequest, response: web.StreamResponse,
                 reader: asyncio.StreamReader) -> None:
        self.request = request
        self.response = response
        self.reader = reader
        self._closed = False

    async def read(self) -> bytes:
        """The next bytes from the client; b"" once it closed the connection."""
        try:
            return await self.reader.read(65536)
        except (ConnectionError, asyncio.IncompleteReadError):
            return b""

    async def write(self, data: bytes) -> None:
        """Send bytes to the client."""
        if self._closed:
            raise ConnectionResetError("connection closed")
        await self.response.write(data)

    async def close(self) -> None:
        """End the connection (what was written is still delivered)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.response.write_eof()
        transport = self.request.transport
        if transport is not None:
            transport.close()


async def accept_upgrade(request: web.BaseRequest,
                         headers: Iterable[tuple[str, str]]) -> RawConnection:
    """Answer 101 with `headers` and take the connection over."""
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("the client went away")
    reader = asyncio.StreamReader(limit=READ_LIMIT)
    reader.set_transport(transport)
    # Before the 101 goes out: bytes the client sends once it sees it must reach
    # the reader, never aiohttp's HTTP parser.
    request.protocol.set_parser(_Feeder(reader))  # type: ignore[arg-type]
    request.protocol.keep_alive(False)
    response = web.StreamResponse(status=101, reason="Switching Protocols")
    for name, value in headers:
        response.headers.add(name, value)
    await response.prepare(request)  # type: ignore[arg-type]
    return RawConnection(request, response, reader)


class WebSocketPipe:
    """The binary messages of an aiohttp WebSocket as a byte stream (SPDY tunnelling)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def read(self) -> bytes:
        """The next binary message's bytes; b"" once the socket closes."""
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.BINARY:
                if msg.data:
                    return bytes(msg.data)
                continue
            if msg.type in (WSMsgType.PING, WSMsgType.PONG):
                continue
            # A close, an error, or a text message (not valid for a tunnel).
            return b""

    async def write(self, data: bytes) -> None:
        """Send bytes as one binary message."""
        await self.ws.send_bytes(data)

    async def close(self) -> None:
        """Close the WebSocket normally."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close()


class SocketPipe:
    """An asyncio stream pair as a byte pipe."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self) -> bytes:
        """The next bytes; b"" at end of stream or on a reset."""
        try:
            return await self.reader.read(65536)
        except (ConnectionError, OSError):
            return b""

    async def write(self, data: bytes) -> None:
        """Send bytes."""
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        """Close the socket."""
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()

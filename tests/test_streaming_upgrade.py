"""Taking over aiohttp connections after a 101 (skiff.streaming.upgrade)."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from skiff.streaming.upgrade import accept_upgrade


async def _echo_upper(request: web.Request) -> web.StreamResponse:
    conn = await accept_upgrade(request, [("Connection", "Upgrade"),
                                          ("Upgrade", request.headers["Upgrade"]),
                                          ("X-Stream-Protocol-Version", "v4.channel.k8s.io")])
    while data := await conn.read():
        await conn.write(data.upper())
    await conn.close()
    return conn.response


@pytest.fixture
async def server() -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_route("*", "/echo", _echo_upper)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port
    await runner.cleanup()


async def _upgrade(port: int, head: str) -> tuple[bytes, asyncio.StreamReader,
                                                   asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return answer, reader, writer


async def test_spdy_style_upgrade_is_taken_over(server: int) -> None:
    # aiohttp does not know SPDY: to it this is a plain POST.
    answer, reader, writer = await _upgrade(server, (
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        "X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Upgrade: SPDY/3.1\r\n" in answer
    assert b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n" in answer
    assert b"Transfer-Encoding" not in answer and b"Content-Length" not in answer
    # Bytes that would be garbage to an HTTP parser go to the handler.
    writer.write(b"\x80\x03\x00\x01 hello")
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(10), 5) == b"\x80\x03\x00\x01 HELLO"
    writer.write(b"more")
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(4), 5) == b"MORE"
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_websocket_upgrade_can_be_relayed_raw(server: int) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    answer, reader, writer = await _upgrade(server, (
        "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 101 ")
    writer.write(b"abc")
    await writer.drain()
    assert await asyncio.wait_for(reader.readexactly(3), 5) == b"ABC"
    writer.close()


async def test_large_transfers_flow_with_backpressure(server: int) -> None:
    _, reader, writer = await _upgrade(server, (
        "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        "Content-Length: 0\r\n\r\n"))
    payload = b"ab" * (2 << 20)

    async def send() -> None:
        writer.write(payload)
        await writer.drain()

    sender = asyncio.create_task(send())
    got = await asyncio.wait_for(reader.readexactly(len(payload)), 20)
    await sender
    assert got == payload.upper()
    writer.close()

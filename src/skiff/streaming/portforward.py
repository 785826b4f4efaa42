"""Port-forward sessions: client connections to ports inside a pod.

Two shapes, as upstream's streaming server serves them:

- SPDY (raw, or tunnelled in a WebSocket): for every local connection the client
  opens an error stream and a data stream carrying the same `port` and `requestid`
  headers. Once both are there the server connects to the port in the pod and copies
  bytes; if that fails, the reason goes on the error stream. The error stream is
  closed when the forwarding ends, which is what tells the client it is over.
- The channel protocol (WebSocket, `?port=N` for each port): one connection per
  requested port, opened at once; channel 2i carries its data and 2i+1 its errors,
  each starting with the port number (two bytes, little-endian).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from skiff.streaming import channels as ch
from skiff.streaming.spdy_frames import Headers
from skiff.streaming.spdy_session import SpdySession, SpdyStream

log = logging.getLogger(__name__)

SPDY_PROTOCOL = "portforward.k8s.io"

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# Opens a connection to a port in the pod, or raises PortForwardError.
Dialer = Callable[[int], Awaitable[Connection]]


class PortForwardError(Exception):
    """Forwarding to a port failed; the message is what the client is told."""


def parse_port(raw: str) -> int:
    """A port from a header or query value; ValueError with upstream's message."""
    try:
        port = int(raw, 10)
    except ValueError:
        raise ValueError(f'unable to parse "{raw}" as a port') from None
    if not 0 < port < 65536:
        if port < 1:
            raise ValueError(f'port "{raw}" must be > 0')
        raise ValueError(f'unable to parse "{raw}" as a port: value out of range')
    return port


def validate_stream(headers: Headers) -> str | None:
    """Why a port-forward SPDY stream is refused, if it is."""
    port = (headers.get("port") or [""])[0]
    if not port:
        return '"port" header is required'
    try:
        parse_port(port)
    except ValueError as exc:
        return str(exc)
    kind = (headers.get("streamtype") or [""])[0]
    if not kind:
        return '"streamType" header is required'
    if kind not in ("error", "data"):
        return f'invalid stream type "{kind}"'
    return None


async def _pump(read: Callable[[], Awaitable[bytes]],
                write: Callable[[bytes], Awaitable[None]]) -> None:
    while True:
        try:
            data = await read()
        except (ConnectionError, OSError):
            return
        if not data:
            return
        try:
            await write(data)
        except (ConnectionError, OSError, RuntimeError):
            return


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


# -- SPDY ----------------------------------------------------------------------------------


class _Pair:
    def __init__(self) -> None:
        self.data: SpdyStream | None = None
        self.error: SpdyStream | None = None
        self.started = False


async def _forward_pair(data: SpdyStream, error: SpdyStream, dial: Dialer) -> None:
    port = parse_port(data.header("port"))
    try:
        try:
            reader, writer = await dial(port)
        except PortForwardError as exc:
            with contextlib.suppress(ConnectionError):
                await error.write(str(exc).encode())
            return

        async def to_pod() -> None:
            await _pump(data.read, _writer_sink(writer))
            # The client sent everything: pass the half-close on.
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()

        upstream = asyncio.create_task(to_pod())
        try:
            await _pump(lambda: reader.read(65536), data.write)
        finally:
            upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upstream
            await _close_writer(writer)
    finally:
        await data.close()
        await error.close()


def _writer_sink(writer: asyncio.StreamWriter) -> Callable[[bytes], Awaitable[None]]:
    async def write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()
    return write


async def serve_spdy(session: SpdySession, dial: Dialer) -> None:
    """Serve port-forward streams on a SPDY session until the client closes it."""
    serve = asyncio.create_task(session.serve())
    pairs: dict[str, _Pair] = {}
    tasks: set[asyncio.Task[None]] = set()
    try:
        while True:
            stream = await session.accept()
            if stream is None:
                break
            kind = stream.header("streamtype")
            request_id = stream.header("requestid")
            if not request_id:
                # Old clients send no request id: their two streams have consecutive
                # odd ids, error first.
                request_id = str(stream.id if kind == "error" else stream.id - 2)
            pair = pairs.setdefault(request_id, _Pair())
            if kind == "error":
                if pair.error is not None:
                    await stream.reset()
                    continue
                pair.error = stream
            else:
                if pair.data is not None:
                    await stream.reset()
                    continue
                pair.data = stream
            if pair.data is not None and pair.error is not None and not pair.started:
                pair.started = True
                del pairs[request_id]
                task = asyncio.create_task(_forward_pair(pair.data, pair.error, dial))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    finally:
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
        serve.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serve


# -- the channel protocol --------------------------------------------------------------------


async def serve_channels(ws: web.WebSocketResponse, codec: ch.ChannelCodec, ports: list[int],
                         dial: Dialer) -> None:
    """Forward `ports` over the channel protocol until every connection ended."""
    send_lock = asyncio.Lock()
    # What the client sends for port i, until (and after) its connection is open.
    inbound: list[asyncio.Queue[bytes]] = [asyncio.Queue(maxsize=64) for _ in ports]

    async def send(channel: int, data: bytes) -> None:
        message = codec.encode(channel, data)
        async with send_lock:
            if isinstance(message, str):
                await ws.send_str(message)
            else:
                await ws.send_bytes(message)

    for i, port in enumerate(ports):
        await send(2 * i, ch.port_prefix(port))
        await send(2 * i + 1, ch.port_prefix(port))

    async def forward(i: int, port: int) -> None:
        try:
            reader, writer = await dial(port)
        except PortForwardError as exc:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await send(2 * i + 1, str(exc).encode())
            return
        to_pod = asyncio.create_task(_pump(inbound[i].get, _writer_sink(writer)))
        try:
            await _pump(lambda: reader.read(65536), lambda data: send(2 * i, data))
        finally:
            to_pod.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await to_pod
            await _close_writer(writer)

    async def from_client() -> None:
        async for msg in ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                continue
            try:
                channel, data = codec.decode(msg.data)
            except ch.ChannelError:
                continue
            if channel % 2 == 0 and channel // 2 < len(ports) and data:
                await inbound[channel // 2].put(data)

    reader_task = asyncio.create_task(from_client())
    forwards = asyncio.gather(*(forward(i, port) for i, port in enumerate(ports)))
    try:
        # Done when every connection ended, or when the client left.
        await asyncio.wait([forwards, reader_task], return_when=asyncio.FIRST_COMPLETED)
    finally:
        forwards.cancel()
        reader_task.cancel()
        await asyncio.gather(forwards, reader_task, return_exceptions=True)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close()

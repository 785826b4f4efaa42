"""Exec and attach sessions: a command's stdio over a WebSocket or SPDY connection.

`CommandStreams` is what a session needs from the client's connection, whatever the
protocol: stdin and resize to read, stdout and stderr to write, a way to report the
final status, and an event that says the client went away. `WebSocketCommandStreams`
and `SpdyCommandStreams` provide it for the channel protocols and for SPDY.

`CommandIO` is the other end: a command running in a container (exec) or the stdio
of its main process (attach). `run_session` copies between the two until the command
ends, then reports the status the way the negotiated protocol wants it (a JSON Status
with the exit code for v4 and later, the failure's text before).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from skiff.streaming import channels as ch
from skiff.streaming.spdy_session import SpdySession, SpdyStream

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# SPDY stream protocol versions, newest first (what a server accepts).
SPDY_V4 = "v4.channel.k8s.io"
SPDY_V3 = "v3.channel.k8s.io"
SPDY_V2 = "v2.channel.k8s.io"
SPDY_V1 = "channel.k8s.io"
SPDY_PROTOCOLS = (SPDY_V4, SPDY_V3, SPDY_V2, SPDY_V1)

# How long a SPDY client has to open the streams it asked for (upstream's default).
STREAM_CREATION_TIMEOUT = 30.0
# Output a command's descendants still write after it exited is cut after this long.
OUTPUT_GRACE = 2.0


@dataclass(frozen=True)
class Options:
    """Which streams a session has."""

    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def parse(cls, query: Any) -> Options:
        """From a request's query (`input`/`output`/`error`/`tty`, or the API names)."""
        def flag(*names: str) -> bool:
            return any(str(query.get(n, "")).lower() in ("1", "true") for n in names)

        tty = flag("tty")
        opts = cls(stdin=flag("input", "stdin"), stdout=flag("output", "stdout"),
                   # A terminal carries both output streams; stderr is dropped with tty.
                   stderr=flag("error", "stderr") and not tty, tty=tty)
        return opts

    def problem(self) -> str | None:
        """Why these options cannot be served, if they cannot."""
        if not (self.stdin or self.stdout or self.stderr):
            return "you must specify at least 1 of stdin, stdout, stderr"
        return None


# -- statuses --------------------------------------------------------------------------


def success() -> Obj:
    """The status of a command that ended well."""
    return {"metadata": {}, "status": "Success"}


def exit_code_status(command: list[str], code: int) -> Obj:
    """The status of a command that exited with a non-zero code."""
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing "
                       f"command [{' '.join(command)}], exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def internal_error(message: str) -> Obj:
    """The status of a command that could not be run at all."""
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {message}",
            "reason": "InternalError", "details": {"causes": [{"message": message}]},
            "code": 500}


# -- the two ends ----------------------------------------------------------------------


class InStream(Protocol):
    """Bytes from the client."""

    async def read(self) -> bytes:
        """The next bytes; b"" at the end."""


class OutStream(Protocol):
    """Bytes to the client."""

    async def write(self, data: bytes) -> None:
        """Send bytes."""


class CommandStreams(Protocol):
    """The client's side of a session."""

    stdin: InStream | None
    stdout: OutStream | None
    stderr: OutStream | None
    resize: InStream | None
    client_gone: asyncio.Event

    async def finish(self, status: Obj) -> None:
        """Report the final status and close the connection."""

    async def abort(self) -> None:
        """Close the connection without a status (the client is gone)."""


class CommandIO(Protocol):
    """The container's side of a session."""

    stdout: asyncio.StreamReader | None
    stderr: asyncio.StreamReader | None

    async def write_stdin(self, data: bytes) -> None:
        """Pass input to the command."""

    async def close_stdin(self) -> None:
        """The client sent all its input."""

    def resize(self, width: int, height: int) -> None:
        """The client's terminal changed size."""

    async def wait(self) -> int:
        """The command's exit code, once it ended."""

    def stop(self) -> None:
        """The client went away: end the command (exec) or detach (attach)."""


# -- WebSocket ---------------------------------------------------------------------------


class _Queue:
    """An InStream fed by the WebSocket reader (bounded: a slow consumer pushes back)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)
        self.done = False

    async def put(self, data: bytes) -> None:
        if not self.done and data:
            await self.queue.put(data)

    def end(self) -> None:
        if not self.done:
            self.done = True
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(b"")

    async def read(self) -> bytes:
        if self.done and self.queue.empty():
            return b""
        return await self.queue.get()


class _ChannelWriter:
    def __init__(self, owner: WebSocketCommandStreams, channel: int) -> None:
        self.owner = owner
        self.channel = channel

    async def write(self, data: bytes) -> None:
        await self.owner.send(self.channel, data)


class WebSocketCommandStreams:
    """A session over one of the channel protocols (see `channels`)."""

    def __init__(self, ws: web.WebSocketResponse, codec: ch.ChannelCodec,
                 opts: Options) -> None:
        self.ws = ws
        self.codec = codec
        self.client_gone = asyncio.Event()
        self._stdin = _Queue() if opts.stdin else None
        self._resize = _Queue()
        self.stdin: InStream | None = self._stdin
        self.resize: InStream | None = self._resize if opts.tty else None
        self.stdout: OutStream | None = _ChannelWriter(self, ch.STDOUT) if opts.stdout else None
        self.stderr: OutStream | None = _ChannelWriter(self, ch.STDERR) if opts.stderr else None
        self._opts = opts
        self._reader = asyncio.create_task(self._read_loop())

    @classmethod
    async def open(cls, request: web.Request, protocol: str,
                   opts: Options) -> WebSocketCommandStreams:
        """Accept the WebSocket and signal the client that streams are open."""
        ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (),
                                   max_msg_size=16 << 20, autoping=True)
        await ws.prepare(request)
        streams = cls(ws, ch.ChannelCodec(protocol), opts)
        # As upstream: an empty message on the lowest channel the client reads.
        first = ch.STDOUT if opts.stdout else ch.STDERR if opts.stderr else ch.ERROR
        await streams.send(first, b"")
        return streams

    async def send(self, channel: int, data: bytes) -> None:
        """One message on `channel`."""
        message = self.codec.encode(channel, data)
        if isinstance(message, str):
            await self.ws.send_str(message)
        else:
            await self.ws.send_bytes(message)

    async def _read_loop(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                try:
                    channel, data = self.codec.decode(msg.data)
                except ch.ChannelError as exc:
                    log.debug("ignoring a bad channel message: %s", exc)
                    continue
                if channel == ch.STDIN and self._stdin is not None:
                    await self._stdin.put(data)
                elif channel == ch.RESIZE:
                    await self._resize.put(data)
                elif channel == ch.CLOSE and self.codec.can_close and data:
                    if data[0] == ch.STDIN and self._stdin is not None:
                        self._stdin.end()
                    elif data[0] == ch.RESIZE:
                        self._resize.end()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if self._stdin is not None:
                self._stdin.end()
            self._resize.end()
            self.client_gone.set()

    async def finish(self, status: Obj) -> None:
        """Status on the error channel, then a normal close."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            if self.codec.structured_status:
                await self.send(ch.ERROR, json.dumps(status).encode())
            elif status.get("status") != "Success":
                await self.send(ch.ERROR, str(status.get("message", "")).encode())
        await self.abort()

    async def abort(self) -> None:
        """Close the WebSocket."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


# -- SPDY --------------------------------------------------------------------------------


class SpdyCommandStreams:
    """A session over SPDY: one stream per kind, named by its `streamtype` header."""

    def __init__(self, session: SpdySession, protocol: str, opts: Options) -> None:
        self.session = session
        self.protocol = protocol
        self.opts = opts
        self.client_gone = session.closed
        self.error: SpdyStream | None = None
        self.stdin: InStream | None = None
        self.stdout: OutStream | None = None
        self.stderr: OutStream | None = None
        self.resize: InStream | None = None
        self._all: list[SpdyStream] = []
        self._serve = asyncio.create_task(session.serve())

    @classmethod
    async def open(cls, session: SpdySession, protocol: str,
                   opts: Options) -> SpdyCommandStreams | None:
        """Wait for the client to open its streams; None if it did not in time."""
        streams = cls(session, protocol, opts)
        expected = 1 + opts.stdin + opts.stdout + opts.stderr
        if opts.tty and protocol in (SPDY_V4, SPDY_V3):
            expected += 1
        try:
            async with asyncio.timeout(STREAM_CREATION_TIMEOUT):
                while len(streams._all) < expected:
                    stream = await session.accept()
                    if stream is None:
                        break
                    streams._assign(stream)
        except TimeoutError:
            log.info("SPDY client did not open its streams in time")
        if len(streams._all) < expected or streams.error is None:
            await streams.abort()
            return None
        return streams

    def _assign(self, stream: SpdyStream) -> None:
        kind = stream.header("streamtype")
        if kind == "error":
            self.error = stream
        elif kind == "stdin":
            self.stdin = stream
        elif kind == "stdout":
            self.stdout = stream
        elif kind == "stderr":
            self.stderr = stream
        elif kind == "resize":
            self.resize = stream
        else:
            log.debug("unexpected stream type %r", kind)
            return
        self._all.append(stream)

    async def finish(self, status: Obj) -> None:
        """Status on the error stream, then close every stream and the connection."""
        if self.error is not None:
            with contextlib.suppress(ConnectionError):
                if self.protocol == SPDY_V4:
                    await self.error.write(json.dumps(status).encode())
                elif status.get("status") != "Success":
                    await self.error.write(str(status.get("message", "")).encode())
        await self.abort()

    async def abort(self) -> None:
        """Close the connection."""
        await self.session.close()
        self._serve.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._serve


# -- the session -------------------------------------------------------------------------


async def _copy_out(source: asyncio.StreamReader | None, sink: OutStream | None) -> None:
    """Command output to the client (drained and dropped if the client did not ask)."""
    if source is None:
        return
    while True:
        try:
            data = await source.read(65536)
        except OSError:  # a terminal reports EIO once the command closed it
            return
        if not data:
            return
        if sink is not None:
            try:
                await sink.write(data)
            except (ConnectionError, RuntimeError):
                sink = None


async def _copy_in(source: InStream, io: CommandIO) -> None:
    while True:
        data = await source.read()
        if not data:
            await io.close_stdin()
            return
        try:
            await io.write_stdin(data)
        except (ConnectionError, OSError):
            return


async def _resizes(source: InStream, io: CommandIO) -> None:
    """Terminal sizes: a stream of JSON objects {"Width": w, "Height": h}."""
    decoder = json.JSONDecoder()
    buffer = ""
    while True:
        data = await source.read()
        if not data:
            return
        buffer += data.decode("utf-8", "replace")
        while buffer.strip():
            buffer = buffer.lstrip()
            try:
                size, end = decoder.raw_decode(buffer)
            except ValueError:
                break
            buffer = buffer[end:]
            if isinstance(size, dict):
                with contextlib.suppress(TypeError, ValueError):
                    io.resize(int(size.get("Width", 0)), int(size.get("Height", 0)))


async def run_session(streams: CommandStreams, io: CommandIO,
                      final_status: Callable[[int], Obj]) -> None:
    """Copy between client and command until the command ends, then report its status.

    If the client goes away first, the command is stopped (`io.stop`) and no status
    is sent.
    """
    outputs = [asyncio.create_task(_copy_out(io.stdout, streams.stdout)),
               asyncio.create_task(_copy_out(io.stderr, streams.stderr))]
    helpers: list[asyncio.Task[Any]] = []
    if streams.stdin is not None:
        helpers.append(asyncio.create_task(_copy_in(streams.stdin, io)))
    if streams.resize is not None:
        helpers.append(asyncio.create_task(_resizes(streams.resize, io)))
    waiter = asyncio.create_task(io.wait())
    gone = asyncio.create_task(streams.client_gone.wait())
    try:
        await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            io.stop()
            await streams.abort()
            return
        code = waiter.result()
        await asyncio.wait(outputs, timeout=OUTPUT_GRACE)
        await streams.finish(final_status(code))
    finally:
        for task in (*outputs, *helpers, waiter, gone):
            task.cancel()
        await asyncio.gather(*outputs, *helpers, waiter, gone, return_exceptions=True)


async def report_failure(streams: CommandStreams, status: Obj,
                         stderr_text: str = "") -> None:
    """End a session whose command could not start (optionally with a message)."""
    sink = streams.stderr or streams.stdout
    if stderr_text and sink is not None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await sink.write(stderr_text.encode())
    await streams.finish(status)


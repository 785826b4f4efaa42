"""A SPDY/3.1 connection as the server side of Kubernetes streams sees it.

The client opens every stream (SYN_STREAM, odd ids, headers such as `streamtype`,
`port`, `requestid`); the session answers each with a SYN_REPLY (or a RST_STREAM if
`validate` refuses it) and hands it to whoever calls `accept`. Streams are
bidirectional byte pipes that each side half-closes with FIN; RST_STREAM ends one at
once. Pings from the client are echoed; a GOAWAY or the end of the connection ends
the session.

Flow control: the Kubernetes clients (spdystream) neither send nor honour
WINDOW_UPDATE, so none is sent. Back-pressure comes from TCP instead: when a stream's
reader lags by more than `STREAM_BUFFER` bytes the session stops reading the
connection until it catches up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from skiff.streaming import spdy_frames as sf
from skiff.streaming.upgrade import BytePipe

log = logging.getLogger(__name__)

STREAM_BUFFER = 1 << 20
MAX_DATA_FRAME = 64 * 1024


class SpdyStream:
    """One stream of a session (see the module docstring)."""

    def __init__(self, session: SpdySession, stream_id: int, headers: sf.Headers,
                 remote_done: bool) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._readable = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()
        self.remote_done = remote_done
        self.local_done = False
        self.was_reset = False
        if remote_done:
            self._readable.set()

    def header(self, name: str, default: str = "") -> str:
        """The first value of a header (names are case-insensitive)."""
        values = self.headers.get(name.lower())
        return values[0] if values else default

    # -- reading ------------------------------------------------------------------------

    async def read(self) -> bytes:
        """The next bytes the client sent; b"" once it finished (FIN) or reset."""
        while not self._chunks:
            if self.remote_done or self.was_reset:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data = self._chunks.popleft()
        self._size -= len(data)
        if self._size <= STREAM_BUFFER:
            self._space.set()
        return data

    async def _deliver(self, data: bytes) -> None:
        if self.was_reset or self.remote_done:
            return
        if data:
            self._chunks.append(data)
            self._size += len(data)
            self._readable.set()
            if self._size > STREAM_BUFFER:
                self._space.clear()
                await self._space.wait()

    def _remote_fin(self) -> None:
        self.remote_done = True
        self._readable.set()
        self._space.set()
        self.session._forget_if_done(self)

    def _on_reset(self) -> None:
        self.was_reset = True
        self.remote_done = True
        self.local_done = True
        self._readable.set()
        self._space.set()
        self.session._forget_if_done(self)

    # -- writing ------------------------------------------------------------------------

    async def write(self, data: bytes) -> None:
        """Send bytes to the client on this stream."""
        if self.local_done:
            raise ConnectionResetError(f"stream {self.id} is closed")
        view = memoryview(data)
        for start in range(0, len(view), MAX_DATA_FRAME):
            await self.session.send(sf.Data(self.id, bytes(view[start:start + MAX_DATA_FRAME])))

    async def close(self) -> None:
        """Half-close: tell the client nothing more comes on this stream (FIN)."""
        if self.local_done:
            return
        self.local_done = True
        with contextlib.suppress(ConnectionError):
            await self.session.send(sf.Data(self.id, b"", sf.FLAG_FIN))
        self.session._forget_if_done(self)

    async def reset(self, status: int = sf.CANCEL) -> None:
        """End the stream abruptly in both directions (RST_STREAM)."""
        if self.was_reset:
            return
        self._on_reset()
        with contextlib.suppress(ConnectionError):
            await self.session.send(sf.RstStream(self.id, status))


Validator = Callable[[sf.Headers], str | None]


class SpdySession:
    """The server side of one SPDY connection; run `serve()` as a task."""

    def __init__(self, pipe: BytePipe, validate: Validator | None = None) -> None:
        self.pipe = pipe
        self.validate = validate
        self.encoder = sf.FrameEncoder()
        self.decoder = sf.FrameDecoder()
        self.streams: dict[int, SpdyStream] = {}
        self._incoming: asyncio.Queue[SpdyStream | None] = asyncio.Queue()
        self._write_lock = asyncio.Lock()
        self._last_client_id = 0
        self.closed = asyncio.Event()
        self._going_away = False

    async def send(self, frame: sf.Frame) -> None:
        """Encode and write one frame (in order: header compression is stateful)."""
        if self.closed.is_set():
            raise ConnectionResetError("SPDY connection closed")
        async with self._write_lock:
            data = self.encoder.encode(frame)
            try:
                await self.pipe.write(data)
            except (ConnectionError, OSError, RuntimeError) as exc:
                self._shutdown()
                raise ConnectionResetError(str(exc)) from None

    async def accept(self) -> SpdyStream | None:
        """The next stream the client opened (already replied to); None once closed."""
        if self.closed.is_set() and self._incoming.empty():
            return None
        return await self._incoming.get()

    async def serve(self) -> None:
        """Read and dispatch frames until the connection ends."""
        try:
            while True:
                data = await self.pipe.read()
                if not data:
                    break
                for frame in self.decoder.feed(data):
                    await self._dispatch(frame)
        except sf.ProtocolError as exc:
            log.debug("SPDY protocol error: %s", exc)
            with contextlib.suppress(ConnectionError):
                await self.send(sf.GoAway(self._last_client_id, 1))
        except (ConnectionError, OSError):
            pass
        finally:
            self._shutdown()

    async def close(self) -> None:
        """Finish every stream, say GOAWAY and close the connection."""
        if self.closed.is_set():
            return
        for stream in list(self.streams.values()):
            await stream.close()
        with contextlib.suppress(ConnectionError):
            await self.send(sf.GoAway(self._last_client_id, 0))
        self._shutdown()
        await self.pipe.close()

    def _shutdown(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for stream in list(self.streams.values()):
            stream._on_reset()
        self.streams.clear()
        self._incoming.put_nowait(None)

    def _forget_if_done(self, stream: SpdyStream) -> None:
        if stream.remote_done and stream.local_done:
            self.streams.pop(stream.id, None)

    async def _dispatch(self, frame: sf.Frame) -> None:
        if isinstance(frame, sf.Data):
            stream = self.streams.get(frame.stream_id)
            if stream is None:
                return
            await stream._deliver(frame.data)
            if frame.fin:
                stream._remote_fin()
        elif isinstance(frame, sf.SynStream):
            await self._open(frame)
        elif isinstance(frame, sf.RstStream):
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                stream._on_reset()
        elif isinstance(frame, sf.Ping):
            # Odd ids are the client's: echo them. Even ids would answer our own pings.
            if frame.ping_id % 2 == 1:
                await self.send(frame)
        elif isinstance(frame, sf.GoAway):
            self._going_away = True
            self._incoming.put_nowait(None)
        elif isinstance(frame, sf.HeadersFrame):
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                for name, values in frame.headers.items():
                    stream.headers.setdefault(name, []).extend(values)
                if frame.flags & sf.FLAG_FIN:
                    stream._remote_fin()
        # SETTINGS, WINDOW_UPDATE and unknown control frames need no answer.

    async def _open(self, frame: sf.SynStream) -> None:
        sid = frame.stream_id
        if sid % 2 == 0 or sid <= self._last_client_id or self._going_away:
            await self.send(sf.RstStream(sid, sf.PROTOCOL_ERROR if sid % 2 == 0
                                         or sid <= self._last_client_id
                                         else sf.REFUSED_STREAM))
            return
        self._last_client_id = sid
        problem = self.validate(frame.headers) if self.validate is not None else None
        if problem is not None:
            log.debug("refusing SPDY stream %d: %s", sid, problem)
            await self.send(sf.RstStream(sid, sf.REFUSED_STREAM))
            return
        stream = SpdyStream(self, sid, frame.headers, remote_done=frame.fin)
        self.streams[sid] = stream
        await self.send(sf.SynReply(sid))
        self._incoming.put_nowait(stream)

"""Many small writes over a few pipelined HTTP/1.1 connections.

The scheduler sends a binding per pod, a thousand a second. Through aiohttp each
request costs about half a millisecond of the caller's CPU (URL building, header
multidicts, a task per response reader), more than deciding where the pod goes. Upstream's
client multiplexes such requests over one HTTP/2 connection; this is the HTTP/1.1
equivalent: requests are written back to back on keep-alive connections without
waiting for earlier responses (pipelining, which the API server's HTTP stack answers in
order), and responses are matched to requests first in, first out.

The server handles one request per connection at a time, and concurrent writes share
a store commit, so the writes are spread over a dozen or so connections (a few
pipelined on each) rather than queued on one: with four connections the scheduler's
bindings ran at a third of the rate they reach with sixteen.

Only simple request/response exchanges belong here (no watches, no upgrades, bodies that
fit in memory). Errors come back as the server's Status, raised as StatusError, as with
`Client.request`; a lost connection fails the requests still waiting on it with
ConnectionError (the server may or may not have applied them).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import Any
from urllib.parse import urlsplit

import orjson

from skiff.client.http_client import Client, status_error
from skiff.client.metrics import METRICS

Obj = dict[str, Any]

CONNECTIONS = 16
MAX_IN_FLIGHT_PER_CONNECTION = 4
MAX_HEADER_BYTES = 64 * 1024


class _Connection(asyncio.Protocol):
    """One keep-alive connection; answers complete its waiters in request order."""

    def __init__(self) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport: Any = None
        self.waiters: collections.deque[asyncio.Future[tuple[int, bytes]]] = \
            collections.deque()
        self.closed = False
        self._buf = bytearray()
        # Parser state for the response being read: its status and how its body ends.
        self._status = 0
        self._length = -1
        self._chunked = False
        self._body = bytearray()

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = ConnectionError(f"connection to the API server lost: {exc or 'closed'}")
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(error)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        try:
            while self._parse_one():
                pass
        except ValueError as err:
            # A response we cannot read leaves the stream unusable: close it, which
            # fails everything still waiting.
            if self.transport is not None:
                self.transport.close()
            self.connection_lost(err)

    # -- response parsing ---------------------------------------------------------------------

    def _parse_one(self) -> bool:
        """Consume one whole response from the buffer if there is one."""
        buf = self._buf
        if not self._status:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise ValueError("response headers too long")
                return False
            head = bytes(buf[:end]).decode("latin-1").split("\r\n")
            del buf[:end + 4]
            parts = head[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
                raise ValueError(f"not an HTTP/1.1 response: {head[0]!r}")
            self._status = int(parts[1])
            self._length = -1
            self._chunked = False
            for line in head[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    self._length = int(value.strip())
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    self._chunked = True
            if self._status in (204, 304) or 100 <= self._status < 200:
                self._length = 0
            if self._length < 0 and not self._chunked:
                raise ValueError("response without a length cannot be pipelined")
            self._body = bytearray()
        if self._chunked:
            if not self._read_chunks():
                return False
        else:
            if len(buf) < self._length:
                return False
            self._body = buf[:self._length]
            del buf[:self._length]
        status, body = self._status, bytes(self._body)
        self._status = 0
        if 100 <= status < 200:
            return True  # an interim response; the real one follows
        if self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result((status, body))
        return True

    def _read_chunks(self) -> bool:
        buf = self._buf
        while True:
            nl = buf.find(b"\r\n")
            if nl < 0:
                return False
            size = int(bytes(buf[:nl]).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # The last chunk, then (optional trailers and) an empty line.
                end = buf.find(b"\r\n\r\n", nl)
                if end < 0:
                    return False
                del buf[:end + 4]
                return True
            if len(buf) < nl + 2 + size + 2:
                return False
            self._body += buf[nl + 2:nl + 2 + size]
            del buf[:nl + 2 + size + 2]


def _expire(fut: asyncio.Future[tuple[int, bytes]], timeout: float) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError(f"no answer from the API server within {timeout} s"))


class RequestPipeline:
    """Pipelined requests to the server of `client`, with its identity and TLS settings."""

    def __init__(self, client: Client, connections: int = CONNECTIONS,
                 depth: int = MAX_IN_FLIGHT_PER_CONNECTION) -> None:
        url = urlsplit(client.server)
        self.tls = url.scheme == "https"
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or (443 if self.tls else 80)
        self.ssl_context = client.ssl_context if self.tls else None
        self.unix_socket = client.unix_socket
        self.size = connections
        self.component = client.component
        self._slots = asyncio.Semaphore(connections * depth)
        self._conns: list[_Connection | None] = [None] * connections
        self._connecting: list[asyncio.Future[_Connection] | None] = [None] * connections
        headers = {"Host": url.netloc, "User-Agent": f"skiff-{client.component}/0.1",
                   "Accept": "application/json", **client.auth_headers()}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1")

    def _least_busy(self) -> _Connection | int:
        """The open connection with the fewest requests waiting, or the index of one that
        must be opened first."""
        best: _Connection | None = None
        for i, conn in enumerate(self._conns):
            if conn is None or conn.closed:
                return i
            if best is None or len(conn.waiters) < len(best.waiters):
                best = conn
        assert best is not None
        return best

    async def _open(self, i: int) -> _Connection:
        pending = self._connecting[i]
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = self._connecting[i] = loop.create_future()
            try:
                if self.unix_socket is not None:
                    _, conn = await loop.create_unix_connection(_Connection, self.unix_socket)
                else:
                    _, conn = await loop.create_connection(
                        _Connection, self.host, self.port, ssl=self.ssl_context,
                        server_hostname=self.host if self.tls else None)
            except BaseException as err:
                self._connecting[i] = None
                pending.set_exception(err)
                # Retrieved here so that a failure nobody else awaits is not logged.
                pending.exception()
                raise
            self._conns[i] = conn
            self._connecting[i] = None
            pending.set_result(conn)
            return conn
        return await asyncio.shield(pending)

    async def request(self, method: str, path: str, body: Any = None,
                      content_type: str = "application/json",
                      timeout: float | None = None, decode: bool = True) -> Any:
        """Send one request and return its decoded JSON body (StatusError on non-2xx;
        None for `decode=False`).

        After `timeout` seconds without an answer it raises TimeoutError; the answer,
        should it still come, is read and dropped, so the connection stays in step.
        """
        data = b"" if body is None else body if isinstance(body, bytes) else orjson.dumps(body)
        started = time.perf_counter()
        status = 0
        try:
            status, raw = await self._send(method, path, data, content_type, timeout)
        finally:
            # Counted with the client's other requests (rest_client_requests_total).
            METRICS.request(self.component, method, status or "<error>",
                            time.perf_counter() - started)
        if status >= 300:
            raise status_error(status, raw)
        return orjson.loads(raw) if raw and decode else None

    async def _send(self, method: str, path: str, data: bytes, content_type: str,
                    timeout: float | None = None) -> tuple[int, bytes]:
        async with self._slots:
            conn = self._least_busy()
            if isinstance(conn, int):
                conn = await self._open(conn)
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[tuple[int, bytes]] = loop.create_future()
            conn.waiters.append(fut)
            head = (f"{method} {path} HTTP/1.1\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(data)}\r\n").encode("latin-1")
            conn.transport.write(head + self._fixed + b"\r\n" + data)
            if timeout is None:
                return await fut
            # A timer that fails the future, cheaper than asyncio.timeout's cancellation.
            timer = loop.call_later(timeout, _expire, fut, timeout)
            try:
                return await fut
            finally:
                timer.cancel()

    async def close(self) -> None:
        """Close every connection (requests still waiting fail with ConnectionError)."""
        for i, conn in enumerate(self._conns):
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            self._conns[i] = None
        with contextlib.suppress(Exception):
            await asyncio.sleep(0)

"""Streaming a watch to the client as newline-delimited JSON events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from skiff.api.errors import StatusError
from skiff.api.resources import ResourceType
from skiff.apiserver.list_options import ListOptions
from skiff.apiserver.negotiation import TABLE_CONTENT_TYPE, negotiate
from skiff.apiserver.shared_events import Raw
from skiff.store.watch_hub import WatcherTooSlow

if TYPE_CHECKING:
    from skiff.apiserver.server import APIServer

# Upstream sends bookmarks about once a minute; clients only need them before
# their watch times out, to resume without a relist.
BOOKMARK_INTERVAL = 30.0
# As upstream's watch cache, a watch with a timeout gets its last bookmark this long
# before it ends, so that a client resumes from there rather than from its last event.
BOOKMARK_BEFORE_TIMEOUT = 2.0


def next_bookmark(now: float, deadline: float | None) -> float | None:
    """When a watch that asked for bookmarks is due its next one (None: never again)."""
    at = now + BOOKMARK_INTERVAL
    if deadline is None:
        return at
    at = min(at, deadline - BOOKMARK_BEFORE_TIMEOUT)
    return at if at > now else None


async def stream_watch(
    request: web.Request, server: APIServer, rt: ResourceType, namespace: str, opts: ListOptions
) -> web.StreamResponse:
    """Serve `?watch=true`: events until the timeout, the client leaves, or shutdown."""
    rep = negotiate(request.headers.get("Accept"))
    batches = server.objects.watch_batches(rt, namespace, opts, raw=not rep.table)
    shared = server.objects.shared
    # Errors that happen before the first event (bad selectors) are ordinary
    # Status responses. An expired resourceVersion is not: as upstream, once the
    # request is accepted it is reported as an ERROR event in a 200 stream, which
    # is what informers and the Python client's Watch look for to relist.
    first: list[tuple[str, Any]] | None = None
    expired: StatusError | None = None
    first_task = asyncio.ensure_future(batches.__anext__())
    done, _ = await asyncio.wait({first_task}, timeout=0.05)
    if done:
        try:
            first = first_task.result()
        except StopAsyncIteration:
            first = None
        except StatusError as err:
            if err.code != 410:
                raise
            expired = err
    resp = web.StreamResponse(status=200)
    resp.content_type = "application/json"
    if rep.table:
        resp.headers["Content-Type"] = TABLE_CONTENT_TYPE
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    deadline = time.monotonic() + opts.timeout_seconds if opts.timeout_seconds else None
    include = request.query.get("includeObject", "Metadata")
    headers_sent = False

    def encode(kind: str, obj: Any) -> bytes:
        nonlocal headers_sent
        if isinstance(obj, Raw):
            return shared.raw_line(kind, obj)
        if rep.table and kind != "BOOKMARK" and kind != "ERROR":
            table = server.table(rt, [obj], include, None)
            if headers_sent:
                table.pop("columnDefinitions", None)
            headers_sent = True
            return orjson.dumps({"type": kind, "object": table}) + b"\n"
        return shared.line(rt, kind, obj)

    async def send(batch: list[tuple[str, Any]]) -> None:
        # One write per burst of changes rather than one per change.
        await resp.write(b"".join(encode(kind, obj) for kind, obj in batch))

    pending = first_task if not done else None
    bookmark_at = (next_bookmark(time.monotonic(), deadline) if opts.allow_bookmarks
                   else None)
    client_gone = False
    stop = server.stopping
    # One waiter on shutdown for the whole watch, not a new task per event.
    stop_task = asyncio.ensure_future(stop.wait())
    try:
        if expired is not None:
            raise expired
        if first:
            await send(first)
        while True:
            if pending is None:
                pending = asyncio.ensure_future(batches.__anext__())
            now = time.monotonic()
            timeout = BOOKMARK_INTERVAL
            if deadline is not None:
                timeout = min(timeout, deadline - now)
                if timeout <= 0:
                    break
            if bookmark_at is not None:
                timeout = max(0.0, min(timeout, bookmark_at - now))
            done_set, _ = await asyncio.wait({pending, stop_task}, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                break
            if pending in done_set:
                try:
                    batch = pending.result()
                except StopAsyncIteration:
                    break
                pending = None
                await send(batch)
                continue
            now = time.monotonic()
            if bookmark_at is not None and now >= bookmark_at:
                # The bookmark names the store's revision: changes already committed
                # but not yet taken from the watch go out first, never after it.
                await asyncio.sleep(0)
                if pending.done():
                    continue
                await send([("BOOKMARK", server.objects.bookmark(rt, server.store.revision))])
                bookmark_at = next_bookmark(now, deadline)
    except StatusError as err:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.write(orjson.dumps({"type": "ERROR", "object": err.to_status()}) + b"\n")
    except WatcherTooSlow:
        pass
    except ConnectionError:
        # The client went away (often between two events): nothing left to tell it.
        client_gone = True
    finally:
        stop_task.cancel()
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        with contextlib.suppress(BaseException):
            await batches.aclose()  # type: ignore[attr-defined]
    if not client_gone:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.write_eof()
    return resp

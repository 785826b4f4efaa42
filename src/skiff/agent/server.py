"""The agent's HTTPS server (the kubelet's :10250), on loopback by default.

Only callers with a client certificate signed by the cluster CA get in: in practice
the API server, which proxies `pods/log` (and the stream subresources) and reads
`/stats/summary` for the metrics API. Routes:

    GET /healthz
    GET /containerLogs/{namespace}/{pod}/{container}   (follow, previous, tailLines,
        sinceSeconds, sinceTime, timestamps, limitBytes)
    GET /stats/summary
    GET /pods

Stream handlers (exec, attach, portForward) add their routes with `add_route`, and
find containers through `skiff.agent.streams`.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from skiff.agent.logs import LogOptions, read_log
from skiff.agent.streams import StreamError
from skiff.api import meta as m

if TYPE_CHECKING:
    from skiff.agent.agent import NodeAgent

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _status(err: StreamError) -> web.Response:
    return web.Response(body=orjson.dumps(err.to_status()), status=err.code,
                        content_type="application/json")


def _bool(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def _int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise StreamError(400, f"{name}: invalid value {raw!r}") from None


class AgentServer:
    """Serves the agent's endpoints over TLS."""

    def __init__(self, agent: NodeAgent, host: str, port: int, cert: Path, key: Path,
                 client_ca: Path | None) -> None:
        self.agent = agent
        self.host = host
        self.port = port
        self.cert = cert
        self.key = key
        self.client_ca = client_ca
        self.app = web.Application(middlewares=[self._errors])
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        self.app.router.add_get("/stats/summary", self._summary)
        self.app.router.add_get("/pods", self._pods)
        self._runner: web.AppRunner | None = None

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Serve another endpoint (before `start`)."""
        self.app.router.add_route(method, path, handler)

    def ssl_context(self) -> ssl.SSLContext:
        """TLS with the agent's serving certificate; clients must show a CA-signed one."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert), str(self.key))
        if self.client_ca is not None:
            ctx.load_verify_locations(cafile=str(self.client_ca))
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    async def start(self) -> int:
        """Listen; returns the port (useful when 0 asked for any)."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context(),
                           reuse_address=True)
        await site.start()
        server = site._server  # noqa: SLF001 - aiohttp exposes no public accessor
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.port

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except StreamError as err:
            return _status(err)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        ns = request.match_info["namespace"]
        pod = request.match_info["pod"]
        name = request.match_info["container"]
        previous = _bool(request, "previous")
        target = await self.agent.streams.container(ns, pod, name, previous=previous)
        opts = LogOptions(follow=_bool(request, "follow") and not previous,
                          tail_lines=_int(request, "tailLines"),
                          timestamps=_bool(request, "timestamps"),
                          limit_bytes=_int(request, "limitBytes"))
        since_seconds = _int(request, "sinceSeconds")
        if since_seconds is not None:
            opts.since = m.now() - dt.timedelta(seconds=since_seconds)
        elif request.query.get("sinceTime"):
            opts.since = m.parse_time(request.query["sinceTime"])
        cid = target.container.id

        async def running() -> bool:
            status = await self.agent.runtime.container_status(cid)
            return status is not None and status.state == "running"

        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        async for chunk in read_log(target.container.log_path, opts, running):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def _summary(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(await self.agent.stats_summary()),
                            content_type="application/json")

    async def _pods(self, request: web.Request) -> web.Response:
        items: list[Any] = self.agent.pods.list()
        return web.Response(body=orjson.dumps({"kind": "PodList", "apiVersion": "v1",
                                               "metadata": {}, "items": items}),
                            content_type="application/json")

"""A loopback HTTP endpoint serving this process's client and work-queue metrics.

Upstream's kube-controller-manager and kube-scheduler serve /metrics on a port of
their own; `skiff components --metrics-port` does the same for skiff's components
(plain HTTP on 127.0.0.1 only: the figures are counts, not cluster data).
"""

from __future__ import annotations

from aiohttp import web

from skiff.client.metrics import METRICS


async def _metrics(_request: web.Request) -> web.Response:
    return web.Response(text=METRICS.render(), content_type="text/plain",
                        headers={"X-Content-Type-Options": "nosniff"})


async def _healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def serve_metrics(host: str, port: int) -> web.AppRunner:
    """Serve /metrics and /healthz on host:port until the returned runner is cleaned up."""
    app = web.Application()
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner

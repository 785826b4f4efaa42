"""pods/exec, pods/attach and pods/portforward: upgraded connections relayed to agents.

As upstream's API server does (its upgrade-aware proxy), the API server does not
speak the stream protocols itself. It checks the request (the pod exists and is
bound, the container is one of the pod's), opens a TLS connection to the agent of
the pod's node, sends it the same upgrade request translated to the agent's paths
and query names (`stdin=true` → `input=1`, `ports=80` → `port=80`), and if the agent
answers `101 Switching Protocols` passes that answer to the client and copies bytes
both ways until either side closes. Whatever protocol the client negotiated with
the agent (WebSocket channels, SPDY, SPDY in a WebSocket) travels unchanged, so
there is one implementation of each protocol: the agent's. Any other answer (a
Status saying what is wrong) is returned to the client as is.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit

from aiohttp import web

from skiff.api.errors import StatusError, bad_request
from skiff.apiserver.node_proxy import pick_container
from skiff.apiserver.paths import Target
from skiff.streaming.upgrade import RawConnection, accept_upgrade

if TYPE_CHECKING:
    from skiff.apiserver.server import APIServer

log = logging.getLogger(__name__)

# Headers that describe one hop, or carry the client's credentials: never relayed.
_REQUEST_SKIP = {"host", "authorization", "content-length", "transfer-encoding", "cookie",
                 "proxy-authorization", "keep-alive", "te", "trailer", "expect"}
_RESPONSE_SKIP = {"content-length", "transfer-encoding", "date", "server", "keep-alive"}
MAX_HEAD = 64 * 1024
CONNECT_TIMEOUT = 10.0


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def _is_upgrade(request: web.Request) -> bool:
    return ("upgrade" in request.headers.get("Connection", "").lower()
            and bool(request.headers.get("Upgrade")))


async def pod_exec(server: APIServer, request: web.Request, target: Target
                   ) -> web.StreamResponse:
    """pods/{name}/exec: run a command in a container."""
    return await _command(server, request, target, "exec")


async def pod_attach(server: APIServer, request: web.Request, target: Target
                     ) -> web.StreamResponse:
    """pods/{name}/attach: connect to a container's main process."""
    return await _command(server, request, target, "attach")


async def _command(server: APIServer, request: web.Request, target: Target,
                   kind: str) -> web.StreamResponse:
    _check_method(request, target, kind)
    pod, base = await server.nodes.pod_and_node(target.namespace, target.name)
    container = pick_container(pod, request.query.get("container", ""))
    params: list[tuple[str, str]] = []
    if kind == "exec":
        params += [("command", c) for c in request.query.getall("command", [])]
    for api_name, agent_name in (("stdin", "input"), ("stdout", "output"),
                                 ("stderr", "error"), ("tty", "tty")):
        if _flag(request, api_name):
            params.append((agent_name, "1"))
    path = f"/{kind}/{quote(target.namespace)}/{quote(target.name)}/{quote(container)}"
    return await relay(server, request, base, path, params, target.name)


async def pod_portforward(server: APIServer, request: web.Request, target: Target
                          ) -> web.StreamResponse:
    """pods/{name}/portforward: connections to the pod's ports."""
    _check_method(request, target, "portforward")
    _, base = await server.nodes.pod_and_node(target.namespace, target.name)
    params = [("port", p) for p in request.query.getall("ports", [])]
    path = f"/portForward/{quote(target.namespace)}/{quote(target.name)}"
    return await relay(server, request, base, path, params, target.name)


# The streaming pod subresources this module serves, by name.
STREAM_RELAYS = {"exec": pod_exec, "attach": pod_attach, "portforward": pod_portforward}


def _check_method(request: web.Request, target: Target, kind: str) -> None:
    if request.method not in ("GET", "POST"):
        raise StatusError(405, "MethodNotAllowed",
                          f"{request.method} is not supported on pods/{kind}")
    if not target.name:
        raise bad_request(f"pods/{kind} needs a pod name")
    if not _is_upgrade(request):
        raise bad_request("Upgrade request required")


def _request_head(request: web.Request, host: str, path: str,
                  params: list[tuple[str, str]]) -> bytes:
    target = path + ("?" + urlencode(params) if params else "")
    lines = [f"{request.method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in request.headers.items():
        if name.lower() in _REQUEST_SKIP or "\r" in value or "\n" in value:
            continue
        lines.append(f"{name}: {value}")
    if request.method == "POST":
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")


def _parse_head(raw: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    text = raw.decode("latin-1")
    status_line, _, rest = text.partition("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"bad status line {status_line!r}")
    headers = []
    for line in rest.split("\r\n"):
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


async def relay(server: APIServer, request: web.Request, base: str, path: str,
                params: list[tuple[str, str]], pod: str) -> web.StreamResponse:
    """Send the upgrade request to the agent at `base` and join the two connections."""
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 443
    ctx: ssl.SSLContext = server.nodes.ssl_context()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port, ssl=ctx,
                                                           limit=MAX_HEAD)
            writer.write(_request_head(request, f"{host}:{port}", path, params))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status, reason, headers = _parse_head(head)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            ValueError) as exc:
        if writer is not None:
            writer.close()
        raise StatusError(502, "ServiceUnavailable",
                          f"error dialing backend: the node agent of pod {pod} cannot be "
                          f"reached: {exc or type(exc).__name__}") from None
    if status != 101:
        return await _plain_answer(reader, writer, status, headers)
    forwarded = [(n, v) for n, v in headers if n.lower() not in _RESPONSE_SKIP]
    try:
        client = await accept_upgrade(request, forwarded)
    except (ConnectionError, RuntimeError):
        writer.close()
        raise
    await _splice(client, reader, writer)
    return client.response


async def _plain_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        status: int, headers: list[tuple[str, str]]) -> web.Response:
    """The agent refused the upgrade: pass its answer (a Status) on."""
    try:
        length = next((int(v) for n, v in headers if n.lower() == "content-length"), None)
        async with asyncio.timeout(10):
            body = await (reader.readexactly(length) if length is not None
                          else reader.read(1 << 20))
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
        body = b""
    finally:
        writer.close()
    ctype = next((v for n, v in headers if n.lower() == "content-type"), "text/plain")
    resp = web.Response(body=body, status=status)
    resp.headers["Content-Type"] = ctype
    return resp


async def _splice(client: RawConnection, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
    """Copy bytes both ways until one side closes, then close both."""
    async def up() -> None:
        while True:
            data = await client.read()
            if not data:
                return
            writer.write(data)
            await writer.drain()

    async def down() -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            await client.write(data)

    tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        writer.close()
        await client.close()

"""The API server's side of talking to node agents (upstream's kubelet client).

Requests go to the address and port a Node reports (`status.addresses` InternalIP,
`status.daemonEndpoints.kubeletEndpoint.Port`) over TLS, presenting a client
certificate signed by the cluster CA (CN `kube-apiserver-kubelet-client`, group
`system:masters`). Agents serve self-signed certificates, which the API server does
not verify, as upstream's default. `pods/log` is proxied here; stream handlers for
exec, attach and port-forward reuse `NodeConnector.node_url` and `session`.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from skiff.api.errors import StatusError, bad_request, not_found
from skiff.apiserver.paths import Target

if TYPE_CHECKING:
    from skiff.apiserver.server import APIServer

CLIENT_CN = "kube-apiserver-kubelet-client"
LOG_PARAMS = ("follow", "previous", "tailLines", "sinceSeconds", "sinceTime", "timestamps",
              "limitBytes")


class NodeConnector:
    """Finds node agents and opens connections to them."""

    def __init__(self, server: APIServer) -> None:
        self.server = server
        self._session: aiohttp.ClientSession | None = None

    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        pki = self.server.pki
        if pki is not None:
            folder = pki.ca_cert.parent
            cert, key = folder / "apiserver-kubelet-client.crt", folder / \
                "apiserver-kubelet-client.key"
            if not (cert.exists() and key.exists()):
                from skiff.apiserver.pki import issue_client_cert

                c, k = issue_client_cert(pki, CLIENT_CN, ("system:masters",))
                key.touch(mode=0o600)
                key.write_bytes(k)
                cert.write_bytes(c)
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def session(self) -> aiohttp.ClientSession:
        """The shared session for requests to agents."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl(), limit=256),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        return self._session

    async def close(self) -> None:
        """Close connections to agents."""
        if self._session is not None:
            await self._session.close()

    async def node_url(self, node_name: str) -> str:
        """`https://host:port` of a node's agent; 404/400 if it cannot be reached."""
        nodes = self.server.registry.get("", "v1", "nodes")
        assert nodes is not None
        try:
            node = await self.server.objects.get(nodes, "", node_name)
        except StatusError:
            raise not_found("", "nodes", node_name) from None
        status = node.get("status") or {}
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        addresses = status.get("addresses") or []
        host = next((a.get("address") for t in ("InternalIP", "ExternalIP", "Hostname")
                     for a in addresses if a.get("type") == t and a.get("address")), None)
        if not port or not host:
            raise bad_request(f"node {node_name} has no reachable agent endpoint")
        return f"https://{host}:{port}"

    async def pod_and_node(self, namespace: str, name: str) -> tuple[dict[str, Any], str]:
        """The pod and its node's agent URL."""
        pods = self.server.registry.get("", "v1", "pods")
        assert pods is not None
        pod = await self.server.objects.get(pods, namespace, name)
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            raise bad_request(f"pod {name} does not have a host assigned")
        return pod, await self.node_url(node)


def pick_container(pod: dict[str, Any], requested: str) -> str:
    """The container a log or exec request means (the only one if none is named)."""
    spec = pod.get("spec") or {}
    name = pod.get("metadata", {}).get("name", "")
    containers = [c.get("name", "") for c in spec.get("containers") or []]
    others = [c.get("name", "") for c in (spec.get("initContainers") or []) +
              (spec.get("ephemeralContainers") or [])]
    if requested:
        if requested not in containers + others:
            raise bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    if len(containers) == 1:
        return containers[0]
    msg = (f"a container name must be specified for pod {name}, choose one of: "
           f"[{' '.join(containers)}]")
    if others:
        msg += f" or one of the init containers: [{' '.join(others)}]"
    raise bad_request(msg)


async def pod_log(server: APIServer, request: web.Request, target: Target) -> web.StreamResponse:
    """GET pods/{name}/log: stream the container's log from its node's agent."""
    if request.method != "GET":
        raise StatusError(405, "MethodNotAllowed",
                          f"{request.method} is not supported on pods/log")
    for key in ("tailLines", "sinceSeconds", "limitBytes"):
        raw = request.query.get(key)
        if raw is not None and raw != "":
            try:
                value = int(raw)
            except ValueError:
                raise bad_request(f"{key}: Invalid value: {raw!r}") from None
            if value < (0 if key == "tailLines" else 1):
                raise StatusError(422, "Invalid", f'PodLogOptions "{target.name}" is invalid: '
                                  f"{key}: Invalid value: {value}: must be greater than "
                                  f"{'or equal to 0' if key == 'tailLines' else '0'}")
    pod, base = await server.nodes.pod_and_node(target.namespace, target.name)
    container = pick_container(pod, request.query.get("container", ""))
    params = {k: request.query[k] for k in LOG_PARAMS if k in request.query}
    url = f"{base}/containerLogs/{target.namespace}/{target.name}/{container}"
    try:
        upstream = await server.nodes.session().get(url, params=params)
    except (aiohttp.ClientError, OSError) as exc:
        raise StatusError(502, "ServiceUnavailable",
                          f"the node agent of pod {target.name} cannot be reached: "
                          f"{exc}") from None
    async with upstream:
        if upstream.status != 200:
            body = await upstream.read()
            return web.Response(body=body, status=upstream.status,
                                content_type=upstream.content_type or "application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        async for chunk in upstream.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
        return resp

"""An async Kubernetes API client over HTTP(S), speaking plain dicts.

Every skiff component other than the API server talks to the cluster through this
client, so the same code works all-in-one or spread over machines. Failures come back
as the server's own `Status`, re-raised as `StatusError`, so callers branch on
`err.code` exactly as they would on the server side.
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

import aiohttp
import orjson
import yaml

from skiff.api.errors import StatusError
from skiff.client.metrics import METRICS

if TYPE_CHECKING:
    from skiff.client.pipeline import RequestPipeline

Obj = dict[str, Any]

PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


def resource_path(
    group: str,
    version: str,
    plural: str,
    name: str = "",
    namespace: str = "",
    subresource: str = "",
) -> str:
    """The URL path of a collection, an object or one of its subresources."""
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    parts = [base]
    if namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name:
        parts.append(name)
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


def split_api_version(api_version: str) -> tuple[str, str]:
    """`apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`)."""
    group, _, version = api_version.rpartition("/")
    return group, version


def status_error(code: int, body: bytes) -> StatusError:
    """Rebuild the server's error from its Status body (or a bare one if it sent none)."""
    try:
        status = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        return StatusError(
            int(status.get("code") or code),
            str(status.get("reason") or ""),
            str(status.get("message") or ""),
            status.get("details"),
        )
    text = body.decode("utf-8", "replace").strip() if body else ""
    return StatusError(code, "Unknown", text or f"the server responded with HTTP {code}")


def _query(params: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if value is None or value == "" or value is False:
            continue
        out[key] = "true" if value is True else str(value)
    return out


def _with_query(path: str, params: Mapping[str, Any] | None) -> str:
    """`path` with the query string of `params` (dropping empty values as `_query` does)."""
    query = _query(params) if params else None
    if not query:
        return path
    return f"{path}?{urlencode(query, quote_via=quote)}"


UNIX_SCHEME = "http+unix://"


class Client:
    """One connection pool to one API server, with one identity.

    The session is created lazily and reused for every request, since controllers make
    many small requests and TLS handshakes would dominate their cost.
    """

    def __init__(
        self,
        server: str,
        *,
        ca_data: bytes | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        token: str | None = None,
        component: str = "client",
        field_manager: str | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        # `http+unix://<quoted path>`: plain HTTP over a local socket (see `skiff up`).
        self.unix_socket: str | None = None
        if self.server.startswith(UNIX_SCHEME):
            self.unix_socket = unquote(self.server[len(UNIX_SCHEME):])
            self.server = "http://localhost"
        self.component = component
        self.field_manager = field_manager or f"skiff-{component}"
        self._token = token
        # The CA the server is verified with (the root CA controllers publish).
        self.ca_data = ca_data
        self._ssl: ssl.SSLContext | bool = True
        if self.server.startswith("https://"):
            ctx = ssl.create_default_context(
                cadata=ca_data.decode() if ca_data else None
            )
            if cert_file and key_file:
                ctx.load_cert_chain(cert_file, key_file)
            self._ssl = ctx
        self._session = session
        self._own_session = session is None
        # Connections to keep open at most; every watch holds one for as long as it runs.
        self.connection_limit = 64
        # Set by `use_pipeline`: where plain requests go instead of aiohttp.
        self._pipeline: RequestPipeline | None = None

    @classmethod
    def from_kubeconfig(
        cls, path: str | os.PathLike[str], *, component: str = "client", context: str = ""
    ) -> Client:
        """A client for the kubeconfig's current (or named) context."""
        config = yaml.safe_load(Path(path).read_text()) or {}
        ctx_name = context or config.get("current-context", "")
        ctx = _named(config.get("contexts"), ctx_name).get("context", {})
        cluster = _named(config.get("clusters"), ctx.get("cluster", "")).get("cluster", {})
        user = _named(config.get("users"), ctx.get("user", "")).get("user", {})
        base = Path(path).parent
        ca = _data_or_file(cluster, "certificate-authority", base)
        cert = _data_or_file(user, "client-certificate", base)
        key = _data_or_file(user, "client-key", base)
        if cert and key:
            # ssl can only load a key pair from files; keep them only as long as loading takes.
            with tempfile.TemporaryDirectory() as tmp:
                cert_path = os.path.join(tmp, "cert.pem")
                key_path = os.path.join(tmp, "key.pem")
                for p, data in ((cert_path, cert), (key_path, key)):
                    fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                return cls(cluster["server"], ca_data=ca, cert_file=cert_path,
                           key_file=key_path, token=user.get("token"), component=component)
        return cls(cluster["server"], ca_data=ca, token=user.get("token"), component=component)

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS settings (CA, client certificate) of an https server, else None."""
        return self._ssl if isinstance(self._ssl, ssl.SSLContext) else None

    def auth_headers(self) -> dict[str, str]:
        """Headers that carry this client's identity (a bearer token, if it has one)."""
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"User-Agent": f"skiff-{self.component}/0.1", "Accept": "application/json"}
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
            connector: aiohttp.BaseConnector
            if self.unix_socket is not None:
                connector = aiohttp.UnixConnector(self.unix_socket, limit=self.connection_limit)
            else:
                connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self.connection_limit)
            self._session = aiohttp.ClientSession(
                headers=headers,
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
            self._own_session = True
        return self._session

    def use_pipeline(self, connections: int | None = None, depth: int | None = None) -> None:
        """Send this client's plain requests (not watches) over pipelined keep-alive
        connections (see `skiff.client.pipeline`) instead of aiohttp's pool.

        For components that send many small writes: aiohttp's per-request overhead is
        several times the pipeline's. Errors are the same StatusError; a lost connection
        raises ConnectionError and an expired timeout TimeoutError (both OSErrors).
        """
        from skiff.client.pipeline import (
            CONNECTIONS,
            MAX_IN_FLIGHT_PER_CONNECTION,
            RequestPipeline,
        )

        self._pipeline = RequestPipeline(self, connections or CONNECTIONS,
                                         depth or MAX_IN_FLIGHT_PER_CONNECTION)

    async def close(self) -> None:
        """Release the connection pool (only if this client created it)."""
        if self._pipeline is not None:
            await self._pipeline.close()
            self._pipeline = None
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = 60.0,
        decode: bool = True,
    ) -> Any:
        """Send one request and return the decoded JSON body, raising StatusError on non-2xx.

        With `decode=False` the body of a successful response is not decoded and None is
        returned (for writes whose caller has no use for the stored object).
        """
        if self._pipeline is not None:
            return await self._pipeline.request(
                method, _with_query(path, params), body, content_type, timeout=timeout,
                decode=decode)
        data: bytes | None = None
        headers: dict[str, str] = {}
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            headers["Content-Type"] = content_type
        status = 0
        started = time.perf_counter()
        try:
            async with self._get_session().request(
                method,
                self.server + path,
                params=_query(params or {}),
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                raw = await resp.read()
                status = resp.status
        finally:
            METRICS.request(self.component, method, status or "<error>",
                            time.perf_counter() - started)
        if status >= 300:
            raise status_error(status, raw)
        return orjson.loads(raw) if raw and decode else None

    def path(
        self,
        group: str,
        version: str,
        plural: str,
        name: str = "",
        namespace: str = "",
        subresource: str = "",
    ) -> str:
        """The URL path for arbitrary requests via `request` (e.g. namespaces/x/finalize)."""
        return resource_path(group, version, plural, name, namespace, subresource)

    # -- verbs -------------------------------------------------------------------------------

    async def get(
        self, group: str, version: str, plural: str, name: str, namespace: str = ""
    ) -> Obj:
        """Read one object."""
        return await self.request("GET", resource_path(group, version, plural, name, namespace))

    async def list(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        continue_: str = "",
        resource_version: str = "",
    ) -> Obj:
        """Read one page of a collection (the whole of it unless `limit` is set)."""
        params = {
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "limit": limit or None,
            "continue": continue_,
            "resourceVersion": resource_version,
        }
        return await self.request(
            "GET", resource_path(group, version, plural, namespace=namespace), params=params
        )

    async def create(
        self, group: str, version: str, plural: str, obj: Obj, namespace: str = "", *,
        decode: bool = True,
    ) -> Obj:
        """Create an object in the collection (`decode=False`: return None, not it)."""
        ns = namespace or obj.get("metadata", {}).get("namespace", "")
        return await self.request(
            "POST",
            resource_path(group, version, plural, namespace=ns),
            params={"fieldManager": self.field_manager},
            body=obj,
            decode=decode,
        )

    async def update(
        self, group: str, version: str, plural: str, obj: Obj, namespace: str = "",
        subresource: str = "", *, decode: bool = True,
    ) -> Obj:
        """Replace an object; the server refuses it if resourceVersion is stale.
        (`decode=False`: return None rather than the stored object.)"""
        md = obj.get("metadata", {})
        ns = namespace or md.get("namespace", "")
        return await self.request(
            "PUT",
            resource_path(group, version, plural, md.get("name", ""), ns, subresource),
            params={"fieldManager": self.field_manager},
            body=obj,
            decode=decode,
        )

    async def update_status(
        self, group: str, version: str, plural: str, obj: Obj, namespace: str = "", *,
        decode: bool = True,
    ) -> Obj:
        """Replace an object's status subresource."""
        return await self.update(group, version, plural, obj, namespace, subresource="status",
                                 decode=decode)

    async def patch(
        self,
        group: str,
        version: str,
        plural: str,
        name: str,
        patch: Any,
        namespace: str = "",
        patch_type: str = "merge",
        field_manager: str | None = None,
        force: bool = False,
        subresource: str = "",
        *,
        decode: bool = True,
    ) -> Obj:
        """Patch an object; `apply` is server-side apply under this component's manager.
        (`decode=False`: return None rather than the stored object.)"""
        body: Any = patch
        if patch_type == "apply" and not isinstance(patch, bytes | str):
            body = orjson.dumps(patch)
        elif isinstance(patch, str):
            body = patch.encode()
        return await self.request(
            "PATCH",
            resource_path(group, version, plural, name, namespace, subresource),
            params={"fieldManager": field_manager or self.field_manager, "force": force},
            body=body,
            content_type=PATCH_CONTENT_TYPES[patch_type],
            decode=decode,
        )

    async def delete(
        self,
        group: str,
        version: str,
        plural: str,
        name: str,
        namespace: str = "",
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Obj | None = None,
    ) -> Obj:
        """Delete an object; returns the object (if finalizers keep it) or a Status."""
        return await self.request(
            "DELETE",
            resource_path(group, version, plural, name, namespace),
            body=_delete_options(propagation_policy, grace_period_seconds, preconditions),
        )

    async def delete_collection(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
    ) -> Obj:
        """Delete every matching object of a collection."""
        return await self.request(
            "DELETE",
            resource_path(group, version, plural, namespace=namespace),
            params={"labelSelector": label_selector, "fieldSelector": field_selector},
            body=_delete_options(propagation_policy, grace_period_seconds, None),
        )

    async def watch(
        self,
        group: str,
        version: str,
        plural: str,
        namespace: str = "",
        resource_version: str = "",
        label_selector: str = "",
        field_selector: str = "",
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncIterator[tuple[str, Obj]]:
        """Stream `(type, object)` events until the server ends the watch.

        An ERROR event is raised as the StatusError it carries (410 means the
        resourceVersion is too old and the caller must list again).
        """
        params = {
            "watch": True,
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": allow_bookmarks,
        }
        path = resource_path(group, version, plural, namespace=namespace)
        async with self._get_session().get(
            self.server + path,
            params=_query(params),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        ) as resp:
            METRICS.request(self.component, "WATCH", resp.status)
            if resp.status >= 300:
                raise status_error(resp.status, await resp.read())
            # Lines are split by hand: objects can exceed aiohttp's readline limit. A
            # chunk is split once; the unfinished last line waits in `partial` (a list,
            # so an object spread over many chunks is joined once, not re-copied each).
            partial: list[bytes] = []
            async for chunk in resp.content.iter_any():
                if b"\n" not in chunk:
                    partial.append(chunk)
                    continue
                if partial:
                    partial.append(chunk)
                    chunk = b"".join(partial)
                    partial.clear()
                lines = chunk.split(b"\n")
                tail = lines.pop()
                if tail:
                    partial.append(tail)
                for line in lines:
                    if line and not line.isspace():
                        yield _event(line)
            rest = b"".join(partial)
            if rest.strip():
                yield _event(rest)


def _event(line: bytes) -> tuple[str, Obj]:
    event = orjson.loads(line)
    kind = event.get("type", "")
    obj = event.get("object") or {}
    if kind == "ERROR":
        raise status_error(int(obj.get("code") or 500), orjson.dumps(obj))
    return kind, obj


def _delete_options(
    propagation_policy: str | None, grace_period_seconds: int | None, preconditions: Obj | None
) -> Obj:
    opts: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if propagation_policy:
        opts["propagationPolicy"] = propagation_policy
    if grace_period_seconds is not None:
        opts["gracePeriodSeconds"] = grace_period_seconds
    if preconditions:
        opts["preconditions"] = preconditions
    return opts


def _named(items: Any, name: str) -> Obj:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    return {}


def _data_or_file(section: Obj, key: str, base: Path) -> bytes | None:
    data = section.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    path = section.get(key)
    if path:
        with contextlib.suppress(OSError):
            return (base / path).read_bytes()
    return None

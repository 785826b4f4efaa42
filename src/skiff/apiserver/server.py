"""The API server: HTTPS, authentication, and routing to discovery, OpenAPI and
resource handlers."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from skiff.api import meta as m
from skiff.api.builtin_kinds import register_builtins
from skiff.api.errors import (
    StatusError,
    bad_request,
    conflict,
    internal,
    invalid,
    not_found,
    too_large,
    unauthorized,
)
from skiff.api.openapi.v3 import openapi_group_version, openapi_index
from skiff.api.resources import Registry, ResourceType
from skiff.api.tables import to_table
from skiff.api.validation.field import required
from skiff.apiserver import codec, discovery, keys
from skiff.apiserver.admission import AdmissionSettings
from skiff.apiserver.auth import PUBLIC_PATHS, USER, Authenticator, User
from skiff.apiserver.authn_reviews import self_subject_review, token_review
from skiff.apiserver.crds import CRDManager
from skiff.apiserver.event_ttl import run_event_ttl
from skiff.apiserver.eviction import evict
from skiff.apiserver.metrics_api import PREFIX as METRICS_PREFIX
from skiff.apiserver.metrics_api import RESOURCE_TYPES as METRICS_TYPES
from skiff.apiserver.metrics_api import MetricsAPI
from skiff.apiserver.node_proxy import NodeConnector, pod_log
from skiff.apiserver.patcher import Patcher
from skiff.apiserver.paths import Target, parse_resource_path
from skiff.apiserver.pki import ClusterPKI
from skiff.apiserver.resource_handlers import ResourceHandlers
from skiff.apiserver.resource_store import ResourceStore, WriteContext
from skiff.apiserver.sa_tokens import TokenAuthenticator, TokenSigner
from skiff.apiserver.schemas import SchemaCatalog
from skiff.apiserver.server_hooks import ServerHooks
from skiff.apiserver.stream_proxy import STREAM_RELAYS
from skiff.store.sqlite import Compactor, SQLiteStore

log = logging.getLogger(__name__)

KUBERNETES_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4-skiff",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}

MAX_HEADER_BYTES = 1 << 20

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

# The classes every cluster has, as upstream's API server creates them.
SYSTEM_PRIORITY_CLASSES = {
    "system-node-critical": (2000001000, "Used for system critical pods that must not be moved "
                                         "from their current node."),
    "system-cluster-critical": (2000000000, "Used for system critical pods that must run in "
                                            "the cluster, but can be moved to another node if "
                                            "necessary."),
}

StreamHandler = Callable[[web.Request, Target], Awaitable[web.StreamResponse]]
VirtualCreate = Callable[[web.Request, Target, Any, WriteContext], Awaitable[dict[str, Any]]]


def _json(obj: Any, status: int = 200, content_type: str = "application/json",
          headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=codec.dumps(obj), status=status,
                        headers={"Content-Type": content_type, **(headers or {})})


class APIServer:
    """One cluster's API server over one store."""

    def __init__(self, store: SQLiteStore, pki: ClusterPKI | None, host: str = "127.0.0.1",
                 port: int = 6443) -> None:
        self.store = store
        self.pki = pki
        self.host = host
        self.port = port
        # Set before `start` to also serve on a local socket (see `_serve_local_socket`).
        self.local_socket: Path | None = None
        self.registry = Registry()
        register_builtins(self.registry)
        self.schemas = SchemaCatalog()
        self.hooks = ServerHooks(self)
        self.objects = ResourceStore(store, self.hooks)
        self.objects.namespace_rt = self.registry.get("", "v1", "namespaces")
        crd_rt = self.registry.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_rt is not None
        self.crds = CRDManager(self.registry, self.schemas, self.objects, crd_rt)
        self.patcher = Patcher(self.objects, self.schemas)
        self.handlers = ResourceHandlers(self)
        self.auth = Authenticator()
        if pki is not None:
            self.auth.add_token(pki.admin_token, User("admin", ("system:masters",
                                                                "system:authenticated")))
        # Service account tokens: signed with the PKI's key (a key in memory without one).
        self.token_signer = TokenSigner(pki.sa_key if pki is not None else None)
        self.token_authenticator = TokenAuthenticator(self.token_signer, self._lookup_core)
        self.auth.add_token_check(self._service_account_user)
        self.stopping = asyncio.Event()
        self.ready = False
        self._runner: web.ServerRunner | None = None
        self._openapi: dict[str, dict[str, Any]] = {}
        self._openapi_index: dict[str, Any] | None = None
        self._discovery: dict[str, Any] = {}
        self.registry.on_change(self._invalidate)
        self._streams: dict[str, StreamHandler] = {}
        self._virtual: dict[str, VirtualCreate] = {
            "authorization.k8s.io/selfsubjectaccessreviews": self._self_subject_access_review,
            "core/bindings": self._binding_collection,
            "authentication.k8s.io/selfsubjectreviews": self._self_subject_review,
            "authentication.k8s.io/tokenreviews": self._token_review,
        }
        self._background: list[asyncio.Task[None]] = []
        self.admission = AdmissionSettings()
        # Node agents: the log subresource is proxied to them; the metrics API reads
        # their usage reports.
        self.nodes = NodeConnector(self)
        self.add_stream_subresource("log", lambda request, target: pod_log(self, request,
                                                                           target))
        for name, relay in STREAM_RELAYS.items():
            self.add_stream_subresource(name, functools.partial(relay, self))
        self.metrics = MetricsAPI(self)
        for rt in METRICS_TYPES:
            self.registry.register(rt)

    # -- service account tokens ------------------------------------------------

    def _lookup_core(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A stored core/v1 object, read synchronously (authentication runs per request)."""
        rt = self.registry.get("", "v1", plural)
        if rt is None or not name:
            return None
        kv = self.store.get_now(keys.object_key(rt, namespace, name))
        return orjson.loads(kv.value) if kv is not None else None

    def _service_account_user(self, token: str) -> User | None:
        found = self.token_authenticator.authenticate(token)
        if found is None:
            return None
        return User(found.name, found.groups, found.uid, found.extra)

    # -- lifecycle -------------------------------------------------------------

    def _invalidate(self) -> None:
        self._openapi.clear()
        self._openapi_index = None
        self._discovery.clear()

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS with optional client certificates signed by the cluster CA."""
        if self.pki is None:
            return None
        # Not ssl.create_default_context: that also trusts the system's public CAs
        # for client certificates (any publicly issued certificate would then name
        # a user) and loading them costs tens of milliseconds of startup.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.pki.server_cert), str(self.pki.server_key))
        ctx.load_verify_locations(cafile=str(self.pki.ca_cert))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def make_server(self) -> web.Server:
        """aiohttp's low-level server, every request going to `_dispatch`.

        skiff routes every path itself, so aiohttp's router and middleware chain would
        only add work to each of many small requests. Any path, even one with an
        encoded newline, reaches the resource handlers and gets a Status.
        """
        loop = asyncio.get_running_loop()

        def request(message: Any, payload: Any, protocol: Any, writer: Any,
                    task: asyncio.Task[None]) -> web.BaseRequest:
            return web.BaseRequest(message, payload, protocol, writer, task, loop,
                                   client_max_size=codec.MAX_BODY + 1)

        async def handle(req: web.BaseRequest) -> web.StreamResponse:
            return await self._errors_middleware(req, self._dispatch)  # type: ignore[arg-type]

        return web.Server(handle, request_factory=request, access_log=None,
                          max_line_size=MAX_HEADER_BYTES, max_field_size=MAX_HEADER_BYTES)

    async def start(self) -> None:
        """Bootstrap the cluster's own objects and start listening."""
        await self.crds.load()
        await self._bootstrap()
        # Upstream accepts request lines and headers up to 1 MiB (Go's default), so
        # long names and selectors reach routing and get a Status, not a parser error.
        self._runner = web.ServerRunner(self.make_server(), handle_signals=False,
                                        shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context(),
                           backlog=1024, reuse_address=True)
        await site.start()
        if self.port == 0:
            server = site._server  # noqa: SLF001 - aiohttp exposes no public accessor
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self.local_socket is not None:
            await self._serve_local_socket(self.local_socket)
        self._background.append(asyncio.ensure_future(Compactor(self.store).run()))
        self._background.append(asyncio.ensure_future(run_event_ttl(self.store, self.registry)))
        self.ready = True

    async def _serve_local_socket(self, path: Path) -> None:
        """Plain HTTP on an owner-only Unix socket, for `skiff up`'s own components.

        Requests on it authenticate as on the TLS port (client certificates aside), so
        only who can open the socket file and holds a token gets in; TLS would only cost
        both ends CPU on every request.
        """
        path.unlink(missing_ok=True)
        old_mask = os.umask(0o177)
        try:
            assert self._runner is not None
            await web.UnixSite(self._runner, str(path)).start()
        finally:
            os.umask(old_mask)
        os.chmod(path, 0o600)

    async def stop(self) -> None:
        """Stop serving: end watches, close connections."""
        self.ready = False
        self.stopping.set()
        for t in self._background:
            t.cancel()
        await self.crds.close()
        await self.nodes.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _bootstrap(self) -> None:
        ctx = WriteContext(user="system:apiserver", field_manager="kube-apiserver")
        for name in SYSTEM_NAMESPACES:
            await self._create_if_absent("", "namespaces", "", {
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, ctx)
        for name in SYSTEM_NAMESPACES:
            # The service account controller makes these too, but a moment after the
            # components start; a pod sent as soon as the cluster answers must not find
            # its namespace without the account admission looks up.
            await self._create_if_absent("", "serviceaccounts", name, {
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "default", "namespace": name}}, ctx)
        for name, (value, description) in SYSTEM_PRIORITY_CLASSES.items():
            await self._create_if_absent("scheduling.k8s.io", "priorityclasses", "", {
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": name}, "value": value, "description": description,
            }, ctx)
        await self._publish_cluster_info(ctx)
        await self._create_if_absent("", "services", "default", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "ports": [{"name": "https", "port": 443,
                                                     "protocol": "TCP",
                                                     "targetPort": self.port or 6443}]},
        }, ctx)

    async def _create_if_absent(self, group: str, plural: str, namespace: str,
                                body: dict[str, Any], ctx: WriteContext) -> None:
        # Present after the first start: skipping them early spares a restart the
        # defaulting and field-ownership work (and schema loading) of a create that
        # would fail anyway.
        rt = self.registry.get(group, "v1", plural)
        assert rt is not None
        key = keys.object_key(rt, namespace, body["metadata"]["name"])
        if self.store.get_now(key) is not None:
            return
        with contextlib.suppress(StatusError):
            await self.objects.create(rt, namespace, body, ctx)

    async def _publish_cluster_info(self, ctx: WriteContext) -> None:
        """kube-public/cluster-info, as kubeadm publishes it: the CA joining nodes trust."""
        if self.pki is None:
            return
        cm_rt = self.registry.get("", "v1", "configmaps")
        assert cm_rt is not None
        if self.store.get_now(keys.object_key(cm_rt, "kube-public", "cluster-info")) is not None:
            return
        import base64

        import yaml

        ca = base64.b64encode(self.pki.ca_cert.read_bytes()).decode()
        kubeconfig = {"apiVersion": "v1", "kind": "Config", "preferences": {},
                      "clusters": [{"name": "", "cluster": {
                          "certificate-authority-data": ca,
                          "server": f"https://{self.host}:{self.port}"}}],
                      "contexts": [], "users": []}
        with contextlib.suppress(StatusError):
            await self.objects.create(cm_rt, "kube-public", {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cluster-info", "namespace": "kube-public"},
                "data": {"kubeconfig": yaml.safe_dump(kubeconfig)}}, ctx)

    # -- plumbing for handlers -------------------------------------------------

    def table(self, rt: ResourceType, objects: list[dict[str, Any]], include: str,
              list_meta: dict[str, Any] | None) -> dict[str, Any]:
        """A server-side Table of `objects` as kubectl get prints them."""
        columns = self.crds.columns.get((rt.group, rt.version, rt.plural)) if rt.crd else None
        return to_table(rt.key, objects, now=m.now(), include_object=include,
                        crd_columns=columns, list_meta=list_meta)

    def virtual_create(self, rt: ResourceType) -> VirtualCreate | None:
        """The handler of a create that computes rather than stores, if `rt` has one."""
        return self._virtual.get(rt.key)

    def stream_subresource(self, name: str) -> StreamHandler | None:
        """The handler of a streaming pod subresource (log, exec, …), once node agents add it."""
        return self._streams.get(name)

    def add_stream_subresource(self, name: str, handler: StreamHandler) -> None:
        """Serve a streaming subresource (used by the node-agent integration)."""
        self._streams[name] = handler

    async def _self_subject_access_review(self, request: web.Request, target: Target, body: Any,
                                          ctx: WriteContext) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body must be a SelfSubjectAccessReview")
        out = dict(body)
        out.setdefault("apiVersion", "authorization.k8s.io/v1")
        out.setdefault("kind", "SelfSubjectAccessReview")
        out.setdefault("metadata", {})
        out["metadata"]["creationTimestamp"] = None
        # Every authenticated user may do everything until RBAC is served.
        out["status"] = {"allowed": True, "reason": "no authorization policy restricts this user"}
        return out

    async def _self_subject_review(self, request: web.Request, target: Target, body: Any,
                                   ctx: WriteContext) -> dict[str, Any]:
        return self_subject_review(request.get(USER), body)

    async def _token_review(self, request: web.Request, target: Target, body: Any,
                            ctx: WriteContext) -> dict[str, Any]:
        return token_review(self, body)

    async def _binding_collection(self, request: web.Request, target: Target, body: Any,
                                  ctx: WriteContext) -> dict[str, Any]:
        metadata = body.get("metadata") if isinstance(body, dict) else None
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if not isinstance(name, str) or not name:
            raise invalid("", "Binding", "", [
                required("metadata.name", "name or generateName is required")])
        return await self.bind_pod(target.namespace, name, body, ctx)

    async def bind_pod(self, namespace: str, name: str, body: Any,
                       ctx: WriteContext) -> dict[str, Any]:
        """Assign a pod to a node (the pods/binding subresource)."""
        if not isinstance(body, dict):
            raise bad_request("the body must be a Binding")
        target = body.get("target")
        node = target.get("name") if isinstance(target, dict) else None
        if not isinstance(node, str) or not node:
            raise bad_request("a Binding needs target.name, a node's name")
        binding_md = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        annotations = binding_md.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
            raise bad_request("metadata.annotations of a Binding must map strings to strings")
        wanted_uid = binding_md.get("uid") or ""
        pods = self.registry.get("", "v1", "pods")
        assert pods is not None

        def bind(stored: dict[str, Any]) -> dict[str, Any]:
            # `stored` is shared: copy only what a binding changes.
            pod = {**stored, "metadata": dict(stored["metadata"]),
                   "spec": dict(stored.get("spec") or {})}
            status = stored.get("status")
            if isinstance(status, dict):
                pod["status"] = {**status, "conditions": [
                    dict(c) if isinstance(c, dict) else c
                    for c in status.get("conditions") or []]}
            spec = pod["spec"]
            if pod["metadata"].get("deletionTimestamp"):
                raise conflict("", "pods", name, "pod is being deleted, cannot be assigned")
            if wanted_uid and pod["metadata"].get("uid") != wanted_uid:
                raise conflict("", "pods", name, "the UID in the Binding does not match the pod")
            current = spec.get("nodeName")
            if current:
                raise conflict("", "pods", name, f"pod {name} is already assigned to node "
                                                 f'"{current}"')
            spec["nodeName"] = node
            if annotations:
                # As upstream: a Binding's annotations are copied onto the pod.
                pod["metadata"]["annotations"] = {**(pod["metadata"].get("annotations") or {}),
                                                  **annotations}
            m.set_condition(pod, "PodScheduled", "True")
            return pod

        # As upstream's binding storage (a direct guaranteed update), a binding records no
        # field ownership: bound pods carry no scheduler entry in managedFields, and the
        # scheduler's thousand bindings a second skip the field-set comparison.
        bind_ctx = WriteContext(user=ctx.user, groups=ctx.groups, field_manager=ctx.field_manager,
                                dry_run=ctx.dry_run, managed_fields_done=True)
        await self.objects.guaranteed_update(pods, namespace, name, bind, bind_ctx,
                                             subresource="binding", prepared=True,
                                             private=False)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "code": 201}

    async def evict_pod(self, namespace: str, name: str, body: Any,
                        ctx: WriteContext) -> dict[str, Any]:
        """Evict a pod (the pods/eviction subresource): a graceful delete that honours
        PodDisruptionBudgets (see `eviction`)."""
        return await evict(self, namespace, name, body, ctx)

    # -- HTTP ------------------------------------------------------------------

    @web.middleware
    async def _errors_middleware(self, request: web.Request,
                                 handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                                 ) -> web.StreamResponse:
        try:
            return await handler(request)
        except StatusError as err:
            return _json(err.to_status(), err.code)
        except web.HTTPRequestEntityTooLarge:
            err = too_large()
            return _json(err.to_status(), err.code)
        except web.HTTPException:
            raise
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - any other failure is a server bug
            log.exception("internal error serving %s %s", request.method, request.path)
            err = internal(f"{type(exc).__name__}: {exc}")
            return _json(err.to_status(), err.code)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path not in PUBLIC_PATHS:
            user = self.auth.authenticate(request)
            if user is None:
                raise unauthorized()
            request[USER] = user
        if path in ("/version", "/version/"):
            return _json(KUBERNETES_VERSION)
        if path in ("/livez", "/readyz", "/healthz") or path.startswith(("/livez/", "/readyz/",
                                                                          "/healthz/")):
            ok = self.ready or path.startswith("/livez")
            return web.Response(text="ok" if ok else "not ready", status=200 if ok else 503)
        if path.startswith("/openapi/"):
            return self._openapi_response(request, path)
        parts = [p for p in path.split("/") if p]
        if parts == ["api"]:
            return self._discovery_response(request, core=True)
        if parts == ["apis"]:
            return self._discovery_response(request, core=False)
        if parts == ["api", "v1"]:
            doc = discovery.api_resource_list(self.registry, "", "v1")
            return _json(doc)
        if len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(self.registry, parts[1])
            if doc is None:
                raise not_found("", "", "")
            return _json(doc)
        if len(parts) == 3 and parts[0] == "apis":
            doc = discovery.api_resource_list(self.registry, parts[1], parts[2])
            if doc is None:
                raise StatusError(404, "NotFound",
                                  "the server could not find the requested resource")
            return _json(doc)
        if path.startswith(METRICS_PREFIX) and len(parts) > 3:
            if request.method != "GET":
                raise StatusError(405, "MethodNotAllowed",
                                  f"{request.method} is not supported on metrics")
            return _json(await self.metrics.handle(path, request.query))
        target = parse_resource_path(self.registry, path)
        return await self.handlers.handle(request, target)

    def _discovery_response(self, request: web.Request, core: bool) -> web.Response:
        accept = request.headers.get("Accept", "")
        if "as=APIGroupDiscoveryList" in accept:
            compact = accept.replace(" ", "")
            wants_v2 = any(part.endswith("v=v2") or "v=v2;" in part
                           for part in compact.split(","))
            ctype = (discovery.AGGREGATED_CONTENT_TYPE if wants_v2
                     else discovery.AGGREGATED_CONTENT_TYPE_V2BETA1)
            key = f"agg-{core}"
            if key not in self._discovery:
                self._discovery[key] = discovery.aggregated(self.registry, core)
            body = dict(self._discovery[key])
            if ctype == discovery.AGGREGATED_CONTENT_TYPE_V2BETA1:
                body["apiVersion"] = "apidiscovery.k8s.io/v2beta1"
            return _json(body, content_type=ctype)
        if core:
            return _json(discovery.api_versions(f"{self.host}:{self.port}"))
        return _json(discovery.api_group_list(self.registry))

    def _openapi_response(self, request: web.Request, path: str) -> web.Response:
        if path.rstrip("/") == "/openapi/v3":
            if self._openapi_index is None:
                self._openapi_index = openapi_index(self.registry, self._all_crd_components())
            return _json(self._openapi_index)
        if path.startswith("/openapi/v3/"):
            gv = path[len("/openapi/v3/"):].strip("/")
            parts = gv.split("/")
            if parts == ["api", "v1"]:
                group, version = "", "v1"
            elif len(parts) == 3 and parts[0] == "apis":
                group, version = parts[1], parts[2]
            else:
                raise StatusError(404, "NotFound", "the server could not find the requested "
                                                   "resource")
            if not self.registry.in_group_version(group, version):
                raise StatusError(404, "NotFound", "the server could not find the requested "
                                                   "resource")
            if gv not in self._openapi:
                self._openapi[gv] = openapi_group_version(
                    self.registry, group, version, self.schemas.custom_components(group, version))
            headers = {}
            if "hash" in request.query:
                headers["Cache-Control"] = "public, immutable"
            return _json(self._openapi[gv], headers=headers)
        raise StatusError(404, "NotFound", "the server could not find the requested resource")

    def _all_crd_components(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for group, versions in self.registry.groups().items():
            for v in versions:
                out.update(self.schemas.custom_components(group, v))
        return out

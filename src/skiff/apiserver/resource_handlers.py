"""HTTP handlers for resource URLs: the verbs on collections, objects and the
subresources that are views of the stored object (status, scale, binding, …)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from aiohttp import web

from skiff.api.errors import (
    STALE_OBJECT,
    bad_request,
    conflict,
    forbidden,
    invalid,
    method_not_allowed,
    not_found,
)
from skiff.api.resources import ResourceType
from skiff.apiserver import codec
from skiff.apiserver.auth import USER
from skiff.apiserver.field_checks import FieldChecker
from skiff.apiserver.list_options import parse_list_options
from skiff.apiserver.negotiation import TABLE_CONTENT_TYPE, negotiate
from skiff.apiserver.paths import Target
from skiff.apiserver.resource_store import DeleteOptions, WriteContext
from skiff.apiserver.scale import scale_of, set_replicas
from skiff.apiserver.shared_events import with_resource_version
from skiff.apiserver.token_request import create_token
from skiff.apiserver.watch_stream import stream_watch

if TYPE_CHECKING:
    from skiff.apiserver.server import APIServer


# Kinds whose storage upstream sets ReturnDeletedObject: a delete answers with the
# object even when it is gone at once. Every other kind answers with a Status.
_RETURN_DELETED_OBJECT = frozenset({"core/pods", "core/serviceaccounts", "core/services",
                                    "core/namespaces"})


def _check_dry_run(values: Any) -> bool:
    """Whether a dryRun list asks for a dry run; 400 for any value but All."""
    for v in values:
        if v != "All":
            raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
    return bool(values)


def _dry_run(request: web.Request) -> bool:
    return _check_dry_run(request.query.getall("dryRun", []))


IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")

# The JSON types of DeleteOptions' fields: a body that does not decode into the
# Go struct is refused before anything is deleted, as upstream's decoder does.
_DELETE_OPTION_TYPES: dict[str, tuple[type, str]] = {
    "apiVersion": (str, "string"), "kind": (str, "string"),
    "gracePeriodSeconds": (int, "int64"), "orphanDependents": (bool, "bool"),
    "propagationPolicy": (str, "v1.DeletionPropagation"), "dryRun": (list, "[]string"),
    "preconditions": (dict, "v1.Preconditions"),
    "ignoreStoreReadErrorWithClusterBreakingPotential": (bool, "bool"),
}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "value")


def _check_delete_option_types(src: dict[str, Any]) -> None:
    """400 for a DeleteOptions field of the wrong JSON type (null means unset)."""
    fields: list[tuple[str, Any, type, str]] = [
        (f"DeleteOptions.{k}", src[k], *_DELETE_OPTION_TYPES[k])
        for k in _DELETE_OPTION_TYPES if src.get(k) is not None]
    pre = src.get("preconditions")
    if isinstance(pre, dict):
        fields += [(f"DeleteOptions.preconditions.{k}", pre[k], str, "string")
                   for k in ("uid", "resourceVersion") if pre.get(k) is not None]
    for v in src.get("dryRun") or () if isinstance(src.get("dryRun"), list) else ():
        fields.append(("DeleteOptions.dryRun", v, str, "string"))
    for name, value, want, go_type in fields:
        ok = isinstance(value, want) and (want is bool or not isinstance(value, bool))
        if want is int and isinstance(value, float) and value.is_integer():
            ok = True
        if not ok:
            raise bad_request(f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                              f"{name} of type {go_type}")


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def _warn_orphaning_default(rt: ResourceType, opts: DeleteOptions, ctx: WriteContext) -> None:
    """Warn, as upstream, that a Job deleted without a policy leaves its pods behind."""
    if rt.key == "batch/jobs" and not opts.propagation_policy:
        ctx.warnings.append("child pods are preserved by default when jobs are deleted; set "
                            "propagationPolicy=Background to remove them or set "
                            "propagationPolicy=Orphan to suppress this warning")


def _quote(text: str) -> str:
    """A quoted warning text as upstream writes it (Go's strconv.Quote): control
    characters escaped, so a field name cannot break or inject a header line."""
    out = []
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) > 0x7E and not ch.isprintable():
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def default_field_manager(request: web.Request) -> str:
    """Upstream's default manager name: the User-Agent's program part."""
    ua = request.headers.get("User-Agent", "")
    return (ua.split("/", 1)[0] or "unknown")[:128]


class ResourceHandlers:
    """Serves every verb on resource URLs for one API server."""

    def __init__(self, server: APIServer) -> None:
        self.server = server
        self.objects = server.objects
        self.fields = FieldChecker(server.schemas)

    # -- helpers ---------------------------------------------------------------

    def _context(self, request: web.Request) -> WriteContext:
        user = request.get(USER)
        fm = request.query.get("fieldManager", "")
        if len(fm) > 128:
            raise invalid("meta.k8s.io", "PatchOptions", "", [{
                "reason": "FieldValueTooLong", "field": "fieldManager",
                "message": "Too long: may not be more than 128 bytes"}])
        return WriteContext(
            user=user.name if user else "system:anonymous",
            groups=user.groups if user else (),
            field_manager=fm or default_field_manager(request),
            dry_run=_dry_run(request),
            field_manager_set=bool(fm),
        )

    def _respond(self, request: web.Request, rt: ResourceType, obj: dict[str, Any],
                 status: int = 200, ctx: WriteContext | None = None) -> web.Response:
        rep = negotiate(request.headers.get("Accept"))
        headers = {}
        if ctx and ctx.warnings:
            headers["Warning"] = ", ".join(f"299 - {_quote(w)}" for w in ctx.warnings[:50])
        if rep.table and obj.get("kind") not in ("Status", "Scale"):
            body = self.server.table(rt, [obj] if "items" not in obj else obj["items"],
                                     request.query.get("includeObject", "Metadata"),
                                     obj.get("metadata") if "items" in obj else None)
            return web.Response(body=codec.dumps(body), status=status,
                                headers={"Content-Type": TABLE_CONTENT_TYPE, **headers})
        body = None
        if ctx is not None and ctx.stored is not None and ctx.stored[0] is obj:
            body = with_resource_version(ctx.stored[1], ctx.stored[2])
        return web.Response(body=body or codec.dumps(obj), status=status,
                            headers={"Content-Type": "application/json", **headers})

    async def _body(self, request: web.Request, rt: ResourceType) -> Any:
        raw = await request.read()
        return codec.decode_body(raw, request.headers.get("Content-Type"), rt.kind)

    async def _checked_body(self, request: web.Request, rt: ResourceType,
                            ctx: WriteContext, stored: dict[str, Any] | None = None) -> Any:
        """A create/update body, decoded and put through the request's field validation
        (`stored`: the object an update replaces, if any)."""
        raw = await request.read()
        content_type = request.headers.get("Content-Type")
        body = codec.decode_body(raw, content_type, rt.kind)
        if isinstance(body, dict):
            self.fields.check(rt, body, self.fields.mode(request), ctx, raw, content_type,
                              stored)
        return body

    # -- dispatch --------------------------------------------------------------

    async def handle(self, request: web.Request, target: Target) -> web.StreamResponse:
        """Route one resource request by method and target."""
        method = request.method
        rt = target.rt
        if target.subresource:
            return await self._subresource(request, target)
        if target.is_collection:
            if method == "GET":
                opts = parse_list_options(request.query)
                if opts.watch:
                    self._require(rt, "watch")
                    return await stream_watch(request, self.server, rt, target.namespace, opts)
                self._require(rt, "list")
                # As upstream, a list in a namespace that does not exist is empty.
                listing = await self.objects.list(rt, target.namespace, opts)
                return self._respond(request, rt, listing)
            if method == "POST":
                self._require(rt, "create")
                return await self._create(request, target)
            if method == "DELETE":
                self._require(rt, "deletecollection")
                return await self._delete_collection(request, target)
            raise method_not_allowed(f"{method} is not supported on a collection")
        if method == "GET":
            self._require(rt, "get")
            if request.query.get("watch") in ("true", "1"):
                raise bad_request("watch is only supported on collections")
            obj = await self.objects.get(rt, target.namespace, target.name)
            return self._respond(request, rt, obj)
        if method == "PUT":
            self._require(rt, "update")
            return await self._update(request, target)
        if method == "PATCH":
            self._require(rt, "patch")
            return await self._patch(request, target)
        if method == "DELETE":
            self._require(rt, "delete")
            return await self._delete(request, target)
        raise method_not_allowed(f"{method} is not supported on {rt.qualified}")

    @staticmethod
    def _require(rt: ResourceType, verb: str) -> None:
        if verb not in rt.verbs:
            raise method_not_allowed(f'the server does not allow this method on the requested '
                                     f'resource ({verb} {rt.qualified})')

    # -- verbs -----------------------------------------------------------------

    async def _create(self, request: web.Request, target: Target) -> web.Response:
        rt = target.rt
        ctx = self._context(request)
        virtual = self.server.virtual_create(rt)
        if virtual is not None:
            out = await virtual(request, target, await self._body(request, rt), ctx)
            return self._respond(request, rt, out, 201)
        body = await self._checked_body(request, rt, ctx)
        obj = await self.objects.create(rt, target.namespace, body, ctx)
        return self._respond(request, rt, obj, 201, ctx)

    async def _update(self, request: web.Request, target: Target) -> web.Response:
        """PUT on an object or its status/finalize subresource."""
        rt = target.rt
        ctx = self._context(request)
        stored = self.objects.current(rt, target.namespace, target.name)
        body = await self._checked_body(request, rt, ctx, stored)
        obj = await self.objects.update(rt, target.namespace, target.name, body, ctx,
                                        subresource=target.subresource, stored=stored)
        return self._respond(request, rt, obj, 200, ctx)

    async def _patch(self, request: web.Request, target: Target) -> web.Response:
        """PATCH on an object or its status subresource."""
        rt = target.rt
        ctx = self._context(request)
        raw = await request.read()
        mt, patch = codec.decode_patch(raw, request.headers.get("Content-Type"))
        mode = self.fields.mode(request)
        force = request.query.get("force", "") in ("true", "1")
        if mt == codec.APPLY_PATCH:
            obj, created = await self.server.patcher.apply(
                rt, target, patch, ctx, force, mode, self.fields)
            return self._respond(request, rt, obj, 201 if created else 200, ctx)
        if force:
            raise bad_request("force: Forbidden: may not be specified for non-apply patch")
        obj = await self.server.patcher.patch(rt, target, mt, patch, ctx, mode, self.fields)
        return self._respond(request, rt, obj, 200, ctx)

    def _delete_options(self, request: web.Request, body: Any) -> DeleteOptions:
        opts = DeleteOptions(dry_run=_dry_run(request))
        src: dict[str, Any] = {}
        if isinstance(body, dict):
            src = body
        elif body is not None:
            raise bad_request("the body of a delete must be a DeleteOptions object")
        _check_delete_option_types(src)
        q = request.query
        grace = q.get("gracePeriodSeconds", src.get("gracePeriodSeconds"))
        if grace is not None and grace != "":
            try:
                opts.grace_period_seconds = int(grace)
            except (TypeError, ValueError):
                raise bad_request(f"invalid gracePeriodSeconds: {grace!r}") from None
        policy = q.get("propagationPolicy", src.get("propagationPolicy")) or ""
        if policy not in ("", "Orphan", "Background", "Foreground"):
            raise invalid("meta.k8s.io", "DeleteOptions", "", [{
                "reason": "FieldValueNotSupported", "field": "propagationPolicy",
                "message": f'Unsupported value: "{policy}": supported values: "Foreground", '
                           '"Background", "Orphan", "nil"'}])
        orphan = q.get("orphanDependents", src.get("orphanDependents"))
        if orphan is not None and orphan != "":
            if policy:
                raise invalid("meta.k8s.io", "DeleteOptions", "", [{
                    "reason": "FieldValueInvalid", "field": "propagationPolicy",
                    "message": f'Invalid value: "{policy}": orphanDependents and '
                               "deletionPropagation cannot be both set"}])
            # The deprecated flag is a policy too: false deletes dependents in the
            # background, overriding an orphan finalizer as upstream.
            opts.orphan_dependents = orphan in (True, "true")
            policy = "Orphan" if opts.orphan_dependents else "Background"
        opts.propagation_policy = policy
        pre = src.get("preconditions") or {}
        if isinstance(pre, dict):
            opts.precondition_uid = str(pre.get("uid") or "")
            opts.precondition_rv = str(pre.get("resourceVersion") or "")
        if _check_dry_run(src.get("dryRun") or ()):
            opts.dry_run = True
        return opts

    async def _delete_body(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw.strip():
            return None
        return codec.decode_body(raw, request.headers.get("Content-Type"), "DeleteOptions")

    async def _delete(self, request: web.Request, target: Target) -> web.Response:
        rt = target.rt
        if rt.key == "core/namespaces" and target.name in IMMORTAL_NAMESPACES:
            # Upstream's NamespaceLifecycle admission refuses these outright.
            err = forbidden(f'namespaces "{target.name}" is forbidden: this namespace may not '
                            'be deleted')
            err.details = {"name": target.name, "kind": "namespaces"}
            raise err
        ctx = self._context(request)
        opts = self._delete_options(request, await self._delete_body(request))
        _warn_orphaning_default(rt, opts, ctx)
        obj, gone_now = await self.objects.delete(rt, target.namespace, target.name, opts, ctx)
        if gone_now and rt.key not in _RETURN_DELETED_OBJECT and isinstance(obj, dict):
            # Upstream's generic store answers an immediate delete with a Status
            # naming what was deleted; an object kept by finalizers comes back itself.
            md = obj.get("metadata") or {}
            details = {"name": md.get("name", target.name), "kind": rt.plural,
                       "uid": md.get("uid", "")}
            if rt.group:
                details["group"] = rt.group
            # Upstream's Status here carries no code.
            return self._respond(request, rt, {"kind": "Status", "apiVersion": "v1",
                                               "metadata": {}, "status": "Success",
                                               "details": details}, ctx=ctx)
        # Upstream answers 202 to a delete that asked for cascading through the
        # deprecated orphanDependents=false and is not finished yet.
        code = 202 if opts.orphan_dependents is False else 200
        return self._respond(request, rt, obj, code, ctx)

    async def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        rt = target.rt
        ctx = self._context(request)
        list_opts = parse_list_options(request.query)
        opts = self._delete_options(request, await self._delete_body(request))
        _warn_orphaning_default(rt, opts, ctx)
        out = await self.objects.delete_collection(rt, target.namespace, list_opts, opts, ctx)
        return self._respond(request, rt, out, ctx=ctx)

    # -- subresources ----------------------------------------------------------

    async def _subresource(self, request: web.Request, target: Target) -> web.StreamResponse:
        sub = target.subresource
        method = request.method
        rt = target.rt
        if sub in ("status", "finalize"):
            if method == "GET" and sub == "status":
                return self._respond(request, rt,
                                     await self.objects.get(rt, target.namespace, target.name))
            if method == "PUT":
                return await self._update(request, target)
            if method == "PATCH" and sub == "status":
                return await self._patch(request, target)
        elif sub == "scale":
            return await self._scale(request, target)
        elif sub == "binding" and method == "POST":
            body = await self._body(request, rt)
            ctx = self._context(request)
            out = await self.server.bind_pod(target.namespace, target.name, body, ctx)
            return self._respond(request, rt, out, 201)
        elif sub == "token" and method == "POST" and rt.key == "core/serviceaccounts":
            raw = await request.read()
            body = codec.decode_body(raw, request.headers.get("Content-Type"), "TokenRequest")
            out = await create_token(self.server, target.namespace, target.name, body)
            return self._respond(request, rt, out, 201)
        elif sub == "eviction" and method == "POST":
            body = await self._body(request, rt)
            ctx = self._context(request)
            out = await self.server.evict_pod(target.namespace, target.name, body, ctx)
            return self._respond(request, rt, out, 201)
        else:
            handler = self.server.stream_subresource(sub)
            if handler is not None:
                return await handler(request, target)
        raise method_not_allowed(f"{method} is not supported on {rt.plural}/{sub}")

    async def _scale(self, request: web.Request, target: Target) -> web.Response:
        rt = target.rt
        if rt.scale is None:
            raise not_found(rt.group, f"{rt.plural}/scale", target.name)
        if request.method == "GET":
            obj = await self.objects.get(rt, target.namespace, target.name)
            return self._respond(request, rt, scale_of(rt, obj))
        ctx = self._context(request)
        read_rv: str | None = None
        if request.method == "PUT":
            body = await self._body(request, rt)
            if not isinstance(body, dict):
                raise bad_request("the body must be a Scale object")
            new_scale = body
        elif request.method == "PATCH":
            raw = await request.read()
            mt, patch = codec.decode_patch(raw, request.headers.get("Content-Type"))
            current = scale_of(rt, await self.objects.get(rt, target.namespace, target.name))
            read_rv = current["metadata"].get("resourceVersion")
            new_scale = self.server.patcher.patch_plain(current, mt, patch)
        else:
            raise method_not_allowed(f"{request.method} is not supported on scale")
        if not isinstance(new_scale, dict):
            raise bad_request("the body must be a Scale object")
        for part in ("metadata", "spec"):
            if not isinstance(new_scale.get(part) or {}, dict):
                raise bad_request(f'Scale in version "v1" cannot be handled as a Scale: {part}: '
                                  f"Invalid value: must be of type object")
        replicas = (new_scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid("autoscaling", "Scale", target.name, [{
                "reason": "FieldValueInvalid", "field": "spec.replicas",
                "message": f"Invalid value: {replicas!r}: must be greater than or equal to 0"}])
        wanted_rv = str((new_scale.get("metadata") or {}).get("resourceVersion") or "")
        if request.method == "PATCH" and wanted_rv == str(read_rv or ""):
            # The version came from our own read, not the patch: a concurrent change
            # (a controller's status write) must not fail the patch, as upstream retries.
            wanted_rv = ""

        def mutate(old: dict[str, Any]) -> dict[str, Any]:
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt.group, rt.plural, target.name, STALE_OBJECT)
            new = copy.deepcopy(old)
            set_replicas(rt, new, replicas)
            return new

        # Upstream records scale writes as their own manager entry ("subresource: scale"),
        # which is what apply conflicts name afterwards.
        obj = await self.objects.guaranteed_update(rt, target.namespace, target.name, mutate, ctx,
                                                   "scale", precondition=bool(wanted_rv),
                                                   prepared=False)
        return self._respond(request, rt, scale_of(rt, obj))


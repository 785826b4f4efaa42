"""Generic storage of API objects: the create/read/update/delete/watch semantics
every kind shares, on top of the revisioned key-value store.

This is where server-maintained metadata (uid, creationTimestamp, generation,
resourceVersion, managedFields) is kept right, where compare-and-swap turns into
409 Conflict, and where deletion honours finalizers, propagation policies and
graceful pod termination.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from skiff.api import meta as m
from skiff.api.conversion import events as event_conversion
from skiff.api.conversion import hpa as hpa_conversion
from skiff.api.defaults import default_status
from skiff.api.errors import (
    STALE_OBJECT,
    StatusError,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    gone,
    invalid,
    not_found,
    timeout,
)
from skiff.api.patch._values import clone
from skiff.api.resources import ResourceType
from skiff.apiserver import keys
from skiff.apiserver.list_options import ListOptions, decode_continue, encode_continue
from skiff.apiserver.object_filter import ObjectFilter
from skiff.apiserver.shared_events import Raw, SharedEvents
from skiff.store.base import (
    CompactedError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    RevisionConflictError,
)
from skiff.store.sqlite import SQLiteStore

Obj = dict[str, Any]

# Metadata the server owns: clients cannot set these on create.
_SERVER_META = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                "deletionGracePeriodSeconds", "generation", "selfLink")
_GUARANTEED_UPDATE_TRIES = 16


async def _lost_race(attempt: int) -> None:
    """Pause before retrying a compare-and-swap that lost to another write.

    Reads see only committed values while the losing check also sees writes still
    being made durable; retrying at once would spin through every try before that
    write commits, so each retry waits a little longer (1 ms doubling, at most 50 ms).
    """
    await asyncio.sleep(min(0.001 * 2 ** attempt, 0.05))
# ObjectMeta collections marked omitempty upstream: an empty one is never stored, so a
# patch that removes the last owner reference or finalizer leaves no `[]` behind.
_OMIT_EMPTY_META = ("labels", "annotations", "ownerReferences", "finalizers")
# Upstream's message for a continue token whose revision was compacted (clients match it).
_INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
# Resources whose delete orphans dependents unless told otherwise: upstream keeps the
# pre-garbage-collector default of these v1 APIs for compatibility.
ORPHAN_BY_DEFAULT = frozenset({"batch/jobs", "core/replicationcontrollers"})


@dataclass
class WriteContext:
    """Who is writing and how: the parts of a request that shape a write."""

    user: str = "system:admin"
    groups: tuple[str, ...] = ()
    field_manager: str = ""
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)
    # Whether the request named its field manager (apply requires it).
    field_manager_set: bool = False
    # Set by server-side apply, which records ownership itself.
    managed_fields_done: bool = False
    # The object this request stored, its stored encoding and revision: the response
    # is that encoding with the resourceVersion put in, not a second encoding.
    stored: tuple[Obj, bytes, int] | None = None


@dataclass
class DeleteOptions:
    """The parts of metav1.DeleteOptions the server acts on."""

    grace_period_seconds: int | None = None
    propagation_policy: str = ""
    # The deprecated flag as sent (None when absent): false also changes the status code.
    orphan_dependents: bool | None = None
    precondition_uid: str = ""
    precondition_rv: str = ""
    dry_run: bool = False

    def check_preconditions(self, rt: ResourceType, obj: Obj) -> None:
        """409 unless `obj` is the object the preconditions name; worded as upstream's
        rest.BeforeDelete, which names the resource by its kind."""
        md = obj.get("metadata") or {}
        name, uid, rv = md.get("name", ""), md.get("uid"), md.get("resourceVersion")
        if self.precondition_uid and self.precondition_uid != uid:
            raise conflict(rt.group, rt.kind, name,
                           f"the UID in the precondition ({self.precondition_uid}) does not "
                           f"match the UID in record ({uid}). The object might have been "
                           "deleted and then recreated")
        if self.precondition_rv and self.precondition_rv != rv:
            raise conflict(rt.group, rt.kind, name,
                           f"the ResourceVersion in the precondition ({self.precondition_rv}) "
                           f"does not match the ResourceVersion in record ({rv}). The object "
                           "might have been modified")


class Hooks:
    """Kind-specific behaviour plugged into the generic paths (defaults,
    validation, admission, schemas). The server fills these in; tests may use a
    bare instance.
    """

    def default(self, rt: ResourceType, obj: Obj) -> None:
        """Fill in defaulted fields."""

    def validate(self, rt: ResourceType, obj: Obj, old: Obj | None,
                 subresource: str = "") -> list[dict[str, str]]:
        """Field causes for an invalid object (empty when valid); `subresource` is the
        endpoint an update came through."""
        return []

    async def admit(self, rt: ResourceType, obj: Obj, old: Obj | None, ctx: WriteContext) -> None:
        """Mutate or reject a write after defaulting (allocations, references)."""

    def managed_fields(
        self, rt: ResourceType, old: Obj | None, new: Obj, ctx: WriteContext, subresource: str
    ) -> None:
        """Record field ownership for an Update operation."""

    async def committed(self, rt: ResourceType, obj: Obj, deleted: bool) -> None:
        """Called after a write is durable (CRDs register their kinds here)."""


def decode(kv: KeyValue) -> Obj:
    """A stored value as an object, with its resourceVersion filled in."""
    obj = orjson.loads(kv.value)
    obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
    return obj


def encode(obj: Obj) -> bytes:
    """An object as stored: without resourceVersion, which is the row's revision."""
    md = obj["metadata"]
    rv = md.pop("resourceVersion", None)
    try:
        return orjson.dumps(obj)
    finally:
        if rv is not None:
            md["resourceVersion"] = rv


# Resources stored in another's shape: key (or `key@version` where versions of one
# resource differ) → (from storage, to storage).
_CONVERSIONS: dict[str, tuple[Callable[[Obj], Obj], Callable[[Obj], Obj]]] = {
    "events.k8s.io/events": (event_conversion.from_core, event_conversion.to_core),
    "autoscaling/horizontalpodautoscalers@v1": (hpa_conversion.to_v1, hpa_conversion.to_v2),
}


def _conversion(rt: ResourceType) -> tuple[Callable[[Obj], Obj], Callable[[Obj], Obj]] | None:
    return _CONVERSIONS.get(f"{rt.key}@{rt.version}") or _CONVERSIONS.get(rt.key)


def load(rt: ResourceType, kv: KeyValue) -> Obj:
    """A stored value as an object of `rt` (converted if `rt` shares another's storage)."""
    obj = decode(kv)
    conv = _conversion(rt)
    return conv[0](obj) if conv else obj


def _json_copy(obj: Any) -> Any:
    """A deep copy of a JSON value (a round trip is faster than deepcopy)."""
    try:
        return orjson.loads(orjson.dumps(obj))
    except (TypeError, orjson.JSONEncodeError):
        # Values orjson cannot write (integers beyond 64 bits) are copied the slow way.
        return clone(obj)


def _loads(rt: ResourceType, raw: bytes) -> Obj:
    obj = orjson.loads(raw)
    conv = _conversion(rt)
    return conv[0](obj) if conv else obj


def dump(rt: ResourceType, obj: Obj) -> bytes:
    """An object of `rt` as stored."""
    conv = _conversion(rt)
    return encode(conv[1](obj) if conv else obj)


def _remember_stored(rt: ResourceType, ctx: WriteContext, obj: Obj, value: bytes,
                     revision: int) -> None:
    # Only where the stored form is the served form (no conversion).
    if _conversion(rt) is None:
        ctx.stored = (obj, value, revision)


def gc_finalizers(rt: ResourceType, finalizers: list[str], policy: str) -> list[str]:
    """The finalizers a delete with propagation `policy` leaves on an object.

    As upstream: an explicit policy replaces whichever of `orphan` and
    `foregroundDeletion` the object carries (Background drops both); without one the
    object's own choice stands, else the resource's default (orphan for a few v1 APIs).
    """
    if not policy:
        if ORPHAN in finalizers or FOREGROUND in finalizers:
            return finalizers
        policy = "Orphan" if rt.key in ORPHAN_BY_DEFAULT else "Background"
    out = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
    if policy == "Orphan":
        out.append(ORPHAN)
    elif policy == "Foreground":
        out.append(FOREGROUND)
    # Keep the order (and so the stored object) when nothing changes.
    return finalizers if sorted(out) == sorted(finalizers) else out


def _drop_empty_meta(obj: Obj) -> None:
    md = obj.get("metadata")
    if isinstance(md, dict):
        for k in _OMIT_EMPTY_META:
            if k in md and md[k] in ({}, [], None):
                del md[k]


def _without(obj: Obj, *top: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in top}


def _comparable(obj: Obj) -> Obj:
    md = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    entries = md.get("managedFields")
    if isinstance(entries, list):
        # New timestamps alone are no change (as upstream), but new ownership is:
        # an apply that only takes or gives up fields must be stored.
        md["managedFields"] = [{k: v for k, v in e.items() if k != "time"}
                               if isinstance(e, dict) else e for e in entries]
    return {**obj, "metadata": md}


class ResourceStore:
    """API-level operations on the objects of any served resource."""

    def __init__(self, store: SQLiteStore, hooks: Hooks | None = None) -> None:
        self.store = store
        self.hooks = hooks or Hooks()
        # Looked up per request so the server can register the Namespace kind once.
        self.namespace_rt: ResourceType | None = None
        self.shared = SharedEvents(_loads)

    # -- reads -----------------------------------------------------------------

    async def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        """One object, or 404."""
        kv = await self.store.get(keys.object_key(rt, namespace, name))
        if kv is None:
            raise not_found(rt.group, rt.plural, name)
        return load(rt, kv)

    async def list(self, rt: ResourceType, namespace: str, opts: ListOptions) -> Obj:
        """A (possibly paged) list, consistent at one revision."""
        flt = ObjectFilter.for_request(rt, opts)
        prefix = keys.collection_prefix(rt, namespace)
        revision = 0
        start_after = ""
        if opts.continue_token:
            revision, start_after = decode_continue(opts.continue_token, prefix)
            if revision == -1:
                revision = 0
            elif revision < self.store.compacted_revision:
                # As upstream: hand out a token that continues at the latest revision.
                err = gone(_INCONSISTENT_CONTINUE)
                err.metadata = {"continue": encode_continue(-1, start_after)}
                raise err
        elif opts.resource_version and opts.resource_version != "0":
            requested = int(opts.resource_version)
            if opts.resource_version_match == "Exact":
                revision = requested
            elif requested > self.store.revision:
                raise timeout(f"Too large resource version: {requested}, current: "
                              f"{self.store.revision}")
        items: list[Obj] = []
        more = False
        last_key = ""
        cursor = start_after
        page = max(opts.limit, 0)
        try:
            while True:
                res = await self.store.list(prefix, revision=revision, start_after=cursor,
                                            limit=page)
                revision = res.revision
                for kv in res.items:
                    last_key = kv.key
                    obj = load(rt, kv)
                    if flt.matches(obj):
                        items.append(obj)
                        if opts.limit and len(items) == opts.limit:
                            break
                if opts.limit and len(items) == opts.limit:
                    more = res.more or last_key != res.items[-1].key
                    break
                if not res.more or not res.items:
                    break
                cursor = res.items[-1].key
        except CompactedError:
            raise gone("The resourceVersion for the provided list is too old.") from None
        except FutureRevisionError:
            raise timeout(f"Too large resource version: {revision}, current: "
                          f"{self.store.revision}") from None
        list_meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if more:
            list_meta["continue"] = encode_continue(revision, last_key)
        for obj in items:
            obj.setdefault("apiVersion", rt.api_version)
            obj.setdefault("kind", rt.kind)
        return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": list_meta,
                "items": items}

    async def watch(
        self, rt: ResourceType, namespace: str, opts: ListOptions
    ) -> AsyncIterator[tuple[str, Obj]]:
        """(type, object) pairs: the initial state if asked for, then every change."""
        async for batch in self.watch_batches(rt, namespace, opts):
            for item in batch:
                yield item

    async def watch_batches(
        self, rt: ResourceType, namespace: str, opts: ListOptions, raw: bool = False
    ) -> AsyncIterator[list[tuple[str, Any]]]:
        """The pairs `watch` yields, grouped as they became available.

        Objects of changes are decoded once and shared by every watcher of the
        change: consumers must not modify them. With `raw`, changes that need no
        decoding to be filtered (no selectors, no conversion) come as `Raw` instead,
        for a consumer that only forwards them.
        """
        flt = ObjectFilter.for_request(rt, opts)
        prefix = keys.collection_prefix(rt, namespace)
        rv = opts.resource_version
        initial = opts.send_initial_events
        if initial is None:
            initial = rv in ("", "0")
        start = int(rv) if rv and rv != "0" else 0
        if start and start < self.store.compacted_revision:
            raise gone(f"too old resource version: {start} ({self.store.compacted_revision})")
        if initial:
            res = await self.store.list(prefix)
            start = res.revision
            first: list[tuple[str, Obj]] = []
            for kv in res.items:
                obj = load(rt, kv)
                if flt.matches(obj):
                    first.append(("ADDED", obj))
            if opts.send_initial_events and opts.allow_bookmarks:
                first.append(("BOOKMARK", self.bookmark(rt, start, initial_events_end=True)))
            if first:
                yield first
        elif not start:
            start = self.store.revision
        try:
            forward = raw and flt.everything and _conversion(rt) is None
            async for events in self.store.watch_batches(prefix, start):
                out: list[tuple[str, Any]] = []
                for ev in events:
                    if forward:
                        out.append((("DELETED" if ev.kind == "DELETED" else
                                     "MODIFIED" if ev.prev_value is not None else "ADDED"),
                                    Raw(rt, ev)))
                        continue
                    obj = self.shared.current(rt, ev)
                    now_matches = flt.matches(obj)
                    if ev.kind == "DELETED":
                        if now_matches:
                            out.append(("DELETED", obj))
                        continue
                    was = False
                    if ev.prev_value is not None and not flt.everything:
                        was = flt.matches(self.shared.previous(rt, ev))
                    elif ev.prev_value is not None:
                        was = True
                    if now_matches:
                        out.append((("MODIFIED" if was else "ADDED"), obj))
                    elif was:
                        out.append(("DELETED", obj))
                if out:
                    yield out
        except CompactedError as exc:
            raise gone(f"too old resource version: {exc.requested} ({exc.compacted})") from None

    def bookmark(self, rt: ResourceType, revision: int, initial_events_end: bool = False) -> Obj:
        """A BOOKMARK object: only the kind and the revision reached."""
        md: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_events_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": md}

    # -- create ----------------------------------------------------------------

    def _check_type(self, rt: ResourceType, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise bad_request("the request body must be a JSON or YAML object")
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if api_version and api_version != rt.api_version or kind and kind != rt.kind:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})" if api_version != rt.api_version else
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        md = obj.get("metadata", {})
        if not isinstance(md, dict):
            raise bad_request("metadata must be an object")
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind

    async def _check_namespace(self, rt: ResourceType, namespace: str, creating: bool) -> None:
        if not rt.namespaced or self.namespace_rt is None:
            return
        kv = await self.store.get(keys.object_key(self.namespace_rt, "", namespace))
        if kv is None:
            raise not_found("", "namespaces", namespace)
        if creating and b'"deletionTimestamp"' in kv.value:
            ns = decode(kv)
            if ns["metadata"].get("deletionTimestamp"):
                err = forbidden(
                    f'{rt.qualified} "{{name}}" is forbidden: unable to create new content in '
                    f"namespace {namespace} because it is being terminated"
                )
                # The cause clients (client-go's HasStatusCause) look for, as upstream.
                err.details = {"kind": rt.plural, "causes": [{
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace"}]}
                if rt.group:
                    err.details["group"] = rt.group
                raise err

    def current(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        """The object as stored now (decoded, private to the caller), or None."""
        kv = self.store.get_now(keys.object_key(rt, namespace, name))
        return load(rt, kv) if kv is not None else None

    async def create(self, rt: ResourceType, namespace: str, obj: Any, ctx: WriteContext) -> Obj:
        """Store a new object; 409 if the name is taken."""
        self._check_type(rt, obj)
        md = m.metadata(obj)
        if rt.namespaced:
            body_ns = md.get("namespace")
            if body_ns and body_ns != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            md["namespace"] = namespace
        else:
            md.pop("namespace", None)
        if md.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        try:
            await self._check_namespace(rt, namespace, creating=True)
        except StatusError as err:
            if err.reason == "Forbidden":
                err.message = err.message.replace("{name}", md.get("name") or "")
                if err.details is not None and md.get("name"):
                    err.details["name"] = md["name"]
            raise
        for k in _SERVER_META:
            md.pop(k, None)
        _drop_empty_meta(obj)
        generated = not md.get("name") and bool(md.get("generateName"))
        if generated:
            md["name"] = m.generate_name(str(md["generateName"]))
        md["uid"] = m.new_uid()
        md["creationTimestamp"] = m.rfc3339()
        if rt.has_status:
            md["generation"] = 1
        if "status" in rt.subresources and rt.kind != "Node":
            obj.pop("status", None)
        self.hooks.default(rt, obj)
        causes = self.hooks.validate(rt, obj, None)
        if causes:
            raise invalid(rt.group, rt.kind, md.get("name") or md.get("generateName", ""), causes)
        # As upstream, ownership is recorded before admission: what admission adds (a
        # pod's service-account volume and default tolerations, a cluster IP) belongs
        # to no manager.
        self.hooks.managed_fields(rt, None, obj, ctx, "")
        try:
            await self.hooks.admit(rt, obj, None, ctx)
        except StatusError as err:
            if generated and err.reason == "Forbidden":
                # Upstream admits before it generates the name, so its refusals name the
                # object by generateName ('pods "web-7d4f-" is forbidden: ...').
                name, prefix = str(md["name"]), str(md["generateName"])
                err.message = err.message.replace(f'"{name}"', f'"{prefix}"', 1)
                if err.details and err.details.get("name") == name:
                    err.details["name"] = prefix
            raise
        if ctx.dry_run:
            if self.store.get_now(keys.object_key(rt, namespace, md["name"])) is not None:
                raise self._name_taken(rt, namespace, md["name"])
            return obj
        for attempt in range(8):
            try:
                value = dump(rt, obj)
                rev = await self.store.create(keys.object_key(rt, namespace, md["name"]),
                                              value)
                break
            except KeyExistsError:
                if not generated or attempt == 7:
                    raise self._name_taken(rt, namespace, md["name"]) from None
                md["name"] = m.generate_name(str(md["generateName"]))
        md["resourceVersion"] = str(rev)
        _remember_stored(rt, ctx, obj, value, rev)
        await self.hooks.committed(rt, obj, False)
        return obj

    def _name_taken(self, rt: ResourceType, namespace: str, name: str) -> StatusError:
        """The 409 for a create whose name is in use; as upstream, it says so when the
        holder is only waiting to go (a terminating namespace, an object held by
        finalizers), which is why a quick re-create fails."""
        err = already_exists(rt.group, rt.plural, name)
        kv = self.store.get_now(keys.object_key(rt, namespace, name))
        if kv is not None and b'"deletionTimestamp"' in kv.value and (
                decode(kv)["metadata"].get("deletionTimestamp")):
            err.message = f"object is being deleted: {err.message}"
        return err

    # -- update ----------------------------------------------------------------

    def _prepare_update(
        self, rt: ResourceType, old: Obj, new: Any, subresource: str, *, old_private: bool = False,
        new_private: bool = False,
    ) -> Obj:
        """The object an update of `old` with body `new` stores (before defaulting).

        With `old_private` the caller hands over a copy of the stored object nobody else
        holds, which a status write may then edit instead of copying it again; with
        `new_private` the same holds for the body, whose parts a status write may take.
        """
        take = (lambda v: v) if new_private else _json_copy
        self._check_type(rt, new)
        old_md = old["metadata"]
        new_md = m.metadata(new)
        body_name = new_md.get("name")
        if body_name and body_name != old_md["name"]:
            raise bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL "
                f"({old_md['name']})"
            )
        body_ns = new_md.get("namespace")
        if rt.namespaced and body_ns and body_ns != old_md.get("namespace"):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        if subresource == "status":
            # As upstream's status strategies: only status (and labels, annotations and
            # managedFields) come from the body; the body is copied only where taken.
            result = old if old_private else _json_copy(old)
            if "status" in new:
                result["status"] = take(new["status"])
            else:
                result.pop("status", None)
            rmd = result["metadata"]
            for k in ("labels", "annotations", "managedFields"):
                if k in new_md:
                    rmd[k] = take(new_md[k])
            return result
        if subresource == "finalize":
            result = _json_copy(old)
            result.setdefault("spec", {})["finalizers"] = (new.get("spec") or {}).get(
                "finalizers") or []
            return result
        result = new
        rmd = result["metadata"]
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "generation", "name"):
            if k in old_md:
                rmd[k] = old_md[k]
            else:
                rmd.pop(k, None)
        if rt.namespaced:
            rmd["namespace"] = old_md.get("namespace")
        if rt.key == "core/namespaces":
            # As upstream's namespace strategy: spec.finalizers change only through
            # the finalize subresource; an ordinary update keeps them.
            old_fins = (old.get("spec") or {}).get("finalizers")
            spec = result.get("spec")
            if old_fins is not None:
                if not isinstance(spec, dict):
                    spec = result["spec"] = {}
                spec["finalizers"] = old_fins
            elif isinstance(spec, dict):
                spec.pop("finalizers", None)
        if "status" in rt.subresources:
            if "status" in old:
                result["status"] = old["status"]
            else:
                result.pop("status", None)
        if rt.has_status or rt.crd:
            ignore = ("metadata", "status") if "status" in rt.subresources else ("metadata",)
            if _without(old, *ignore) != _without(result, *ignore):
                rmd["generation"] = int(old_md.get("generation") or 0) + 1
        if old_md.get("deletionTimestamp"):
            added = set(rmd.get("finalizers") or []) - set(old_md.get("finalizers") or [])
            if added:
                raise invalid(rt.group, rt.kind, old_md["name"], [{
                    "reason": "FieldValueForbidden", "field": "metadata.finalizers",
                    "message": "Forbidden: no new finalizers can be added if the object is "
                               "being deleted, found new finalizers " + repr(sorted(added)),
                }])
        return result

    async def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        ctx: WriteContext,
        subresource: str = "",
        stored: Obj | None = None,
    ) -> Obj:
        """Replace an object (PUT); honours a resourceVersion precondition in the body.

        The body is the caller's to give: a write stores parts of it as they are.
        `stored` is a private copy of the stored object the caller decoded anyway.
        """
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON or YAML object")
        wanted_rv = str((body.get("metadata") or {}).get("resourceVersion") or "")
        status = subresource == "status"
        # Only a retry after a lost race needs the body as it came: keep its encoding.
        pristine = b"" if status else orjson.dumps(body)
        body_taken = False

        def mutate(old: Obj) -> Obj:
            nonlocal body_taken
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                raise conflict(rt.group, rt.plural, name, STALE_OBJECT)
            if status:
                # `old` is guaranteed_update's private copy. The first attempt may take
                # the body's parts, a retry copies them.
                result = self._prepare_update(rt, old, body, subresource, old_private=True,
                                              new_private=not body_taken)
            else:
                # `old` is only read (not a private copy): the body becomes the result.
                result = self._prepare_update(
                    rt, old, orjson.loads(pristine) if body_taken else body, subresource)
            body_taken = True
            return result

        return await self.guaranteed_update(rt, namespace, name, mutate, ctx, subresource,
                                            precondition=bool(wanted_rv), private=status,
                                            first_copy=stored if status else None)

    async def guaranteed_update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj],
        ctx: WriteContext,
        subresource: str = "",
        *,
        precondition: bool = False,
        prepared: bool = True,
        private: bool = True,
        first_copy: Obj | None = None,
    ) -> Obj:
        """Read, mutate, validate and compare-and-swap, retrying lost races.

        `mutate` gets the current object and returns the new one (for PUT it already
        ran `_prepare_update`; pass prepared=False to have it run here). It gets a
        private copy it may edit, unless `private` is false: then it must build its
        result without modifying its argument. `first_copy` is such a copy the caller
        already decoded, used if the object has not changed since.
        """
        key = keys.object_key(rt, namespace, name)
        for attempt in range(_GUARANTEED_UPDATE_TRIES):
            kv = await self.store.get(key)
            if kv is None:
                raise not_found(rt.group, rt.plural, name)
            old = load(rt, kv)
            if not private:
                new = mutate(old)
            elif (first_copy is not None and attempt == 0
                    and first_copy["metadata"].get("resourceVersion") == str(kv.mod_revision)):
                new = mutate(first_copy)
            else:
                # A second decode is a private copy for `mutate`, several times cheaper
                # than copying the first.
                new = mutate(load(rt, kv))
            if not prepared:
                new = self._prepare_update(rt, old, new, subresource)
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            _drop_empty_meta(new)
            if subresource not in ("status", "binding"):
                # A binding only sets the node; the rest was defaulted when stored.
                self.hooks.default(rt, new)
            elif subresource == "status" and not rt.crd:
                default_status(rt, new)
            # A binding is the scheduler's one sanctioned change to an immutable
            # pod spec; it is checked by the binding handler instead.
            causes = [] if subresource == "binding" else self.hooks.validate(rt, new, old,
                                                                            subresource)
            if causes:
                raise invalid(rt.group, rt.kind, name, causes)
            await self.hooks.admit(rt, new, old, ctx)
            self.hooks.managed_fields(rt, old, new, ctx, subresource)
            if _comparable(new) == _comparable(old):
                return old
            if ctx.dry_run:
                return new
            if self._finalized(rt, old, new):
                try:
                    last = await self.store.delete(key, kv.mod_revision)
                except RevisionConflictError:
                    await _lost_race(attempt)
                    continue
                except KeyNotFoundError:
                    raise not_found(rt.group, rt.plural, name) from None
                new["metadata"]["resourceVersion"] = str(last.mod_revision)
                await self.hooks.committed(rt, new, True)
                return new
            try:
                value = dump(rt, new)
                rev = await self.store.update(key, value, kv.mod_revision)
            except RevisionConflictError:
                if precondition:
                    raise conflict(rt.group, rt.plural, name, STALE_OBJECT) from None
                await _lost_race(attempt)
                continue
            except KeyNotFoundError:
                raise not_found(rt.group, rt.plural, name) from None
            new["metadata"]["resourceVersion"] = str(rev)
            _remember_stored(rt, ctx, new, value, rev)
            await self.hooks.committed(rt, new, False)
            return new
        raise conflict(rt.group, rt.plural, name, "too many concurrent updates, try again")

    @staticmethod
    def _finalized(rt: ResourceType, old: Obj, new: Obj) -> bool:
        """Whether this update completes a pending deletion (the last finalizer went)."""
        md = new["metadata"]
        if not md.get("deletionTimestamp") or md.get("finalizers"):
            return False
        if rt.key == "core/namespaces":
            return not (new.get("spec") or {}).get("finalizers")
        if int(md.get("deletionGracePeriodSeconds") or 0) != 0:
            return False
        return True

    # -- delete ----------------------------------------------------------------

    async def delete(
        self, rt: ResourceType, namespace: str, name: str, opts: DeleteOptions, ctx: WriteContext
    ) -> tuple[Obj, bool]:
        """Delete or start deleting an object. Returns (object, done): done when the
        object is gone or its graceful deletion was already pending (answered as a
        finished delete), false when this request marked it for deletion."""
        key = keys.object_key(rt, namespace, name)
        for attempt in range(_GUARANTEED_UPDATE_TRIES):
            kv = await self.store.get(key)
            if kv is None:
                raise not_found(rt.group, rt.plural, name)
            obj = load(rt, kv)
            md = obj["metadata"]
            opts.check_preconditions(rt, obj)
            new = copy.deepcopy(obj)
            nmd = new["metadata"]
            finalizers = gc_finalizers(rt, list(nmd.get("finalizers") or []),
                                       opts.propagation_policy)
            grace = self._grace_period(rt, obj, opts)
            # A namespace is only marked by its first delete; a later one removes it
            # once nothing is left in spec.finalizers, as upstream's namespace storage.
            pending_namespace = rt.key == "core/namespaces" and not (
                md.get("deletionTimestamp") and not (obj.get("spec") or {}).get("finalizers"))
            if not finalizers and not grace and not pending_namespace:
                if opts.dry_run or ctx.dry_run:
                    return obj, True
                try:
                    last = await self.store.delete(key, kv.mod_revision)
                except RevisionConflictError:
                    await _lost_race(attempt)
                    continue
                except KeyNotFoundError:
                    raise not_found(rt.group, rt.plural, name) from None
                md["resourceVersion"] = str(last.mod_revision)
                await self.hooks.committed(rt, obj, True)
                return obj, True
            if md.get("deletionTimestamp"):
                # Already being deleted: a shorter grace period may hurry it up.
                old_grace = int(md.get("deletionGracePeriodSeconds") or 0)
                if old_grace and (grace is None or grace >= old_grace):
                    # A graceful deletion is pending: as upstream, nothing changes, not
                    # even the finalizers a propagation policy would set.
                    return obj, True
                if grace is None or grace >= old_grace:
                    if finalizers == list(md.get("finalizers") or []):
                        return obj, False
                else:
                    nmd["deletionGracePeriodSeconds"] = grace
                    # The period restarts from when the deletion began, as upstream.
                    began = (m.parse_time(md["deletionTimestamp"]) or m.now()) - dt.timedelta(
                        seconds=old_grace)
                    nmd["deletionTimestamp"] = m.rfc3339(began + dt.timedelta(seconds=grace))
            else:
                at = m.now()
                if grace:
                    at = at + dt.timedelta(seconds=grace)
                nmd["deletionTimestamp"] = m.rfc3339(at)
                nmd["deletionGracePeriodSeconds"] = grace or 0
                if rt.has_status or rt.crd:
                    nmd["generation"] = int(nmd.get("generation") or 0) + 1
            if finalizers:
                nmd["finalizers"] = finalizers
            if pending_namespace:
                new.setdefault("status", {})["phase"] = "Terminating"
            if opts.dry_run or ctx.dry_run:
                return new, False
            if rt.key == "core/pods" and grace == 0 and not finalizers:
                # The kubelet's final delete: nothing left to wait for.
                last = await self.store.delete(key, kv.mod_revision)
                md["resourceVersion"] = str(last.mod_revision)
                await self.hooks.committed(rt, obj, True)
                return obj, True
            try:
                rev = await self.store.update(key, dump(rt, new), kv.mod_revision)
            except RevisionConflictError:
                await _lost_race(attempt)
                continue
            except KeyNotFoundError:
                raise not_found(rt.group, rt.plural, name) from None
            nmd["resourceVersion"] = str(rev)
            await self.hooks.committed(rt, new, False)
            return new, False
        raise conflict(rt.group, rt.plural, name, "too many concurrent updates, try again")

    @staticmethod
    def _grace_period(rt: ResourceType, obj: Obj, opts: DeleteOptions) -> int | None:
        """The graceful-termination period of a delete (pods only; None elsewhere)."""
        if rt.key != "core/pods":
            return None
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0
        if opts.grace_period_seconds is not None:
            # As upstream, a negative period means one second, not "now".
            return 1 if opts.grace_period_seconds < 0 else opts.grace_period_seconds
        return int(spec.get("terminationGracePeriodSeconds", 30) or 0)

    async def delete_collection(
        self, rt: ResourceType, namespace: str, list_opts: ListOptions, opts: DeleteOptions,
        ctx: WriteContext,
    ) -> Obj:
        """Delete every object a list would return; returns the list of what was deleted."""
        listing = await self.list(rt, namespace, ListOptions(
            label_selector=list_opts.label_selector, field_selector=list_opts.field_selector))
        deleted = []
        for obj in listing["items"]:
            md = obj["metadata"]
            try:
                out, _ = await self.delete(rt, md.get("namespace", ""), md["name"], opts, ctx)
                deleted.append(out)
            except StatusError as err:
                if err.code != 404:
                    raise
        return {"kind": rt.list_kind, "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.store.revision)}, "items": deleted}

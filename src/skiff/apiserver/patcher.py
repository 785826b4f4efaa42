"""PATCH requests: the four patch types applied under compare-and-swap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skiff.api import meta as m
from skiff.api.apply import apply as server_side_apply
from skiff.api.apply import reset_fields
from skiff.api.errors import STALE_OBJECT, StatusError, bad_request, conflict, invalid
from skiff.api.patch.json_patch import apply_json_patch
from skiff.api.patch.merge_patch import apply_merge_patch
from skiff.api.patch.strategic import apply_strategic_merge_patch
from skiff.api.resources import ResourceType
from skiff.apiserver import codec
from skiff.apiserver.paths import Target
from skiff.apiserver.resource_store import ResourceStore, WriteContext

if TYPE_CHECKING:
    from skiff.apiserver.field_checks import FieldChecker
    from skiff.apiserver.schemas import SchemaCatalog

Obj = dict[str, Any]


class Patcher:
    """Applies patches to stored objects."""

    def __init__(self, objects: ResourceStore, schemas: SchemaCatalog) -> None:
        self.objects = objects
        self.schemas = schemas

    def patch_plain(self, obj: Obj, media_type: str, patch: Any) -> Obj:
        """Patch an object that has no schema-driven list semantics (e.g. Scale)."""
        if media_type == codec.JSON_PATCH:
            out = apply_json_patch(obj, patch)
        elif media_type in (codec.MERGE_PATCH, codec.STRATEGIC_PATCH, codec.APPLY_PATCH):
            if not isinstance(patch, dict):
                raise bad_request("the patch must be a JSON object")
            out = apply_merge_patch(obj, patch)
        else:
            raise StatusError(415, "UnsupportedMediaType", f"unsupported patch type {media_type}")
        if not isinstance(out, dict):
            raise bad_request("the patched object must be a JSON object")
        return out

    def _apply_patch(self, rt: ResourceType, old: Obj, media_type: str, patch: Any) -> Obj:
        if media_type == codec.JSON_PATCH:
            out = apply_json_patch(old, patch)
        elif media_type == codec.MERGE_PATCH:
            if not isinstance(patch, dict):
                raise bad_request("the merge patch must be a JSON object")
            out = apply_merge_patch(old, patch)
        else:
            if rt.crd:
                raise StatusError(
                    415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types "
                    "include: application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml")
            out = apply_strategic_merge_patch(old, patch, self.schemas.node(rt))
        if not isinstance(out, dict):
            raise bad_request("the patched object must be a JSON object")
        return out

    async def patch(self, rt: ResourceType, target: Target, media_type: str, patch: Any,
                    ctx: WriteContext, mode: str, fields: FieldChecker) -> Obj:
        """JSON, merge or strategic merge patch of an existing object.

        A patch that names a resourceVersion is a precondition: a lost race is
        retried, and the retry's mutate then finds the version moved on and
        answers 409.
        """

        def mutate(old: Obj) -> Obj:
            old_rv = old["metadata"]["resourceVersion"]
            new = self._apply_patch(rt, old, media_type, patch)
            # A patch can turn metadata into anything; the type check below rejects it.
            md = new.get("metadata")
            new_rv = str((md.get("resourceVersion") if isinstance(md, dict) else "") or "")
            if new_rv and new_rv != old_rv:
                raise conflict(rt.group, rt.plural, target.name, STALE_OBJECT)
            fields.check(rt, new, mode, ctx, stored=old)
            return new

        # The patch functions leave their input alone: `mutate` needs no private copy.
        return await self.objects.guaranteed_update(
            rt, target.namespace, target.name, mutate, ctx, target.subresource, prepared=False,
            private=False)

    async def apply(self, rt: ResourceType, target: Target, applied: Any, ctx: WriteContext,
                    force: bool, mode: str, fields: FieldChecker) -> tuple[Obj, bool]:
        """Server-side apply; creates the object when it does not exist yet."""
        if not isinstance(applied, dict):
            raise bad_request("the apply patch must be a YAML or JSON object")
        if not ctx.field_manager_set:
            raise invalid("meta.k8s.io", "PatchOptions", "", [{
                "reason": "FieldValueRequired", "field": "fieldManager",
                "message": "Required value: is required for apply patch"}])
        md = applied.get("metadata")
        if not isinstance(md, dict):
            raise bad_request("metadata must be set in an apply patch")
        name = md.get("name")
        if name and name != target.name:
            raise bad_request(
                f"the name of the object ({name}) does not match the name on the URL "
                f"({target.name})")
        for field in ("apiVersion", "kind"):
            if not applied.get(field):
                raise invalid(rt.group, rt.kind, target.name, [{
                    "reason": "FieldValueRequired", "field": field,
                    "message": "Required value: " + field + " must be set"}])
        fields.check(rt, applied, mode, ctx)
        node = self.schemas.node(rt)
        ctx.managed_fields_done = True
        try:
            existing = await self.objects.get(rt, target.namespace, target.name)
        except StatusError as err:
            if err.code != 404 or target.subresource:
                raise
            existing = None
        if existing is None:
            obj = server_side_apply(None, applied, ctx.field_manager, force, node,
                                    rt.api_version, m.rfc3339(),
                                    ignored=reset_fields(rt.subresources, ""))
            obj.setdefault("metadata", {})["name"] = target.name
            created = await self.objects.create(rt, target.namespace, obj, ctx)
            return created, True

        def mutate(old: Obj) -> Obj:
            return server_side_apply(old, applied, ctx.field_manager, force, node,
                                     rt.api_version, m.rfc3339(), subresource=target.subresource,
                                     ignored=reset_fields(rt.subresources, target.subresource))

        out = await self.objects.guaranteed_update(
            rt, target.namespace, target.name, mutate, ctx, target.subresource, prepared=False)
        return out, False

"""The kind-specific behaviour the API server plugs into generic storage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skiff.api import meta as m
from skiff.api.apply import reset_fields, update_managed_fields
from skiff.api.defaults import apply_defaults
from skiff.api.resources import ResourceType
from skiff.api.schema.custom_validation import apply_custom_defaults, validate_custom
from skiff.api.validation import validate as validate_builtin
from skiff.api.validation.metadata import validate_object_meta, validate_object_meta_update
from skiff.apiserver import admission
from skiff.apiserver.resource_store import Hooks, WriteContext

if TYPE_CHECKING:
    from skiff.apiserver.server import APIServer

Obj = dict[str, Any]


class ServerHooks(Hooks):
    """Defaulting, validation, admission and field ownership for every kind."""

    def __init__(self, server: APIServer) -> None:
        self.server = server

    def default(self, rt: ResourceType, obj: Obj) -> None:
        """Upstream's defaults for built-in kinds; the schema's defaults for custom ones."""
        if not rt.crd:
            apply_defaults(rt, obj)
            return
        node = self.server.schemas.node(rt)
        if node is not None:
            apply_custom_defaults(obj, node.raw)

    def validate(self, rt: ResourceType, obj: Obj, old: Obj | None,
                 subresource: str = "") -> list[dict[str, str]]:
        """Field causes for an invalid object."""
        if not rt.crd:
            return validate_builtin(rt, obj, old, subresource)
        md = obj.get("metadata") or {}
        causes = validate_object_meta(md, rt.namespaced)
        node = self.server.schemas.node(rt)
        if node is not None:
            causes += validate_custom(obj, node.raw)
        if old is not None:
            causes += validate_object_meta_update(md, old.get("metadata") or {},
                                                  require_resource_version=False)
        return causes

    async def admit(self, rt: ResourceType, obj: Obj, old: Obj | None, ctx: WriteContext) -> None:
        """Allocations and server-set fields that depend on cluster state."""
        if rt.key == "apiextensions.k8s.io/customresourcedefinitions":
            self.server.crds.admit(obj, old)
        await admission.admit(self.server.store, rt, obj, old, self.server.admission)

    def managed_fields(self, rt: ResourceType, old: Obj | None, new: Obj, ctx: WriteContext,
                       subresource: str) -> None:
        """Record the writer's field ownership (server-side apply records its own)."""
        if ctx.managed_fields_done:
            return
        update_managed_fields(old, new, ctx.field_manager, "Update", self.server.schemas.node(rt),
                              m.rfc3339(), subresource,
                              ignored=reset_fields(rt.subresources, subresource))

    async def committed(self, rt: ResourceType, obj: Obj, deleted: bool) -> None:
        """Serve CRDs' kinds as soon as they are stored."""
        if rt.key == "apiextensions.k8s.io/customresourcedefinitions":
            self.server.crds.sync(obj, deleted)

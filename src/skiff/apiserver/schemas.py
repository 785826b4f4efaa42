"""Which schema describes each served resource: built-ins from the generated
client models, custom resources from their CRD."""

from __future__ import annotations

from typing import Any

from skiff.api.resources import ResourceType
from skiff.api.schema import builtin
from skiff.api.schema.node import SchemaNode


class SchemaCatalog:
    """Looks up the `SchemaNode` of a resource's objects."""

    def __init__(self) -> None:
        self._builtin: dict[tuple[str, str, str], SchemaNode | None] = {}
        self._crd: dict[tuple[str, str, str], SchemaNode] = {}
        self._crd_components: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

    def node(self, rt: ResourceType) -> SchemaNode | None:
        """The schema of `rt`'s objects, or None when it has none (free-form)."""
        gvk = (rt.group, rt.version, rt.kind)
        if rt.crd:
            return self._crd.get(gvk)
        if gvk not in self._builtin:
            self._builtin[gvk] = builtin.node_for(*gvk)
        return self._builtin[gvk]

    def set_custom(self, rt: ResourceType, name: str, component: dict[str, Any] | None) -> None:
        """Record (or clear) the schema of a custom resource version."""
        gvk = (rt.group, rt.version, rt.kind)
        comps = self._crd_components.setdefault((rt.group, rt.version), {})
        comps.pop(name, None)
        if component is None:
            self._crd.pop(gvk, None)
            return
        comps[name] = component
        self._crd[gvk] = SchemaNode(component, builtin.lazy_components())

    def drop_custom(self, rt: ResourceType) -> None:
        """Forget a custom resource version's schema."""
        self._crd.pop((rt.group, rt.version, rt.kind), None)
        comps = self._crd_components.get((rt.group, rt.version), {})
        for name in [n for n, c in comps.items()
                     if {"group": rt.group, "version": rt.version, "kind": rt.kind}
                     in c.get("x-kubernetes-group-version-kind", [])]:
            comps.pop(name)

    def custom_components(self, group: str, version: str) -> dict[str, dict[str, Any]]:
        """The CRD schemas served in one group-version's OpenAPI document."""
        return dict(self._crd_components.get((group, version), {}))

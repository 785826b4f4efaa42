"""Parsing resource URLs into what they address."""

from __future__ import annotations

from dataclasses import dataclass

from skiff.api.errors import StatusError, not_found
from skiff.api.resources import Registry, ResourceType


@dataclass(frozen=True)
class Target:
    """What a resource URL addresses: a collection, an object or a subresource."""

    rt: ResourceType
    namespace: str = ""
    name: str = ""
    subresource: str = ""

    @property
    def is_collection(self) -> bool:
        """Whether the URL names a collection (list, watch, create)."""
        return not self.name


def _page_not_found(path: str) -> StatusError:
    return StatusError(404, "NotFound", "the server could not find the requested resource",
                       {"causes": [{"reason": "UnexpectedServerResponse", "message": path}]}
                       if path else None)


def parse_resource_path(registry: Registry, path: str) -> Target:
    """Map `/api/v1/...` or `/apis/<g>/<v>/...` to a Target; 404 for unknown resources."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise _page_not_found(path)
    if not rest:
        raise _page_not_found(path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        ns_rt = registry.get(group, version, "namespaces")
        if len(rest) == 3 and ns_rt is not None and rest[2] in ns_rt.subresources:
            return Target(ns_rt, "", rest[1], rest[2])
        namespace, rest = rest[1], rest[2:]
    rt = registry.get(group, version, rest[0])
    if rt is None or len(rest) > 3:
        raise _page_not_found(path)
    if namespace and not rt.namespaced:
        raise _page_not_found(path)
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in rt.subresources:
        raise _page_not_found(path)
    if name and rt.namespaced and not namespace:
        raise _page_not_found(path)
    if name in (".", "..") or "%" in name:
        raise not_found(rt.group, rt.plural, name)
    return Target(rt, namespace, name, sub)

"""Where objects live in the store.

`/registry/<group>/<plural>/<namespace>/<name>` for namespaced kinds and
`/registry/<group>/<plural>/<name>` for cluster-scoped ones, so a list of one
namespace or of all namespaces is a prefix scan.
"""

from __future__ import annotations

from skiff.api.resources import ResourceType

ROOT = "/registry/"


def collection_prefix(rt: ResourceType, namespace: str = "") -> str:
    """The prefix holding every object of `rt` (in `namespace`, if given)."""
    base = f"{ROOT}{rt.storage_key}/"
    return f"{base}{namespace}/" if namespace and rt.namespaced else base


def object_key(rt: ResourceType, namespace: str, name: str) -> str:
    """The key of one object."""
    if rt.namespaced:
        return f"{ROOT}{rt.storage_key}/{namespace}/{name}"
    return f"{ROOT}{rt.storage_key}/{name}"


def namespace_from_key(rt: ResourceType, key: str) -> str:
    """The namespace part of a namespaced object's key."""
    if not rt.namespaced:
        return ""
    rest = key[len(collection_prefix(rt)) :]
    return rest.split("/", 1)[0]

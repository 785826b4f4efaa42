"""Upstream component names for the client's generated model classes.

The generated class names (`V1PodSpec`, `CoreV1Event`) drop the Go package a type
lives in, but OpenAPI consumers such as `kubectl explain` and `kubectl apply` know
types by upstream's names (`io.k8s.api.core.v1.PodSpec`). A type belongs to the
package of the kind that reaches it unless it is one of the shared types listed
here, which live in apimachinery's meta package or in core.
"""

from __future__ import annotations

import re

META_PACKAGE = "io.k8s.apimachinery.pkg.apis.meta"
CORE_PACKAGE = "io.k8s.api.core"

_SPECIAL_PACKAGES = {
    "": CORE_PACKAGE,
    "core": CORE_PACKAGE,
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
    "apiextensions": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
    "apiregistration.k8s.io": "io.k8s.kube-aggregator.pkg.apis.apiregistration",
    "apiregistration": "io.k8s.kube-aggregator.pkg.apis.apiregistration",
    "meta": META_PACKAGE,
}

# Types defined in apimachinery's meta/v1 package, whoever refers to them.
META_TYPES = frozenset(
    {
        "ObjectMeta", "ListMeta", "LabelSelector", "LabelSelectorRequirement",
        "ManagedFieldsEntry", "OwnerReference", "Condition", "Status", "StatusDetails",
        "StatusCause", "DeleteOptions", "Preconditions", "APIResource", "APIResourceList",
        "APIGroup", "APIGroupList", "APIVersions", "GroupVersionForDiscovery",
        "ServerAddressByClientCIDR", "WatchEvent", "Time", "MicroTime", "FieldsV1",
    }
)

# Core types that kinds of other groups embed.
CORE_TYPES = frozenset(
    {
        "PodTemplateSpec", "PersistentVolumeClaim", "ObjectReference", "EventSource",
        "TypedLocalObjectReference", "LocalObjectReference",
    }
)

# Stable types that point at a pre-release type in another group (workload-aware
# scheduling fields on Jobs): the version alone says where that type lives.
_CROSS_VERSION_PACKAGES = {"v1alpha3": "io.k8s.api.scheduling"}

_CLASS = re.compile(
    r"^(?P<prefix>[A-Z][a-z]+)?(?P<ver>V\d+(?:alpha\d+|beta\d+)?)(?P<type>[A-Z]\w*)$"
)


def package_for_group(group: str) -> str:
    """The Go package prefix (without version) holding a group's types."""
    if group in _SPECIAL_PACKAGES:
        return _SPECIAL_PACKAGES[group]
    return f"io.k8s.api.{group.split('.', 1)[0]}"


def split_class(name: str) -> tuple[str | None, str, str]:
    """`CoreV1Event` → ("core", "v1", "Event"); `V1Pod` → (None, "v1", "Pod")."""
    m = _CLASS.match(name)
    if m is None:
        raise ValueError(f"not a generated model class name: {name}")
    prefix = m["prefix"].lower() if m["prefix"] else None
    return prefix, m["ver"].lower(), m["type"]


def class_for(group: str, version: str, kind: str, known: set[str] | dict[str, object]) -> str:
    """The generated class for a kind, preferring a group-qualified name if one exists."""
    ver = version[0].upper() + version[1:]
    prefix = (group.split(".", 1)[0] or "core").capitalize()
    qualified = f"{prefix}{ver}{kind}"
    return qualified if qualified in known else f"{ver}{kind}"


def component_name(cls: str, parent_package: str) -> str:
    """Upstream's component name for model class `cls` reached from `parent_package`."""
    prefix, version, type_name = split_class(cls)
    if type_name in META_TYPES:
        package = META_PACKAGE
    elif prefix is not None:
        package = package_for_group(prefix)
    elif type_name in CORE_TYPES:
        package = CORE_PACKAGE
    elif version in _CROSS_VERSION_PACKAGES:
        package = _CROSS_VERSION_PACKAGES[version]
    else:
        package = parent_package
    return f"{package}.{version}.{type_name}"

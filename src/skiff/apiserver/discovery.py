"""Discovery documents: which groups, versions and resources the server serves.

Both forms kubectl understands are served: aggregated discovery (v2, two requests
for everything) and the legacy per-group-version documents.
"""

from __future__ import annotations

from typing import Any

from skiff.api.resources import Registry, ResourceType

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_CONTENT_TYPE_V2BETA1 = (
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
)

# Subresources that are verbs on their own rather than stored views.
_SUBRESOURCE_VERBS = {
    "status": ("get", "patch", "update"),
    "scale": ("get", "patch", "update"),
    "finalize": ("update",),
    "binding": ("create",),
    "eviction": ("create",),
    "log": ("get",),
    "exec": ("create", "get"),
    "attach": ("create", "get"),
    "portforward": ("create", "get"),
    "proxy": ("create", "delete", "get", "patch", "update"),
    "ephemeralcontainers": ("get", "patch", "update"),
    "token": ("create",),
}
_SUBRESOURCE_KINDS = {
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
    "log": ("", "v1", "Pod"),
    "exec": ("", "v1", "PodExecOptions"),
    "attach": ("", "v1", "PodAttachOptions"),
    "portforward": ("", "v1", "PodPortForwardOptions"),
    "proxy": ("", "v1", "PodProxyOptions"),
    "token": ("authentication.k8s.io", "v1", "TokenRequest"),
}


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


def _sub_kind(rt: ResourceType, sub: str) -> dict[str, str]:
    g, v, k = _SUBRESOURCE_KINDS.get(sub, (rt.group, rt.version, rt.kind))
    return _gvk(g, v, k)


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": _gvk(rt.group, rt.version, rt.kind),
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": sorted(rt.verbs),
    }
    if rt.short_names:
        res["shortNames"] = list(rt.short_names)
    if rt.categories:
        res["categories"] = list(rt.categories)
    if rt.subresources:
        res["subresources"] = [
            {"subresource": s, "responseKind": _sub_kind(rt, s),
             "verbs": list(_SUBRESOURCE_VERBS.get(s, ("get",)))}
            for s in rt.subresources
        ]
    return res


def _ordered_groups(registry: Registry) -> list[tuple[str, list[str]]]:
    groups = registry.groups()
    core = [("", groups.pop(""))] if "" in groups else []
    builtin = [(g, vs) for g, vs in groups.items() if "." not in g or g.endswith(".k8s.io")]
    custom = sorted((g, vs) for g, vs in groups.items() if (g, vs) not in builtin)
    return core + builtin + custom


def aggregated(registry: Registry, core: bool) -> dict[str, Any]:
    """The APIGroupDiscoveryList for `/api` (core=True) or `/apis`."""
    items = []
    for group, versions in _ordered_groups(registry):
        if (group == "") != core:
            continue
        items.append({
            "metadata": {"name": group},
            "versions": [
                {
                    "version": v,
                    "freshness": "Current",
                    "resources": [_aggregated_resource(rt) for rt in
                                  sorted(registry.in_group_version(group, v),
                                         key=lambda r: r.plural)],
                }
                for v in versions
            ],
        })
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}


def api_versions(server_address: str) -> dict[str, Any]:
    """The legacy `/api` document."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                        "serverAddress": server_address}],
    }


def _group(group: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": vs, "preferredVersion": vs[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    """The legacy `/apis` document."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(g, vs) for g, vs in _ordered_groups(registry) if g],
    }


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    """The legacy `/apis/<group>` document, or None if not served."""
    versions = registry.groups().get(group)
    if not versions or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """The legacy `/api/v1` or `/apis/<group>/<version>` document, or None."""
    rts = sorted(registry.in_group_version(group, version), key=lambda r: r.plural)
    if not rts:
        return None
    resources: list[dict[str, Any]] = []
    for rt in rts:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": sorted(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in rt.subresources:
            sk = _sub_kind(rt, sub)
            sentry: dict[str, Any] = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": sk["kind"],
                "verbs": list(_SUBRESOURCE_VERBS.get(sub, ("get",))),
            }
            if sk["group"] != rt.group or sk["version"] != rt.version:
                sentry["group"] = sk["group"]
                sentry["version"] = sk["version"]
            resources.append(sentry)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": resources}

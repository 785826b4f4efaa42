"""The built-in kinds skiff serves.

Adding a kind is one `ResourceType` here (plus, where it needs them, a validator in
`validation/` and a table in `tables/`).
"""

from __future__ import annotations

from typing import Any

from skiff.api.resources import FieldGetter, Registry, ResourceType, ScalePaths


def _path(dotted: str) -> FieldGetter:
    keys = dotted.split(".")

    def get(obj: dict[str, Any]) -> str | None:
        cur: Any = obj
        for k in keys:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(k)
        if cur is None:
            return None
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return get


def _fields(*paths: str) -> dict[str, FieldGetter]:
    return {p: _path(p) for p in paths}


def _pod_ips(obj: dict[str, Any]) -> str | None:
    ips = (obj.get("status") or {}).get("podIPs") or []
    return ",".join(i.get("ip", "") for i in ips) or None


def _event_source(obj: dict[str, Any]) -> str | None:
    return (obj.get("source") or {}).get("component") or obj.get("reportingComponent")


_EVENT_FIELDS = {
    **_fields(
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "type",
    ),
    "source": _event_source,
}

_POD_FIELDS = {
    **_fields(
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "status.podIPs": _pod_ips,
}

_WORKLOAD_SCALE = ScalePaths()
# A ReplicationController's selector is a plain label map, not a LabelSelector.
_RC_SCALE = ScalePaths(label_selector="spec.selector")

BUILTIN: tuple[ResourceType, ...] = (
    # Upstream serves no deletecollection on namespaces: one DELETE must not empty a cluster.
    ResourceType("", "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",),
                 subresources=("status", "finalize"), field_selectors=_fields("status.phase"),
                 has_status=False, verbs=("create", "delete", "get", "list", "patch", "update",
                                          "watch")),
    ResourceType("", "v1", "Pod", "pods", short_names=("po",), categories=("all",),
                 subresources=("status", "binding", "eviction", "log", "exec", "attach",
                               "portforward", "ephemeralcontainers"),
                 field_selectors=_POD_FIELDS, has_status=False),
    ResourceType("", "v1", "Binding", "bindings", verbs=("create",), has_status=False),
    ResourceType("", "v1", "Node", "nodes", namespaced=False, short_names=("no",),
                 subresources=("status", "proxy"), field_selectors=_fields("spec.unschedulable"),
                 has_status=False),
    ResourceType("", "v1", "Service", "services", short_names=("svc",), categories=("all",),
                 subresources=("status", "proxy"),
                 field_selectors=_fields("spec.clusterIP", "spec.type"), has_status=False),
    ResourceType("", "v1", "Endpoints", "endpoints", short_names=("ep",), has_status=False),
    ResourceType("", "v1", "ReplicationController", "replicationcontrollers",
                 short_names=("rc",), categories=("all",), subresources=("status", "scale"),
                 scale=_RC_SCALE, field_selectors=_fields("status.replicas")),
    ResourceType("", "v1", "ConfigMap", "configmaps", short_names=("cm",), has_status=False),
    ResourceType("", "v1", "Secret", "secrets", has_status=False, field_selectors=_fields("type")),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",),
                 subresources=("token",), has_status=False),
    ResourceType("", "v1", "Event", "events", short_names=("ev",), has_status=False,
                 field_selectors=_EVENT_FIELDS),
    ResourceType("events.k8s.io", "v1", "Event", "events", short_names=("ev",), has_status=False,
                 stored_as="core/events",
                 field_selectors=_fields("regarding.kind", "regarding.namespace",
                                         "regarding.name", "regarding.uid", "reason", "type",
                                         "reportingController")),
    ResourceType("apps", "v1", "Deployment", "deployments", short_names=("deploy",),
                 categories=("all",), subresources=("status", "scale"), scale=_WORKLOAD_SCALE),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",),
                 categories=("all",), subresources=("status", "scale"), scale=_WORKLOAD_SCALE,
                 field_selectors=_fields("status.replicas")),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", short_names=("sts",),
                 categories=("all",), subresources=("status", "scale"), scale=_WORKLOAD_SCALE),
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", short_names=("ds",),
                 categories=("all",), subresources=("status",)),
    ResourceType("apps", "v1", "ControllerRevision", "controllerrevisions", has_status=False),
    ResourceType("batch", "v1", "Job", "jobs", categories=("all",), subresources=("status",),
                 field_selectors=_fields("status.successful")),
    ResourceType("batch", "v1", "CronJob", "cronjobs", short_names=("cj",), categories=("all",),
                 subresources=("status",)),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", has_status=False),
    ResourceType("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", namespaced=False,
                 short_names=("pc",), has_status=False),
    # v2 first: the preferred version. v1 objects are v2 ones read and written through
    # the conversion in `skiff.api.conversion.hpa`.
    ResourceType("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
                 short_names=("hpa",), categories=("all",), subresources=("status",)),
    ResourceType("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
                 short_names=("hpa",), categories=("all",), subresources=("status",)),
    ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets",
                 short_names=("pdb",), subresources=("status",)),
    ResourceType("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
                 "customresourcedefinitions", namespaced=False, short_names=("crd", "crds"),
                 subresources=("status",)),
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectAccessReview",
                 "selfsubjectaccessreviews", namespaced=False, verbs=("create",),
                 has_status=False),
    ResourceType("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews",
                 namespaced=False, verbs=("create",), has_status=False),
    ResourceType("authentication.k8s.io", "v1", "TokenReview", "tokenreviews",
                 namespaced=False, verbs=("create",), has_status=False),
)


def register_builtins(registry: Registry) -> None:
    """Register every built-in kind."""
    for rt in BUILTIN:
        registry.register(rt)


# Resources that are served but never stored: their create is a computation.
VIRTUAL = {"core/bindings", "authorization.k8s.io/selfsubjectaccessreviews",
           "authentication.k8s.io/selfsubjectreviews", "authentication.k8s.io/tokenreviews"}

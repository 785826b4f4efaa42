"""Strategic-merge and list/map topology metadata for built-in types.

The client's generated models lose upstream's Go struct tags, so the patch
strategies, merge keys and list types that strategic merge patch and server-side
apply need are restated here, keyed by upstream component name and JSON field.
Where upstream marks a whole type atomic (`+structType=atomic`), it is listed in
`ATOMIC_TYPES`.
"""

from __future__ import annotations

from typing import Any

CORE = "io.k8s.api.core.v1."
APPS = "io.k8s.api.apps.v1."
BATCH = "io.k8s.api.batch.v1."
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
APIEXT = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."


def _merge_map(*keys: str, retain: bool = False) -> dict[str, Any]:
    """A list merged element-wise by `keys[0]` (SMP) and keyed by all `keys` (SSA)."""
    strategy = "merge,retainKeys" if retain else "merge"
    return {
        "x-kubernetes-patch-strategy": strategy,
        "x-kubernetes-patch-merge-key": keys[0],
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": list(keys),
    }


def _merge_only(key: str) -> dict[str, Any]:
    """A list SMP merges by `key` but that SSA treats as atomic or unkeyed."""
    return {"x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": key}


ATOMIC_LIST: dict[str, Any] = {"x-kubernetes-list-type": "atomic"}
SET_LIST: dict[str, Any] = {"x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-type": "set"}
CONDITIONS = _merge_map("type")

_CONTAINER_LISTS: dict[str, dict[str, Any]] = {
    "ports": _merge_map("containerPort", "protocol"),
    "env": _merge_map("name"),
    "volumeMounts": _merge_map("mountPath"),
    "volumeDevices": _merge_map("devicePath"),
    "resizePolicy": ATOMIC_LIST,
    "args": ATOMIC_LIST,
    "command": ATOMIC_LIST,
    "envFrom": ATOMIC_LIST,
}

FIELD_EXTENSIONS: dict[str, dict[str, dict[str, Any]]] = {
    META + "ObjectMeta": {
        "finalizers": SET_LIST,
        "ownerReferences": _merge_map("uid"),
    },
    META + "LabelSelector": {"matchExpressions": ATOMIC_LIST},
    CORE + "PodSpec": {
        "volumes": _merge_map("name", retain=True),
        "initContainers": _merge_map("name"),
        "containers": _merge_map("name"),
        "ephemeralContainers": _merge_map("name"),
        "imagePullSecrets": _merge_map("name"),
        "hostAliases": _merge_map("ip"),
        "tolerations": ATOMIC_LIST,
        "readinessGates": ATOMIC_LIST,
        "topologySpreadConstraints": _merge_map("topologyKey", "whenUnsatisfiable"),
        "resourceClaims": _merge_map("name", retain=True),
        "schedulingGates": _merge_map("name"),
    },
    CORE + "Container": _CONTAINER_LISTS,
    CORE + "EphemeralContainer": _CONTAINER_LISTS,
    CORE + "PodStatus": {
        "conditions": CONDITIONS,
        "podIPs": _merge_map("ip"),
        "hostIPs": {**_merge_only("ip"), **ATOMIC_LIST},
        "resourceClaimStatuses": _merge_map("name", retain=True),
        "containerStatuses": ATOMIC_LIST,
        "initContainerStatuses": ATOMIC_LIST,
        "ephemeralContainerStatuses": ATOMIC_LIST,
    },
    CORE + "NodeSpec": {
        "podCIDRs": SET_LIST,
        # Upstream leaves taints without a merge key: patches replace the list.
        "taints": ATOMIC_LIST,
    },
    CORE + "NodeStatus": {
        "conditions": CONDITIONS,
        "addresses": _merge_map("type"),
    },
    CORE + "ServiceSpec": {
        "ports": _merge_map("port", "protocol"),
        "clusterIPs": ATOMIC_LIST,
        "externalIPs": ATOMIC_LIST,
        "ipFamilies": ATOMIC_LIST,
        "loadBalancerSourceRanges": ATOMIC_LIST,
    },
    CORE + "ServiceStatus": {"conditions": CONDITIONS},
    CORE + "NamespaceStatus": {"conditions": CONDITIONS},
    CORE + "PersistentVolumeClaimStatus": {"conditions": CONDITIONS},
    CORE + "ServiceAccount": {"secrets": _merge_map("name")},
    CORE + "EndpointSubset": {
        "addresses": ATOMIC_LIST,
        "notReadyAddresses": ATOMIC_LIST,
        "ports": ATOMIC_LIST,
    },
    CORE + "Endpoints": {"subsets": ATOMIC_LIST},
    CORE + "NodeSelectorTerm": {"matchExpressions": ATOMIC_LIST, "matchFields": ATOMIC_LIST},
    CORE + "NodeSelector": {"nodeSelectorTerms": ATOMIC_LIST},
    APPS + "DeploymentSpec": {"strategy": {"x-kubernetes-patch-strategy": "retainKeys"}},
    APPS + "DeploymentStatus": {"conditions": CONDITIONS},
    APPS + "ReplicaSetStatus": {"conditions": CONDITIONS},
    APPS + "StatefulSetStatus": {"conditions": CONDITIONS},
    APPS + "DaemonSetStatus": {"conditions": CONDITIONS},
    APPS + "StatefulSetSpec": {"volumeClaimTemplates": ATOMIC_LIST},
    BATCH + "JobStatus": {"conditions": {**_merge_only("type"), **ATOMIC_LIST}},
    BATCH + "CronJobStatus": {"active": ATOMIC_LIST},
    APIEXT + "CustomResourceDefinitionStatus": {"conditions": CONDITIONS},
    APIEXT + "CustomResourceDefinitionSpec": {"versions": ATOMIC_LIST},
}

# Types upstream marks `+structType=atomic`: replaced whole, never merged.
ATOMIC_TYPES: frozenset[str] = frozenset(
    {
        META + "LabelSelector",
        CORE + "LocalObjectReference",
        CORE + "ObjectReference",
        CORE + "ConfigMapKeySelector",
        CORE + "SecretKeySelector",
        CORE + "ObjectFieldSelector",
        CORE + "ResourceFieldSelector",
        CORE + "NodeSelector",
        CORE + "NodeSelectorTerm",
        CORE + "TypedLocalObjectReference",
        CORE + "TopologySelectorTerm",
    }
)

# (component, field) whose values are resource quantities: a map of them when the
# model says Dict, a single quantity otherwise.
QUANTITY_FIELDS: frozenset[tuple[str, str]] = frozenset(
    {
        (CORE + "ResourceRequirements", "limits"),
        (CORE + "ResourceRequirements", "requests"),
        (CORE + "VolumeResourceRequirements", "limits"),
        (CORE + "VolumeResourceRequirements", "requests"),
        (CORE + "PodSpec", "overhead"),
        (CORE + "NodeStatus", "capacity"),
        (CORE + "NodeStatus", "allocatable"),
        (CORE + "ContainerStatus", "allocatedResources"),
        (CORE + "PersistentVolumeClaimStatus", "capacity"),
        (CORE + "PersistentVolumeClaimStatus", "allocatedResources"),
        (CORE + "EmptyDirVolumeSource", "sizeLimit"),
        (CORE + "ResourceFieldSelector", "divisor"),
    }
)

"""Defaulting of built-in kinds: `apply_defaults(rt, obj)` fills upstream's defaults in place.

The API server calls this on every create and update before validation, so that
stored objects and what clients read back carry the same defaults a real cluster
would show (and `kubectl diff` stays quiet).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skiff.api.defaults.apiextensions import default_crd
from skiff.api.defaults.apps import (
    default_daemonset,
    default_deployment,
    default_replicaset,
    default_replication_controller,
    default_statefulset,
)
from skiff.api.defaults.autoscaling import default_hpa
from skiff.api.defaults.batch import default_cronjob, default_job
from skiff.api.defaults.core import (
    default_endpoints,
    default_namespace,
    default_node,
    default_secret,
    default_service,
)
from skiff.api.defaults.pod import default_pod
from skiff.api.defaults.scheduling import default_priorityclass
from skiff.api.resources import ResourceType

Defaulter = Callable[[dict[str, Any]], None]

DEFAULTERS: dict[str, Defaulter] = {
    "core/pods": default_pod,
    "core/services": default_service,
    "core/secrets": default_secret,
    "core/namespaces": default_namespace,
    "core/nodes": default_node,
    "core/endpoints": default_endpoints,
    "core/replicationcontrollers": default_replication_controller,
    "apps/deployments": default_deployment,
    "apps/replicasets": default_replicaset,
    "apps/statefulsets": default_statefulset,
    "apps/daemonsets": default_daemonset,
    "autoscaling/horizontalpodautoscalers": default_hpa,
    "batch/jobs": default_job,
    "batch/cronjobs": default_cronjob,
    "apiextensions.k8s.io/customresourcedefinitions": default_crd,
    "scheduling.k8s.io/priorityclasses": default_priorityclass,
}


# The status fields upstream's Go types serialize even when zero (no `omitempty`),
# by resource. Upstream's status is a struct, never absent: a new object reads back
# with these (or `{}`), and typed clients that require them (the Python client's
# V1ReplicaSetStatus.replicas, V2HorizontalPodAutoscalerStatus.desiredReplicas...)
# find them before any controller wrote a status.
ZERO_STATUS: dict[str, dict[str, int]] = {
    "core/replicationcontrollers": {"replicas": 0},
    "apps/deployments": {},
    "apps/replicasets": {"replicas": 0},
    "apps/statefulsets": {"replicas": 0, "availableReplicas": 0},
    "apps/daemonsets": {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                        "desiredNumberScheduled": 0, "numberReady": 0},
    "batch/jobs": {},
    "batch/cronjobs": {},
    "autoscaling/horizontalpodautoscalers": {"desiredReplicas": 0},
    # autoscaling/v1's currentReplicas has no omitempty either (v2's has).
    "autoscaling/v1/horizontalpodautoscalers": {"currentReplicas": 0, "desiredReplicas": 0},
    "policy/poddisruptionbudgets": {"disruptionsAllowed": 0, "currentHealthy": 0,
                                    "desiredHealthy": 0, "expectedPods": 0},
}


def default_status(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Give a built-in kind's object the status a Go struct serializes to when unset."""
    if rt.crd or not isinstance(obj, dict):
        return
    zeros = ZERO_STATUS.get(rt.key)
    if obj.get("apiVersion") == "autoscaling/v1":
        zeros = ZERO_STATUS.get(f"autoscaling/v1/{rt.plural}", zeros)
    if zeros is None:
        return
    status = obj.get("status")
    if status is None:
        status = obj["status"] = {}
    elif not isinstance(status, dict):
        return
    for key, value in zeros.items():
        if status.get(key) is None:
            status[key] = value


def apply_defaults(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Fill `obj`'s defaults in place; kinds without defaults are left untouched."""
    if rt.crd or not isinstance(obj, dict):
        return
    defaulter = DEFAULTERS.get(rt.key)
    if defaulter is not None:
        defaulter(obj)
    default_status(rt, obj)

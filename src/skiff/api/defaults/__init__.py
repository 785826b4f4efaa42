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


def apply_defaults(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Fill `obj`'s defaults in place; kinds without defaults are left untouched."""
    if rt.crd or not isinstance(obj, dict):
        return
    defaulter = DEFAULTERS.get(rt.key)
    if defaulter is not None:
        defaulter(obj)

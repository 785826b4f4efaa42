"""Validation of built-in kinds: `validate(rt, obj, old)` → field causes.

The API server calls this after defaulting and before storing. Every kind gets
object-metadata validation; kinds in `VALIDATORS` also get their own spec checks.
Validators never raise on malformed input: a wrong JSON type is a cause too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skiff.api.resources import ResourceType
from skiff.api.validation import field
from skiff.api.validation.apiextensions import validate_crd
from skiff.api.validation.apps import (
    validate_controllerrevision,
    validate_daemonset,
    validate_deployment,
    validate_replicaset,
    validate_replication_controller,
    validate_statefulset,
)
from skiff.api.validation.autoscaling import validate_hpa
from skiff.api.validation.batch import validate_cronjob, validate_job
from skiff.api.validation.config import validate_configmap, validate_secret
from skiff.api.validation.coordination import validate_lease
from skiff.api.validation.core import (
    validate_core_event,
    validate_endpoints,
    validate_events_v1,
    validate_namespace,
    validate_node,
    validate_pod,
)
from skiff.api.validation.field import Cause
from skiff.api.validation.metadata import validate_object_meta, validate_object_meta_update
from skiff.api.validation.names import dns1123_label, dns1123_subdomain, rfc1035_label
from skiff.api.validation.pod_status import validate_pod_status
from skiff.api.validation.policy import validate_pdb
from skiff.api.validation.scheduling import validate_priorityclass
from skiff.api.validation.services import validate_service

KindValidator = Callable[[dict[str, Any], dict[str, Any] | None], list[Cause]]

VALIDATORS: dict[str, KindValidator] = {
    "core/pods": validate_pod,
    "core/services": validate_service,
    "core/configmaps": validate_configmap,
    "core/secrets": validate_secret,
    "core/namespaces": validate_namespace,
    "core/nodes": validate_node,
    "core/endpoints": validate_endpoints,
    "core/replicationcontrollers": validate_replication_controller,
    "core/events": validate_core_event,
    "events.k8s.io/events": validate_events_v1,
    "apps/deployments": validate_deployment,
    "apps/replicasets": validate_replicaset,
    "apps/statefulsets": validate_statefulset,
    "apps/daemonsets": validate_daemonset,
    "apps/controllerrevisions": validate_controllerrevision,
    "autoscaling/horizontalpodautoscalers": validate_hpa,
    "batch/jobs": validate_job,
    "batch/cronjobs": validate_cronjob,
    "coordination.k8s.io/leases": validate_lease,
    "policy/poddisruptionbudgets": validate_pdb,
    "apiextensions.k8s.io/customresourcedefinitions": validate_crd,
    "scheduling.k8s.io/priorityclasses": validate_priorityclass,
}

# Kinds whose names end up in DNS or as label values need the stricter rules;
# everything else is a DNS subdomain.
NAME_VALIDATORS: dict[str, Callable[[str], list[str]]] = {
    "core/namespaces": dns1123_label,
    "core/services": rfc1035_label,
}


# Kinds whose status subresource writes are checked by their own rules instead of
# the kind's (the spec a status write cannot change is not validated again).
STATUS_VALIDATORS: dict[str, KindValidator] = {
    "core/pods": validate_pod_status,
}


def validate(
    rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None = None,
    subresource: str = "",
) -> list[Cause]:
    """All causes why `obj` may not be stored (replacing `old` on update); [] when valid.

    `subresource` names the endpoint written through (`status` checks only what a
    status write may change, where the kind has such rules).
    """
    if not isinstance(obj, dict):
        return [field.type_invalid("", obj, "object")]
    meta = obj.get("metadata")
    errs: list[Cause] = []
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        errs.append(field.type_invalid("metadata", meta, "object"))
        meta = {}
    if old is None:
        errs += validate_object_meta(
            meta, rt.namespaced,
            name_validator=NAME_VALIDATORS.get(rt.key, dns1123_subdomain),
        )
    else:
        old_meta = old.get("metadata") if isinstance(old.get("metadata"), dict) else {}
        errs += validate_object_meta_update(meta, old_meta)
    validator = VALIDATORS.get(rt.key) if not rt.crd else None
    if subresource == "status" and old is not None and rt.key in STATUS_VALIDATORS:
        validator = STATUS_VALIDATORS[rt.key]
    if validator is not None:
        errs += validator(obj, old)
    return errs

"""Admission: mutations and checks that need cluster state, run after defaulting
and validation and before a write is stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skiff.api.resources import ResourceType
from skiff.apiserver import keys
from skiff.apiserver.admission import priority, service_account, service_allocation
from skiff.apiserver.admission.default_tolerations import add_default_tolerations
from skiff.store.sqlite import SQLiteStore


@dataclass
class AdmissionSettings:
    """Cluster-wide knobs of the admission plugins."""

    # DefaultTolerationSeconds: how long pods tolerate not-ready/unreachable nodes.
    default_toleration_seconds: int = 300


async def admit(store: SQLiteStore, rt: ResourceType, obj: dict[str, Any],
                old: dict[str, Any] | None, settings: AdmissionSettings | None = None) -> None:
    """Run every admission step that applies to `rt`."""
    if rt.key == "core/services":
        md = obj.get("metadata") or {}
        key = keys.object_key(rt, md.get("namespace", ""), md.get("name", ""))
        service_allocation.allocate(store, key, obj, old)
    elif rt.key == "core/namespaces" and old is None:
        spec = obj.setdefault("spec", {})
        finalizers = spec.get("finalizers") or []
        if "kubernetes" not in finalizers:
            spec["finalizers"] = [*finalizers, "kubernetes"]
    elif rt.key == "core/pods" and old is None:
        await service_account.admit_pod(store, obj)
        add_default_tolerations(obj, (settings or AdmissionSettings()).default_toleration_seconds)
        priority.admit_pod(store, obj)
    elif rt.key == "scheduling.k8s.io/priorityclasses":
        priority.admit_priority_class(store, obj, old)

"""Defaults of apps/v1 workloads."""

from __future__ import annotations

from typing import Any

from skiff.api.defaults.core import default_pvc_spec
from skiff.api.defaults.pod import default_pod_template
from skiff.api.defaults.util import items_at, obj_at, setdefault


def _spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec = obj_at(obj, "spec")
    if spec is not None:
        default_pod_template(obj_at(spec, "template"))
    return spec


def default_deployment(obj: dict[str, Any]) -> None:
    """One replica, a 25%/25% rolling update, 10 old ReplicaSets kept, 600 s deadline."""
    spec = _spec(obj)
    if spec is None:
        return
    setdefault(spec, "replicas", 1)
    strategy = obj_at(spec, "strategy", create=True)
    setdefault(strategy, "type", "RollingUpdate")
    if strategy is not None and strategy.get("type") == "RollingUpdate":
        ru = obj_at(strategy, "rollingUpdate", create=True)
        setdefault(ru, "maxUnavailable", "25%")
        setdefault(ru, "maxSurge", "25%")
    setdefault(spec, "revisionHistoryLimit", 10)
    setdefault(spec, "progressDeadlineSeconds", 600)


def default_replicaset(obj: dict[str, Any]) -> None:
    """One replica."""
    setdefault(_spec(obj), "replicas", 1)


def default_statefulset(obj: dict[str, Any]) -> None:
    """Ordered pod management, rolling updates from partition 0, claims retained."""
    spec = _spec(obj)
    if spec is None:
        return
    setdefault(spec, "replicas", 1)
    setdefault(spec, "podManagementPolicy", "OrderedReady")
    strategy = obj_at(spec, "updateStrategy", create=True)
    setdefault(strategy, "type", "RollingUpdate")
    if strategy is not None and strategy.get("type") == "RollingUpdate":
        setdefault(obj_at(strategy, "rollingUpdate", create=True), "partition", 0)
    setdefault(spec, "revisionHistoryLimit", 10)
    policy = obj_at(spec, "persistentVolumeClaimRetentionPolicy", create=True)
    setdefault(policy, "whenDeleted", "Retain")
    setdefault(policy, "whenScaled", "Retain")
    for claim in items_at(spec, "volumeClaimTemplates"):
        default_pvc_spec(obj_at(claim, "spec"))


def default_daemonset(obj: dict[str, Any]) -> None:
    """Rolling updates one node at a time, without surge; 10 old revisions kept."""
    spec = _spec(obj)
    if spec is None:
        return
    strategy = obj_at(spec, "updateStrategy", create=True)
    setdefault(strategy, "type", "RollingUpdate")
    if strategy is not None and strategy.get("type") == "RollingUpdate":
        ru = obj_at(strategy, "rollingUpdate", create=True)
        setdefault(ru, "maxUnavailable", 1)
        setdefault(ru, "maxSurge", 0)
    setdefault(spec, "revisionHistoryLimit", 10)


def default_replication_controller(obj: dict[str, Any]) -> None:
    """One replica; an empty selector (and empty object labels) become the template's labels.

    A core/v1 kind, defaulted here beside its apps/v1 successor.
    """
    spec = _spec(obj)
    if spec is None:
        return
    setdefault(spec, "replicas", 1)
    template = obj_at(spec, "template")
    labels = (obj_at(template, "metadata") or {}).get("labels") if template else None
    if isinstance(labels, dict) and labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = obj_at(obj, "metadata")
        if meta is not None and not meta.get("labels"):
            meta["labels"] = dict(labels)

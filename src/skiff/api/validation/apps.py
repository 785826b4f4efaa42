"""Validation of apps/v1 workloads: Deployments, ReplicaSets, StatefulSets, DaemonSets."""

from __future__ import annotations

from typing import Any

from skiff.api.validation import field
from skiff.api.validation.checks import enum, get_dict, get_int, get_list, nonnegative
from skiff.api.validation.field import Cause
from skiff.api.validation.intstr import is_zero, validate_int_or_percent
from skiff.api.validation.metadata import validate_labels
from skiff.api.validation.pod_spec import validate_pod_template
from skiff.api.validation.selectors import validate_workload_selector

STATEFULSET_MUTABLE = (
    "replicas", "ordinals", "template", "updateStrategy",
    "persistentVolumeClaimRetentionPolicy", "minReadySeconds",
)
STATEFULSET_FORBIDDEN = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def _spec(obj: dict[str, Any], errs: list[Cause]) -> dict[str, Any]:
    if obj.get("spec") is None:
        errs.append(field.required("spec"))
    return get_dict(obj, "spec", "", errs)


def _common(spec: dict[str, Any], kind_word: str, errs: list[Cause]) -> None:
    nonnegative(spec, "replicas", "spec", errs)
    nonnegative(spec, "minReadySeconds", "spec", errs)
    nonnegative(spec, "revisionHistoryLimit", "spec", errs)
    errs += validate_workload_selector(spec, "spec", kind_word)
    errs += validate_pod_template(spec.get("template"), "spec.template")


def _selector_immutable(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    if old is None:
        return []
    new_sel = (obj.get("spec") or {}).get("selector") if isinstance(obj.get("spec"), dict) else None
    old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
    if new_sel != old_spec.get("selector"):
        # Upstream prints the typed selector (Go syntax), not a generic map.
        return [field.invalid_rendered("spec.selector", field.render_label_selector(new_sel),
                                       "field is immutable")]
    return []


def _rolling_update(ru: dict[str, Any], path: str, errs: list[Cause]) -> None:
    surge, unavailable = ru.get("maxSurge"), ru.get("maxUnavailable")
    if surge is not None:
        errs += validate_int_or_percent(surge, field.child(path, "maxSurge"))
    if unavailable is not None:
        errs += validate_int_or_percent(unavailable, field.child(path, "maxUnavailable"),
                                        max_percent=100)
    if surge is not None and unavailable is not None and is_zero(surge) and is_zero(unavailable):
        errs.append(field.invalid(field.child(path, "maxUnavailable"), unavailable,
                                  "may not be 0 when `maxSurge` is 0"))


def validate_deployment(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Deployment spec, rollout strategy and deadline; selector immutable on update."""
    errs: list[Cause] = []
    spec = _spec(obj, errs)
    _common(spec, "deployment", errs)
    strategy = get_dict(spec, "strategy", "spec", errs)
    stype = enum(strategy, "type", "spec.strategy", errs, ("Recreate", "RollingUpdate"))
    ru = get_dict(strategy, "rollingUpdate", "spec.strategy", errs)
    if stype == "Recreate" and strategy.get("rollingUpdate") is not None:
        errs.append(field.forbidden("spec.strategy.rollingUpdate",
                                    "may not be specified when strategy `type` is 'Recreate'"))
    elif ru:
        _rolling_update(ru, "spec.strategy.rollingUpdate", errs)
    deadline = get_int(spec, "progressDeadlineSeconds", "spec", errs)
    min_ready = get_int(spec, "minReadySeconds", "spec", [])
    if deadline is not None:
        if deadline < 0:
            errs.append(field.invalid("spec.progressDeadlineSeconds", deadline,
                                      "must be greater than or equal to 0"))
        elif min_ready is not None and deadline <= min_ready:
            errs.append(field.invalid("spec.progressDeadlineSeconds", deadline,
                                      "must be greater than minReadySeconds"))
    errs += _selector_immutable(obj, old)
    return errs


def validate_replicaset(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """ReplicaSet spec; selector immutable on update."""
    errs: list[Cause] = []
    _common(_spec(obj, errs), "replicaset", errs)
    errs += _selector_immutable(obj, old)
    return errs


def validate_statefulset(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """StatefulSet spec, update strategy; only some spec fields may change."""
    errs: list[Cause] = []
    spec = _spec(obj, errs)
    _common(spec, "statefulset", errs)
    enum(spec, "podManagementPolicy", "spec", errs, ("OrderedReady", "Parallel"))
    strategy = get_dict(spec, "updateStrategy", "spec", errs)
    stype = enum(strategy, "type", "spec.updateStrategy", errs, ("OnDelete", "RollingUpdate"))
    ru = get_dict(strategy, "rollingUpdate", "spec.updateStrategy", errs)
    if stype == "OnDelete" and strategy.get("rollingUpdate") is not None:
        errs.append(field.invalid("spec.updateStrategy.rollingUpdate", ru,
                                  "only allowed for updateStrategy 'RollingUpdate'"))
    nonnegative(ru, "partition", "spec.updateStrategy.rollingUpdate", errs)
    if ru.get("maxUnavailable") is not None:
        errs += validate_int_or_percent(ru["maxUnavailable"],
                                        "spec.updateStrategy.rollingUpdate.maxUnavailable",
                                        max_percent=100)
    policy = get_dict(spec, "persistentVolumeClaimRetentionPolicy", "spec", errs)
    for k in ("whenDeleted", "whenScaled"):
        enum(policy, k, "spec.persistentVolumeClaimRetentionPolicy", errs, ("Retain", "Delete"))
    for i, tmpl in enumerate(get_list(spec, "volumeClaimTemplates", "spec", errs)):
        if not isinstance(tmpl, dict):
            errs.append(field.type_invalid(field.index("spec.volumeClaimTemplates", i), tmpl,
                                           "object"))
    if old is not None and isinstance(old.get("spec"), dict):
        strip = {k: v for k, v in spec.items() if k not in STATEFULSET_MUTABLE}
        old_strip = {k: v for k, v in old["spec"].items() if k not in STATEFULSET_MUTABLE}
        if strip != old_strip:
            errs.append(field.forbidden("spec", STATEFULSET_FORBIDDEN))
    return errs


def validate_daemonset(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """DaemonSet spec and update strategy; selector immutable on update."""
    errs: list[Cause] = []
    spec = _spec(obj, errs)
    nonnegative(spec, "minReadySeconds", "spec", errs)
    nonnegative(spec, "revisionHistoryLimit", "spec", errs)
    errs += validate_workload_selector(spec, "spec", "daemonset")
    errs += validate_pod_template(spec.get("template"), "spec.template")
    strategy = get_dict(spec, "updateStrategy", "spec", errs)
    enum(strategy, "type", "spec.updateStrategy", errs, ("OnDelete", "RollingUpdate"))
    ru = get_dict(strategy, "rollingUpdate", "spec.updateStrategy", errs)
    if ru:
        _rolling_update(ru, "spec.updateStrategy.rollingUpdate", errs)
    errs += _selector_immutable(obj, old)
    return errs


def validate_controllerrevision(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """A revision number is required and its data never changes."""
    errs: list[Cause] = []
    rev = nonnegative(obj, "revision", "", errs)
    if rev is None and "revision" not in obj:
        errs.append(field.required("revision"))
    if old is not None and obj.get("data") != old.get("data"):
        errs.append(field.invalid("data", "", "field is immutable"))
    return errs


def validate_replication_controller(obj: dict[str, Any], old: dict[str, Any] | None
                                    ) -> list[Cause]:
    """ReplicationController spec: a non-empty map selector its template's labels match.

    A core/v1 kind, validated here beside its apps/v1 successor.
    """
    errs: list[Cause] = []
    spec = _spec(obj, errs)
    nonnegative(spec, "replicas", "spec", errs)
    nonnegative(spec, "minReadySeconds", "spec", errs)
    selector = get_dict(spec, "selector", "spec", errs)
    if not selector and not isinstance(spec.get("selector"), (str, int, float, list)):
        errs.append(field.required("spec.selector"))
    elif selector:
        errs += validate_labels(selector, "spec.selector")
    template = spec.get("template")
    if template is None:
        errs.append(field.required("spec.template"))
        return errs
    errs += validate_pod_template(template, "spec.template")
    if isinstance(template, dict) and selector:
        meta = template.get("metadata") if isinstance(template.get("metadata"), dict) else {}
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        if any(labels.get(k) != v for k, v in selector.items()):
            errs.append(field.invalid("spec.template.metadata.labels", labels,
                                      "`selector` does not match template `labels`"))
    return errs

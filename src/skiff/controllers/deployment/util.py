"""The arithmetic of Deployments: surge and unavailability, revisions, hashes, counts.

Everything here is pure (no API calls) so the rollout steps can be tested by numbers.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import orjson

from skiff.api import meta as m

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
# Annotations of a Deployment never copied onto its ReplicaSets (kubectl's undo skips
# the same ones when copying back).
SKIP_COPY = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
                       MAX_REPLICAS, ROLLBACK_TO})
MAX_REVISION_HISTORY_CHARS = 2000
# A progressDeadlineSeconds of MaxInt32 means "no deadline" (extensions/v1beta1 legacy).
NO_DEADLINE = 2**31 - 1

# Condition reasons, as upstream spells them.
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
RS_UPDATED = "ReplicaSetUpdated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_CREATED = "NewReplicaSetCreated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def spec_replicas(obj: Obj) -> int:
    """spec.replicas (1 when unset, as defaulting makes it)."""
    value = (obj.get("spec") or {}).get("replicas")
    return int(value) if isinstance(value, int) else 1


def status_int(obj: Obj, name: str) -> int:
    """An integer status field, 0 when absent."""
    value = (obj.get("status") or {}).get(name)
    return int(value) if isinstance(value, int) else 0


def is_rolling(d: Obj) -> bool:
    """Whether the Deployment rolls (as opposed to Recreate)."""
    return ((d.get("spec") or {}).get("strategy") or {}).get("type",
                                                                "RollingUpdate") != "Recreate"


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """An int-or-percent against `total` (upstream's GetScaledValueFromIntOrPercent)."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        try:
            pct = int(value[:-1])
        except ValueError:
            return 0
        exact = pct * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return 0


def fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved against spec.replicas; never both zero."""
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    desired = spec_replicas(d)
    surge = scaled_value(ru.get("maxSurge", "25%"), desired, True)
    unavailable = scaled_value(ru.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    """How many pods above spec.replicas a rollout may run (0 for Recreate)."""
    return fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    """How many pods below spec.replicas may be unavailable (0 for Recreate)."""
    desired = spec_replicas(d)
    if not is_rolling(d) or desired == 0:
        return 0
    return min(fenceposts(d)[1], desired)


def _semantic(value: Any) -> Any:
    """Drop nulls and empty maps and lists, recursively: Go's semantic equality sees no
    difference between them and absent fields (a template kubectl copied back from a
    ReplicaSet carries `creationTimestamp: null` and `resources: {}`)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = _semantic(v)
            if v is None or v == {} or v == []:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def template_without_hash(template: Obj) -> Obj:
    """A pod template minus the pod-template-hash label, in semantic form (for
    comparisons and hashing)."""
    t = template or {}
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict) and HASH_LABEL in labels:
        # _semantic builds a new tree, so only the path to the label is copied here.
        t = {**t, "metadata": {**t["metadata"], "labels": {
            k: v for k, v in labels.items() if k != HASH_LABEL}}}
    return _semantic(t)


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """Whether two pod templates are the same apart from the pod-template-hash label."""
    return template_without_hash(a) == template_without_hash(b)


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """Map each character onto a vowel-free alphabet (upstream's SafeEncodeString)."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def template_hash(template: Obj, collision_count: int | None = None) -> str:
    """The pod-template-hash of a template: FNV-32a of its canonical form, encoded safely.

    Upstream hashes Go's printed struct; this hashes canonical JSON, so the values
    differ from a real cluster's but are stable and collide just as rarely.
    """
    data = orjson.dumps(template_without_hash(template), option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += struct.pack("<I", collision_count & 0xFFFFFFFF)
    return safe_encode(str(_fnv32a(data)))


def revision_of(obj: Obj) -> int:
    """The revision annotation as an int (0 when absent or malformed)."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def max_revision(rss: list[Obj]) -> int:
    """The highest revision among ReplicaSets."""
    return max((revision_of(rs) for rs in rss), default=0)


def annotation_int(obj: Obj, key: str) -> int | None:
    """An integer annotation, or None."""
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def replicas_annotations_need_update(rs: Obj, desired: int, maximum: int) -> bool:
    """Whether the desired/max-replicas annotations differ from these numbers."""
    ann = (rs.get("metadata") or {}).get("annotations") or {}
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(maximum)


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    """Record the Deployment's size on a ReplicaSet (proportional scaling reads it)."""
    ann = m.metadata(rs).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(maximum))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def copy_annotations_to_rs(d: Obj, rs: Obj) -> bool:
    """Copy the Deployment's own annotations (change-cause, …) onto a ReplicaSet."""
    changed = False
    ann = m.metadata(rs).setdefault("annotations", {})
    for key, value in ((d.get("metadata") or {}).get("annotations") or {}).items():
        if key in SKIP_COPY or ann.get(key) == value:
            continue
        ann[key] = value
        changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: str, exists: bool) -> bool:
    """Annotations of the new ReplicaSet: copied ones, its revision, revision history."""
    changed = copy_annotations_to_rs(d, rs)
    ann = m.metadata(rs).setdefault("annotations", {})
    had = REVISION in ann
    old_revision = ann.get(REVISION, "")
    try:
        old_int = int(old_revision) if old_revision else 0
    except ValueError:
        return False
    new_int = int(new_revision)
    if old_int < new_int:
        ann[REVISION] = new_revision
        changed = True
        if had:
            # Rolling back to an old template: remember the revisions it had.
            history = ann.get(REVISION_HISTORY, "")
            parts = history.split(",") if history else []
            parts.append(old_revision)
            while len(",".join(parts)) > MAX_REVISION_HISTORY_CHARS and len(parts) > 1:
                parts.pop(0)
            ann[REVISION_HISTORY] = ",".join(parts)
    if not exists and set_replicas_annotations(rs, spec_replicas(d),
                                               spec_replicas(d) + max_surge(d)):
        changed = True
    return changed


def by_creation(rss: list[Obj]) -> list[Obj]:
    """Oldest first; ties by name (upstream's ReplicaSetsByCreationTimestamp)."""
    return sorted(rss, key=lambda r: ((r.get("metadata") or {}).get("creationTimestamp") or "",
                                      m.name_of(r)))


def by_size_newer(rss: list[Obj]) -> list[Obj]:
    """Largest first, newer first on ties (for scaling up proportionally)."""
    ordered = sorted(rss, key=lambda r: ((r.get("metadata") or {}).get("creationTimestamp")
                                         or "", m.name_of(r)), reverse=True)
    return sorted(ordered, key=lambda r: -spec_replicas(r))


def by_size_older(rss: list[Obj]) -> list[Obj]:
    """Largest first, older first on ties (for scaling down proportionally)."""
    return sorted(by_creation(rss), key=lambda r: -spec_replicas(r))


def active(rss: list[Obj | None]) -> list[Obj]:
    """ReplicaSets that want pods."""
    return [r for r in rss if r is not None and spec_replicas(r) > 0]


def total_spec(rss: list[Obj | None]) -> int:
    """Sum of spec.replicas."""
    return sum(spec_replicas(r) for r in rss if r is not None)


def total_status(rss: list[Obj | None], name: str) -> int:
    """Sum of one status count."""
    return sum(status_int(r, name) for r in rss if r is not None)


def has_progress_deadline(d: Obj) -> bool:
    """Whether progress is tracked (progressDeadlineSeconds set and not MaxInt32)."""
    value = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return isinstance(value, int) and value != NO_DEADLINE


def get_condition(status: Obj, ctype: str) -> Obj | None:
    """A condition of a status dict."""
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return None


def new_condition(ctype: str, status: str, reason: str, message: str) -> Obj:
    """A Deployment condition stamped now."""
    now = m.rfc3339()
    return {"type": ctype, "status": status, "lastUpdateTime": now,
            "lastTransitionTime": now, "reason": reason, "message": message}


def set_condition(status: Obj, cond: Obj) -> None:
    """Set a condition, keeping it as is when status and reason are unchanged and its
    transition time when only the reason changed (upstream's SetDeploymentCondition)."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get(
            "reason") == cond.get("reason"):
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [c for c in status.get("conditions") or []
                            if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, ctype: str) -> None:
    """Drop a condition type."""
    conds = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def replica_set_fraction(rs: Obj, d: Obj) -> int:
    """How many replicas `rs` gains or loses when the Deployment is resized, in
    proportion to its share of the size recorded in its max-replicas annotation."""
    desired = spec_replicas(d)
    if desired == 0:
        return -spec_replicas(rs)
    deployment_replicas = desired + max_surge(d)
    annotated = annotation_int(rs, MAX_REPLICAS)
    if annotated is None:
        annotated = status_int(d, "replicas")
    if annotated == 0:
        return 0
    new_size = spec_replicas(rs) * deployment_replicas / annotated
    # Go's math.Round: half away from zero.
    rounded = int(math.floor(abs(new_size) + 0.5)) * (1 if new_size >= 0 else -1)
    return rounded - spec_replicas(rs)


def proportion(rs: Obj | None, d: Obj, to_add: int, added: int) -> int:
    """The share of `to_add` (minus what was already handed out) that `rs` gets."""
    if rs is None or spec_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def new_rs_replicas(d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """How many replicas the new ReplicaSet may have now."""
    if not is_rolling(d):
        return spec_replicas(d)
    current = total_spec(all_rss)
    max_total = spec_replicas(d) + max_surge(d)
    if current >= max_total:
        return spec_replicas(new_rs)
    scale_up = min(max_total - current, spec_replicas(d) - spec_replicas(new_rs))
    return spec_replicas(new_rs) + scale_up


def deployment_complete(d: Obj, status: Obj) -> bool:
    """Every replica updated and available, and the latest spec observed."""
    want = spec_replicas(d)
    return (status.get("updatedReplicas", 0) == want and status.get("replicas", 0) == want
            and status.get("availableReplicas", 0) == want
            and status.get("observedGeneration", 0) >= ((d.get("metadata") or {}).get(
                "generation") or 0))


def deployment_progressing(d: Obj, status: Obj) -> bool:
    """Whether `status` shows progress since the Deployment's last recorded status."""
    old = d.get("status") or {}
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = status.get("replicas", 0) - status.get("updatedReplicas", 0)
    return (status.get("updatedReplicas", 0) > old.get("updatedReplicas", 0)
            or new_old < old_old
            or status.get("readyReplicas", 0) > old.get("readyReplicas", 0)
            or status.get("availableReplicas", 0) > old.get("availableReplicas", 0))


def deployment_timed_out(d: Obj, status: Obj) -> bool:
    """Whether the Progressing condition has not moved for progressDeadlineSeconds."""
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = m.parse_time(cond.get("lastUpdateTime") or "")
    if since is None:
        return False
    deadline = int((d.get("spec") or {}).get("progressDeadlineSeconds") or 0)
    return (m.now() - since).total_seconds() > deadline

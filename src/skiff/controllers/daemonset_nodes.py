"""Which nodes a DaemonSet runs on, and how its pods are pinned to them.

Daemon pods tolerate the node conditions a node agent must survive (not-ready,
unreachable, pressure, unschedulable), as upstream adds those tolerations to every
daemon pod. A node is eligible when the template's nodeName, nodeSelector and
required node affinity admit it and it has no untolerated NoSchedule/NoExecute
taint; a pod already there may stay unless a NoExecute taint evicts it.
"""

from __future__ import annotations

import copy
from typing import Any

# The scheduler's own matching, so daemon pods go exactly where the scheduler would put them.
from skiff.scheduler.terms import first_untolerated, pod_matches_node

Obj = dict[str, Any]

TEMPLATE_GENERATION_LABEL = "pod-template-generation"

_DAEMON_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
_HOST_NETWORK_TOLERATION = ("node.kubernetes.io/network-unavailable", "NoSchedule")


def add_daemon_tolerations(pod_spec: Obj) -> None:
    """Add (once) the tolerations every daemon pod carries.

    A template toleration for the same key, operator and effect is replaced by the
    daemon one, as upstream does: a `tolerationSeconds` there would otherwise let a
    not-ready or unreachable node evict the daemon pod.
    """
    wanted = list(_DAEMON_TOLERATIONS)
    if pod_spec.get("hostNetwork"):
        wanted.append(_HOST_NETWORK_TOLERATION)
    tolerations = pod_spec.setdefault("tolerations", [])
    for key, effect in wanted:
        daemon = {"key": key, "operator": "Exists", "effect": effect}
        same = [i for i, t in enumerate(tolerations)
                if isinstance(t, dict) and t.get("key") == key and t.get("effect") == effect
                and t.get("operator") == "Exists" and not t.get("value")]
        if not same:
            tolerations.append(daemon)
            continue
        for i in same:
            tolerations[i] = dict(daemon)


def pin_to_node(pod_spec: Obj, node: str) -> None:
    """Require the node named `node`, replacing any required node affinity terms.

    The scheduler then binds the pod there (upstream's
    ReplaceDaemonSetPodNodeNameNodeAffinity); the user's own affinity was already
    checked when the node was found eligible.
    """
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    affinity = pod_spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    required = node_affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    required["nodeSelectorTerms"] = [term]


def target_node(pod: Obj) -> str:
    """The node a daemon pod is for: its nodeName, or the node its affinity pins."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            if (req.get("key") == "metadata.name" and req.get("operator") == "In"
                    and len(req.get("values") or []) == 1):
                return req["values"][0]
    return ""


def daemon_pod_spec(ds: Obj) -> Obj:
    """The template's pod spec as daemon pods get it (with the daemon tolerations)."""
    spec = copy.deepcopy(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    add_daemon_tolerations(spec)
    return spec


def should_run(pod_spec: Obj, node: Obj) -> tuple[bool, bool]:
    """(should a daemon pod be started here, may an existing one keep running)."""
    node_name = (node.get("metadata") or {}).get("name", "")
    wanted = pod_spec.get("nodeName")
    if wanted and wanted != node_name:
        return False, False
    labels = (node.get("metadata") or {}).get("labels") or {}
    if not pod_matches_node(pod_spec, labels, node_name):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    tolerations = pod_spec.get("tolerations") or []
    if first_untolerated(taints, tolerations, ("NoSchedule", "NoExecute")) is not None:
        evicted = first_untolerated(taints, tolerations, ("NoExecute",)) is not None
        return False, not evicted
    return True, True

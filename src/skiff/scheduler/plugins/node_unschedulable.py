"""NodeUnschedulable: cordoned nodes (spec.unschedulable) take no new pods.

A pod that tolerates the `node.kubernetes.io/unschedulable:NoSchedule` taint (as
DaemonSet pods do) may still go there.
"""

from __future__ import annotations

import numpy as np

from skiff.scheduler.cache import ClusterCache, NodeInfo
from skiff.scheduler.framework import CycleState, Status, unresolvable
from skiff.scheduler.pod_info import PodInfo
from skiff.scheduler.terms import tolerated

NAME = "NodeUnschedulable"
REASON = "node(s) were unschedulable"
TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable:
    """Filter out cordoned nodes unless the pod tolerates the unschedulable taint."""

    name = NAME

    def filter_mask(self, state: CycleState, pod: PodInfo, cache: ClusterCache
                    ) -> np.ndarray | None:
        """Every slot but cordoned nodes' (None when none is cordoned or the pod tolerates it)."""
        if not cache.node_memo((NAME, "any"), lambda: any(
                info.unschedulable for info in cache.nodes.values() if info.node is not None)):
            return None
        if tolerated(pod.spec.get("tolerations") or [], TAINT):
            return None
        return cache.node_memo((NAME, "ok"), lambda: ~cache.node_mask(
            NAME, lambda info: info.unschedulable))

    def filter(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
               slots: np.ndarray) -> np.ndarray:
        """Pass every node that is not cordoned (or all, for a tolerating pod)."""
        if tolerated(pod.spec.get("tolerations") or [], TAINT):
            return np.ones(slots.size, dtype=bool)
        cordoned = cache.node_mask(NAME, lambda info: info.unschedulable)
        return ~cordoned[slots]

    def filter_status(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                      info: NodeInfo) -> Status:
        """The fixed reason."""
        return unresolvable(REASON)

"""NodeName: a pod that names its node (spec.nodeName) fits only there."""

from __future__ import annotations

import numpy as np

from skiff.scheduler.cache import ClusterCache, NodeInfo
from skiff.scheduler.framework import CycleState, Status, unresolvable
from skiff.scheduler.pod_info import PodInfo

NAME = "NodeName"
REASON = "node(s) didn't match the requested node name"


class NodeName:
    """Filter to the node the pod names, if any."""

    name = NAME

    def filter_mask(self, state: CycleState, pod: PodInfo, cache: ClusterCache
                    ) -> np.ndarray | None:
        """Only the named node's slot (None when the pod names no node)."""
        wanted = pod.spec.get("nodeName")
        if not wanted:
            return None
        mask = np.zeros(cache.capacity, dtype=bool)
        info = cache.nodes.get(wanted)
        if info is not None:
            mask[info.slot] = True
        return mask

    def filter(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
               slots: np.ndarray) -> np.ndarray:
        """All nodes, or just the named one."""
        wanted = pod.spec.get("nodeName")
        if not wanted:
            return np.ones(slots.size, dtype=bool)
        info = cache.nodes.get(wanted)
        if info is None:
            return np.zeros(slots.size, dtype=bool)
        return slots == info.slot

    def filter_status(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                      info: NodeInfo) -> Status:
        """The fixed reason."""
        return unresolvable(REASON)

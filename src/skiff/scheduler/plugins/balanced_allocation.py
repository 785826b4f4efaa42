"""NodeResourcesBalancedAllocation: prefer nodes whose CPU and memory use stay in step.

The score is (1 - standard deviation of the used fractions) × 100, counting the pod's
actual requests. Best-effort pods (no CPU or memory requests) are not scored, as
upstream does, so they do not all pile onto one node.
"""

from __future__ import annotations

import numpy as np

from skiff.scheduler.cache import CPU_MEMORY, ClusterCache
from skiff.scheduler.framework import MAX_NODE_SCORE, SKIP, CycleState, Status
from skiff.scheduler.pod_info import CPU, MEMORY, PodInfo

NAME = "NodeResourcesBalancedAllocation"


class BalancedAllocation:
    """Score by how balanced CPU and memory use would be."""

    name = NAME

    def pre_score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                  slots: np.ndarray) -> Status | None:
        """Skip best-effort pods."""
        if not pod.requests.get(CPU) and not pod.requests.get(MEMORY):
            return Status(SKIP)
        return None

    def score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
              slots: np.ndarray) -> np.ndarray:
        """(1 - |f_cpu - f_mem| / 2) × 100, resources a node lacks left out."""
        alloc = cache.allocatable[CPU_MEMORY].take(slots, axis=1).astype(np.float64)
        wanted = np.array([pod.requests.get(CPU, 0), pod.requests.get(MEMORY, 0)],
                          dtype=np.int64)
        used = cache.requested[CPU_MEMORY].take(slots, axis=1) + wanted[:, None]
        has = alloc > 0
        fractions = np.minimum(used / np.where(has, alloc, 1.0), 1.0)
        std = np.where(has[0] & has[1], np.abs(fractions[0] - fractions[1]) / 2, 0.0)
        return ((1 - std) * MAX_NODE_SCORE).astype(np.int64)

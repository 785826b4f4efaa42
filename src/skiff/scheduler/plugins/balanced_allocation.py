"""NodeResourcesBalancedAllocation: prefer nodes whose CPU and memory use stay in step.

The score is (1 - standard deviation of the used fractions) × 100, counting the pod's
actual requests. Best-effort pods (no CPU or memory requests) are not scored, as
upstream does, so they do not all pile onto one node.
"""

from __future__ import annotations

import numpy as np

from skiff.scheduler.cache import ClusterCache
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
        fractions = []
        present = []
        for name in (CPU, MEMORY):
            row = cache.row[name]
            alloc = cache.allocatable[row, slots].astype(np.float64)
            used = cache.requested[row, slots] + pod.requests.get(name, 0)
            has = alloc > 0
            frac = np.where(has, np.minimum(used / np.where(has, alloc, 1.0), 1.0), 0.0)
            fractions.append(frac)
            present.append(has)
        both = present[0] & present[1]
        std = np.where(both, np.abs(fractions[0] - fractions[1]) / 2, 0.0)
        return ((1 - std) * MAX_NODE_SCORE).astype(np.int64)

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
        """(1 - |f_cpu - f_mem| / 2) × 100, resources a node lacks left out.

        The same for every pod with these requests: remembered for all nodes and redone
        only where resources changed (see ClusterCache.resource_memo).
        """
        wanted = (pod.requests.get(CPU, 0), pod.requests.get(MEMORY, 0))
        return cache.resource_memo((NAME, wanted), lambda: _balance_scores(cache, wanted),
                                   lambda slot: _balance_score(cache, slot, wanted)).take(slots)


def _balance_scores(cache: ClusterCache, wanted: tuple[int, int]) -> np.ndarray:
    """Every slot's score (both resources at once: rows CPU_MEMORY of the cache)."""
    alloc = cache.allocatable[CPU_MEMORY].astype(np.float64)
    used = cache.requested[CPU_MEMORY] + np.array(wanted, dtype=np.int64)[:, None]
    has = alloc > 0
    fractions = np.minimum(used / np.where(has, alloc, 1.0), 1.0)
    std = np.where(has[0] & has[1], np.abs(fractions[0] - fractions[1]) / 2, 0.0)
    return ((1 - std) * MAX_NODE_SCORE).astype(np.int64)


def _balance_score(cache: ClusterCache, slot: int, wanted: tuple[int, int]) -> int:
    """One slot's score, with the same float operations as _balance_scores."""
    fractions = []
    for row in (0, 1):
        alloc = float(cache.allocatable[row, slot])
        used = int(cache.requested[row, slot]) + wanted[row]
        fractions.append(min(used / (alloc if alloc > 0 else 1.0), 1.0))
    both = cache.allocatable[0, slot] > 0 and cache.allocatable[1, slot] > 0
    std = abs(fractions[0] - fractions[1]) / 2 if both else 0.0
    return int((1 - std) * MAX_NODE_SCORE)

"""NodeResourcesFit: the pod's requests must fit in what the node has left.

Filtering checks the pod count, CPU, memory, ephemeral storage and every extended
resource the pod requests against allocatable minus requested, for all candidate
nodes at once. Scoring (weight 1) is LeastAllocated by default, MostAllocated if
configured, over CPU and memory with upstream's non-zero request defaults.

Pods nominated to a node by preemption (with at least this pod's priority) count on
that node, as upstream's filtering with nominated pods does, so a preemptor's room
is not taken by a lower-priority pod in the meantime.
"""

from __future__ import annotations

import numpy as np

from skiff.scheduler.cache import CPU_MEMORY, ClusterCache, NodeInfo
from skiff.scheduler.framework import MAX_NODE_SCORE, CycleState, Status, unschedulable
from skiff.scheduler.pod_info import CPU, EPHEMERAL, MEMORY, PODS, PodInfo

NAME = "NodeResourcesFit"
LEAST_ALLOCATED = "LeastAllocated"
MOST_ALLOCATED = "MostAllocated"
NOMINATED = "nominated-requests"
# Set by the scheduler: pods nominated to nodes with at least this pod's priority.
NOMINATED_PODS = "nominated-pods"

_ORDER = {CPU: 0, MEMORY: 1, EPHEMERAL: 2}


def _requested(state: CycleState, cache: ClusterCache, row: int, slots: np.ndarray
               ) -> np.ndarray:
    used = cache.requested[row, slots]
    extra = state.get(NOMINATED)
    if extra is not None:
        used = used + extra[row, slots]
    return used


def insufficient(state: CycleState, pod: PodInfo, cache: ClusterCache,
                 slots: np.ndarray) -> dict[str, np.ndarray]:
    """Per resource the pod is short of somewhere, a bool array over `slots`."""
    out: dict[str, np.ndarray] = {}
    pods_row = cache.row[PODS]
    too_many = _requested(state, cache, pods_row, slots) + 1 > cache.allocatable[pods_row, slots]
    if too_many.any():
        out[PODS] = too_many
    for name, amount in pod.requests.items():
        if amount <= 0 or name == PODS:
            continue
        row = cache.resource_row(name)
        short = amount > cache.allocatable[row, slots] - _requested(state, cache, row, slots)
        if short.any():
            out[name] = short
    return out


def _allocation_scores(cache: ClusterCache, requests: tuple[int, int], most: bool
                       ) -> np.ndarray:
    """Every slot's score (both resources at once: rows CPU_MEMORY of the cache)."""
    alloc = cache.allocatable[CPU_MEMORY]
    used = cache.non_zero + np.array(requests, dtype=np.int64)[:, None]
    safe = np.maximum(alloc, 1)
    if most:
        part = np.minimum(used, alloc) * MAX_NODE_SCORE // safe
    else:
        part = np.maximum(alloc - used, 0) * MAX_NODE_SCORE // safe
    return part.sum(axis=0) // 2


def _allocation_score(cache: ClusterCache, slot: int, requests: tuple[int, int],
                      most: bool) -> int:
    """One slot's score, as _allocation_scores computes it."""
    total = 0
    for row in (0, 1):
        alloc = int(cache.allocatable[row, slot])
        used = int(cache.non_zero[row, slot]) + requests[row]
        if most:
            total += min(used, alloc) * MAX_NODE_SCORE // max(alloc, 1)
        else:
            total += max(alloc - used, 0) * MAX_NODE_SCORE // max(alloc, 1)
    return total // 2


def reasons_for(short: list[str]) -> list[str]:
    """Upstream's reason strings, pod count first, then CPU, memory, storage, extended."""
    ordered = sorted(short, key=lambda r: (r != PODS, _ORDER.get(r, 3), r))
    return ["Too many pods" if r == PODS else f"Insufficient {r}" for r in ordered]


class NodeResourcesFit:
    """Filter by remaining capacity; score by allocation."""

    name = NAME

    def __init__(self, strategy: str = LEAST_ALLOCATED) -> None:
        self.strategy = strategy

    def pre_filter(self, state: CycleState, pod: PodInfo, cache: ClusterCache) -> Status | None:
        """Add the requests of higher-or-equal priority nominated pods to their nodes."""
        nominated = [o for o in state.get(NOMINATED_PODS) or [] if o.nominated_node in cache.nodes]
        if nominated:
            for other in nominated:
                for name in other.requests:
                    cache.resource_row(name)
            extra = np.zeros_like(cache.requested)
            for other in nominated:
                slot = cache.nodes[other.nominated_node].slot
                for name, amount in other.requests.items():
                    extra[cache.row[name], slot] += amount
                extra[cache.row[PODS], slot] += 1
            state[NOMINATED] = extra
        return None

    def filter_mask(self, state: CycleState, pod: PodInfo, cache: ClusterCache) -> np.ndarray:
        """Per slot, whether the node has room for the pod (whole rows: no gathers)."""
        extra = state.get(NOMINATED)
        wants = [(cache.row[PODS], 1)]
        wants += [(cache.resource_row(name), amount) for name, amount in pod.requests.items()
                  if amount > 0 and name != PODS]
        ok: np.ndarray | None = None
        for row, amount in wants:
            free = cache.remaining[row]
            if extra is not None:
                free = free - extra[row]
            fits = free >= amount
            if ok is None:
                ok = fits
            else:
                ok &= fits
        assert ok is not None
        return ok

    def filter(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
               slots: np.ndarray) -> np.ndarray:
        """Nodes with room for the pod."""
        bad = np.zeros(slots.size, dtype=bool)
        for short in insufficient(state, pod, cache, slots).values():
            bad |= short
        return ~bad

    def filter_status(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                      info: NodeInfo) -> Status:
        """Every resource the node is short of."""
        slots = np.array([info.slot])
        short = [name for name, flags in insufficient(state, pod, cache, slots).items()
                 if flags[0]]
        return unschedulable(*reasons_for(short))

    def score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
              slots: np.ndarray) -> np.ndarray:
        """LeastAllocated (free share) or MostAllocated (used share), CPU and memory averaged.

        A node without the resource scores 0 for it; LeastAllocated gives 0 when the
        pod does not fit. Every pod with the same non-zero requests gets the same
        scores, so they are remembered for all nodes and redone only where resources
        changed since (see ClusterCache.resource_memo).
        """
        requests = pod.non_zero
        most = self.strategy == MOST_ALLOCATED
        return cache.resource_memo(
            (NAME, self.strategy, requests),
            lambda: _allocation_scores(cache, requests, most),
            lambda slot: _allocation_score(cache, slot, requests, most)).take(slots)

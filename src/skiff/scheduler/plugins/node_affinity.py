"""NodeAffinity: nodeSelector and required node affinity filter; preferred terms score.

Results depend only on node labels and the pod's selector, so they are remembered
per selector until node labels change: a Deployment's pods share one computation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from skiff.scheduler.cache import ClusterCache, NodeInfo
from skiff.scheduler.framework import SKIP, CycleState, Status, default_normalize, unresolvable
from skiff.scheduler.pod_info import PodInfo
from skiff.scheduler.terms import pod_matches_node, required_node_affinity, term_matches

NAME = "NodeAffinity"
REASON = "node(s) didn't match Pod's node affinity/selector"


def memo_key(*parts: Any) -> bytes:
    """A canonical key for memoising results per selector."""
    return orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)


def required_mask(pod: PodInfo, cache: ClusterCache) -> np.ndarray | None:
    """Per slot, whether the node satisfies the pod's required node affinity (None: all do)."""
    selector, required = required_node_affinity(pod.spec)
    if not selector and required is None:
        return None
    spec = pod.spec
    return cache.node_mask((NAME, memo_key(selector, required)),
                           lambda info: pod_matches_node(spec, info.labels, info.name))


def _preferred(pod: PodInfo) -> list[Any]:
    na = (pod.spec.get("affinity") or {}).get("nodeAffinity") or {}
    return [p for p in na.get("preferredDuringSchedulingIgnoredDuringExecution") or []
            if isinstance(p, dict) and p.get("weight")]


class NodeAffinity:
    """Filter on required node affinity, score on preferred terms."""

    name = NAME

    def filter_mask(self, state: CycleState, pod: PodInfo, cache: ClusterCache
                    ) -> np.ndarray | None:
        """Per slot, whether the node matches (None: the pod has no node selector)."""
        return required_mask(pod, cache)

    def filter(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
               slots: np.ndarray) -> np.ndarray:
        """Nodes matching nodeSelector and every required term group."""
        mask = required_mask(pod, cache)
        if mask is None:
            return np.ones(slots.size, dtype=bool)
        return mask[slots]

    def filter_status(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                      info: NodeInfo) -> Status:
        """The fixed reason."""
        return unresolvable(REASON)

    def pre_score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                  slots: np.ndarray) -> Status | None:
        """Skip pods without preferred terms, as upstream (every score would be 0)."""
        if not _preferred(pod):
            return Status(SKIP)
        return None

    def score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
              slots: np.ndarray) -> np.ndarray:
        """Sum of the weights of the preferred terms each node matches."""
        preferred = _preferred(pod)
        if not preferred:
            return np.zeros(slots.size, dtype=np.int64)

        def compute() -> np.ndarray:
            out = np.zeros(cache.capacity, dtype=np.int64)
            for info in cache.nodes.values():
                if info.node is None:
                    continue
                out[info.slot] = sum(int(p["weight"]) for p in preferred
                                     if term_matches(p.get("preference") or {}, info.labels,
                                                     info.name))
            return out

        return cache.node_memo((NAME, "score", memo_key(preferred)), compute)[slots]

    def normalize(self, state: CycleState, pod: PodInfo, scores: np.ndarray) -> np.ndarray:
        """Scale to 0–100."""
        return default_normalize(scores)

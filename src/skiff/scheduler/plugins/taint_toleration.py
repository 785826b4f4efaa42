"""TaintToleration: NoSchedule/NoExecute taints repel pods that do not tolerate them;
untolerated PreferNoSchedule taints make a node less attractive.

Nodes mostly share a handful of taint sets and pods a handful of toleration lists, so
the per-node verdict is computed once per toleration list and remembered until node
taints change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from skiff.scheduler.cache import ClusterCache, NodeInfo
from skiff.scheduler.framework import (
    MAX_NODE_SCORE,
    CycleState,
    Status,
    default_normalize,
    unresolvable,
)
from skiff.scheduler.pod_info import PodInfo
from skiff.scheduler.terms import first_untolerated, tolerated

NAME = "TaintToleration"
HARD = ("NoSchedule", "NoExecute")
# Set for a cycle in which no node has a PreferNoSchedule taint: all scores are equal.
NO_SOFT_TAINTS = NAME + "/no-soft-taints"


def _signature(tolerations: list[Any]) -> bytes:
    return orjson.dumps(tolerations, option=orjson.OPT_SORT_KEYS)


def untolerated_reason(taint: dict[str, Any]) -> str:
    """Upstream's reason text for one untolerated taint."""
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"


class TaintToleration:
    """Filter on hard taints; score by untolerated soft ones."""

    name = NAME

    def __init__(self) -> None:
        # Read-only constant score arrays by length, for cycles without soft taints.
        self._constants: dict[tuple[int, int], np.ndarray] = {}

    def _constant(self, size: int, value: int) -> np.ndarray:
        key = (size, value)
        out = self._constants.get(key)
        if out is None:
            if len(self._constants) > 64:
                self._constants.clear()
            out = self._constants[key] = np.full(size, value, dtype=np.int64)
            out.flags.writeable = False
        return out

    def _ok(self, pod: PodInfo, cache: ClusterCache) -> np.ndarray:
        tolerations = pod.spec.get("tolerations") or []
        return cache.node_mask((NAME, _signature(tolerations)), lambda info: first_untolerated(
            info.taints, tolerations, HARD) is None)

    def filter_mask(self, state: CycleState, pod: PodInfo, cache: ClusterCache
                    ) -> np.ndarray | None:
        """Per slot, whether the pod tolerates the node's hard taints (None: no node has any)."""
        if not cache.node_memo((NAME, "any"), lambda: any(
                t.get("effect") in HARD for info in cache.nodes.values()
                if info.node is not None for t in info.taints)):
            return None
        return self._ok(pod, cache)

    def filter(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
               slots: np.ndarray) -> np.ndarray:
        """Nodes whose NoSchedule/NoExecute taints the pod all tolerates."""
        return self._ok(pod, cache)[slots]

    def filter_status(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                      info: NodeInfo) -> Status:
        """Names the first taint the pod does not tolerate."""
        taint = first_untolerated(info.taints, pod.spec.get("tolerations") or [], HARD)
        return unresolvable(untolerated_reason(taint or {}))

    def score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
              slots: np.ndarray) -> np.ndarray:
        """How many PreferNoSchedule taints each node has that the pod does not tolerate."""
        if not cache.node_memo((NAME, "any-soft"), lambda: any(
                t.get("effect") == "PreferNoSchedule" for info in cache.nodes.values()
                if info.node is not None for t in info.taints)):
            state[NO_SOFT_TAINTS] = True
            return self._constant(slots.size, 0)
        soft = [t for t in pod.spec.get("tolerations") or []
                if isinstance(t, dict) and t.get("effect", "") in ("", "PreferNoSchedule")]

        def count() -> np.ndarray:
            out = np.zeros(cache.capacity, dtype=np.int64)
            for info in cache.nodes.values():
                out[info.slot] = sum(1 for t in info.taints
                                     if t.get("effect") == "PreferNoSchedule"
                                     and not tolerated(soft, t))
            return out

        return cache.node_memo((NAME, "score", _signature(soft)), count)[slots]

    def normalize(self, state: CycleState, pod: PodInfo, scores: np.ndarray) -> np.ndarray:
        """Fewer untolerated soft taints score higher."""
        if state.get(NO_SOFT_TAINTS):
            return self._constant(scores.size, MAX_NODE_SCORE)  # what normalizing zeros gives
        return default_normalize(scores, reverse=True)

"""One scheduling decision: the default profile's plugins, filter → score → select.

As upstream, the scheduler stops looking once it has found enough feasible nodes
(all of them below 100 nodes; else an adaptive share, 10% at 5,000 nodes, never fewer
than 100), starting each cycle where the last one stopped so that every node gets
its turn. The highest total score wins; ties are broken at random.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from skiff.api.selectors.labels import LabelSelector
from skiff.scheduler.cache import ClusterCache
from skiff.scheduler.framework import (
    NO_NODE_AVAILABLE,
    CycleState,
    Diagnosis,
    Framework,
    ScoreResult,
    Status,
)
from skiff.scheduler.plugins.balanced_allocation import BalancedAllocation
from skiff.scheduler.plugins.image_locality import ImageLocality
from skiff.scheduler.plugins.inter_pod_affinity import InterPodAffinity
from skiff.scheduler.plugins.node_affinity import NodeAffinity
from skiff.scheduler.plugins.node_name import NodeName
from skiff.scheduler.plugins.node_ports import NodePorts
from skiff.scheduler.plugins.node_resources_fit import LEAST_ALLOCATED, NodeResourcesFit
from skiff.scheduler.plugins.node_unschedulable import NodeUnschedulable
from skiff.scheduler.plugins.pod_topology_spread import PodTopologySpread
from skiff.scheduler.plugins.taint_toleration import TaintToleration
from skiff.scheduler.pod_info import PodInfo

# Upstream's default score weights.
WEIGHTS = {
    "TaintToleration": 3,
    "NodeAffinity": 2,
    "PodTopologySpread": 2,
    "InterPodAffinity": 2,
    "NodeResourcesFit": 1,
    "NodeResourcesBalancedAllocation": 1,
    "ImageLocality": 1,
}

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5
DEFAULT_PERCENTAGE_BASE = 50


def default_framework(default_selector: Callable[[PodInfo], LabelSelector | None] | None = None,
                      strategy: str = LEAST_ALLOCATED) -> Framework:
    """The default profile, in upstream's plugin order."""
    plugins = [
        NodeUnschedulable(), NodeName(), TaintToleration(), NodeAffinity(), NodePorts(),
        NodeResourcesFit(strategy), PodTopologySpread(default_selector), InterPodAffinity(),
        BalancedAllocation(), ImageLocality(),
    ]
    return Framework(plugins, WEIGHTS)


def num_feasible_nodes_to_find(total: int, percentage: int = 0) -> int:
    """How many feasible nodes are enough (upstream's adaptive percentageOfNodesToScore)."""
    if total < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return total
    if percentage <= 0:
        percentage = DEFAULT_PERCENTAGE_BASE - total // 125
        percentage = max(percentage, MIN_FEASIBLE_NODES_PERCENTAGE)
    n = total * percentage // 100
    return max(n, MIN_FEASIBLE_NODES_TO_FIND)


class FitError(Exception):
    """No node fits the pod; carries the diagnosis for messages and preemption."""

    def __init__(self, pod: PodInfo, total: int, diagnosis: Diagnosis,
                 node_statuses: dict[str, Status]) -> None:
        self.pod = pod
        self.total = total
        self.diagnosis = diagnosis
        self.node_statuses = node_statuses
        self.post_filter_message = ""
        super().__init__(self.message())

    def histogram(self) -> list[str]:
        """`N reason` strings, sorted as upstream sorts them."""
        counts: dict[str, int] = {}
        for status in self.node_statuses.values():
            for reason in status.reasons:
                counts[reason] = counts.get(reason, 0) + 1
        return sorted(f"{n} {reason}" for reason, n in counts.items())

    def message(self) -> str:
        """`0/N nodes are available: … .` plus the preemption part, as upstream."""
        text = NO_NODE_AVAILABLE.format(0, self.total) + ":"
        pre = self.diagnosis.pre_filter
        if pre is not None and pre.message():
            text += " " + pre.message() + "."
        else:
            reasons = self.histogram()
            if reasons:
                text += " " + ", ".join(reasons) + "."
        if self.post_filter_message:
            text += " " + self.post_filter_message
        return text


@dataclass
class Decision:
    """A successful scheduling decision and what it was based on."""

    node: str
    evaluated: int
    feasible: int
    scores: ScoreResult | None
    diagnosis: Diagnosis
    state: CycleState = field(repr=False, default_factory=CycleState)
    # Index of the chosen node in `scores`, and how many nodes shared its total.
    pick: int = -1
    ties: int = 1


class Algorithm:
    """Runs filter → score → select for one pod over the cache."""

    def __init__(self, framework: Framework, percentage: int = 0,
                 rng: random.Random | None = None) -> None:
        self.framework = framework
        self.percentage = percentage
        self.next_start = 0
        self.rng = rng or random.Random()

    def schedule(self, state: CycleState, pod: PodInfo, cache: ClusterCache) -> Decision:
        """Pick a node for `pod` or raise FitError."""
        order = cache.order()
        total = int(order.size)
        if total == 0:
            raise FitError(pod, 0, Diagnosis(), {})
        nominated = pod.nominated_node
        if nominated and nominated in cache.nodes and cache.nodes[nominated].node is not None:
            # A pod that preempted others tries the node it made room on first.
            slot = np.array([cache.nodes[nominated].slot])
            result = self.framework.find_feasible(state, pod, cache, slot)
            if result.feasible.size:
                return Decision(nominated, 1, 1, None, result.diagnosis, state)
            state = CycleState()
        start = self.next_start % total
        rotated = cache.order_from(start) if start else order
        wanted = num_feasible_nodes_to_find(total, self.percentage)
        # Upstream stops once `wanted` feasible nodes are found; the last of them marks
        # how far this cycle walked, and the next one starts there.
        result = self.framework.find_feasible(state, pod, cache, rotated, wanted)
        feasible = result.feasible
        if feasible.size == 0:
            statuses = self.framework.statuses(state, pod, cache, result.diagnosis)
            raise FitError(pod, total, result.diagnosis, statuses)
        processed = result.evaluated
        self.next_start = (start + processed) % total
        if feasible.size == 1:
            node = cache.info_at(int(feasible[0])).name
            return Decision(node, processed, 1, None, result.diagnosis, state)
        scores = self.framework.score(state, pod, cache, feasible)
        best = (scores.totals == np.maximum.reduce(scores.totals)).nonzero()[0]
        pick = int(best[self.rng.randrange(best.size)]) if best.size > 1 else int(best[0])
        node = cache.info_at(int(feasible[pick])).name
        return Decision(node, processed, int(feasible.size), scores, result.diagnosis, state,
                        pick=pick, ties=int(best.size))

"""InterPodAffinity: place pods near (affinity) or away from (anti-affinity) other pods.

Filtering, in upstream's order, rejects a node when
1. the pod's required affinity terms are not all met in the node's domains (unless no
   pod anywhere matches them and the pod matches them itself: the first of a group);
2. a pod matching one of its required anti-affinity terms is in the node's domain;
3. an existing pod's required anti-affinity term matches this pod and that pod is in
   the node's domain (anti-affinity is symmetric).
Scoring adds the weights of preferred terms (the pod's, and existing pods' terms that
match this pod, required affinity counting 1) per domain, minus anti-affinity weights,
and maps the result onto 0–100.

Existing pods' terms are kept by the cache as per-node counts per distinct term, so a
Deployment's thousand identical terms cost one array, not a thousand loops.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from skiff.scheduler.cache import (
    PREFERRED_AFFINITY,
    PREFERRED_ANTI,
    REQUIRED_AFFINITY,
    REQUIRED_ANTI,
    ClusterCache,
    NodeInfo,
)
from skiff.scheduler.counts import MEMO_LIMIT
from skiff.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    CycleState,
    Status,
    unresolvable,
    unschedulable,
)
from skiff.scheduler.pod_info import PodInfo
from skiff.scheduler.terms import AffinityTerm

NAME = "InterPodAffinity"
REASON_AFFINITY = "node(s) didn't match pod affinity rules"
REASON_ANTI = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING = "node(s) didn't satisfy existing pods anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1

FILTER_STATE = NAME + "/filter"
SCORE_STATE = NAME + "/score"


def _domain_hits(cache: ClusterCache, key: str, per_node: np.ndarray) -> np.ndarray:
    """Per slot: the sum of `per_node` over every node in the same `key` domain."""
    return cache.domain_sums(key, per_node)


def _term_counts(cache: ClusterCache, term: AffinityTerm) -> np.ndarray:
    return cache.count_matching(cache.term_namespaces(term), term.selector)


def _matches(cache: ClusterCache, term: AffinityTerm, pod: PodInfo) -> bool:
    return term.matches(pod.namespace, pod.labels, cache.namespace_labels.get(pod.namespace))


def _existing(cache: ClusterCache, kinds: Iterable[str]
              ) -> Iterable[tuple[str, int, AffinityTerm, np.ndarray]]:
    wanted = set(kinds)
    for (kind, weight, term), counts in list(cache.term_counts.items()):
        if kind in wanted:
            yield kind, weight, term, counts


def _existing_matching(cache: ClusterCache, kinds: tuple[str, ...], pod: PodInfo
                       ) -> list[tuple[str, int, AffinityTerm, np.ndarray]]:
    """Existing pods' terms of `kinds` that select `pod`, remembered per label set until
    the set of terms (or namespace labels) changes: pods of one Deployment share it."""
    if not cache.term_counts:
        return []
    key = (NAME, kinds, pod.set_key())
    found = cache.pod_memo.get(key)
    if found is None:
        if len(cache.pod_memo) > MEMO_LIMIT:
            cache.pod_memo.clear()
        found = cache.pod_memo[key] = [e for e in _existing(cache, kinds)
                                       if _matches(cache, e[2], pod)]
    return found


class InterPodAffinity:
    """Filter and score by pod (anti-)affinity."""

    name = NAME

    # -- filter ---------------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo, cache: ClusterCache) -> Status | None:
        """Per-slot verdicts for the three rules."""
        existing = [(t, c) for _, _, t, c in _existing_matching(cache, (REQUIRED_ANTI,), pod)] \
            if cache.term_kinds[REQUIRED_ANTI] > 0 else []
        if not pod.required_affinity and not pod.required_anti_affinity and not existing:
            return Status(SKIP)
        cap = cache.capacity
        affinity_ok = np.ones(cap, dtype=bool)
        if pod.required_affinity:
            hits = [_domain_hits(cache, t.topology_key, _term_counts(cache, t))
                    for t in pod.required_affinity]
            anyone = any(bool(_term_counts(cache, t)[cache.valid].any())
                         for t in pod.required_affinity)
            if not anyone and all(_matches(cache, t, pod) for t in pod.required_affinity):
                # The first pod of a group that wants to be with its own kind.
                affinity_ok = np.ones(cap, dtype=bool)
                for t in pod.required_affinity:
                    affinity_ok &= cache.label_column(t.topology_key)[0] >= 0
            else:
                for h in hits:
                    affinity_ok &= h > 0
        anti_ok = np.ones(cap, dtype=bool)
        for t in pod.required_anti_affinity:
            anti_ok &= _domain_hits(cache, t.topology_key, _term_counts(cache, t)) == 0
        existing_ok = np.ones(cap, dtype=bool)
        for t, counts in existing:
            existing_ok &= _domain_hits(cache, t.topology_key, counts.astype(np.float64)) == 0
        state[FILTER_STATE] = (affinity_ok, anti_ok, existing_ok)
        return None

    def filter_mask(self, state: CycleState, pod: PodInfo, cache: ClusterCache) -> np.ndarray:
        """Per slot, whether the node passes all three rules."""
        affinity_ok, anti_ok, existing_ok = state[FILTER_STATE]
        return affinity_ok & anti_ok & existing_ok

    def filter(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
               slots: np.ndarray) -> np.ndarray:
        """Nodes passing all three rules."""
        affinity_ok, anti_ok, existing_ok = state[FILTER_STATE]
        return affinity_ok[slots] & anti_ok[slots] & existing_ok[slots]

    def filter_status(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                      info: NodeInfo) -> Status:
        """The first rule the node breaks."""
        affinity_ok, anti_ok, _ = state[FILTER_STATE]
        if not affinity_ok[info.slot]:
            return unresolvable(REASON_AFFINITY)
        if not anti_ok[info.slot]:
            return unschedulable(REASON_ANTI)
        return unschedulable(REASON_EXISTING)

    # -- score ----------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                  slots: np.ndarray) -> Status | None:
        """Weighted domain hits of every preferred term that involves this pod."""
        kinds = (REQUIRED_AFFINITY, PREFERRED_AFFINITY, PREFERRED_ANTI)
        if (not pod.preferred_affinity and not pod.preferred_anti_affinity
                and not any(cache.term_kinds[k] > 0 for k in kinds)):
            return Status(SKIP)
        existing = _existing_matching(cache, kinds, pod)
        score = np.zeros(cache.capacity, dtype=np.float64)
        for weight, t in pod.preferred_affinity:
            score += weight * _domain_hits(cache, t.topology_key, _term_counts(cache, t))
        for weight, t in pod.preferred_anti_affinity:
            score -= weight * _domain_hits(cache, t.topology_key, _term_counts(cache, t))
        for kind, weight, t, counts in existing:
            w = HARD_POD_AFFINITY_WEIGHT if kind == REQUIRED_AFFINITY else weight
            sign = -1 if kind == PREFERRED_ANTI else 1
            score += sign * w * _domain_hits(cache, t.topology_key, counts.astype(np.float64))
        state[SCORE_STATE] = score
        return None

    def score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
              slots: np.ndarray) -> np.ndarray:
        """The summed weights for each node's domains."""
        return state[SCORE_STATE][slots].astype(np.int64)

    def normalize(self, state: CycleState, pod: PodInfo, scores: np.ndarray) -> np.ndarray:
        """Min–max onto 0–100 (all equal: 0)."""
        if scores.size == 0:
            return scores
        low, top = int(scores.min()), int(scores.max())
        if top == low:
            return np.zeros(scores.size, dtype=np.int64)
        return (MAX_NODE_SCORE * (scores - low) / (top - low)).astype(np.int64)

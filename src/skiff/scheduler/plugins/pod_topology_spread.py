"""PodTopologySpread: keep matching pods evenly spread over topology domains.

Hard constraints (whenUnsatisfiable: DoNotSchedule) filter: placing the pod in a
node's domain must not make that domain exceed the emptiest eligible domain by more
than maxSkew (the emptiest counts as 0 while fewer than minDomains domains exist).
Soft constraints (ScheduleAnyway), or, for pods without constraints, the default
ones (hostname maxSkew 3, zone maxSkew 5, selecting the pod's Services, ReplicaSets,
ReplicationControllers and StatefulSets), score nodes in less crowded domains higher.

Eligible nodes honour nodeAffinityPolicy (default Honor: they must match the pod's
node affinity) and nodeTaintsPolicy (default Ignore). Matching pod counts come from
the cache's live per-node counters, so a cycle costs a few array operations per
constraint rather than a walk over every pod.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from skiff.api.errors import StatusError
from skiff.api.selectors.labels import (
    IN,
    NOTHING,
    LabelSelector,
    Requirement,
    from_label_selector_dict,
)
from skiff.scheduler.cache import ClusterCache, NodeInfo
from skiff.scheduler.counts import MEMO_LIMIT
from skiff.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    CycleState,
    Status,
    unresolvable,
    unschedulable,
)
from skiff.scheduler.plugins.node_affinity import memo_key, required_mask
from skiff.scheduler.plugins.taint_toleration import HARD, _signature
from skiff.scheduler.pod_info import PodInfo
from skiff.scheduler.terms import first_untolerated, required_node_affinity

NAME = "PodTopologySpread"
REASON_SKEW = "node(s) didn't match pod topology spread constraints"
REASON_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
DEFAULT_CONSTRAINTS = ((HOSTNAME, 3), (ZONE, 5))

FILTER_STATE = NAME + "/filter"
SCORE_STATE = NAME + "/score"


@dataclass(frozen=True)
class Constraint:
    """One topology spread constraint, compiled."""

    max_skew: int
    key: str
    selector: LabelSelector
    min_domains: int = 1
    honor_affinity: bool = True
    honor_taints: bool = False


def _constraints(pod: PodInfo, mode: str) -> list[Constraint]:
    out = []
    for c in pod.spec.get("topologySpreadConstraints") or []:
        if not isinstance(c, dict) or c.get("whenUnsatisfiable", "DoNotSchedule") != mode:
            continue
        raw = c.get("labelSelector")
        try:
            selector = from_label_selector_dict(raw) if isinstance(raw, dict) else NOTHING
        except StatusError:
            selector = NOTHING
        extra = [Requirement(k, IN, (pod.labels[k],)) for k in c.get("matchLabelKeys") or []
                 if k in pod.labels]
        if extra and not selector.nothing:
            selector = LabelSelector([*selector.requirements, *extra])
        out.append(Constraint(
            max_skew=int(c.get("maxSkew") or 1), key=c.get("topologyKey") or "",
            selector=selector,
            min_domains=int(c.get("minDomains") or 1) if mode == "DoNotSchedule" else 1,
            honor_affinity=c.get("nodeAffinityPolicy", "Honor") != "Ignore",
            honor_taints=c.get("nodeTaintsPolicy", "Ignore") == "Honor"))
    return out


def _eligible_key(pod: PodInfo, constraints: list[Constraint], c: Constraint,
                  require_all: bool) -> tuple[Any, ...]:
    """What `_eligible` depends on besides the nodes (for memoising it per node state)."""
    affinity: bytes | None = None
    if c.honor_affinity:
        selector, required = required_node_affinity(pod.spec)
        if selector or required is not None:
            affinity = memo_key(selector, required)
    taints = _signature(pod.spec.get("tolerations") or []) if c.honor_taints else None
    keys = tuple(o.key for o in constraints) if require_all else (c.key,)
    return (NAME, "eligible", keys, affinity, taints)


def _eligible(pod: PodInfo, cache: ClusterCache, constraints: list[Constraint],
              c: Constraint, require_all: bool) -> np.ndarray:
    """Per slot: the node counts for constraint `c`'s domains (remembered until nodes
    change; callers must not modify it)."""
    return cache.node_memo(_eligible_key(pod, constraints, c, require_all),
                           lambda: _eligible_now(pod, cache, constraints, c, require_all))


def _eligible_now(pod: PodInfo, cache: ClusterCache, constraints: list[Constraint],
                  c: Constraint, require_all: bool) -> np.ndarray:
    mask = cache.valid.copy()
    if require_all:
        for other in constraints:
            mask &= cache.label_column(other.key)[0] >= 0
    else:
        mask &= cache.label_column(c.key)[0] >= 0
    if c.honor_affinity:
        affinity = required_mask(pod, cache)
        if affinity is not None:
            mask &= affinity
    if c.honor_taints:
        tolerations = pod.spec.get("tolerations") or []
        mask &= cache.node_mask(("TaintToleration", _signature(tolerations)),
                                lambda info: first_untolerated(info.taints, tolerations,
                                                               HARD) is None)
    return mask


@dataclass
class _Domains:
    """Matching pods per domain of one constraint, over eligible nodes."""

    codes: np.ndarray
    counts: np.ndarray
    present: np.ndarray

    def per_slot(self, slots: np.ndarray) -> np.ndarray:
        code = self.codes[slots]
        return np.where(code >= 0, self.counts[np.maximum(code, 0)], 0)


def _layout(cache: ClusterCache, c: Constraint, eligible: np.ndarray, layout_key: Any
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The eligible slots, their domain codes, which domains they cover, and how many
    domains there are. With `layout_key` (eligible depends on nodes only) remembered."""
    codes, values = cache.label_column(c.key)
    n = max(len(values), 1)

    def layout() -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        slots = eligible.nonzero()[0]
        where = codes[slots]
        present = np.zeros(n, dtype=bool)
        present[where] = True
        return slots, where, present, n

    return (cache.node_memo((layout_key, c.key), layout) if layout_key is not None
            else layout())


def _domains(pod: PodInfo, cache: ClusterCache, c: Constraint, eligible: np.ndarray,
             layout_key: Any = None) -> _Domains:
    """Matching pods per domain over the `eligible` nodes. With `layout_key` (eligible
    depends on nodes only), what depends on nodes only is remembered under it."""
    slots, where, present, n = _layout(cache, c, eligible, layout_key)
    pods = cache.count_matching(frozenset([pod.namespace]), c.selector)
    counts = np.bincount(where, weights=pods[slots], minlength=n).astype(np.int64)
    return _Domains(cache.label_column(c.key)[0], counts, present)


def _key_layout(cache: ClusterCache, key: str) -> tuple[np.ndarray, list[str], bool]:
    """Label `key`'s codes and values (see ClusterCache.label_column), and whether every
    present node has it (then nothing needs masking out); remembered until nodes change."""
    def compute() -> tuple[np.ndarray, list[str], bool]:
        codes, values = cache.label_column(key)
        return codes, values, bool((codes[cache.valid] >= 0).all())

    return cache.node_memo((NAME, "key-layout", key), compute)


def _domain_count(codes: np.ndarray, values: list[str], complete: bool = False) -> int:
    """How many domains the nodes with these label codes are in. As upstream, nodes
    without the label make one more domain, that of the empty value."""
    if complete:  # no code is -1
        return int(np.count_nonzero(np.bincount(codes, minlength=len(values))))
    # Shifted by one: entry 0 counts the nodes without the label.
    nodes = np.bincount(codes + 1, minlength=len(values) + 1)
    size = int(np.count_nonzero(nodes))
    if nodes[0] and "" in values and nodes[values.index("") + 1]:
        size -= 1  # the same domain twice
    return size


class PodTopologySpread:
    """Filter by hard spread constraints, score by soft (or default) ones."""

    name = NAME

    def __init__(self, default_selector: Callable[[PodInfo], LabelSelector | None] | None
                 = None) -> None:
        self.default_selector = default_selector
        # The default constraints per selector (a ReplicaSet's pods share one).
        self._defaults: dict[LabelSelector, list[Constraint]] = {}
        # Explicit constraints compiled, per (mode, constraints, labels): a ReplicaSet's
        # pods share them too.
        self._compiled: dict[tuple[str, bytes, Any], list[Constraint]] = {}

    def _parsed(self, pod: PodInfo, mode: str) -> list[Constraint]:
        raw = pod.spec.get("topologySpreadConstraints")
        if not raw:
            return []
        try:
            key = (mode, orjson.dumps(raw, option=orjson.OPT_SORT_KEYS), pod.set_key()[1])
        except TypeError:  # not plain JSON: compile it every time
            return _constraints(pod, mode)
        compiled = self._compiled.get(key)
        if compiled is None:
            if len(self._compiled) > MEMO_LIMIT:
                self._compiled.clear()
            compiled = self._compiled[key] = _constraints(pod, mode)
        return compiled

    # -- filter ---------------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo, cache: ClusterCache) -> Status | None:
        """Count matching pods per domain for every hard constraint."""
        constraints = self._parsed(pod, "DoNotSchedule")
        if not constraints:
            return Status(SKIP)
        prepared = []
        for c in constraints:
            domains = _domains(pod, cache, c, _eligible(pod, cache, constraints, c, True),
                               _eligible_key(pod, constraints, c, True))
            seen = domains.counts[domains.present]
            minimum = int(seen.min()) if seen.size else 0
            if int(domains.present.sum()) < c.min_domains:
                minimum = 0
            self_match = 1 if c.selector.matches(pod.labels) else 0
            prepared.append((c, domains, minimum, self_match))
        state[FILTER_STATE] = prepared
        return None

    def _check(self, state: CycleState, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        missing = np.zeros(slots.size, dtype=bool)
        skewed = np.zeros(slots.size, dtype=bool)
        for c, domains, minimum, self_match in state[FILTER_STATE]:
            lacks = domains.codes[slots] < 0
            missing |= lacks
            skew = domains.per_slot(slots) + self_match - minimum
            skewed |= ~lacks & (skew > c.max_skew)
        return missing, skewed

    def filter_mask(self, state: CycleState, pod: PodInfo, cache: ClusterCache) -> np.ndarray:
        """Per slot, whether the node has every key and keeps every skew within maxSkew."""
        ok: np.ndarray | None = None
        for c, domains, minimum, self_match in state[FILTER_STATE]:
            index, has = cache.label_index(c.key)
            # Slots without the key get count 0 here and are rejected by `has`.
            fits = domains.counts[index] <= c.max_skew + minimum - self_match
            fits &= has
            if ok is None:
                ok = fits
            else:
                ok &= fits
        assert ok is not None
        return ok

    def filter(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
               slots: np.ndarray) -> np.ndarray:
        """Nodes that have every topology key and keep every skew within maxSkew."""
        missing, skewed = self._check(state, slots)
        return ~(missing | skewed)

    def filter_status(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                      info: NodeInfo) -> Status:
        """Missing label (unresolvable) or too much skew."""
        missing, _ = self._check(state, np.array([info.slot]))
        return unresolvable(REASON_LABEL) if missing[0] else unschedulable(REASON_SKEW)

    # -- score ----------------------------------------------------------------------------------

    def _soft(self, pod: PodInfo) -> tuple[list[Constraint], bool]:
        if pod.spec.get("topologySpreadConstraints"):
            return self._parsed(pod, "ScheduleAnyway"), True
        selector = self.default_selector(pod) if self.default_selector else None
        if selector is None or selector.empty or selector.nothing:
            return [], False
        defaults = self._defaults.get(selector)
        if defaults is None:
            if len(self._defaults) > MEMO_LIMIT:
                self._defaults.clear()
            defaults = self._defaults[selector] = [
                Constraint(max_skew=skew, key=key, selector=selector)
                for key, skew in DEFAULT_CONSTRAINTS]
        return defaults, False

    def pre_score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                  slots: np.ndarray) -> Status | None:
        """Per constraint: the matching pods to credit each node with, and the weight.

        For the hostname key a node is credited with its own matching pods; for other
        keys with those of its domain, over the eligible nodes. Only the feasible nodes'
        domains are ever read, so counting every domain gives the same scores as
        counting just theirs, for the price of one `bincount`.
        """
        constraints, require_all = self._soft(pod)
        if not constraints:
            return Status(SKIP)
        ignored: np.ndarray | None = None
        scored = slots
        if require_all:
            ignored = np.zeros(slots.size, dtype=bool)
            for c in constraints:
                ignored |= cache.label_column(c.key)[0][slots] < 0
            scored = slots[~ignored]
        prepared = []
        namespaces = frozenset([pod.namespace])
        for c in constraints:
            pods = cache.count_matching(namespaces, c.selector)
            codes, values, complete = _key_layout(cache, c.key)
            if c.key == HOSTNAME:
                prepared.append(_Credit(c.max_skew - 1, math.log(scored.size + 2), pods, None,
                                        codes, complete))
                continue
            here = codes.take(scored)
            size = _domain_count(here, values, complete)
            eligible_key = _eligible_key(pod, constraints, c, require_all)
            at, where, _, n = _layout(cache, c, _eligible(pod, cache, constraints, c,
                                                          require_all), eligible_key)
            counts = np.bincount(where, weights=pods.take(at), minlength=n)
            credit = _Credit(c.max_skew - 1, math.log(size + 2), counts, codes, codes, complete)
            if scored is slots:
                credit.seen = (slots, here)  # score() is asked about the same slots
            prepared.append(credit)
        state[SCORE_STATE] = (prepared, ignored)
        return None

    def score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
              slots: np.ndarray) -> np.ndarray:
        """Σ over constraints of count(domain) × log(domains + 2) + maxSkew - 1 (rounded)."""
        prepared, ignored = state[SCORE_STATE]
        total: np.ndarray | None = None
        base = 0  # the maxSkew - 1 terms of constraints every node has the key of
        for credit in prepared:
            part = credit.at(slots)
            if credit.complete:
                base += credit.base
            total = part if total is None else np.add(total, part, out=total)
        assert total is not None
        if base:
            total += base
        out = np.rint(total, out=total).astype(np.int64)  # np.round's rounding
        if ignored is not None:
            out[ignored] = -1
        return out

    def normalize(self, state: CycleState, pod: PodInfo, scores: np.ndarray) -> np.ndarray:
        """Fewest matching pods scores 100: 100 × (max + min - s) / max; ignored nodes 0."""
        if scores.size and state[SCORE_STATE][1] is None:
            # Nothing ignored: every score is valid.
            top, low = int(np.maximum.reduce(scores)), int(np.minimum.reduce(scores))
            if top == 0:
                return np.full(scores.size, MAX_NODE_SCORE, dtype=np.int64)
            out = (top + low) - scores
            out *= MAX_NODE_SCORE
            out //= top
            return out
        valid = scores >= 0
        if not valid.any():
            return np.zeros(scores.size, dtype=np.int64)
        top = int(scores[valid].max())
        low = int(scores[valid].min())
        if top == 0:
            return np.where(valid, MAX_NODE_SCORE, 0).astype(np.int64)
        return np.where(valid, MAX_NODE_SCORE * (top + low - scores) // top, 0).astype(np.int64)


class _Credit:
    """What one soft constraint adds to each node's score: its domain's matching pods
    times the constraint's weight, plus maxSkew - 1 (nothing for nodes without the key)."""

    __slots__ = ("base", "weight", "counts", "domain_of", "codes", "complete", "seen")

    def __init__(self, base: int, weight: float, counts: np.ndarray,
                 domain_of: np.ndarray | None, codes: np.ndarray, complete: bool) -> None:
        self.base = base
        self.weight = weight
        # Per domain (indexed through `domain_of`), or per slot when that is None.
        self.counts = counts
        self.domain_of = domain_of
        self.codes = codes
        self.complete = complete
        # Slots whose domain codes were already looked up, and those codes.
        self.seen: tuple[np.ndarray, np.ndarray] | None = None

    def at(self, slots: np.ndarray) -> np.ndarray:
        """The credit of each slot, as float64; without maxSkew - 1 if `complete`."""
        if self.domain_of is None:
            index = slots
        elif self.seen is not None and self.seen[0] is slots:
            index = self.seen[1]
        else:
            index = self.domain_of.take(slots)
        # Code -1 (no label) reads the last domain; such nodes are masked out below.
        part = self.counts.take(index) * self.weight
        if not self.complete:
            part += self.base
            part[self.codes.take(slots) < 0] = 0.0
        return part


def selector_for_owners(pod: PodInfo, services: list[dict[str, Any]],
                        owners: list[LabelSelector]) -> LabelSelector | None:
    """Upstream's DefaultSelector: the pod's Services' selectors ANDed with those of the
    ReplicaSets, ReplicationControllers and StatefulSets that select it."""
    reqs: list[Requirement] = []
    merged: dict[str, str] = {}
    for svc in services:
        sel = (svc.get("spec") or {}).get("selector") or {}
        if sel and all(pod.labels.get(k) == v for k, v in sel.items()):
            merged.update(sel)
    reqs += [Requirement(k, IN, (v,)) for k, v in merged.items()]
    for sel in owners:
        if not sel.empty and not sel.nothing and sel.matches(pod.labels):
            reqs += list(sel.requirements)
    return LabelSelector(reqs) if reqs else None

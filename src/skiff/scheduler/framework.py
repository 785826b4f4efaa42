"""The scheduling framework: extension points, per-cycle state, and the filter → score run.

A plugin is an object with a `name` and any of these methods (looked up by name, as
upstream's framework type-asserts interfaces):

- `pre_filter(state, pod, cache) -> Status | None`: compute what Filter needs once
  per cycle; an UNSCHEDULABLE/UNRESOLVABLE status rejects every node, SKIP skips the
  plugin's filter.
- `filter(state, pod, cache, slots) -> bool array`: which of the given node slots pass.
- `filter_mask(state, pod, cache) -> bool array | None` (optional, preferred by the
  framework): the same verdict for every slot at once (an array as long as the cache's
  capacity), or None when the plugin passes every node. Whole-slot masks are cheap
  (contiguous, often memoised) and are combined before the candidates are looked at;
  as upstream, a rejected node is attributed to the first filter that fails it, which
  is worked out only when someone asks (explanations, failures).
- `filter_status(state, pod, cache, node) -> Status`: why one rejected node failed
  (only asked when a decision is explained).
- `pre_score(state, pod, cache, slots) -> Status | None` (SKIP skips scoring),
  `score(state, pod, cache, slots) -> int array`, `normalize(state, pod, scores)`.

Filters and scores work on arrays of node slots so plugins can vectorise; a plugin
that cannot simply loops over the slots.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from skiff.scheduler.cache import ClusterCache, NodeInfo
from skiff.scheduler.pod_info import PodInfo

Array = np.ndarray

SUCCESS = "Success"
UNSCHEDULABLE = "Unschedulable"
UNRESOLVABLE = "UnschedulableAndUnresolvable"
ERROR = "Error"
SKIP = "Skip"

MAX_NODE_SCORE = 100

NO_NODE_AVAILABLE = "{0}/{1} nodes are available"


@dataclass
class Status:
    """The outcome of one plugin at one extension point (for one node, for filters)."""

    code: str = SUCCESS
    reasons: list[str] = field(default_factory=list)
    plugin: str = ""

    @property
    def ok(self) -> bool:
        """Whether the plugin let the pod through."""
        return self.code == SUCCESS

    @property
    def rejected(self) -> bool:
        """Whether the pod cannot go there (either kind of unschedulable)."""
        return self.code in (UNSCHEDULABLE, UNRESOLVABLE)

    def message(self) -> str:
        """The reasons joined as upstream prints a status."""
        return ", ".join(self.reasons)


def unschedulable(*reasons: str) -> Status:
    """A status that preemption might fix."""
    return Status(UNSCHEDULABLE, list(reasons))


def unresolvable(*reasons: str) -> Status:
    """A status that evicting pods cannot fix."""
    return Status(UNRESOLVABLE, list(reasons))


class CycleState(dict[str, Any]):
    """What plugins compute in one scheduling cycle and pass to their later points."""

    def __init__(self) -> None:
        super().__init__()
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()


class Plugin(Protocol):
    """The least a plugin has: a name (see the module docstring for the extension points)."""

    name: str


class Diagnosis:
    """Why nodes were rejected: by which plugin, lazily turned into per-node reasons.

    `rejected` maps a plugin name to the slots of the nodes it rejected first (in
    evaluation order). Filtering leaves the plugins' masks and the evaluated slots here,
    and the attribution is made on first access: a successful cycle over nodes that all
    pass never pays for it.
    """

    def __init__(self, total: int = 0, pre_filter: Status | None = None,
                 rejected: dict[str, Array] | None = None) -> None:
        self.total = total
        self.pre_filter = pre_filter
        self._rejected = rejected
        self._masks: list[tuple[str, Array]] = []
        self._evaluated: Array | None = None
        self._statuses: dict[str, Status] | None = None

    def __repr__(self) -> str:
        return f"<Diagnosis total={self.total} rejected={self.rejected_count()}>"

    def defer(self, masks: list[tuple[str, Array]], evaluated: Array) -> None:
        """Remember the filters' whole-slot masks and the slots they were applied to."""
        self._masks = masks
        self._evaluated = evaluated
        self._rejected = None

    @property
    def rejected(self) -> dict[str, Array]:
        """Plugin name → slots of the nodes it was the first to reject."""
        if self._rejected is None:
            out: dict[str, Array] = {}
            remaining = self._evaluated
            if remaining is not None:
                for name, mask in self._masks:
                    if remaining.size == 0:
                        break
                    ok = mask[remaining]
                    if not ok.all():
                        out[name] = remaining[~ok]
                        remaining = remaining[ok]
            self._rejected = out
            self._masks = []
        return self._rejected

    @property
    def unschedulable_plugins(self) -> set[str]:
        """Plugins that rejected the pod somewhere (the queue's requeue hints use them)."""
        out = {name for name, slots in self.rejected.items() if slots.size}
        if self.pre_filter is not None and self.pre_filter.plugin:
            out.add(self.pre_filter.plugin)
        return out

    def rejected_count(self) -> int:
        """How many nodes some filter rejected."""
        return sum(int(s.size) for s in self.rejected.values())


@dataclass
class FilterResult:
    """Feasible nodes and the diagnosis of the rest."""

    feasible: Array
    diagnosis: Diagnosis
    evaluated: int


@dataclass
class ScoreResult:
    """Per feasible node: total score and each plugin's weighted share."""

    slots: Array
    totals: Array
    by_plugin: dict[str, Array]
    raw: dict[str, Array]


class Framework:
    """Runs a profile's plugins at each extension point."""

    def __init__(self, plugins: Iterable[Any], weights: dict[str, int]) -> None:
        self.plugins = list(plugins)
        self.weights = dict(weights)
        self.by_name = {p.name: p for p in self.plugins}
        self.pre_filters = [p for p in self.plugins if hasattr(p, "pre_filter")]
        self.filters = [p for p in self.plugins if hasattr(p, "filter")]
        self.pre_scores = [p for p in self.plugins if hasattr(p, "pre_score")]
        self.scorers = [p for p in self.plugins if hasattr(p, "score")
                        and self.weights.get(p.name, 0) > 0]
        self.post_filters = [p for p in self.plugins if hasattr(p, "post_filter")]
        self._scoring = [(p, self.weights[p.name], getattr(p, "normalize", None))
                         for p in self.scorers]

    # -- filtering ------------------------------------------------------------------------------

    def run_pre_filter(self, state: CycleState, pod: PodInfo,
                       cache: ClusterCache) -> Status | None:
        """Run every PreFilter; the first rejection ends the cycle for all nodes."""
        for p in self.pre_filters:
            status = p.pre_filter(state, pod, cache)
            if status is None or status.ok:
                continue
            status.plugin = status.plugin or p.name
            if status.code == SKIP:
                state.skip_filter.add(p.name)
                continue
            return status
        return None

    def filter_masks(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                     candidates: Array) -> list[tuple[str, Array]]:
        """Each filter plugin's whole-slot verdict, in plugin order; plugins that pass every
        node are left out. A plugin without `filter_mask` is asked about `candidates`."""
        masks: list[tuple[str, Array]] = []
        for p in self.filters:
            if p.name in state.skip_filter:
                continue
            if hasattr(p, "filter_mask"):
                mask = p.filter_mask(state, pod, cache)
            else:
                ok = np.asarray(p.filter(state, pod, cache, candidates), dtype=bool)
                mask = None
                if not ok.all():
                    mask = np.ones(cache.capacity, dtype=bool)
                    mask[candidates] = ok
            if mask is not None:
                masks.append((p.name, mask))
        return masks

    def find_feasible(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                      candidates: Array, wanted: int = 0) -> FilterResult:
        """Filter `candidates` (slots in evaluation order) through every Filter plugin.

        With `wanted`, only the first `wanted` feasible nodes in that order are returned,
        and `evaluated` says how many candidates it took to find them (upstream stops
        searching there; nodes after it are neither feasible nor rejected).
        """
        total = int(candidates.size)
        diagnosis = Diagnosis(total=total)
        status = self.run_pre_filter(state, pod, cache)
        if status is not None:
            diagnosis.pre_filter = status
            return FilterResult(candidates[:0], diagnosis, total)
        masks = self.filter_masks(state, pod, cache, candidates)
        if not masks:
            if wanted and total > wanted:
                return FilterResult(candidates[:wanted], diagnosis, wanted)
            return FilterResult(candidates, diagnosis, total)
        combined = masks[0][1]
        for _, mask in masks[1:]:
            combined = combined & mask
        index = combined[candidates].nonzero()[0]
        evaluated = total
        if wanted and index.size > wanted:
            index = index[:wanted]
            evaluated = int(index[-1]) + 1
        if index.size < evaluated:
            diagnosis.defer(masks, candidates[:evaluated])
        return FilterResult(candidates[index], diagnosis, evaluated)

    def filter_one(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                   info: NodeInfo) -> Status:
        """Every filter on one node (after PreFilter ran): the first failure, or success."""
        slots = np.array([info.slot])
        for p in self.filters:
            if p.name in state.skip_filter:
                continue
            if not bool(np.asarray(p.filter(state, pod, cache, slots), dtype=bool)[0]):
                return self.node_status(state, pod, cache, p.name, info)
        return Status()

    def node_status(self, state: CycleState, pod: PodInfo, cache: ClusterCache, plugin: str,
                    info: NodeInfo) -> Status:
        """Why `plugin` rejected the node in `info`."""
        p = self.by_name[plugin]
        status = p.filter_status(state, pod, cache, info)
        status.plugin = plugin
        return status

    def statuses(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                 diagnosis: Diagnosis) -> dict[str, Status]:
        """Per rejected node name, the status of the filter that rejected it."""
        if diagnosis._statuses is not None:
            return diagnosis._statuses
        out: dict[str, Status] = {}
        if diagnosis.pre_filter is not None:
            for slot in cache.order():
                out[cache.info_at(int(slot)).name] = diagnosis.pre_filter
        for plugin, slots in diagnosis.rejected.items():
            for slot in slots:
                info = cache.info_at(int(slot))
                out[info.name] = self.node_status(state, pod, cache, plugin, info)
        diagnosis._statuses = out
        return out

    # -- scoring --------------------------------------------------------------------------------

    def score(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
              slots: Array) -> ScoreResult:
        """PreScore, Score and NormalizeScore of every scoring plugin, weighted and summed."""
        for p in self.pre_scores:
            status = p.pre_score(state, pod, cache, slots)
            if status is not None and status.code == SKIP:
                state.skip_score.add(p.name)
        totals: Array | None = None
        by_plugin: dict[str, Array] = {}
        raw: dict[str, Array] = {}
        for p, weight, normalize in self._scoring:
            if p.name in state.skip_score:
                continue
            scores = np.asarray(p.score(state, pod, cache, slots), dtype=np.int64)
            raw[p.name] = scores
            if normalize is not None:
                scores = np.asarray(normalize(state, pod, scores), dtype=np.int64)
            weighted = scores * weight if weight != 1 else scores
            by_plugin[p.name] = weighted
            # The first share is copied: the others are added to it in place.
            totals = weighted.copy() if totals is None else np.add(totals, weighted, out=totals)
        if totals is None:
            totals = np.zeros(slots.size, dtype=np.int64)
        return ScoreResult(slots, totals, by_plugin, raw)


def default_normalize(scores: Array, reverse: bool = False) -> Array:
    """Upstream's DefaultNormalizeScore: scale so the best is 100 (reversed: lowest best)."""
    if scores.size == 0:
        return scores
    top = int(np.maximum.reduce(scores))
    if top == 0:
        return np.full(scores.size, MAX_NODE_SCORE if reverse else 0, dtype=np.int64)
    out = MAX_NODE_SCORE * scores // top
    return MAX_NODE_SCORE - out if reverse else out

"""Live per-node counts of the pods that match a (namespaces, label selector) pair.

Topology spreading and pod affinity ask, for every cycle, how many pods a selector
matches on each node. The cache answers from *count indexes*: one per-slot array per
selector asked about, kept current as pods come and go, so a cycle reads an array
instead of walking pods.

Pods are grouped by label set (namespace and labels): a Deployment's pods share one,
so matching a selector is done once per label set, not once per pod. Both directions
of that matching go through a label index rather than a scan:

- a new count index looks only at the label sets carrying one `key=value` its selector
  requires (its *anchor*), not at every label set;
- a new label set looks only at the count indexes anchored on one of its labels (plus
  the few selectors without an equality requirement).

So with more selectors in use than indexes kept (a thousand ReplicaSets spread at
once), an index that was dropped costs as much to rebuild as its own pods, not as
much as the cluster.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import Any

import numpy as np

from skiff.api.selectors.labels import DOUBLE_EQUALS, EQUALS, IN, LabelSelector

Array = np.ndarray

# How many count indexes are kept (least recently used dropped first): at least
# COUNT_INDEXES, more while their arrays hold no more than COUNT_BUDGET slots in all
# (16 MiB), so that a thousand ReplicaSets spreading at once keep theirs.
COUNT_INDEXES = 256
COUNT_BUDGET = 1 << 21
# How many label sets' lists of matching indexes are remembered at most.
MEMO_LIMIT = 4096

LabelSetKey = tuple[str, tuple[tuple[str, str], ...]]


def label_key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """A hashable form of a label set (memo keys)."""
    return tuple(sorted(labels.items())) if labels else ()


def anchors(selector: LabelSelector) -> list[tuple[str, str]] | None:
    """`key=value` pairs one of which every label set the selector matches carries (the
    requirement with the fewest values), or None when no requirement pins a value."""
    if selector.nothing:
        return []
    best: list[tuple[str, str]] | None = None
    for r in selector.requirements:
        if r.operator in (IN, EQUALS, DOUBLE_EQUALS) and (best is None
                                                            or len(r.values) < len(best)):
            best = [(r.key, v) for v in r.values]
    return best


class _Index:
    """One count index: its selector, the per-slot counts, and bookkeeping for dropping it."""

    __slots__ = ("namespaces", "selector", "counts", "anchors", "sets")

    def __init__(self, namespaces: frozenset[str] | None, selector: LabelSelector,
                 counts: Array, anchored: list[tuple[str, str]] | None) -> None:
        self.namespaces = namespaces
        self.selector = selector
        self.counts = counts
        self.anchors = anchored
        # Label sets whose remembered list of matching indexes holds this one.
        self.sets: set[LabelSetKey] = set()

    def selects(self, namespace: str, labels: dict[str, str]) -> bool:
        """Whether pods with this namespace and labels count here."""
        return ((self.namespaces is None or namespace in self.namespaces)
                and self.selector.matches(labels))


class MatchCounts:
    """Count indexes over the live (not terminating) pods, by node slot."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._indexes: OrderedDict[tuple[Any, LabelSelector], _Index] = OrderedDict()
        # Indexes by anchor, and those without one.
        self._anchored: dict[tuple[str, str], dict[tuple[Any, LabelSelector], _Index]] = {}
        self._unanchored: dict[tuple[Any, LabelSelector], _Index] = {}
        # Live pods by label set: the labels and, per slot, how many.
        self._label_sets: dict[LabelSetKey, tuple[dict[str, str], Counter[int]]] = {}
        # Label sets by each of their `key=value` pairs.
        self._sets_by_label: dict[tuple[str, str], set[LabelSetKey]] = {}
        # Per label set, the count arrays of the indexes that select it.
        self._matching: dict[LabelSetKey, list[Array]] = {}

    def __len__(self) -> int:
        return len(self._indexes)

    def grow(self, capacity: int) -> None:
        """Lengthen every count array to `capacity` slots."""
        extra = capacity - self.capacity
        for index in self._indexes.values():
            index.counts = np.concatenate([index.counts, np.zeros(extra, np.int64)])
        self.capacity = capacity
        self._matching.clear()

    def get(self, namespaces: frozenset[str] | None, selector: LabelSelector) -> Array:
        """Per slot, how many live pods in `namespaces` (None: any) match `selector`."""
        key = (namespaces, selector)
        index = self._indexes.get(key)
        if index is not None:
            self._indexes.move_to_end(key)
            return index.counts
        anchored = anchors(selector)
        counts = np.zeros(self.capacity, dtype=np.int64)
        index = _Index(namespaces, selector, counts, anchored)
        if anchored is None:
            candidates: Any = self._label_sets
            self._unanchored[key] = index
        else:
            candidates = set()
            for pair in anchored:
                candidates.update(self._sets_by_label.get(pair, ()))
                self._anchored.setdefault(pair, {})[key] = index
        for set_key in candidates:
            labels, per_slot = self._label_sets[set_key]
            if not index.selects(set_key[0], labels):
                continue
            for slot, n in per_slot.items():
                counts[slot] += n
            found = self._matching.get(set_key)
            if found is not None:
                found.append(counts)
                index.sets.add(set_key)
        self._indexes[key] = index
        while len(self._indexes) > max(COUNT_INDEXES, COUNT_BUDGET // self.capacity):
            self._drop(*self._indexes.popitem(last=False))
        return counts

    def _drop(self, key: tuple[Any, LabelSelector], index: _Index) -> None:
        if index.anchors is None:
            self._unanchored.pop(key, None)
        else:
            for pair in index.anchors:
                by_key = self._anchored.get(pair)
                if by_key is not None:
                    by_key.pop(key, None)
                    if not by_key:
                        del self._anchored[pair]
        for set_key in index.sets:
            found = self._matching.get(set_key)
            if found is not None:
                for i, counts in enumerate(found):
                    if counts is index.counts:
                        del found[i]
                        break

    def _matching_for(self, set_key: LabelSetKey, labels: dict[str, str]) -> list[Array]:
        found = self._matching.get(set_key)
        if found is not None:
            return found
        if len(self._matching) > MEMO_LIMIT:
            self._matching.clear()
        candidates = dict(self._unanchored)
        for pair in labels.items():
            by_key = self._anchored.get(pair)
            if by_key:
                candidates.update(by_key)
        found = []
        for index in candidates.values():
            if index.selects(set_key[0], labels):
                found.append(index.counts)
                index.sets.add(set_key)
        self._matching[set_key] = found
        return found

    def account(self, namespace: str, labels: dict[str, str], slot: int, sign: int,
                set_key: LabelSetKey | None = None) -> None:
        """Count one live pod in (`sign` 1) or out (-1) of `slot` (`set_key`: its
        (namespace, label_key(labels)), if known already)."""
        if set_key is None:
            set_key = (namespace, label_key(labels))
        if self._indexes:
            for counts in self._matching_for(set_key, labels):
                counts[slot] += sign
        entry = self._label_sets.get(set_key)
        if entry is None:
            if sign < 0:
                return
            entry = self._label_sets[set_key] = (labels, Counter())
            for pair in labels.items():
                self._sets_by_label.setdefault(pair, set()).add(set_key)
        per_slot = entry[1]
        per_slot[slot] += sign
        if per_slot[slot] <= 0:
            del per_slot[slot]
            if not per_slot:
                del self._label_sets[set_key]
                self._matching.pop(set_key, None)
                for pair in entry[0].items():
                    sets = self._sets_by_label.get(pair)
                    if sets is not None:
                        sets.discard(set_key)
                        if not sets:
                            del self._sets_by_label[pair]

"""The scheduler's picture of the cluster: nodes, the pods on them, and assumed pods.

Each node has a slot; per-slot figures (allocatable, requested, non-zero requested)
live in numpy arrays so that filtering and scoring thousands of nodes are a few
array operations. Pods are added and removed incrementally, so a scheduling cycle
never rebuilds anything. A pod the scheduler has decided to bind is *assumed*: it
counts on its node at once, before the binding's watch event echoes back, so the
next cycle already sees the node as fuller.

The scheduling cycle is synchronous code on the event loop, so the cache itself
serves as the cycle's consistent snapshot; informer events are applied between
cycles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from skiff.api import meta as m
from skiff.api.selectors.labels import LabelSelector
from skiff.scheduler.counts import MEMO_LIMIT, MatchCounts
from skiff.scheduler.pod_info import BASIC, CPU, MEMORY, PODS, PodInfo, normalized_image, quantity
from skiff.scheduler.terms import AffinityTerm

Obj = dict[str, Any]

Array = np.ndarray

# CPU and memory are the first two rows of the per-resource arrays (BASIC's order), so
# scoring reads both with one slice.
CPU_MEMORY = slice(0, 2)
assert BASIC[:2] == (CPU, MEMORY)

# Resource memos kept at most, and how many slot changes they may fall behind by before
# they are recomputed whole rather than slot by slot.
RESOURCE_MEMOS = 64
CHANGE_LOG = 1024

REQUIRED_ANTI = "required-anti-affinity"
REQUIRED_AFFINITY = "required-affinity"
PREFERRED_AFFINITY = "preferred-affinity"
PREFERRED_ANTI = "preferred-anti-affinity"


class NodeInfo:
    """One node and the pods the scheduler counts on it."""

    __slots__ = ("name", "slot", "node", "labels", "taints", "unschedulable", "pods", "ports",
                 "images")

    def __init__(self, name: str, slot: int) -> None:
        self.name = name
        self.slot = slot
        self.node: Obj | None = None
        self.labels: dict[str, str] = {}
        self.taints: list[Obj] = []
        self.unschedulable = False
        self.pods: dict[str, PodInfo] = {}
        self.ports: Counter[tuple[str, str, int]] = Counter()
        self.images: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<NodeInfo {self.name} pods={len(self.pods)}>"


def _images(node: Obj) -> dict[str, int]:
    out: dict[str, int] = {}
    for img in (node.get("status") or {}).get("images") or []:
        size = img.get("sizeBytes") or 0
        for name in img.get("names") or []:
            out[normalized_image(name)] = int(size) if isinstance(size, int) else 0
    return out


class ClusterCache:
    """Nodes and pods as the scheduler counts them, with array views per resource."""

    def __init__(self, capacity: int = 256) -> None:
        self.resources: list[str] = list(BASIC)
        self.row: dict[str, int] = {r: i for i, r in enumerate(self.resources)}
        self.capacity = capacity
        self.allocatable = np.zeros((len(self.resources), capacity), dtype=np.int64)
        self.requested = np.zeros((len(self.resources), capacity), dtype=np.int64)
        # allocatable - requested, kept current so that filtering reads one row per
        # resource rather than computing it for every node each cycle.
        self.remaining = np.zeros((len(self.resources), capacity), dtype=np.int64)
        # Non-zero CPU and memory requests (scoring's view), rows 0 and 1.
        self.non_zero = np.zeros((2, capacity), dtype=np.int64)
        self.valid = np.zeros(capacity, dtype=bool)
        self.nodes: dict[str, NodeInfo] = {}
        self.slots: list[NodeInfo | None] = [None] * capacity
        self._free: list[int] = list(range(capacity - 1, -1, -1))
        self.pods: dict[str, PodInfo] = {}
        self.assumed: set[str] = set()
        self.with_affinity: dict[str, PodInfo] = {}
        self.with_required_anti: dict[str, PodInfo] = {}
        # Per image (normalized name): the slots of the nodes that report it, with its size.
        self.image_slots: dict[str, dict[int, int]] = {}
        # Bumped whenever node labels, taints or membership change (masks cached by
        # plugins are keyed by it) and whenever anything changes at all.
        self.node_generation = 0
        self.generation = 0
        self._columns: dict[str, tuple[Array, list[str]]] = {}
        self._order: Array | None = None
        self._order_twice: Array | None = None
        # Live per-slot counts of pods matching a (namespaces, selector) pair, and of
        # existing pods carrying each distinct affinity term; see count_matching/terms.
        self._counts = MatchCounts(capacity)
        self.term_counts: dict[tuple[str, int, AffinityTerm], Array] = {}
        # How many distinct terms of each kind term_counts holds.
        self.term_kinds: Counter[str] = Counter()
        # Which existing terms a pod with given namespace and labels matches, remembered
        # per label set (pod_memo) until terms are added or dropped.
        self.terms_generation = 0
        self.pod_memo: dict[Any, Any] = {}
        self.namespace_labels: dict[str, dict[str, str]] = {}
        # Per-node results that depend only on node labels/taints and some pod trait
        # (a toleration list, a node selector), shared by every pod with that trait.
        self._node_memo: dict[Any, Any] = {}
        # Results that depend on node images too (cleared when images or nodes change).
        self._image_memo: dict[Any, Any] = {}
        # Per-slot results that depend on node resources and what the node's pods request
        # (a score for one request shape), each with how far into the log of changed
        # slots it is current; see resource_memo.
        self._resource_memo: dict[Any, list[Any]] = {}
        self._changed_slots: list[int] = []
        self._changed_base = 0

    # -- slots and arrays ---------------------------------------------------------------------

    def _grow(self) -> None:
        extra = self.capacity
        self.allocatable = np.concatenate(
            [self.allocatable, np.zeros((len(self.resources), extra), dtype=np.int64)], axis=1)
        self.requested = np.concatenate(
            [self.requested, np.zeros((len(self.resources), extra), dtype=np.int64)], axis=1)
        self.remaining = np.concatenate(
            [self.remaining, np.zeros((len(self.resources), extra), dtype=np.int64)], axis=1)
        self.non_zero = np.concatenate([self.non_zero, np.zeros((2, extra), dtype=np.int64)],
                                       axis=1)
        self.valid = np.concatenate([self.valid, np.zeros(extra, dtype=bool)])
        self._counts.grow(self.capacity + extra)
        for key, counts in self.term_counts.items():
            self.term_counts[key] = np.concatenate([counts, np.zeros(extra, np.int64)])
        self._terms_changed()
        self.slots.extend([None] * extra)
        self._free = list(range(self.capacity + extra - 1, self.capacity - 1, -1)) + self._free
        self.capacity += extra
        # Memoised per-slot arrays have the old length.
        self._nodes_changed()

    def resource_row(self, name: str) -> int:
        """The array row of resource `name`, adding one for a new extended resource."""
        row = self.row.get(name)
        if row is None:
            row = len(self.resources)
            self.resources.append(name)
            self.row[name] = row
            zeros = np.zeros((1, self.capacity), dtype=np.int64)
            self.allocatable = np.concatenate([self.allocatable, zeros])
            self.requested = np.concatenate([self.requested, zeros.copy()])
            self.remaining = np.concatenate([self.remaining, zeros.copy()])
        return row

    def _info(self, name: str) -> NodeInfo:
        info = self.nodes.get(name)
        if info is None:
            if not self._free:
                self._grow()
            slot = self._free.pop()
            info = NodeInfo(name, slot)
            self.nodes[name] = info
            self.slots[slot] = info
        return info

    def _release_if_empty(self, info: NodeInfo) -> None:
        if info.node is None and not info.pods:
            del self.nodes[info.name]
            self.slots[info.slot] = None
            self.allocatable[:, info.slot] = 0
            self.requested[:, info.slot] = 0
            self.remaining[:, info.slot] = 0
            self.non_zero[:, info.slot] = 0
            self._free.append(info.slot)
            self._slot_changed(info.slot)

    def _nodes_changed(self) -> None:
        self.node_generation += 1
        self._columns.clear()
        self._node_memo.clear()
        self._image_memo.clear()
        self._resource_memo.clear()
        self._order = None
        self._order_twice = None

    def _set_images(self, info: NodeInfo, images: dict[str, int]) -> None:
        if images == info.images:
            return
        for name in info.images.keys() - images.keys():
            where = self.image_slots.get(name)
            if where is not None:
                where.pop(info.slot, None)
                if not where:
                    del self.image_slots[name]
        for name, size in images.items():
            self.image_slots.setdefault(name, {})[info.slot] = size
        info.images = images
        self._image_memo.clear()

    def image_memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """`compute()`, remembered until node images, labels, taints or membership change."""
        return _remembered(self._image_memo, key, compute)

    def node_memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """`compute()`, remembered until node labels, taints or membership change."""
        return _remembered(self._node_memo, key, compute)

    def _slot_changed(self, slot: int) -> None:
        self._changed_slots.append(slot)
        if len(self._changed_slots) > CHANGE_LOG:
            # Memos this far behind are recomputed whole.
            self._changed_base += len(self._changed_slots)
            self._changed_slots = []

    def resource_memo(self, key: Any, compute: Callable[[], Array],
                      compute_slot: Callable[[int], Any]) -> Array:
        """A per-slot array `compute()`, remembered and kept current by setting
        `compute_slot(slot)` for every slot whose allocatable or requests changed since.
        Between two cycles one pod was assumed, so that is a slot or two rather than an
        array operation per term over every node (callers must not modify it)."""
        end = self._changed_base + len(self._changed_slots)
        entry = self._resource_memo.get(key)
        if entry is None or entry[1] < self._changed_base:
            if len(self._resource_memo) >= RESOURCE_MEMOS:
                self._resource_memo.clear()
            array = compute()
            self._resource_memo[key] = [array, end]
            return array
        array, seen = entry
        if seen < end:
            for slot in set(self._changed_slots[seen - self._changed_base:]):
                array[slot] = compute_slot(slot)
            entry[1] = end
        return array

    def node_mask(self, key: Any, test: Callable[[NodeInfo], bool]) -> Array:
        """A per-slot bool array of `test(node)`, memoised under `key` (see node_memo)."""

        def compute() -> Array:
            mask = np.zeros(self.capacity, dtype=bool)
            for info in self.nodes.values():
                if info.node is not None and test(info):
                    mask[info.slot] = True
            return mask

        return self.node_memo(key, compute)

    # -- nodes --------------------------------------------------------------------------------

    def set_node(self, node: Obj) -> None:
        """Add or update a node."""
        name = m.name_of(node)
        info = self._info(name)
        spec = node.get("spec") or {}
        labels = m.labels_of(node)
        taints = [t for t in spec.get("taints") or [] if isinstance(t, dict)]
        unschedulable = bool(spec.get("unschedulable"))
        if (info.node is None or labels != info.labels or taints != info.taints
                or unschedulable != info.unschedulable):
            self._nodes_changed()
        info.node = node
        info.labels = labels
        info.taints = taints
        info.unschedulable = unschedulable
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        self.allocatable[:, info.slot] = 0
        for name_, value in allocatable.items():
            # The row first: adding one replaces the array being indexed.
            row = self.resource_row(name_)
            self.allocatable[row, info.slot] = quantity(name_, value)
        self.remaining[:, info.slot] = self.allocatable[:, info.slot] - self.requested[:, info.slot]
        self._slot_changed(info.slot)
        self._set_images(info, _images(node))
        self.valid[info.slot] = True
        self.generation += 1

    def remove_node(self, name: str) -> None:
        """Forget a node (its pods stay counted until they are removed)."""
        info = self.nodes.get(name)
        if info is None:
            return
        self._set_images(info, {})
        info.node = None
        self.valid[info.slot] = False
        self.allocatable[:, info.slot] = 0
        self.remaining[:, info.slot] = -self.requested[:, info.slot]
        self._slot_changed(info.slot)
        self._nodes_changed()
        self.generation += 1
        self._release_if_empty(info)

    # -- pods ---------------------------------------------------------------------------------

    def _account(self, info: NodeInfo, pod: PodInfo, sign: int) -> None:
        slot = info.slot
        for name, amount in pod.requests.items():
            row = self.resource_row(name)
            self.requested[row, slot] += sign * amount
            self.remaining[row, slot] -= sign * amount
        pods_row = self.row[PODS]
        self.requested[pods_row, slot] += sign
        self.remaining[pods_row, slot] -= sign
        self.non_zero[0, slot] += sign * pod.non_zero[0]
        self.non_zero[1, slot] += sign * pod.non_zero[1]
        self._slot_changed(slot)
        if not pod.terminating:
            self._counts.account(pod.namespace, pod.labels, slot, sign, pod.set_key())
        if pod.has_affinity:
            self._account_terms(pod, slot, sign)
        if not pod.ports:
            pass
        elif sign > 0:
            info.ports.update(pod.ports)
        else:
            info.ports.subtract(pod.ports)
            for p in pod.ports:
                if info.ports[p] <= 0:
                    del info.ports[p]
        self.generation += 1

    def _account_terms(self, pod: PodInfo, slot: int, sign: int) -> None:
        entries = [*((REQUIRED_ANTI, 0, t) for t in pod.required_anti_affinity),
                   *((REQUIRED_AFFINITY, 0, t) for t in pod.required_affinity),
                   *((PREFERRED_AFFINITY, w, t) for w, t in pod.preferred_affinity),
                   *((PREFERRED_ANTI, w, t) for w, t in pod.preferred_anti_affinity)]
        for key in entries:
            counts = self.term_counts.get(key)
            if counts is None:
                if sign < 0:
                    continue
                counts = self.term_counts[key] = np.zeros(self.capacity, dtype=np.int64)
                self.term_kinds[key[0]] += 1
                self._terms_changed()
            counts[slot] += sign
            if sign < 0 and not counts.any():
                del self.term_counts[key]
                self.term_kinds[key[0]] -= 1
                self._terms_changed()

    def add_pod(self, pod: PodInfo) -> None:
        """Count an assigned pod on its node (replacing an earlier version or assumption)."""
        if not pod.node_name:
            return
        self.remove_pod(pod.key)
        info = self._info(pod.node_name)
        info.pods[pod.key] = pod
        self.pods[pod.key] = pod
        self._account(info, pod, +1)
        if pod.has_affinity:
            self.with_affinity[pod.key] = pod
        if pod.required_anti_affinity:
            self.with_required_anti[pod.key] = pod

    def remove_pod(self, key: str) -> PodInfo | None:
        """Stop counting a pod (deleted, or about to be re-added)."""
        pod = self.pods.pop(key, None)
        self.assumed.discard(key)
        if pod is None:
            return None
        self.with_affinity.pop(key, None)
        self.with_required_anti.pop(key, None)
        info = self.nodes.get(pod.node_name)
        if info is not None and info.pods.pop(key, None) is not None:
            self._account(info, pod, -1)
            self._release_if_empty(info)
        return pod

    def assume(self, pod: PodInfo, node_name: str) -> PodInfo:
        """Count `pod` on `node_name` before its binding is confirmed."""
        assumed = pod.on_node(node_name)
        self.add_pod(assumed)
        self.assumed.add(pod.key)
        return assumed

    def confirm(self, key: str, pod: Obj) -> PodInfo:
        """The binding of an assumed pod is confirmed by `pod` (same node): it stays
        counted as it is, now as a bound pod."""
        info = self.pods[key]
        info.pod = pod
        self.assumed.discard(key)
        return info

    def refresh(self, key: str, pod: Obj) -> PodInfo | None:
        """If `pod` is a newer version of a counted, bound pod that differs only where the
        scheduler does not look (its status, mostly), keep counting it as it is, now with
        `pod` as its object, and return the info; None when it must be parsed anew."""
        info = self.pods.get(key)
        if info is None or key in self.assumed:
            return None
        old = info.pod
        if old is pod:
            return info
        old_md, new_md = old.get("metadata") or {}, pod.get("metadata") or {}
        if (old.get("spec") != pod.get("spec") or old_md.get("labels") != new_md.get("labels")
                or old_md.get("uid") != new_md.get("uid")
                or old_md.get("deletionTimestamp") != new_md.get("deletionTimestamp")):
            return None
        info.pod = pod
        return info

    def forget(self, key: str) -> None:
        """Undo an assumption (the binding failed)."""
        if key in self.assumed:
            self.remove_pod(key)

    def is_assumed(self, key: str) -> bool:
        """Whether the pod is counted only because the scheduler assumed it."""
        return key in self.assumed

    # -- views for plugins --------------------------------------------------------------------

    def order(self) -> Array:
        """Slots of present nodes in a stable order."""
        if self._order is None:
            self._order = np.flatnonzero(self.valid)
        return self._order

    def order_from(self, start: int) -> Array:
        """order() rotated to begin at its `start`-th entry (a view, not a copy)."""
        if self._order_twice is None:
            order = self.order()
            self._order_twice = np.concatenate([order, order])
        return self._order_twice[start:start + (self._order_twice.size // 2)]

    def node_count(self) -> int:
        """How many nodes are present."""
        return int(self.order().size)

    def info_at(self, slot: int) -> NodeInfo:
        """The NodeInfo in `slot`."""
        info = self.slots[slot]
        assert info is not None
        return info

    def label_column(self, key: str) -> tuple[Array, list[str]]:
        """Per slot, a code for node label `key`'s value (-1 when absent), and the values."""
        cached = self._columns.get(key)
        if cached is not None:
            return cached
        codes = np.full(self.capacity, -1, dtype=np.int32)
        values: list[str] = []
        index: dict[str, int] = {}
        for info in self.nodes.values():
            if info.node is None:
                continue
            value = info.labels.get(key)
            if value is None:
                continue
            code = index.get(value)
            if code is None:
                code = index[value] = len(values)
                values.append(value)
            codes[info.slot] = code
        self._columns[key] = (codes, values)
        return codes, values

    def domain_sums(self, key: str, per_node: Array) -> Array:
        """Per slot: the sum of `per_node` over the present nodes in the same domain of
        topology key `key` (0 for nodes without the label)."""
        codes, values = self.label_column(key)
        present = self.node_memo(("present", key), lambda: (codes >= 0) & self.valid)
        if self.node_memo(("unique", key), lambda: len(values) == int(present.sum())):
            # One node per domain (kubernetes.io/hostname): the sum is the node's own.
            return np.where(present, per_node, 0)
        slots = self.node_memo(("present-slots", key), lambda: np.flatnonzero(present))
        sums = np.bincount(codes[slots], weights=per_node[slots], minlength=max(len(values), 1))
        return np.where(codes >= 0, sums[np.maximum(codes, 0)], 0.0)

    def label_index(self, key: str) -> tuple[Array, Array]:
        """Per slot: label `key`'s value code clipped to 0 (an index into per-value
        arrays), and whether the node has the label at all."""
        def compute() -> tuple[Array, Array]:
            codes = self.label_column(key)[0]
            return np.maximum(codes, 0), codes >= 0

        return self.node_memo(("label-index", key), compute)

    def count_matching(self, namespaces: frozenset[str] | None, selector: LabelSelector
                       ) -> Array:
        """Per slot, how many live (not terminating) pods in `namespaces` (None: any)
        match `selector`; kept current as pods come and go (callers must not modify it)."""
        return self._counts.get(namespaces, selector)

    def _terms_changed(self) -> None:
        self.terms_generation += 1
        self.pod_memo.clear()

    def set_namespace_labels(self, name: str, labels: dict[str, str] | None) -> None:
        """Record (or, with None, forget) a namespace's labels; namespace selectors of
        affinity terms match against them."""
        if labels is None:
            self.namespace_labels.pop(name, None)
        else:
            self.namespace_labels[name] = labels
        self._terms_changed()

    def term_namespaces(self, term: AffinityTerm) -> frozenset[str] | None:
        """The namespaces an affinity term covers (None: all)."""
        if term.namespace_selector is None:
            return term.namespaces
        if term.namespace_selector.empty:
            return None
        return term.namespaces | frozenset(
            ns for ns, labels in self.namespace_labels.items()
            if term.namespace_selector.matches(labels))

    def free(self, row: int) -> Array:
        """Allocatable minus requested of one resource, per slot."""
        return self.remaining[row]

    @property
    def cpu_row(self) -> int:
        """Row of CPU."""
        return self.row[CPU]

    @property
    def memory_row(self) -> int:
        """Row of memory."""
        return self.row[MEMORY]


def _remembered(memo: dict[Any, Any], key: Any, compute: Callable[[], Any]) -> Any:
    """`memo[key]`, computed and kept on a miss; a memo past MEMO_LIMIT starts over."""
    try:
        return memo[key]
    except KeyError:
        pass
    if len(memo) > MEMO_LIMIT:
        memo.clear()
    value = memo[key] = compute()
    return value

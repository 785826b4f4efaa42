"""The selectors of default topology spreading, remembered per namespace and label set.

A pod without topologySpreadConstraints is spread by the selectors of the Services,
ReplicaSets and StatefulSets that select it (upstream's DefaultSelector). All pods of
a ReplicaSet have the same labels, hence the same answer, so it is computed once per
(namespace, label set) and kept until an owner that could select those labels comes,
goes or changes its selector. Owners' status updates, most of their events, change
nothing. Which remembered answers an owner can affect is found through one
`key=value` pair its selector requires (see `counts.anchors`).
"""

from __future__ import annotations

from typing import Any

from skiff.api.errors import StatusError
from skiff.api.selectors.labels import (
    LabelSelector,
    from_label_selector_dict,
    selector_from_set,
)
from skiff.client.informer import Informer
from skiff.scheduler.counts import MEMO_LIMIT, anchors
from skiff.scheduler.plugins.pod_topology_spread import selector_for_owners
from skiff.scheduler.pod_info import PodInfo

Obj = dict[str, Any]

# ReplicaSets and StatefulSets are indexed by one label their selector requires.
SELECTOR_INDEX = "selector-label"
ANY_LABEL = "*"


def selector_key(owner: Obj) -> list[str]:
    """`namespace/key=value` for one label its selector requires (the first by key), or
    `namespace/*` for a selector without matchLabels: a pod it selects has that label."""
    ns = (owner.get("metadata") or {}).get("namespace", "")
    sel = (owner.get("spec") or {}).get("selector")
    labels = sel.get("matchLabels") if isinstance(sel, dict) else None
    if isinstance(labels, dict) and labels:
        key = min(labels)
        return [f"{ns}/{key}={labels[key]}"]
    return [f"{ns}/{ANY_LABEL}"]


class _Memo:
    """One namespace's remembered selectors, and which label sets carry each pair."""

    __slots__ = ("selectors", "by_pair")

    def __init__(self) -> None:
        self.selectors: dict[Any, LabelSelector | None] = {}
        self.by_pair: dict[tuple[str, str], set[Any]] = {}


class DefaultSelectors:
    """Default spreading selectors from the owners the given informers hold."""

    def __init__(self, services: Informer, replicasets: Informer,
                 statefulsets: Informer) -> None:
        self.services = services
        self.replicasets = replicasets
        self.statefulsets = statefulsets
        self._memos: dict[str, _Memo] = {}
        services.on_add(self._service_changed)
        services.on_update(self._service_updated)
        services.on_delete(self._service_changed)
        for inf in (replicasets, statefulsets):
            inf.on_add(self._owner_changed)
            inf.on_update(self._owner_updated)
            inf.on_delete(self._owner_changed)

    @property
    def handlers(self) -> tuple[Any, ...]:
        """The informer handlers (to take off shared informers)."""
        return (self._owner_changed, self._owner_updated, self._service_changed,
                self._service_updated)

    def get(self, pod: PodInfo) -> LabelSelector | None:
        """The selector default spreading uses for `pod` (None: no owner selects it)."""
        if not pod.labels:
            return None
        memo = self._memos.get(pod.namespace)
        if memo is None:
            memo = self._memos[pod.namespace] = _Memo()
        key = pod.set_key()[1]
        try:
            return memo.selectors[key]
        except KeyError:
            pass
        if len(memo.selectors) > MEMO_LIMIT:
            memo = self._memos[pod.namespace] = _Memo()
        selector = memo.selectors[key] = self.compute(pod)
        for pair in pod.labels.items():
            memo.by_pair.setdefault(pair, set()).add(key)
        return selector

    def compute(self, pod: PodInfo) -> LabelSelector | None:
        """The selector, worked out from the owners now."""
        services = self.services.by_index("namespace", pod.namespace)
        owners: list[LabelSelector] = []
        # Only owners whose selector can match: those indexed under one of the pod's
        # labels, or under none (selectors without matchLabels). Looking at every
        # owner in the namespace made each pod cost as much as the namespace is big.
        keys = [f"{pod.namespace}/{k}={v}" for k, v in pod.labels.items()]
        keys.append(f"{pod.namespace}/{ANY_LABEL}")
        for inf in (self.replicasets, self.statefulsets):
            for obj in (o for key in keys for o in inf.by_index(SELECTOR_INDEX, key)):
                selector = _owner_selector(_selector(obj))
                if selector is not None:
                    owners.append(selector)
        return selector_for_owners(pod, services, owners)

    # -- forgetting -----------------------------------------------------------------------------

    def _owner_changed(self, owner: Obj) -> None:
        self._forget(owner, _owner_anchors(owner))

    def _owner_updated(self, old: Obj, new: Obj) -> None:
        if _selector(old) != _selector(new):
            self._owner_changed(old)
            self._owner_changed(new)

    def _service_changed(self, service: Obj) -> None:
        self._forget(service, _service_anchors(service))

    def _service_updated(self, old: Obj, new: Obj) -> None:
        if _selector(old) != _selector(new):
            self._service_changed(old)
            self._service_changed(new)

    def _forget(self, owner: Obj, pairs: list[tuple[str, str]] | None) -> None:
        """Drop the answers an owner whose selector requires one of `pairs` (None: not
        known) could change."""
        ns = (owner.get("metadata") or {}).get("namespace", "")
        memo = self._memos.get(ns)
        if memo is None:
            return
        if pairs is None:
            del self._memos[ns]
            return
        for pair in pairs:
            for key in memo.by_pair.pop(pair, ()):
                memo.selectors.pop(key, None)


def _selector(owner: Obj) -> Any:
    return (owner.get("spec") or {}).get("selector")


def _owner_selector(raw: Any) -> LabelSelector | None:
    """A ReplicaSet's or StatefulSet's selector (None if it cannot be read)."""
    if (isinstance(raw, dict) and len(raw) == 1 and isinstance(labels := raw.get("matchLabels"),
                                                                dict) and labels
            and all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())):
        # The usual shape, validated when the owner was stored: no need to check it again.
        return selector_from_set(labels)
    try:
        return from_label_selector_dict(raw)
    except StatusError:
        return None


def _service_anchors(service: Obj) -> list[tuple[str, str]]:
    """A Service's selector is a plain map; every pod it selects has each pair. An
    empty or absent one selects no pod for spreading."""
    raw = _selector(service)
    if not isinstance(raw, dict) or not raw:
        return []
    key = min(raw)
    return [(key, str(raw[key]))]


def _owner_anchors(owner: Obj) -> list[tuple[str, str]] | None:
    """Pairs one of which every pod a ReplicaSet or StatefulSet selects carries (None
    when its selector pins no value, or cannot be read)."""
    try:
        return anchors(from_label_selector_dict(_selector(owner)))
    except StatusError:
        return None

"""Matching rules shared by plugins: node selector terms, pod affinity terms, tolerations.

Semantics follow upstream's component-helpers: node selector terms are ORed and
their expressions ANDed; a term with no expressions matches nothing; `NotIn` and
`DoesNotExist` match nodes without the key; `Gt`/`Lt` compare integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skiff.api.errors import StatusError
from skiff.api.selectors.labels import (
    IN,
    NOT_IN,
    NOTHING,
    LabelSelector,
    Requirement,
    from_label_selector_dict,
)

Obj = dict[str, Any]


def _int(text: str) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def requirement_matches(req: Obj, labels: Mapping[str, str]) -> bool:
    """One NodeSelectorRequirement against a node's labels."""
    key = req.get("key") or ""
    op = req.get("operator")
    values = req.get("values") or []
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        have, want = _int(labels[key]), _int(values[0])
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _field_matches(req: Obj, name: str) -> bool:
    if req.get("key") != "metadata.name":
        return False
    values = req.get("values") or []
    if req.get("operator") == "In":
        return name in values
    if req.get("operator") == "NotIn":
        return name not in values
    return False


def term_matches(term: Obj, labels: Mapping[str, str], name: str) -> bool:
    """One NodeSelectorTerm: all expressions and fields hold (an empty term matches nothing)."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    return all(requirement_matches(r, labels) for r in exprs) and \
        all(_field_matches(r, name) for r in fields)


def node_selector_matches(selector: Obj | None, labels: Mapping[str, str], name: str) -> bool:
    """A NodeSelector (terms ORed); None matches everything."""
    if selector is None:
        return True
    return any(term_matches(t, labels, name) for t in selector.get("nodeSelectorTerms") or []
               if isinstance(t, dict))


def required_node_affinity(spec: Obj) -> tuple[dict[str, str], Obj | None]:
    """The pod's nodeSelector and required node affinity selector."""
    node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    return (spec.get("nodeSelector") or {},
            node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution"))


def pod_matches_node(spec: Obj, labels: Mapping[str, str], name: str) -> bool:
    """nodeSelector and required node affinity together (what NodeAffinity filters on)."""
    selector, required = required_node_affinity(spec)
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    return node_selector_matches(required, labels, name)


# -- tolerations ----------------------------------------------------------------------------


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Whether one toleration tolerates one taint (upstream's ToleratesTaint)."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(tolerations: list[Obj], taint: Obj) -> bool:
    """Whether any of the tolerations tolerates the taint."""
    return any(tolerates(t, taint) for t in tolerations if isinstance(t, dict))


def first_untolerated(taints: list[Obj], tolerations: list[Obj],
                      effects: tuple[str, ...]) -> Obj | None:
    """The first taint with one of `effects` that no toleration tolerates."""
    for taint in taints:
        if taint.get("effect") in effects and not tolerated(tolerations, taint):
            return taint
    return None


# -- pod affinity terms ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    """A PodAffinityTerm compiled: whom it selects and over which topology."""

    selector: LabelSelector
    namespaces: frozenset[str]
    # None: only `namespaces`; EVERYTHING-like selector: every namespace; else by labels.
    namespace_selector: LabelSelector | None
    topology_key: str

    def matches_namespace(self, namespace: str, ns_labels: Mapping[str, str] | None) -> bool:
        """Whether pods in `namespace` are in the term's scope."""
        if namespace in self.namespaces:
            return True
        if self.namespace_selector is None:
            return False
        if self.namespace_selector.empty:
            return True
        return ns_labels is not None and self.namespace_selector.matches(ns_labels)

    def matches(self, namespace: str, labels: Mapping[str, str],
                ns_labels: Mapping[str, str] | None) -> bool:
        """Whether a pod (its namespace and labels) is selected by the term."""
        return self.matches_namespace(namespace, ns_labels) and self.selector.matches(labels)


def _selector(raw: Any, pod_labels: Mapping[str, str], match_keys: list[str],
              mismatch_keys: list[str]) -> LabelSelector:
    if not isinstance(raw, dict):
        return NOTHING
    try:
        base = from_label_selector_dict(raw)
    except StatusError:
        return NOTHING
    extra: list[Requirement] = []
    # matchLabelKeys / mismatchLabelKeys add the pod's own label values to the selector.
    for key in match_keys:
        if key in pod_labels:
            extra.append(Requirement(key, IN, (pod_labels[key],)))
    for key in mismatch_keys:
        if key in pod_labels:
            extra.append(Requirement(key, NOT_IN, (pod_labels[key],)))
    if not extra:
        return base
    if base.nothing:
        return base
    return LabelSelector([*base.requirements, *extra])


def parse_affinity_terms(raw: Any, namespace: str,
                         pod_labels: Mapping[str, str]) -> list[AffinityTerm]:
    """Compile a list of PodAffinityTerms of a pod in `namespace`."""
    out: list[AffinityTerm] = []
    for t in raw or []:
        if not isinstance(t, dict):
            continue
        namespaces = frozenset(n for n in t.get("namespaces") or [] if isinstance(n, str))
        ns_sel_raw = t.get("namespaceSelector")
        ns_sel: LabelSelector | None = None
        if isinstance(ns_sel_raw, dict):
            try:
                ns_sel = from_label_selector_dict(ns_sel_raw)
            except StatusError:
                ns_sel = NOTHING
        if not namespaces and ns_sel is None:
            namespaces = frozenset([namespace])
        out.append(AffinityTerm(
            selector=_selector(t.get("labelSelector"), pod_labels,
                               list(t.get("matchLabelKeys") or []),
                               list(t.get("mismatchLabelKeys") or [])),
            namespaces=namespaces, namespace_selector=ns_sel,
            topology_key=t.get("topologyKey") or ""))
    return out

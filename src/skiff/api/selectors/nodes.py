"""Matching pods to nodes: nodeSelector, required node affinity, taints and tolerations.

The rules are upstream's (component-helpers' nodeaffinity and the Toleration
helpers): selector terms are ORed, requirements within a term ANDed; a term with
no requirements matches nothing; `matchFields` knows only `metadata.name`. A
toleration with an empty key and operator Exists tolerates every taint.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def _int(text: str) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def requirement_matches(req: Obj, values: dict[str, str]) -> bool:
    """One NodeSelectorRequirement against a label (or field) map."""
    key = req.get("key", "")
    op = req.get("operator", "")
    wanted = req.get("values") or []
    present = key in values
    value = values.get(key, "")
    if op == "In":
        return present and value in wanted
    if op == "NotIn":
        return not present or value not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(wanted) != 1:
            return False
        have, bound = _int(value), _int(wanted[0])
        if have is None or bound is None:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def term_matches(term: Obj, node: Obj) -> bool:
    """One NodeSelectorTerm: all its requirements hold (and it has at least one)."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = (node.get("metadata") or {}).get("labels") or {}
    field_values = {"metadata.name": (node.get("metadata") or {}).get("name", "")}
    return (all(requirement_matches(r, labels) for r in exprs)
            and all(requirement_matches(r, field_values) for r in fields))


def node_selector_matches(selector: Obj | None, node: Obj) -> bool:
    """A NodeSelector: any of its terms matches (a nil selector matches every node)."""
    if selector is None:
        return True
    return any(term_matches(t, node) for t in selector.get("nodeSelectorTerms") or [])


def required_affinity_matches(pod_spec: Obj, node: Obj) -> bool:
    """The pod's nodeSelector and required node affinity both admit the node."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    affinity = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
    return node_selector_matches(
        affinity.get("requiredDuringSchedulingIgnoredDuringExecution"), node)


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Whether one toleration tolerates one taint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    op = toleration.get("operator") or "Equal"
    if not key:
        return op == "Exists"
    if key != taint.get("key"):
        return False
    if op == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taints(tolerations: list[Obj], taints: list[Obj],
                       effects: tuple[str, ...]) -> list[Obj]:
    """The taints with one of `effects` that no toleration tolerates."""
    return [t for t in taints if t.get("effect") in effects
            and not any(tolerates(tol, t) for tol in tolerations)]

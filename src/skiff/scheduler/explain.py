"""Explaining scheduling decisions: the annotation the scheduler writes, and per-node
verdicts for `skiff explain pod`.

When the scheduler binds a pod it puts a compact JSON explanation on the pod through
the binding (the API server copies a Binding's annotations onto the pod, as upstream
does), so the decision costs no extra write; for a pod that fits nowhere it writes
the same annotation with the rejection reasons. Read it with

    kubectl get pod NAME -o jsonpath='{.metadata.annotations.scheduler\\.skiff\\.dev/explanation}'

`evaluate` re-runs the filters and scores for one pod against the cluster as it is
now (from listed objects, with the pod itself taken off its node) and returns one
row per node: which filter rejected it and why, or what each score plugin gave it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from skiff.scheduler.algorithm import Decision, FitError, default_framework
from skiff.scheduler.cache import ClusterCache
from skiff.scheduler.framework import CycleState, Framework
from skiff.scheduler.plugins.node_resources_fit import NOMINATED_PODS
from skiff.scheduler.pod_info import pod_info

Obj = dict[str, Any]

ANNOTATION = "scheduler.skiff.dev/explanation"
EXAMPLE_NODES = 5


def _names(cache: ClusterCache, slots: np.ndarray, limit: int) -> list[str]:
    return [cache.info_at(int(s)).name for s in slots[:limit]]


def _candidate(decision: Decision, cache: ClusterCache, i: int) -> Obj:
    scores = decision.scores
    assert scores is not None
    return {"node": cache.info_at(int(scores.slots[i])).name, "total": int(scores.totals[i]),
            "plugins": {p: int(v[i]) for p, v in scores.by_plugin.items() if v[i]}}


def scheduled(decision: Decision, cache: ClusterCache, total: int) -> Obj:
    """The explanation of a binding decision (kept small: it rides on the pod).

    `top` holds the chosen node and the best of the others, with each score plugin's
    weighted share (plugins that gave 0 left out)."""
    out: Obj = {"result": "Scheduled", "node": decision.node, "nodes": total,
                "evaluated": decision.evaluated, "feasible": decision.feasible}
    rejected = {p: int(s.size) for p, s in decision.diagnosis.rejected.items() if s.size}
    if rejected:
        out["rejectedBy"] = rejected
    scores = decision.scores
    if scores is None or decision.pick < 0:
        out["why"] = ("the nominated node still fits" if decision.evaluated == 1 and total > 1
                      and decision.feasible == 1 and not rejected
                      else "the only feasible node")
        return out
    totals = scores.totals
    best = int(totals[decision.pick])
    others = totals.copy()
    others[decision.pick] = np.iinfo(others.dtype).min
    second = int(np.argmax(others))
    out["top"] = [_candidate(decision, cache, decision.pick),
                  _candidate(decision, cache, second)]
    if decision.ties > 1:
        out["why"] = (f"highest total score {best}, shared by {decision.ties} nodes; "
                      "picked at random")
    else:
        out["why"] = f"highest total score {best} (next: {out['top'][1]['total']} on " \
                     f"{out['top'][1]['node']})"
    return out


def unschedulable(err: FitError, cache: ClusterCache) -> Obj:
    """The explanation of a failed attempt: reasons with counts and example nodes."""
    by_reason: dict[str, list[str]] = {}
    for node, status in err.node_statuses.items():
        for reason in status.reasons:
            by_reason.setdefault(f"{status.plugin}: {reason}", []).append(node)
    reasons = {r: {"count": len(nodes), "nodes": sorted(nodes)[:EXAMPLE_NODES]}
               for r, nodes in sorted(by_reason.items())}
    out: Obj = {"result": "Unschedulable", "nodes": err.total, "message": err.message(),
                "reasons": reasons}
    if err.post_filter_message:
        out["preemption"] = err.post_filter_message
    return out


def encode(explanation: Obj) -> str:
    """The annotation value."""
    return orjson.dumps(explanation).decode()


# -- evaluation for `skiff explain` -------------------------------------------------------------


@dataclass
class NodeRow:
    """One node's verdict for one pod."""

    node: str
    feasible: bool
    plugin: str = ""
    reasons: list[str] = field(default_factory=list)
    total: int = 0
    scores: dict[str, int] = field(default_factory=dict)


@dataclass
class Evaluation:
    """Every node's verdict, and the node the scheduler would pick now."""

    rows: list[NodeRow]
    best: str = ""
    message: str = ""


def build_cache(nodes: list[Obj], pods: list[Obj], namespaces: list[Obj],
                leave_out: str = "") -> ClusterCache:
    """A scheduler cache from listed objects (`leave_out`: a pod key not to count)."""
    cache = ClusterCache()
    for n in nodes:
        cache.set_node(n)
    for ns in namespaces:
        md = ns.get("metadata") or {}
        cache.namespace_labels[md.get("name", "")] = md.get("labels") or {}
    for p in pods:
        info = pod_info(p)
        phase = (p.get("status") or {}).get("phase")
        if info.node_name and info.key != leave_out and phase not in ("Succeeded", "Failed"):
            cache.add_pod(info)
    return cache


def evaluate(pod: Obj, nodes: list[Obj], pods: list[Obj], namespaces: list[Obj],
             framework: Framework | None = None) -> Evaluation:
    """Filter and score `pod` against every node as the scheduler would now."""
    # A bound pod is evaluated as if it were pending again.
    pending = {**pod, "spec": {k: v for k, v in (pod.get("spec") or {}).items()
                               if k != "nodeName"}}
    info = pod_info(pending)
    cache = build_cache(nodes, pods, namespaces, leave_out=info.key)
    fw = framework or default_framework()
    state = CycleState()
    state[NOMINATED_PODS] = [pod_info(p) for p in pods
                             if (p.get("status") or {}).get("nominatedNodeName")
                             and not (p.get("spec") or {}).get("nodeName")
                             and pod_info(p).priority >= info.priority
                             and pod_info(p).key != info.key]
    order = cache.order()
    result = fw.find_feasible(state, info, cache, order)
    statuses = fw.statuses(state, info, cache, result.diagnosis)
    rows: list[NodeRow] = []
    for name, status in statuses.items():
        rows.append(NodeRow(name, False, status.plugin, list(status.reasons)))
    best = ""
    if result.feasible.size:
        scores = fw.score(state, info, cache, result.feasible)
        for i, slot in enumerate(result.feasible):
            rows.append(NodeRow(cache.info_at(int(slot)).name, True,
                                total=int(scores.totals[i]),
                                scores={p: int(v[i]) for p, v in scores.by_plugin.items()}))
        best = cache.info_at(int(result.feasible[int(np.argmax(scores.totals))])).name
    rows.sort(key=lambda r: (not r.feasible, -r.total, r.node))
    message = ""
    if not result.feasible.size:
        message = FitError(info, int(order.size), result.diagnosis, statuses).message()
    return Evaluation(rows, best, message)

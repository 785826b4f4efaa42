"""Which pods a scale-down removes first, in upstream's order.

A ReplicaSet that has too many pods deletes the ones whose loss hurts least:

1. unassigned before assigned to a node;
2. Pending before Unknown before Running;
3. not ready before ready;
4. lower `controller.kubernetes.io/pod-deletion-cost` before higher;
5. pods sharing a node with more of their siblings before lonelier ones;
6. ready for a shorter time before longer (in logarithmic buckets, so pods of
   about the same age are picked at random rather than always the newest);
7. more container restarts before fewer;
8. newer before older (logarithmic buckets again), then by UID.

(A seed note says scale-down removes the oldest pods; upstream removes the newest,
which is what this follows.)
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections import Counter
from typing import Any

from skiff.api import meta as m
from skiff.controllers import pod_state

Obj = dict[str, Any]

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_cost(pod: Obj) -> int:
    """The pod-deletion-cost annotation as an int (0 when absent or malformed)."""
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(DELETION_COST)
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _log_rank(t: dt.datetime | None, now: dt.datetime) -> int:
    if t is None:
        return -1
    ns = (now - t).total_seconds() * 1e9
    return int(math.log2(ns)) if ns > 0 else -1


def _newer_first(t1: dt.datetime | None, t2: dt.datetime | None, uid1: str, uid2: str,
                 now: dt.datetime) -> int:
    """-1 if the pod with `t1` goes first, 1 if the other, 0 if undecided."""
    if t1 == t2:
        return 0
    if t1 is None or t2 is None:
        # A missing time sorts first ("empty < newer < older").
        return -1 if t1 is None else 1
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return -1 if uid1 < uid2 else (1 if uid1 > uid2 else 0)
    return -1 if diff < 0 else 1


def _compare(a: tuple[Obj, int], b: tuple[Obj, int], now: dt.datetime) -> int:
    pa, ra = a
    pb, rb = b
    # 1. unassigned first
    na, nb = bool((pa.get("spec") or {}).get("nodeName")), bool(
        (pb.get("spec") or {}).get("nodeName"))
    if na != nb:
        return -1 if not na else 1
    # 2. Pending < Unknown < Running
    oa = _PHASE_ORDER.get(pod_state.phase(pa), 3)
    ob = _PHASE_ORDER.get(pod_state.phase(pb), 3)
    if oa != ob:
        return -1 if oa < ob else 1
    # 3. not ready first
    ya, yb = pod_state.is_ready(pa), pod_state.is_ready(pb)
    if ya != yb:
        return -1 if not ya else 1
    # 4. cheaper to delete first
    ca, cb = deletion_cost(pa), deletion_cost(pb)
    if ca != cb:
        return -1 if ca < cb else 1
    # 5. doubled up first
    if ra != rb:
        return -1 if ra > rb else 1
    uid_a, uid_b = m.uid_of(pa), m.uid_of(pb)
    # 6. ready for less time first
    if ya and yb:
        verdict = _newer_first(pod_state.ready_since(pa), pod_state.ready_since(pb),
                               uid_a, uid_b, now)
        if verdict:
            return verdict
    # 7. more restarts first
    xa, xb = pod_state.max_restarts(pa), pod_state.max_restarts(pb)
    if xa != xb:
        return -1 if xa > xb else 1
    # 8. newer first
    created_a = m.parse_time((pa.get("metadata") or {}).get("creationTimestamp") or "")
    created_b = m.parse_time((pb.get("metadata") or {}).get("creationTimestamp") or "")
    return _newer_first(created_a, created_b, uid_a, uid_b, now)


def rank_for_deletion(pods: list[Obj], related: list[Obj], now: dt.datetime | None = None
                      ) -> list[Obj]:
    """`pods` sorted so the first ones are the best to delete.

    `related` are the pods of every sibling controller (the ReplicaSets of one
    Deployment): a pod counts as doubled up by how many of them share its node.
    """
    now = now or m.now()
    per_node = Counter((p.get("spec") or {}).get("nodeName") for p in related
                       if pod_state.is_active(p))
    ranked = []
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        ranked.append((pod, per_node.get(node, 0) if node else 0))
    ranked.sort(key=functools.cmp_to_key(lambda a, b: _compare(a, b, now)))
    return [p for p, _ in ranked]


def pods_to_delete(pods: list[Obj], related: list[Obj], count: int,
                   now: dt.datetime | None = None) -> list[Obj]:
    """The `count` pods to remove first (no sorting needed when all go)."""
    if count >= len(pods):
        return list(pods)
    return rank_for_deletion(pods, related, now)[:count]

"""DefaultPreemption (PostFilter): make room for a pod by evicting lower-priority pods.

When a pod fits nowhere, each node that rejected it for a reason eviction can fix
(not an "unresolvable" one such as a taint or node affinity) is tried: remove every
pod of lower priority, check the pod fits, then give victims back one at a time,
most important first (pods whose eviction would break a PodDisruptionBudget before
the others), keeping only those that must go. Among candidate nodes upstream's order
picks one: fewest PDB violations, lowest highest-victim priority, lowest sum of
priorities, fewest victims, latest start of the most important victim.

The preemptor is nominated to the node (status.nominatedNodeName), so the room is
kept for it; the victims get a DisruptionTarget condition and a Preempted event and
are evicted through pods/eviction (a PDB refusal falls back to a plain delete, as
upstream preemption only treats PDBs as a preference).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.selectors.labels import from_label_selector_dict
from skiff.scheduler.algorithm import FitError
from skiff.scheduler.cache import NodeInfo
from skiff.scheduler.framework import UNRESOLVABLE, CycleState
from skiff.scheduler.pod_info import PodInfo

if TYPE_CHECKING:
    from skiff.scheduler.scheduler import Scheduler

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
MIN_CANDIDATES_PERCENT = 10
MIN_CANDIDATES = 100
INT32_OFFSET = 2**31


@dataclass
class Candidate:
    """A node where evicting `victims` makes the pod fit."""

    node: str
    victims: list[PodInfo]
    pdb_violations: int


@dataclass
class Budget:
    """A PodDisruptionBudget as far as preemption cares."""

    namespace: str
    selector: Any
    allowed: int
    disrupted: set[str] = field(default_factory=set)


def _start_time(pod: PodInfo) -> float:
    status = pod.pod.get("status") or {}
    text = status.get("startTime") or (pod.pod.get("metadata") or {}).get("creationTimestamp")
    at = m.parse_time(text or "")
    return at.timestamp() if at is not None else 0.0


def _importance_key(pod: PodInfo) -> tuple[int, float]:
    # More important first: higher priority, then earlier start.
    return (-pod.priority, _start_time(pod))


class Preemptor:
    """Chooses victims and a nominated node for pods that fit nowhere."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.rng = random.Random()

    # -- budgets ----------------------------------------------------------------------------------

    def _budgets(self) -> list[Budget]:
        informer = self.scheduler.pdbs
        if informer is None:
            return []
        out = []
        for pdb in informer.list():
            raw = (pdb.get("spec") or {}).get("selector")
            try:
                selector = from_label_selector_dict(raw)
            except StatusError:
                continue
            status = pdb.get("status") or {}
            out.append(Budget(m.namespace_of(pdb), selector,
                              int(status.get("disruptionsAllowed") or 0),
                              set((status.get("disruptedPods") or {}).keys())))
        return out

    @staticmethod
    def _split_by_budget(pods: list[PodInfo], budgets: list[Budget]
                         ) -> tuple[list[PodInfo], list[PodInfo]]:
        """(pods whose eviction would violate a budget, the others), in the given order."""
        allowed = [b.allowed for b in budgets]
        violating, fine = [], []
        for pod in pods:
            breaks = False
            for i, b in enumerate(budgets):
                if b.namespace != pod.namespace or not b.selector.matches(pod.labels):
                    continue
                if pod.name in b.disrupted:
                    continue
                allowed[i] -= 1
                if allowed[i] < 0:
                    breaks = True
            (violating if breaks else fine).append(pod)
        return violating, fine

    # -- dry run --------------------------------------------------------------------------------

    def _fits(self, pod: PodInfo, info: NodeInfo, base: CycleState) -> bool:
        sched = self.scheduler
        state = CycleState()
        for k, v in base.items():
            state[k] = v
        fw = sched.framework
        if fw.run_pre_filter(state, pod, sched.cache) is not None:
            return False
        return fw.filter_one(state, pod, sched.cache, info).ok

    def _victims_on(self, pod: PodInfo, info: NodeInfo, state: CycleState,
                    budgets: list[Budget]) -> Candidate | None:
        cache = self.scheduler.cache
        lower = [p for p in info.pods.values() if p.priority < pod.priority]
        if not lower:
            return None
        for p in lower:
            cache.remove_pod(p.key)
        victims: list[PodInfo] = []
        violations = 0
        try:
            if not self._fits(pod, info, state):
                return None
            lower.sort(key=_importance_key)
            violating, fine = self._split_by_budget(lower, budgets)
            for group, counts in ((violating, True), (fine, False)):
                for p in group:
                    cache.add_pod(p)
                    if not self._fits(pod, info, state):
                        cache.remove_pod(p.key)
                        victims.append(p)
                        violations += int(counts)
        finally:
            for p in lower:
                if p.key not in cache.pods:
                    cache.add_pod(p)
        return Candidate(info.name, victims, violations) if victims else None

    @staticmethod
    def _pick(candidates: list[Candidate]) -> Candidate:
        def key(c: Candidate) -> tuple[Any, ...]:
            victims = sorted(c.victims, key=_importance_key)
            top = victims[0].priority
            total = sum(v.priority + INT32_OFFSET for v in victims)
            # The node whose most important victims started latest loses the least work.
            earliest_top = min(_start_time(v) for v in victims if v.priority == top)
            return (c.pdb_violations, top, total, len(victims), -earliest_top)

        return min(candidates, key=key)

    # -- the post filter ------------------------------------------------------------------------

    def _eligible(self, pod: PodInfo, err: FitError) -> str:
        if (pod.spec.get("preemptionPolicy") or "PreemptLowerPriority") == "Never":
            return "not eligible due to preemptionPolicy=Never."
        nominated = pod.nominated_node
        if nominated:
            status = err.node_statuses.get(nominated)
            if status is not None and status.code == UNRESOLVABLE:
                return ""
            info = self.scheduler.cache.nodes.get(nominated)
            if info is not None and any(p.terminating and p.priority < pod.priority
                                        for p in info.pods.values()):
                return "not eligible due to a terminating pod on the nominated node."
        return ""

    def preempt(self, pod: PodInfo, err: FitError, state: CycleState) -> str | None:
        """Nominate a node and evict victims; returns the nominated node (None: none).

        Sets the FitError's post-filter message when preemption cannot help.
        """
        why = self._eligible(pod, err)
        if why:
            err.post_filter_message = f"preemption: {why}"
            return None
        cache = self.scheduler.cache
        statuses = err.node_statuses
        potential = [name for name, s in statuses.items() if s.code != UNRESOLVABLE
                     and name in cache.nodes and cache.nodes[name].node is not None]
        total = err.total
        verdicts = {name: NOT_HELPFUL for name, s in statuses.items() if s.code == UNRESOLVABLE}
        candidates: list[Candidate] = []
        if potential:
            budgets = self._budgets()
            wanted = min(len(potential), max(total * MIN_CANDIDATES_PERCENT // 100,
                                             MIN_CANDIDATES))
            offset = self.rng.randrange(len(potential))
            for i in range(len(potential)):
                name = potential[(offset + i) % len(potential)]
                found = self._victims_on(pod, cache.nodes[name], state, budgets)
                if found is None:
                    verdicts[name] = NO_VICTIMS
                    continue
                candidates.append(found)
                if len(candidates) >= wanted:
                    break
        if not candidates:
            counts: dict[str, int] = {}
            for reason in verdicts.values():
                counts[reason] = counts.get(reason, 0) + 1
            histogram = ", ".join(sorted(f"{n} {r}" for r, n in counts.items()))
            err.post_filter_message = (f"preemption: 0/{total} nodes are available: "
                                       f"{histogram}.")
            return None
        chosen = self._pick(candidates)
        self._prepare(pod, chosen)
        return chosen.node

    def _prepare(self, pod: PodInfo, chosen: Candidate) -> None:
        """Nominate the pod, then evict the victims in the background."""
        sched = self.scheduler
        nominated_pod = copy.copy(pod.pod)
        nominated_pod["status"] = {**(pod.pod.get("status") or {}),
                                   "nominatedNodeName": chosen.node}
        info = dataclasses.replace(pod, pod=nominated_pod)
        sched.nominated[pod.key] = info
        queued = sched.queue.pods.get(pod.key)
        if queued is not None:
            queued.info = info
        # Lower-priority pods nominated to the same node lose their claim.
        demoted = [p for k, p in list(sched.nominated.items())
                   if k != pod.key and p.nominated_node == chosen.node
                   and p.priority < pod.priority]
        for p in demoted:
            sched.nominated.pop(p.key, None)
        task = asyncio.ensure_future(self._evict_all(pod, chosen, demoted))
        sched.background.add(task)
        task.add_done_callback(sched.background.discard)

    async def _evict_all(self, pod: PodInfo, chosen: Candidate, demoted: list[PodInfo]) -> None:
        await asyncio.gather(*(self._evict(pod, v, chosen.node) for v in chosen.victims))
        client = self.scheduler.client
        for p in demoted:
            try:
                await client.patch("", "v1", "pods", p.name, {"status": {
                    "nominatedNodeName": None}}, p.namespace, subresource="status")
            except StatusError:
                continue

    async def _evict(self, preemptor: PodInfo, victim: PodInfo, node: str) -> None:
        sched = self.scheduler
        client = sched.client
        message = f"{sched.scheduler_name}: preempting to accommodate a higher priority pod"
        try:
            await client.patch("", "v1", "pods", victim.name, {"status": {"conditions": [{
                "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                "message": message, "lastTransitionTime": m.rfc3339()}]}},
                victim.namespace, patch_type="strategic", subresource="status")
        except StatusError as err:
            if err.code == 404:
                return
        if sched.recorder is not None:
            sched.recorder.record(victim.pod, "Normal", "Preempted",
                                  f"Preempted by pod {preemptor.uid} on node {node}",
                                  action="Preempting")
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": victim.name, "namespace": victim.namespace},
                    "deleteOptions": {"preconditions": {"uid": victim.uid}}}
        try:
            await client.request("POST", client.path("", "v1", "pods", victim.name,
                                                     victim.namespace, "eviction"),
                                 body=eviction)
            return
        except StatusError as err:
            if err.code == 404:
                return
            if err.code != 429:
                log.warning("evicting %s failed: %s", victim.key, err.message)
        # A budget refused the eviction: preemption goes ahead regardless, as upstream.
        try:
            await client.delete("", "v1", "pods", victim.name, victim.namespace,
                                preconditions={"uid": victim.uid})
        except StatusError as err:
            if err.code != 404:
                log.warning("deleting preemption victim %s failed: %s", victim.key,
                            err.message)


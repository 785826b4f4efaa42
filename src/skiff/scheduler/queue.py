"""The scheduling queue: active, backoff and unschedulable sub-queues, as upstream.

- activeQ: pods ready to be tried, highest priority first, then oldest.
- backoffQ: pods waiting out an exponential backoff (1 s doubling to 10 s) after a
  failed attempt, moved to activeQ when it expires (checked every second).
- unschedulable: pods no node could take. They stay until a cluster event that could
  make them fit arrives (a node added or changed, a pod deleted, …) and one of the
  plugins that rejected them cares about that event; then they go to backoffQ (or
  straight to activeQ if their backoff is over). Pods left there for 5 minutes are
  retried anyway, as upstream's flush does.

A pod that fails while an event that might have helped it arrived during its cycle
goes to backoffQ rather than unschedulable, so the event is not lost. Pods with
scheduling gates wait in unschedulable until the gates are removed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from skiff.scheduler.pod_info import PodInfo

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
UNSCHEDULABLE_MAX_STAY = 300.0
FLUSH_BACKOFF_EVERY = 1.0
FLUSH_UNSCHEDULABLE_EVERY = 30.0

# Cluster events, and the plugins whose verdicts each may change (upstream's
# EventsToRegister, coarsened to what skiff's plugins look at).
NODE_ADD = "NodeAdd"
NODE_ALLOCATABLE = "NodeAllocatableChange"
NODE_LABEL = "NodeLabelChange"
NODE_TAINT = "NodeTaintChange"
NODE_SCHEDULABLE = "NodeSpecUnschedulableChange"
POD_DELETE = "AssignedPodDelete"
POD_ADD = "AssignedPodAdd"
POD_LABEL = "AssignedPodLabelChange"
EVENT_PLUGINS: dict[str, frozenset[str]] = {
    NODE_ADD: frozenset({"NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity",
                         "NodePorts", "NodeResourcesFit", "PodTopologySpread",
                         "InterPodAffinity"}),
    NODE_ALLOCATABLE: frozenset({"NodeResourcesFit"}),
    NODE_LABEL: frozenset({"NodeAffinity", "PodTopologySpread", "InterPodAffinity"}),
    NODE_TAINT: frozenset({"TaintToleration", "PodTopologySpread"}),
    NODE_SCHEDULABLE: frozenset({"NodeUnschedulable"}),
    POD_DELETE: frozenset({"NodeResourcesFit", "NodePorts", "PodTopologySpread",
                           "InterPodAffinity", "DefaultPreemption"}),
    POD_ADD: frozenset({"PodTopologySpread", "InterPodAffinity"}),
    POD_LABEL: frozenset({"PodTopologySpread", "InterPodAffinity"}),
}


@dataclass
class QueuedPod:
    """A pod in the queue with its scheduling history."""

    info: PodInfo
    timestamp: float
    attempts: int = 0
    initial_attempt: float | None = None
    unschedulable_plugins: set[str] = field(default_factory=set)
    last_failure: float = 0.0
    gated: bool = False

    @property
    def key(self) -> str:
        """namespace/name."""
        return self.info.key

    def backoff_expiry(self) -> float:
        """When the pod's current backoff ends."""
        if self.attempts == 0:
            return 0.0
        duration = min(INITIAL_BACKOFF * 2 ** (self.attempts - 1), MAX_BACKOFF)
        return self.last_failure + duration


def is_gated(pod: PodInfo) -> bool:
    """Whether the pod has scheduling gates left."""
    return bool(pod.spec.get("schedulingGates"))


class SchedulingQueue:
    """Pods waiting to be scheduled, in three sub-queues."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._seq = itertools.count()
        self._active: list[tuple[int, float, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self.unschedulable: dict[str, QueuedPod] = {}
        # Every pod the queue knows (in a sub-queue or being scheduled).
        self.pods: dict[str, QueuedPod] = {}
        self._where: dict[str, str] = {}
        self._in_flight: dict[str, int] = {}
        self._moves = 0
        self._wake = asyncio.Event()
        self.closed = False

    def __len__(self) -> int:
        return len(self.pods)

    # -- placement ------------------------------------------------------------------------------

    def _to_active(self, qp: QueuedPod) -> None:
        self._where[qp.key] = "active"
        self.unschedulable.pop(qp.key, None)
        heapq.heappush(self._active, (-qp.info.priority, qp.timestamp, next(self._seq), qp.key))
        self._wake.set()

    def _to_backoff(self, qp: QueuedPod) -> None:
        self._where[qp.key] = "backoff"
        self.unschedulable.pop(qp.key, None)
        heapq.heappush(self._backoff, (qp.backoff_expiry(), next(self._seq), qp.key))

    def _to_unschedulable(self, qp: QueuedPod) -> None:
        self._where[qp.key] = "unschedulable"
        self.unschedulable[qp.key] = qp

    def _requeue(self, qp: QueuedPod) -> None:
        if qp.backoff_expiry() > self.clock():
            self._to_backoff(qp)
        else:
            self._to_active(qp)

    # -- informer side --------------------------------------------------------------------------

    def add(self, info: PodInfo) -> None:
        """A new pending pod."""
        if info.key in self.pods:
            self.update(info)
            return
        qp = QueuedPod(info, self.clock(), gated=is_gated(info))
        self.pods[info.key] = qp
        if qp.gated:
            self._to_unschedulable(qp)
        else:
            self._to_active(qp)

    def update(self, info: PodInfo) -> None:
        """A pending pod changed; an unschedulable one is retried (its spec may now fit)."""
        qp = self.pods.get(info.key)
        if qp is None:
            self.add(info)
            return
        old = qp.info
        qp.info = info
        qp.gated = is_gated(info)
        if self._where.get(info.key) == "unschedulable" and not qp.gated:
            if old.pod.get("spec") != info.pod.get("spec") or old.labels != info.labels:
                self._requeue(qp)

    def delete(self, key: str) -> None:
        """The pod was deleted or bound: forget it wherever it is."""
        self.pods.pop(key, None)
        self.unschedulable.pop(key, None)
        self._where.pop(key, None)

    def move_for_event(self, event: str) -> int:
        """Retry unschedulable pods that a plugin interested in `event` rejected."""
        self._moves += 1
        interested = EVENT_PLUGINS.get(event, frozenset())
        moved = 0
        for qp in list(self.unschedulable.values()):
            if qp.gated:
                continue
            if not qp.unschedulable_plugins or qp.unschedulable_plugins & interested:
                self._requeue(qp)
                moved += 1
        return moved

    # -- scheduler side -------------------------------------------------------------------------

    def _flush_backoff(self) -> None:
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, key = heapq.heappop(self._backoff)
            qp = self.pods.get(key)
            if qp is not None and self._where.get(key) == "backoff":
                self._to_active(qp)

    def flush_unschedulable(self) -> None:
        """Retry pods that have waited in unschedulable for too long."""
        now = self.clock()
        for qp in list(self.unschedulable.values()):
            if not qp.gated and now - qp.last_failure > UNSCHEDULABLE_MAX_STAY:
                self._requeue(qp)

    def pop_nowait(self) -> QueuedPod | None:
        """The next pod to schedule, if one is ready."""
        self._flush_backoff()
        while self._active:
            _, _, _, key = heapq.heappop(self._active)
            qp = self.pods.get(key)
            if qp is None or self._where.get(key) != "active":
                continue
            self._where[key] = "in-flight"
            qp.attempts += 1
            if qp.initial_attempt is None:
                qp.initial_attempt = self.clock()
            self._in_flight[key] = self._moves
            return qp
        return None

    async def pop(self) -> QueuedPod | None:
        """Wait for the next pod (None once closed)."""
        while not self.closed:
            qp = self.pop_nowait()
            if qp is not None:
                return qp
            self._wake.clear()
            delay = FLUSH_BACKOFF_EVERY
            if self._backoff:
                delay = max(0.0, min(delay, self._backoff[0][0] - self.clock()))
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass
        return None

    def done(self, key: str) -> None:
        """The pod was bound (or dropped): it leaves the queue."""
        self._in_flight.pop(key, None)
        self.delete(key)

    def failed(self, qp: QueuedPod, plugins: set[str], error: bool = False) -> None:
        """The attempt failed: back off (error, or an event arrived meanwhile) or park it."""
        moves_at_pop = self._in_flight.pop(qp.key, self._moves)
        qp.last_failure = self.clock()
        if qp.key not in self.pods:
            return
        qp.unschedulable_plugins = set(plugins)
        if error or self._moves != moves_at_pop:
            self._to_backoff(qp)
        else:
            self._to_unschedulable(qp)

    def close(self) -> None:
        """Wake and stop every waiter."""
        self.closed = True
        self._wake.set()

    def where(self, key: str) -> str:
        """Which sub-queue holds the pod (for tests and explanations)."""
        return self._where.get(key, "")

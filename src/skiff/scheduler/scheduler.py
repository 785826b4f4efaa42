"""The scheduler: an API client that places pending pods on nodes.

Informers feed the cache (nodes, assigned pods) and the queue (pending pods that
name the default scheduler). One loop pops a pod, runs the framework synchronously
against the cache, assumes the pod on the chosen node and hands the binding to a
background task, so the next pod is scheduled while the binding is in flight (the
assumption makes the next cycle see the node as fuller). A failed pod gets a
FailedScheduling event, PodScheduled=False with upstream's message, and waits in
the queue for an event that could help it; preemption may nominate a node for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.selectors.labels import LabelSelector
from skiff.client.http_client import Client
from skiff.client.informer import Informer, object_key
from skiff.client.pipeline import RequestPipeline
from skiff.client.shared_informers import SharedInformers
from skiff.scheduler import explain
from skiff.scheduler.algorithm import Algorithm, Decision, FitError, default_framework
from skiff.scheduler.cache import ClusterCache
from skiff.scheduler.default_spreading import SELECTOR_INDEX, DefaultSelectors, selector_key
from skiff.scheduler.events import EVENT_BURST, EVENT_QPS, EventRecorder
from skiff.scheduler.framework import CycleState
from skiff.scheduler.plugins.node_resources_fit import NOMINATED_PODS
from skiff.scheduler.pod_info import DEFAULT_SCHEDULER, PodInfo, pod_info
from skiff.scheduler.preemption import Preemptor
from skiff.scheduler.queue import (
    FLUSH_UNSCHEDULABLE_EVERY,
    NODE_ADD,
    NODE_ALLOCATABLE,
    NODE_LABEL,
    NODE_SCHEDULABLE,
    NODE_TAINT,
    POD_ADD,
    POD_DELETE,
    POD_LABEL,
    QueuedPod,
    SchedulingQueue,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

BINDS_IN_FLIGHT = 48
TERMINAL = ("Succeeded", "Failed")


def _assigned(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


def _terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL


class Scheduler:
    """Schedules pods that name `scheduler_name` until cancelled."""

    def __init__(self, client: Client, *, scheduler_name: str = DEFAULT_SCHEDULER,
                 events: bool = True, percentage_of_nodes_to_score: int = 0,
                 event_qps: float = EVENT_QPS, event_burst: int = EVENT_BURST,
                 manage_gc: bool = False, shared: SharedInformers | None = None) -> None:
        self.client = client
        # A process of its own may tune the garbage collector to the scheduler's heap.
        self.manage_gc = manage_gc
        self.scheduler_name = scheduler_name
        self.cache = ClusterCache()
        self.queue = SchedulingQueue()
        self.framework = default_framework(self._default_selector)
        self.algorithm = Algorithm(self.framework, percentage_of_nodes_to_score)
        # Bindings and events are small writes sent many at a time: they go over
        # pipelined connections rather than aiohttp (a quarter of the CPU per request).
        self.pipeline = RequestPipeline(client)
        self.recorder = EventRecorder(client, pipeline=self.pipeline, qps=event_qps,
                                      burst=event_burst) if events else None
        self.preemptor = Preemptor(self)
        # Pods, nodes and ReplicaSets come from the process's shared informers when the
        # scheduler runs beside the controllers (`skiff components`); those it neither
        # starts nor stops.
        self._shared: list[Informer] = []
        if shared is not None:
            self._shared = [shared.get("", "v1", "pods"), shared.get("", "v1", "nodes"),
                            shared.get("apps", "v1", "replicasets")]
            self.pods, self.nodes, self.replicasets = self._shared
        else:
            self.pods = Informer(client, "", "v1", "pods")
            self.nodes = Informer(client, "", "v1", "nodes")
            self.replicasets = Informer(client, "apps", "v1", "replicasets")
        self.namespaces = Informer(client, "", "v1", "namespaces")
        # Owners whose selectors drive default topology spreading.
        self.services = Informer(client, "", "v1", "services")
        self.statefulsets = Informer(client, "apps", "v1", "statefulsets")
        for inf in (self.services, self.replicasets, self.statefulsets):
            if inf.has_index("namespace"):
                continue  # a shared informer, indexed the same way by a controller
            inf.add_index("namespace", lambda o: [(o.get("metadata") or {}).get("namespace",
                                                                                "")])
        for inf in (self.replicasets, self.statefulsets):
            if not inf.has_index(SELECTOR_INDEX):
                inf.add_index(SELECTOR_INDEX, selector_key)
        self.default_selectors = DefaultSelectors(self.services, self.replicasets,
                                                  self.statefulsets)
        # PodDisruptionBudgets, once the API serves them (preemption prefers to keep them).
        self.pdbs: Informer | None = None
        self.background: set[asyncio.Task[Any]] = set()
        self.nominated: dict[str, PodInfo] = {}
        self._bind_slots = asyncio.Semaphore(BINDS_IN_FLIGHT)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.scheduled = 0
        self.pods.on_add(self._pod_added)
        self.pods.on_update(self._pod_updated)
        self.pods.on_delete(self._pod_deleted)
        self.nodes.on_add(self._node_added)
        self.nodes.on_update(self._node_updated)
        self.nodes.on_delete(self._node_deleted)
        self.namespaces.on_add(self._namespace_changed)
        self.namespaces.on_update(lambda _o, n: self._namespace_changed(n))
        self.namespaces.on_delete(
            lambda n: self.cache.set_namespace_labels(m.name_of(n), None))

    # -- what belongs to us ---------------------------------------------------------------------

    def _responsible(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return ((spec.get("schedulerName") or DEFAULT_SCHEDULER) == self.scheduler_name
                and not spec.get("nodeName") and not _terminal(pod)
                and not (pod.get("metadata") or {}).get("deletionTimestamp"))

    # -- pod events -----------------------------------------------------------------------------

    def _track_nomination(self, info: PodInfo) -> None:
        if info.nominated_node and not info.node_name:
            self.nominated[info.key] = info
        else:
            self.nominated.pop(info.key, None)

    def _pod_added(self, pod: Obj) -> None:
        if _assigned(pod):
            if _terminal(pod):
                return
            info = pod_info(pod)
            self.cache.add_pod(info)
            self.queue.delete(info.key)
            self.nominated.pop(info.key, None)
            if self.queue.unschedulable:
                self.queue.move_for_event(POD_ADD)
        elif self._responsible(pod):
            info = pod_info(pod)
            self._track_nomination(info)
            self.queue.add(info)

    def _pod_updated(self, old: Obj, pod: Obj) -> None:
        key = object_key(pod)
        if _assigned(pod):
            self.queue.delete(key)
            self.nominated.pop(key, None)
            if _terminal(pod):
                if self.cache.remove_pod(key) is not None:
                    self.queue.move_for_event(POD_DELETE)
                return
            current = self.cache.pods.get(key)
            if (current is not None and self.cache.is_assumed(key)
                    and current.node_name == pod["spec"]["nodeName"]
                    and m.resource_version_of(current.pod) == m.resource_version_of(old)):
                # The echo of our own binding: already counted there, nothing to re-parse.
                info = self.cache.confirm(key, pod)
            elif (refreshed := self.cache.refresh(key, pod)) is not None:
                # A status update (the pod started, became ready): counted as it was.
                info = refreshed
            else:
                info = pod_info(pod)
                self.cache.add_pod(info)
            if m.labels_of(old) != m.labels_of(pod) and self.queue.unschedulable:
                self.queue.move_for_event(POD_LABEL)
            if info.terminating and not (old.get("metadata") or {}).get("deletionTimestamp"):
                # A terminating pod no longer counts for spreading and affinity.
                if self.queue.unschedulable:
                    self.queue.move_for_event(POD_DELETE)
        elif self._responsible(pod):
            info = pod_info(pod)
            self._track_nomination(info)
            self.queue.update(info)
        else:
            self.nominated.pop(key, None)
            self.queue.delete(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = object_key(pod)
        self.nominated.pop(key, None)
        if self.cache.remove_pod(key) is not None:
            self.queue.move_for_event(POD_DELETE)
        self.queue.delete(key)

    # -- node events ----------------------------------------------------------------------------

    def _node_added(self, node: Obj) -> None:
        self.cache.set_node(node)
        if self.queue.unschedulable:
            self.queue.move_for_event(NODE_ADD)

    def _node_updated(self, old: Obj, node: Obj) -> None:
        self.cache.set_node(node)
        if not self.queue.unschedulable:
            return
        old_spec, new_spec = old.get("spec") or {}, node.get("spec") or {}
        if m.labels_of(old) != m.labels_of(node):
            self.queue.move_for_event(NODE_LABEL)
        if (old_spec.get("taints") or []) != (new_spec.get("taints") or []):
            self.queue.move_for_event(NODE_TAINT)
        if bool(old_spec.get("unschedulable")) != bool(new_spec.get("unschedulable")):
            self.queue.move_for_event(NODE_SCHEDULABLE)
        if ((old.get("status") or {}).get("allocatable")
                != (node.get("status") or {}).get("allocatable")):
            self.queue.move_for_event(NODE_ALLOCATABLE)

    def _node_deleted(self, node: Obj) -> None:
        self.cache.remove_node(m.name_of(node))

    def _namespace_changed(self, ns: Obj) -> None:
        self.cache.set_namespace_labels(m.name_of(ns), m.labels_of(ns))

    # -- default spreading ----------------------------------------------------------------------

    def _default_selector(self, pod: PodInfo) -> LabelSelector | None:
        return self.default_selectors.get(pod)

    # -- the scheduling cycle -------------------------------------------------------------------

    def _nominated_for(self, pod: PodInfo) -> list[PodInfo]:
        return [p for k, p in self.nominated.items()
                if k != pod.key and p.priority >= pod.priority]

    def schedule_one(self, qp: QueuedPod) -> None:
        """Decide for one pod; the binding (or failure report) continues in the background."""
        pod = qp.info
        live = self.pods.get(pod.key)
        if live is None or not self._responsible(live):
            self.queue.done(pod.key)
            return
        state = CycleState()
        state[NOMINATED_PODS] = self._nominated_for(pod)
        try:
            decision = self.algorithm.schedule(state, pod, self.cache)
        except FitError as err:
            self._failed(qp, err, state)
            return
        total = self.cache.node_count()
        self.cache.assume(pod, decision.node)
        self._spawn(self._bind(qp, decision, total))

    def _failed(self, qp: QueuedPod, err: FitError, state: CycleState) -> None:
        nominated = self.preemptor.preempt(qp.info, err, state)
        self.queue.failed(qp, err.diagnosis.unschedulable_plugins)
        message = err.message()
        if self.recorder is not None:
            self.recorder.record(qp.info.pod, "Warning", "FailedScheduling", message,
                                 action="Scheduling")
        log.debug("pod %s is unschedulable: %s", qp.key, message)
        self._spawn(self._report_unschedulable(qp.info, message, nominated,
                                               explain.unschedulable(err, self.cache)))

    async def _report_unschedulable(self, pod: PodInfo, message: str, nominated: str | None,
                                    explanation: Obj) -> None:
        """PodScheduled=False with the message (and nominatedNodeName), plus the annotation."""
        live = self.pods.get(pod.key) or pod.pod
        cond = m.condition(live, "PodScheduled") or {}
        status_patch: Obj = {}
        if (cond.get("status") != "False" or cond.get("reason") != "Unschedulable"
                or cond.get("message") != message):
            status_patch["conditions"] = [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": message, "lastProbeTime": None,
                "lastTransitionTime": cond.get("lastTransitionTime")
                if cond.get("status") == "False" else m.rfc3339()}]
        if nominated is not None and (live.get("status") or {}).get("nominatedNodeName") \
                != nominated:
            status_patch["nominatedNodeName"] = nominated or None
        try:
            if status_patch:
                await self.client.patch("", "v1", "pods", pod.name, {"status": status_patch},
                                        pod.namespace, patch_type="strategic",
                                        subresource="status")
            encoded = explain.encode(explanation)
            if m.metadata(live).get("annotations", {}).get(explain.ANNOTATION) != encoded:
                await self.client.patch("", "v1", "pods", pod.name, {"metadata": {
                    "annotations": {explain.ANNOTATION: encoded}}}, pod.namespace)
        except StatusError as err:
            if err.code not in (404, 409):
                log.warning("reporting %s as unschedulable failed: %s", pod.key, err.message)

    async def _bind(self, qp: QueuedPod, decision: Decision, total: int) -> None:
        pod = qp.info
        explanation = explain.scheduled(decision, self.cache, total)
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": pod.name, "namespace": pod.namespace,
                             "uid": pod.uid,
                             "annotations": {explain.ANNOTATION: explain.encode(explanation)}},
                "target": {"apiVersion": "v1", "kind": "Node", "name": decision.node}}
        path = self.client.path("", "v1", "pods", pod.name, pod.namespace, "binding")
        try:
            try:
                await self.pipeline.request("POST", path, body)
            except ConnectionError:
                # The server closed a kept-alive connection as the binding went out (idle
                # timeout, restart): send it once more. Had the first one arrived, this
                # one is refused as a conflict, which counts as done below.
                await self.pipeline.request("POST", path, body)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure puts the pod back in the queue
            self.cache.forget(pod.key)
            if isinstance(err, StatusError) and err.code in (404, 409):
                # Gone, or bound meanwhile: the watch tells the rest.
                self.queue.done(pod.key)
                return
            message = getattr(err, "message", "") or str(err)
            log.warning("binding %s to %s failed: %s", pod.key, decision.node, message)
            self.queue.failed(qp, set(), error=True)
            if self.recorder is not None:
                self.recorder.record(pod.pod, "Warning", "FailedScheduling",
                                     f"Binding rejected: {message}", action="Binding")
            return
        self.scheduled += 1
        self.queue.done(pod.key)
        if self.recorder is not None:
            self.recorder.record(pod.pod, "Normal", "Scheduled",
                                 f"Successfully assigned {pod.key} to {decision.node}",
                                 action="Binding")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._bind_slots.release()

    # -- running --------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            # Back-pressure: at most BINDS_IN_FLIGHT bindings and reports outstanding.
            await self._bind_slots.acquire()
            qp = await self.queue.pop()
            if qp is None:
                self._bind_slots.release()
                return
            before = len(self._tasks)
            try:
                self.schedule_one(qp)
            except Exception:  # noqa: BLE001 - one pod's failure must not stop the loop
                log.exception("scheduling %s failed", qp.key)
                self.queue.failed(qp, set(), error=True)
            if len(self._tasks) == before:
                self._bind_slots.release()
            # Let informers and bindings make progress between cycles.
            await asyncio.sleep(0)

    async def _flush_unschedulable(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_UNSCHEDULABLE_EVERY)
            self.queue.flush_unschedulable()

    def _leave_shared(self) -> None:
        """Take this scheduler's handlers off the shared informers it used."""
        handlers = (self._pod_added, self._pod_updated, self._pod_deleted,
                    self._node_added, self._node_updated, self._node_deleted,
                    *self.default_selectors.handlers)
        for inf in self._shared:
            for fn in handlers:
                inf.remove_handler(fn)

    async def run(self) -> None:
        """Sync the informers, then schedule until cancelled."""
        informers = [self.nodes, self.namespaces, self.services, self.replicasets,
                     self.statefulsets, self.pods]
        try:
            await self.client.list("policy", "v1", "poddisruptionbudgets", limit=1)
            self.pdbs = Informer(self.client, "policy", "v1", "poddisruptionbudgets")
            informers.append(self.pdbs)
        except StatusError:
            self.pdbs = None
        tasks = [inf.start() for inf in informers if inf not in self._shared]
        helpers = [asyncio.ensure_future(self._flush_unschedulable())]
        if self.recorder is not None:
            helpers.append(asyncio.ensure_future(self.recorder.run()))
        try:
            started, cpu = time.monotonic(), time.process_time()
            if self.manage_gc:
                # Everything the initial lists bring (every node and pod: millions of
                # objects at 5,000 nodes) lives long; collecting while they arrive only
                # re-scans them.
                gc.disable()
            try:
                for inf in informers:
                    await inf.has_synced.wait()
            finally:
                if self.manage_gc:
                    # And kept out of later full passes, which otherwise took a quarter of
                    # the scheduler's CPU while binding pods.
                    gc.freeze()
                    gc.enable()
            log.info("synced %d nodes and %d pods in %.2f s (%.2f s CPU); %d pods to schedule",
                     self.cache.node_count(), len(self.cache.pods), time.monotonic() - started,
                     time.process_time() - cpu, len(self.queue))
            await self._loop()
        finally:
            self.queue.close()
            for inf in informers:
                if inf not in self._shared:
                    inf.stop()
            self._leave_shared()
            for t in [*tasks, *helpers, *self._tasks, *self.background]:
                t.cancel()
            for t in [*tasks, *helpers, *list(self._tasks), *list(self.background)]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await self.pipeline.close()

"""The Job controller: runs pods until enough of them succeed, or the Job fails.

One reconcile per Job key, following upstream's syncJob:

1. Claim the pods (adopting orphans with the tracking finalizer).
2. Count what finished since the last sync and decide whether the Job is done:
   the podFailurePolicy's FailJob, backoffLimit, activeDeadlineSeconds,
   per-index limits, successPolicy, or reaching `completions`.
3. If not done, keep `parallelism` pods running (fewer when few completions
   remain; none while suspended), creating Indexed pods for the lowest missing
   indexes, and waiting out the failure back-off.
4. Account finished pods through `status.uncountedTerminatedPods`: record their
   uids, remove their `batch.kubernetes.io/job-tracking` finalizer, then move them
   into `succeeded`/`failed`. A pod is thus counted exactly once even if the
   controller crashes or its cache lags.
5. Add the interim FailureTarget/SuccessCriteriaMet condition, and the final
   Failed/Complete one once no pod is left terminating.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.selectors.labels import from_label_selector_dict
from skiff.client.event_recorder import EventRecorder
from skiff.client.http_client import Client
from skiff.client.informer import Informer, object_key
from skiff.client.workqueue import WorkQueue
from skiff.controllers import job_failure_policy as pfp
from skiff.controllers import job_indexes as ji
from skiff.controllers import job_status as js
from skiff.controllers import pod_state
from skiff.controllers.controller_ref import (
    CONTROLLER_INDEX,
    NAMESPACE_INDEX,
    ControllerRefManager,
    index_by_controller,
    index_by_namespace,
    owned_or_orphaned,
)
from skiff.controllers.expectations import Expectations, UIDExpectations
from skiff.controllers.informers import run_controller, use_informer
from skiff.controllers.job_backoff import DEFAULT_BACKOFF, MAX_BACKOFF, BackoffRecord, next_record
from skiff.controllers.pod_template import pod_from_template, slow_start

log = logging.getLogger(__name__)

Obj = dict[str, Any]

COMPONENT = "job-controller"
# Upstream caps pod creations/deletions and uncounted uids per sync.
MAX_POD_CREATE_DELETE_PER_SYNC = 500
MAX_UNCOUNTED_PODS = 500
ORPHAN_PREFIX = "pod:"
CONFLICT_RETRY = 0.05

_REMOVE_FINALIZER = {"metadata": {
    "$deleteFromPrimitiveList/finalizers": [js.TRACKING_FINALIZER]}}


@dataclass
class _Sync:
    """What one reconcile of one Job knows and decides (upstream's syncJobCtx)."""

    job: Obj
    pods: list[Obj]
    active: list[Obj]
    ready: int
    terminating: int
    uncounted_succeeded: set[str]
    uncounted_failed: set[str]
    expected_rm: set[str]
    succeeded: int = 0
    failed: int = 0
    finished: Obj | None = None
    new_backoff: BackoffRecord = field(default_factory=BackoffRecord)
    prev_succeeded_indexes: set[int] = field(default_factory=set)
    succeeded_indexes: set[int] = field(default_factory=set)
    failed_indexes: set[int] | None = None
    delayed_removal: dict[int, str] = field(default_factory=dict)
    requeue: list[float] = field(default_factory=list)
    # Events about status changes, sent once the status write has succeeded: a sync
    # from a stale cache would otherwise announce the same change twice.
    events: list[tuple[str, str]] = field(default_factory=list)


class JobController:
    """Reconciles batch/v1 Jobs by `namespace/name`."""

    def __init__(
        self, client: Client, *, workers: int = 4,
        clock: Callable[[], dt.datetime] = m.now,
        backoff_base: float = DEFAULT_BACKOFF, backoff_max: float = MAX_BACKOFF,
        pods: Informer | None = None, jobs: Informer | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.workers = workers
        self._own: list[Informer] = []
        self.jobs = use_informer(client, jobs, self._own, "batch", "v1", "jobs")
        self.pods = use_informer(client, pods, self._own, "", "v1", "pods")
        index_by_controller(self.pods)
        index_by_controller(self.jobs)
        index_by_namespace(self.jobs)
        self.queue = WorkQueue(name="job")
        self.expectations = Expectations()
        self.finalizer_expectations = UIDExpectations()
        self.backoff: dict[str, BackoffRecord] = {}
        self.recorder = EventRecorder(client, COMPONENT)
        self.jobs.on_add(lambda j: self.queue.add(object_key(j)))
        self.jobs.on_update(lambda _o, j: self.queue.add(object_key(j)))
        self.jobs.on_delete(self._job_deleted)
        self.pods.on_add(self._pod_added)
        self.pods.on_update(self._pod_updated)
        self.pods.on_delete(self._pod_deleted)

    # -- event handlers -------------------------------------------------------------------

    def _job_of(self, pod: Obj) -> Obj | None:
        ref = m.controller_of(pod)
        if ref is None or ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
            return None
        job = self.jobs.get(f"{m.namespace_of(pod)}/{ref.get('name')}")
        if job is None or m.uid_of(job) != ref.get("uid"):
            return None
        return job

    def _orphan_check(self, pod: Obj) -> None:
        """Queue finalizer cleanup for a tracked pod no unfinished Job will handle."""
        if not js.has_tracking_finalizer(pod):
            return
        job = self._job_of(pod)
        if job is None or js.is_finished(job):
            self.queue.add(ORPHAN_PREFIX + object_key(pod))

    def _queue_matching_jobs(self, pod: Obj) -> None:
        labels = m.labels_of(pod)
        for job in self.jobs.by_index(NAMESPACE_INDEX, m.namespace_of(pod)):
            sel = (job.get("spec") or {}).get("selector")
            try:
                if from_label_selector_dict(sel).matches(labels):
                    self.queue.add(object_key(job))
            except StatusError:
                continue

    def _pod_added(self, pod: Obj) -> None:
        job = self._job_of(pod)
        if job is not None:
            key = object_key(job)
            self.expectations.creation_observed(key)
            self.queue.add(key)
        elif m.controller_of(pod) is None:
            self._queue_matching_jobs(pod)
        self._orphan_check(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        job = self._job_of(new)
        if job is not None:
            key = object_key(job)
            if pod_state.is_deleting(new) and not pod_state.is_deleting(old):
                self.expectations.deletion_observed(key)
            if not js.has_tracking_finalizer(new):
                self.finalizer_expectations.observed(key, m.uid_of(new))
            self.queue.add(key)
        old_job = self._job_of(old)
        if old_job is not None and old_job is not job:
            self.queue.add(object_key(old_job))
        if job is None and m.controller_of(new) is None:
            self._queue_matching_jobs(new)
        self._orphan_check(new)

    def _pod_deleted(self, pod: Obj) -> None:
        job = self._job_of(pod)
        if job is None:
            return
        key = object_key(job)
        if not pod_state.is_deleting(pod):
            self.expectations.deletion_observed(key)
        self.finalizer_expectations.observed(key, m.uid_of(pod))
        self.queue.add(key)

    def _job_deleted(self, job: Obj) -> None:
        key = object_key(job)
        self.queue.add(key)
        for pod in self.pods.by_index(CONTROLLER_INDEX, m.uid_of(job)):
            if js.has_tracking_finalizer(pod):
                self.queue.add(ORPHAN_PREFIX + object_key(pod))

    # -- reconcile --------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        """Sync one Job (or, for `pod:` keys, release an orphaned pod's finalizer)."""
        if not (self.jobs.has_synced.is_set() and self.pods.has_synced.is_set()):
            return 0.1
        if key.startswith(ORPHAN_PREFIX):
            await self._sync_orphan_pod(key[len(ORPHAN_PREFIX):])
            return None
        cached = self.jobs.get(key)
        if cached is None:
            self.expectations.forget(key)
            self.finalizer_expectations.forget(key)
            self.backoff.pop(key, None)
            return None
        if js.managed_externally(cached):
            # As upstream (JobManagedBy, on by default since 1.32): another controller
            # creates the pods and writes the status.
            return None
        if js.is_finished(cached):
            self.backoff.pop(key, None)
            return None
        job = copy.deepcopy(cached)
        mode = (job.get("spec") or {}).get("completionMode") or "NonIndexed"
        if mode not in ("NonIndexed", "Indexed"):
            self.recorder.event(job, "Warning", "UnknownCompletionMode",
                                  "Skipped Job sync because completion mode is unknown")
            return None
        try:
            return await self._sync(key, job)
        except StatusError as err:
            if err.code != 409:
                raise
            # Our cache was behind the server; look again once it has caught up.
            return CONFLICT_RETRY

    async def _sync_orphan_pod(self, pod_key: str) -> None:
        pod = self.pods.get(pod_key)
        if pod is None or not js.has_tracking_finalizer(pod):
            return
        ref = m.controller_of(pod)
        if ref is not None and (ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1"):
            return
        job = self._job_of(pod)
        if job is not None and (js.managed_externally(job) or not js.is_finished(job)):
            # Adopted, or its Job's own controller accounts for it and releases it.
            return
        await self._remove_finalizer(pod)

    async def _remove_finalizer(self, pod: Obj) -> None:
        try:
            await self.client.patch("", "v1", "pods", m.name_of(pod), _REMOVE_FINALIZER,
                                    m.namespace_of(pod), patch_type="strategic")
        except StatusError as err:
            if err.code != 404:
                raise

    async def _sync(self, key: str, job: Obj) -> float | None:
        spec = job.setdefault("spec", {})
        status = job.setdefault("status", {})
        now = self.clock()
        uncounted = status.get("uncountedTerminatedPods") or {}
        status["uncountedTerminatedPods"] = uncounted
        satisfied = self.expectations.satisfied(key)
        selector = from_label_selector_dict(spec.get("selector"))
        manager = ControllerRefManager(self.client, job, selector, ("", "v1", "pods"),
                                       finalizer=js.TRACKING_FINALIZER)
        pods = await manager.claim(owned_or_orphaned(self.pods, job))
        active = [p for p in pods if pod_state.is_active(p)]
        ctx = _Sync(
            job=job, pods=pods, active=active,
            ready=sum(1 for p in active if pod_state.is_ready(p)),
            terminating=sum(1 for p in pods if pod_state.is_terminating(p)),
            uncounted_succeeded=set(uncounted.get("succeeded") or []),
            uncounted_failed=set(uncounted.get("failed") or []),
            expected_rm=self.finalizer_expectations.pending(key),
        )
        new_succeeded, new_failed = self._new_finished(ctx)
        counted_new_failed = sum(
            1 for p in new_failed if pfp.evaluate(spec.get("podFailurePolicy"), p).count_failed)
        ctx.succeeded = (int(status.get("succeeded") or 0) + len(new_succeeded)
                         + len(ctx.uncounted_succeeded))
        ctx.failed = (int(status.get("failed") or 0) + counted_new_failed
                      + len(ctx.uncounted_failed))
        if not status.get("startTime") and not js.is_suspended(job):
            status["startTime"] = m.rfc3339(now)
        ctx.new_backoff = next_record(self.backoff.get(key, BackoffRecord()),
                                      new_succeeded, new_failed)
        self._decide_failure(ctx, now)
        if js.is_indexed(job):
            self._indexed_accounting(ctx, now)
        suspend_changed = False
        manage_error: BaseException | None = None
        active_count = len(active)
        if ctx.finished is not None:
            deleted_ready, deleted, manage_error = await self._delete_active(job, active)
            if deleted != len(active) or not satisfied:
                # Pods may still be on their way into the cache: not finished yet.
                ctx.finished = None
            active_count -= deleted
            ctx.terminating += deleted
            ctx.ready -= deleted_ready
        else:
            manage_called = False
            if satisfied and not (job.get("metadata") or {}).get("deletionTimestamp"):
                active_count, manage_error = await self._manage(key, ctx, now)
                manage_called = True
            total = js.completions(job)
            if total is None:
                complete = ctx.succeeded > 0 and active_count == 0
            else:
                complete = ctx.succeeded >= total and active_count == 0
            if complete:
                ctx.finished = js.new_condition(js.SUCCESS_CRITERIA_MET,
                                                js.REASON_COMPLETIONS_REACHED,
                                                js.MSG_COMPLETIONS_REACHED, now=now)
            elif manage_called:
                suspend_changed = self._suspend_conditions(ctx, now)
        needs_flush = (suspend_changed or active_count != int(status.get("active") or 0)
                       or ctx.ready != status.get("ready")
                       or ctx.terminating != status.get("terminating"))
        _set_count(status, "active", active_count)
        status["ready"] = ctx.ready
        status["terminating"] = ctx.terminating
        await self._track_status(key, ctx, needs_flush, now)
        if manage_error is not None:
            raise manage_error
        return min(ctx.requeue) if ctx.requeue else None

    # -- deciding ---------------------------------------------------------------------------

    def _new_finished(self, ctx: _Sync) -> tuple[list[Obj], list[Obj]]:
        succeeded: list[Obj] = []
        failed: list[Obj] = []
        for p in ctx.pods:
            uid = m.uid_of(p)
            if not js.has_tracking_finalizer(p) or uid in ctx.expected_rm:
                continue
            if pod_state.phase(p) == pod_state.SUCCEEDED:
                if uid not in ctx.uncounted_succeeded:
                    succeeded.append(p)
            elif js.is_pod_failed(p, ctx.job) and uid not in ctx.uncounted_failed:
                failed.append(p)
        return succeeded, failed

    def _decide_failure(self, ctx: _Sync, now: dt.datetime) -> None:
        job = ctx.job
        spec = job["spec"]
        met = js.true_condition(job, js.SUCCESS_CRITERIA_MET)
        if met is not None:
            ctx.finished = met
            return
        target = js.true_condition(job, js.FAILURE_TARGET)
        if target is not None:
            ctx.finished = js.new_condition(js.FAILED, target.get("reason", ""),
                                            target.get("message", ""), now=now)
            return
        policy = spec.get("podFailurePolicy")
        if policy:
            for p in ctx.pods:
                if js.is_pod_failed(p, job):
                    verdict = pfp.evaluate(policy, p)
                    if verdict.message is not None and verdict.action == pfp.FAIL_JOB:
                        ctx.finished = js.new_condition(
                            js.FAILURE_TARGET, js.REASON_POD_FAILURE_POLICY, verdict.message,
                            now=now)
                        return
        limit = int(spec.get("backoffLimit") if spec.get("backoffLimit") is not None else 6)
        if ctx.failed > limit or js.past_backoff_limit_on_failure(job, ctx.pods):
            ctx.finished = js.new_condition(js.FAILURE_TARGET, js.REASON_BACKOFF_LIMIT,
                                            js.MSG_BACKOFF_LIMIT, now=now)
            return
        deadline = spec.get("activeDeadlineSeconds")
        start = m.parse_time((job.get("status") or {}).get("startTime") or "")
        if isinstance(deadline, int) and start is not None and not js.is_suspended(job):
            left = deadline - (now - start).total_seconds()
            if left <= 0:
                ctx.finished = js.new_condition(js.FAILURE_TARGET, js.REASON_DEADLINE,
                                                js.MSG_DEADLINE, now=now)
            else:
                ctx.requeue.append(left)

    def _indexed_accounting(self, ctx: _Sync, now: dt.datetime) -> None:
        job = ctx.job
        spec = job["spec"]
        status = job["status"]
        total = js.completions(job) or 0
        ctx.prev_succeeded_indexes = ji.parse_indexes(status.get("completedIndexes"), total)
        ctx.succeeded_indexes = set(ctx.prev_succeeded_indexes)
        for p in ctx.pods:
            ix = ji.completion_index(p)
            if (pod_state.phase(p) == pod_state.SUCCEEDED and ix is not None and ix < total
                    and js.has_tracking_finalizer(p)):
                ctx.succeeded_indexes.add(ix)
        ctx.succeeded = len(ctx.succeeded_indexes)
        per_index = spec.get("backoffLimitPerIndex")
        if isinstance(per_index, int):
            ctx.failed_indexes = self._failed_indexes(ctx, per_index, total)
            if ctx.finished is None:
                max_failed = spec.get("maxFailedIndexes")
                if isinstance(max_failed, int) and len(ctx.failed_indexes) > max_failed:
                    ctx.finished = js.new_condition(
                        js.FAILURE_TARGET, js.REASON_MAX_FAILED_INDEXES,
                        js.MSG_MAX_FAILED_INDEXES, now=now)
                elif ctx.failed_indexes and (len(ctx.failed_indexes)
                                             + len(ctx.succeeded_indexes)) >= total:
                    ctx.finished = js.new_condition(js.FAILURE_TARGET, js.REASON_FAILED_INDEXES,
                                                    js.MSG_FAILED_INDEXES, now=now)
            ctx.delayed_removal = self._delayed_removal(ctx)
        if ctx.finished is None:
            msg = js.match_success_policy(spec.get("successPolicy"), ctx.succeeded_indexes,
                                          lambda text: ji.parse_indexes(text, total))
            if msg is not None:
                ctx.finished = js.new_condition(js.SUCCESS_CRITERIA_MET,
                                                js.REASON_SUCCESS_POLICY, msg, now=now)

    def _failed_indexes(self, ctx: _Sync, per_index: int, total: int) -> set[int]:
        failed = ji.parse_indexes((ctx.job["status"]).get("failedIndexes"), total)
        policy = ctx.job["spec"].get("podFailurePolicy")
        for p in ctx.pods:
            ix = ji.completion_index(p)
            if ix is None or ix >= total or not js.has_tracking_finalizer(p):
                continue
            if not js.is_pod_failed(p, ctx.job):
                continue
            verdict = pfp.evaluate(policy, p)
            if verdict.action == pfp.FAIL_INDEX:
                failed.add(ix)
            elif verdict.count_failed and ji.index_failure_count(p) + 1 > per_index:
                failed.add(ix)
        return failed

    def _delayed_removal(self, ctx: _Sync) -> dict[int, str]:
        """Per index, the last failed pod whose finalizer waits for its replacement.

        The replacement inherits the failure count from it, so it must not vanish first.
        """
        failed_ix = ctx.failed_indexes or set()
        active_ix = {ji.completion_index(p) for p in ctx.active}
        last: dict[int, Obj] = {}
        for p in ctx.pods:
            ix = ji.completion_index(p)
            if (ix is None or ix in failed_ix or ix in ctx.succeeded_indexes
                    or ix in active_ix or not js.has_tracking_finalizer(p)
                    or not js.is_pod_failed(p, ctx.job)):
                continue
            if ix not in last or pod_state.finish_time(p) > pod_state.finish_time(last[ix]):
                last[ix] = p
        return {ix: m.uid_of(p) for ix, p in last.items()}

    def _suspend_conditions(self, ctx: _Sync, now: dt.datetime) -> bool:
        job = ctx.job
        if js.is_suspended(job):
            changed = js.ensure_condition(job, js.SUSPENDED, "True", "JobSuspended",
                                          "Job suspended", now)
            if changed:
                ctx.events.append(("Suspended", "Job suspended"))
            return changed
        changed = js.ensure_condition(job, js.SUSPENDED, "False", "JobResumed", "Job resumed",
                                      now)
        if changed:
            ctx.events.append(("Resumed", "Job resumed"))
            # activeDeadlineSeconds counts time spent active, so resuming restarts it.
            job["status"]["startTime"] = m.rfc3339(now)
        return changed

    # -- acting -----------------------------------------------------------------------------

    async def _manage(self, key: str, ctx: _Sync, now: dt.datetime
                      ) -> tuple[int, BaseException | None]:
        """Create or delete pods toward the wanted number running; returns the new count."""
        job = ctx.job
        spec = job["spec"]
        active = len(ctx.active)
        parallelism = int(spec.get("parallelism") if spec.get("parallelism") is not None else 1)
        if js.is_suspended(job):
            victims = _pods_for_removal(job, ctx.active, active)
            self.expectations.expect(key, dels=len(victims))
            ready, removed, err = await self._delete_pods(key, job, victims)
            ctx.terminating += removed
            ctx.ready -= ready
            return active - removed, err
        total = js.completions(job)
        if total is None:
            want = active if ctx.succeeded > 0 else parallelism
        else:
            want = max(0, min(total - ctx.succeeded, parallelism))
        victims = _pods_for_removal(job, ctx.active, max(0, active - want))
        victims = victims[:MAX_POD_CREATE_DELETE_PER_SYNC]
        if victims:
            self.expectations.expect(key, dels=len(victims))
            ready, removed, err = await self._delete_pods(key, job, victims)
            ctx.terminating += removed
            ctx.ready -= ready
            return active - removed, err
        terminating = ctx.terminating if js.only_replace_failed(job) else 0
        diff = min(want - terminating - active, MAX_POD_CREATE_DELETE_PER_SYNC)
        if diff <= 0:
            return active, None
        if spec.get("backoffLimitPerIndex") is None:
            wait = ctx.new_backoff.remaining(now, self.backoff_base, self.backoff_max)
            if wait > 0:
                ctx.requeue.append(max(wait, 0.5))
                return active, None
        indexes: list[int | None] = [None] * diff
        if js.is_indexed(job):
            pending = self._pending_indexes(ctx, diff, total or 0)
            if spec.get("backoffLimitPerIndex") is not None:
                pending, wait = self._indexes_out_of_backoff(ctx, pending, now)
                if wait > 0:
                    ctx.requeue.append(max(wait, 0.5))
                    return active, None
            indexes = list(pending)
            if not indexes:
                return active, None
        self.expectations.expect(key, adds=len(indexes))
        created, err = await slow_start(
            len(indexes), lambda i: self._create_pod(job, indexes[i], ctx))
        if created < len(indexes):
            self.expectations.lower(key, adds=len(indexes) - created)
        return active + created, err

    def _pending_indexes(self, ctx: _Sync, count: int, total: int) -> list[int]:
        busy = set(ctx.succeeded_indexes)
        busy.update(ix for p in ctx.active if (ix := ji.completion_index(p)) is not None)
        if js.only_replace_failed(ctx.job):
            busy.update(ix for p in ctx.pods if pod_state.is_terminating(p)
                        and (ix := ji.completion_index(p)) is not None)
        busy.update(ctx.failed_indexes or set())
        out: list[int] = []
        for i in range(total):
            if i not in busy:
                out.append(i)
                if len(out) == count:
                    break
        return out

    def _indexes_out_of_backoff(self, ctx: _Sync, pending: list[int], now: dt.datetime
                                ) -> tuple[list[int], float]:
        """With backoffLimitPerIndex each index waits out its own back-off.

        The wait grows with the index's failures so far (ignored ones too), counted from
        when its last failed pod finished. Returns the indexes that may start now or,
        if none may, the seconds until the first can.
        """
        by_uid = {m.uid_of(p): p for p in ctx.pods}
        ready: list[int] = []
        wait: float | None = None
        for index in pending:
            last = by_uid.get(ctx.delayed_removal.get(index, ""))
            left = 0.0
            if last is not None:
                failures = (ji.index_failure_count(last)
                            + ji.index_ignored_failure_count(last) + 1)
                record = BackoffRecord(failures, pod_state.finish_time(last))
                left = record.remaining(now, self.backoff_base, self.backoff_max)
            if left <= 0:
                ready.append(index)
            elif wait is None or left < wait:
                wait = left
        if ready:
            return ready, 0.0
        return [], wait or 0.0

    async def _create_pod(self, job: Obj, index: int | None, ctx: _Sync) -> None:
        spec = job["spec"]
        name = m.name_of(job)
        template = spec.get("template") or {}
        if index is None:
            pod = pod_from_template(template, job)
        else:
            pod = pod_from_template(template, job, generate_name=ji.pod_name_prefix(name, index))
            _make_indexed(pod, name, index)
            if spec.get("backoffLimitPerIndex") is not None:
                failures, ignored = self._index_failure_counts(ctx, index)
                pod["metadata"]["annotations"][ji.INDEX_FAILURE_COUNT] = str(failures)
                if ignored:
                    pod["metadata"]["annotations"][ji.INDEX_IGNORED_FAILURE_COUNT] = str(ignored)
        fins = pod["metadata"].setdefault("finalizers", [])
        if js.TRACKING_FINALIZER not in fins:
            fins.append(js.TRACKING_FINALIZER)
        try:
            created = await self.client.create("", "v1", "pods", pod, m.namespace_of(job))
        except StatusError as err:
            if not (err.code == 403 and "being terminated" in err.message):
                self.recorder.event(job, "Warning", "FailedCreate",
                                    f"Error creating: {err.message}")
            raise
        self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {m.name_of(created)}")

    def _index_failure_counts(self, ctx: _Sync, index: int) -> tuple[int, int]:
        latest: Obj | None = None
        for p in ctx.pods:
            if ji.completion_index(p) == index and js.is_pod_failed(p, ctx.job):
                if latest is None or pod_state.finish_time(p) > pod_state.finish_time(latest):
                    latest = p
        if latest is None:
            return 0, 0
        failures = ji.index_failure_count(latest)
        ignored = ji.index_ignored_failure_count(latest)
        if pfp.evaluate(ctx.job["spec"].get("podFailurePolicy"), latest).count_failed:
            failures += 1
        else:
            ignored += 1
        return failures, ignored

    async def _delete_pods(self, key: str, job: Obj, pods: list[Obj]
                           ) -> tuple[int, int, BaseException | None]:
        """Delete pods the Job no longer wants (their finalizer first: not counted)."""
        async def one(pod: Obj) -> None:
            try:
                if js.has_tracking_finalizer(pod):
                    await self._remove_finalizer(pod)
                await self._delete_pod(job, pod)
            except StatusError as err:
                self.expectations.deletion_observed(key)
                if err.code != 404:
                    raise

        return await _delete_all(pods, one)

    async def _delete_active(self, job: Obj, pods: list[Obj]
                             ) -> tuple[int, int, BaseException | None]:
        """Delete the active pods of a finishing Job, keeping finalizers (they are counted)."""
        async def one(pod: Obj) -> None:
            try:
                await self._delete_pod(job, pod)
            except StatusError as err:
                if err.code != 404:
                    raise

        return await _delete_all(pods, one)

    async def _delete_pod(self, job: Obj, pod: Obj) -> None:
        """Delete one of the Job's pods, with the events upstream's pod control records."""
        try:
            await self.client.delete("", "v1", "pods", m.name_of(pod), m.namespace_of(pod))
        except StatusError as err:
            if err.code != 404:
                self.recorder.event(job, "Warning", "FailedDelete",
                                    f"Error deleting: {err.message}")
            raise
        self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {m.name_of(pod)}")

    # -- status -----------------------------------------------------------------------------

    async def _track_status(self, key: str, ctx: _Sync, needs_flush: bool,
                            now: dt.datetime) -> None:
        """Record finished pods, release their finalizers, count them, finish the Job."""
        job = ctx.job
        indexed = js.is_indexed(job)
        total = js.completions(job) or 0
        pods = ctx.pods
        if indexed:
            pods = sorted(pods, key=lambda p: (ji.completion_index(p) is None,
                                               ji.completion_index(p) or 0))
        with_finalizer = {m.uid_of(p) for p in pods
                          if js.has_tracking_finalizer(p) and m.uid_of(p) not in ctx.expected_rm}
        if _clean_uncounted(job["status"], with_finalizer):
            needs_flush = True
        uncounted = job["status"]["uncountedTerminatedPods"]
        unc_succeeded = list(uncounted.get("succeeded") or [])
        unc_failed = list(uncounted.get("failed") or [])
        to_release: list[Obj] = []
        new_indexes: list[int] = []
        reached_max = False
        policy = job["spec"].get("podFailurePolicy")
        failing = ctx.finished is not None and ctx.finished.get("type") != js.SUCCESS_CRITERIA_MET
        for pod in pods:
            uid = m.uid_of(pod)
            if not js.has_tracking_finalizer(pod) or uid in ctx.expected_rm:
                continue
            considered_failed = js.is_pod_failed(pod, job)
            if not self._can_release(ctx, pod, considered_failed):
                continue
            to_release.append(pod)
            if pod_state.phase(pod) == pod_state.SUCCEEDED and uid not in ctx.uncounted_failed:
                if indexed:
                    ix = ji.completion_index(pod)
                    if (ix is not None and ix < total
                            and ix not in ctx.prev_succeeded_indexes):
                        new_indexes.append(ix)
                        needs_flush = True
                elif uid not in unc_succeeded:
                    unc_succeeded.append(uid)
                    needs_flush = True
            elif considered_failed or failing:
                ix = ji.completion_index(pod)
                if uid not in unc_failed and (not indexed or (ix is not None and ix < total)):
                    if pfp.evaluate(policy, pod).count_failed:
                        unc_failed.append(uid)
                        needs_flush = True
            if len(new_indexes) + len(unc_succeeded) + len(unc_failed) >= MAX_UNCOUNTED_PODS:
                reached_max = True
                break
        _set_uncounted(job["status"], unc_succeeded, unc_failed)
        if indexed:
            ctx.succeeded_indexes |= set(new_indexes)
            text = ji.format_indexes(ctx.succeeded_indexes)
            if text != (job["status"].get("completedIndexes") or ""):
                needs_flush = True
            _set_count(job["status"], "succeeded", len(ctx.succeeded_indexes))
            job["status"]["completedIndexes"] = text
            if ctx.failed_indexes is not None:
                failed_text = ji.format_indexes(ctx.failed_indexes)
                if job["status"].get("failedIndexes") != failed_text:
                    job["status"]["failedIndexes"] = failed_text
                    needs_flush = True
        finished = ctx.finished
        if finished is not None and finished.get("type") == js.FAILURE_TARGET:
            job["status"].setdefault("conditions", []).append(finished)
            needs_flush = True
            finished = js.new_condition(js.FAILED, finished.get("reason", ""),
                                        finished.get("message", ""), now=now)
        elif finished is not None and finished.get("type") == js.SUCCESS_CRITERIA_MET:
            if js.true_condition(job, js.SUCCESS_CRITERIA_MET) is None:
                job["status"].setdefault("conditions", []).append(finished)
                needs_flush = True
            finished = js.new_condition(js.COMPLETE, finished.get("reason", ""),
                                        finished.get("message", ""), now=now)
        ctx.finished = finished
        needs_flush = await self._flush_and_release(key, ctx, to_release, with_finalizer,
                                                    needs_flush)
        done = not reached_max and self._enact_finished(ctx, now)
        if done or needs_flush:
            await self._write_status(ctx)
            if done and ctx.finished is not None:
                self._record_finished(ctx.job, ctx.finished)

    def _can_release(self, ctx: _Sync, pod: Obj, considered_failed: bool) -> bool:
        if ((ctx.job.get("metadata") or {}).get("deletionTimestamp") or ctx.finished is not None
                or pod_state.phase(pod) == pod_state.SUCCEEDED):
            return True
        if not considered_failed:
            return False
        ix = ji.completion_index(pod)
        return not (ix is not None and ctx.delayed_removal.get(ix) == m.uid_of(pod))

    async def _flush_and_release(self, key: str, ctx: _Sync, pods: list[Obj],
                                 with_finalizer: set[str], needs_flush: bool) -> bool:
        if needs_flush:
            await self._write_status(ctx)
            self.backoff[key] = ctx.new_backoff
            needs_flush = False
        error: BaseException | None = None
        if pods:
            self.finalizer_expectations.expect(key, [m.uid_of(p) for p in pods])

            async def release(pod: Obj) -> None:
                try:
                    await self._remove_finalizer(pod)
                except BaseException:
                    self.finalizer_expectations.observed(key, m.uid_of(pod))
                    raise

            results = await asyncio.gather(*(release(p) for p in pods), return_exceptions=True)
            for pod, result in zip(pods, results, strict=True):
                if isinstance(result, BaseException):
                    error = error or result
                else:
                    with_finalizer.discard(m.uid_of(pod))
        if _clean_uncounted(ctx.job["status"], with_finalizer):
            needs_flush = True
        if error is not None:
            if needs_flush:
                await self._write_status(ctx)
            raise error
        return needs_flush

    def _enact_finished(self, ctx: _Sync, now: dt.datetime) -> bool:
        cond = ctx.finished
        if cond is None:
            return False
        uncounted = ctx.job["status"].get("uncountedTerminatedPods") or {}
        if uncounted.get("succeeded") or uncounted.get("failed"):
            return False
        if ctx.terminating > 0:
            return False
        js.ensure_condition(ctx.job, cond["type"], "True", cond.get("reason", ""),
                            cond.get("message", ""), now)
        if cond["type"] == js.COMPLETE:
            ctx.job["status"]["completionTime"] = m.rfc3339(now)
        return True

    def _record_finished(self, job: Obj, cond: Obj) -> None:
        if cond.get("type") == js.COMPLETE:
            total = js.completions(job)
            if total is not None and int(job["status"].get("succeeded") or 0) > total:
                self.recorder.event(job, "Warning", "TooManySucceededPods",
                                      "Too many succeeded pods running after completion count "
                                      "reached")
            self.recorder.event(job, "Normal", "Completed", "Job completed")
        else:
            self.recorder.event(job, "Warning", cond.get("reason", ""), cond.get("message", ""))

    async def _write_status(self, ctx: _Sync) -> None:
        """Write the Job's status, then send the events about what it changed."""
        ctx.job = await self._update_status(ctx.job)
        for reason, message in ctx.events:
            self.recorder.event(ctx.job, "Normal", reason, message)
        ctx.events.clear()

    async def _update_status(self, job: Obj) -> Obj:
        status = job.get("status") or {}
        for k in ("succeeded", "failed", "active"):
            _set_count(status, k, int(status.get(k) or 0))
        updated = await self.client.update_status("batch", "v1", "jobs", job)
        updated.setdefault("kind", "Job")
        updated.setdefault("apiVersion", "batch/v1")
        # The server echoes what we wrote; keep our in-flight view of the condition list.
        return updated

    async def run(self) -> None:
        """Watch Jobs and pods until cancelled."""
        await run_controller(self.queue, self.reconcile, self.workers, self._own, self.recorder)


def _set_count(status: Obj, key: str, value: int) -> None:
    """Counters are omitted when zero, as upstream's JSON does."""
    if value:
        status[key] = value
    else:
        status.pop(key, None)


def _set_uncounted(status: Obj, succeeded: list[str], failed: list[str]) -> None:
    unc: Obj = {}
    if succeeded:
        unc["succeeded"] = succeeded
    if failed:
        unc["failed"] = failed
    status["uncountedTerminatedPods"] = unc


def _clean_uncounted(status: Obj, with_finalizer: set[str]) -> bool:
    """Move uids whose finalizer is gone from uncountedTerminatedPods into the counters."""
    unc = status.get("uncountedTerminatedPods") or {}
    changed = False
    succeeded = list(unc.get("succeeded") or [])
    failed = list(unc.get("failed") or [])
    keep_s = [u for u in succeeded if u in with_finalizer]
    keep_f = [u for u in failed if u in with_finalizer]
    if len(keep_s) != len(succeeded):
        _set_count(status, "succeeded", int(status.get("succeeded") or 0)
                   + len(succeeded) - len(keep_s))
        changed = True
    if len(keep_f) != len(failed):
        _set_count(status, "failed", int(status.get("failed") or 0) + len(failed) - len(keep_f))
        changed = True
    if changed:
        _set_uncounted(status, keep_s, keep_f)
    return changed


def _make_indexed(pod: Obj, job_name: str, index: int) -> None:
    """Give a pod its completion index: annotation, label, hostname and env variable."""
    md = pod["metadata"]
    md.setdefault("annotations", {})[ji.COMPLETION_INDEX] = str(index)
    md.setdefault("labels", {})[ji.COMPLETION_INDEX] = str(index)
    spec = pod["spec"]
    # Upstream sets it even over a hostname in the template: peers find each other by it.
    spec["hostname"] = f"{job_name}-{index}"
    env_var = {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "fieldPath": f"metadata.labels['{ji.COMPLETION_INDEX}']"}}}
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            env = c.setdefault("env", [])
            if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in env):
                env.append(copy.deepcopy(env_var))


def _pods_for_removal(job: Obj, pods: list[Obj], at_least: int) -> list[Obj]:
    """Pods to delete: out-of-range and duplicate indexes first, then the least valuable."""
    remove: list[Obj] = []
    left = list(pods)
    if js.is_indexed(job):
        total = js.completions(job) or 0
        by_index: dict[int, list[Obj]] = {}
        left = []
        for p in pods:
            ix = ji.completion_index(p)
            if ix is None or ix >= total:
                remove.append(p)
            else:
                by_index.setdefault(ix, []).append(p)
        for group in by_index.values():
            group.sort(key=pod_state.deletion_rank)
            remove.extend(group[:-1])
            left.append(group[-1])
    if len(remove) < at_least:
        left.sort(key=pod_state.deletion_rank)
        remove.extend(left[:at_least - len(remove)])
    return remove


async def _delete_all(pods: list[Obj], one: Callable[[Obj], Any]
                      ) -> tuple[int, int, BaseException | None]:
    results = await asyncio.gather(*(one(p) for p in pods), return_exceptions=True)
    deleted = ready = 0
    error: BaseException | None = None
    for pod, result in zip(pods, results, strict=True):
        if isinstance(result, BaseException):
            error = error or result
            continue
        deleted += 1
        if pod_state.is_ready(pod):
            ready += 1
    return ready, deleted, error

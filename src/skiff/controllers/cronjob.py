"""The CronJob controller: starts a Job at each scheduled time, as upstream's v2 one.

One reconcile per CronJob key:

1. Reconcile `status.active` with the Jobs it owns: finished ones leave the list
   (SawCompletedJob), successes move `lastSuccessfulTime`.
2. Unless suspended, find the most recent start time due since the last one
   (warning TooManyMissedTimes past 100), skip it if it is older than
   startingDeadlineSeconds (MissSchedule), and apply concurrencyPolicy:
   Forbid waits for the running Job (JobAlreadyActive), Replace deletes it.
3. Create the Job `<cronjob>-<scheduled time in minutes>` from the jobTemplate and
   record it in `status.active` and `lastScheduleTime`.
4. Delete finished Jobs beyond the history limits, oldest first.
5. Come back at the next start time.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from skiff.api import meta as m
from skiff.api.cron import CronError, parse_cron
from skiff.api.errors import StatusError
from skiff.api.validation.field import render_value
from skiff.client.event_recorder import EventRecorder, involved_object
from skiff.client.http_client import Client
from skiff.client.informer import Informer, object_key
from skiff.client.workqueue import WorkQueue
from skiff.controllers import cron_schedule as cs
from skiff.controllers import job_status as js
from skiff.controllers.controller_ref import (
    CONTROLLER_INDEX,
    UID_INDEX,
    index_by_controller,
    owner_reference,
)
from skiff.controllers.informers import run_controller, use_informer

log = logging.getLogger(__name__)

Obj = dict[str, Any]

COMPONENT = "cronjob-controller"
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
# Upstream requeues a little after the next start so the clock has surely passed it.
NEXT_SCHEDULE_DELTA = 0.1
CONFLICT_RETRY = 0.05
# When a Job to be replaced could not be deleted, try again this much later.
REPLACE_RETRY = 1.0


def job_name(cronjob_name: str, scheduled: dt.datetime) -> str:
    """`<cronjob>-<minutes since the epoch>`: one name per scheduled minute."""
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def _rfc1123z(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


class CronJobController:
    """Reconciles batch/v1 CronJobs by `namespace/name`."""

    def __init__(self, client: Client, *, workers: int = 2,
                 clock: Callable[[], dt.datetime] = m.now, jobs: Informer | None = None) -> None:
        self.client = client
        self.clock = clock
        self.workers = workers
        self._own: list[Informer] = []
        self.cronjobs = use_informer(client, None, self._own, "batch", "v1", "cronjobs")
        self.jobs = use_informer(client, jobs, self._own, "batch", "v1", "jobs")
        index_by_controller(self.jobs)
        index_by_controller(self.cronjobs)
        self.queue = WorkQueue(name="cronjob")
        self.recorder = EventRecorder(client, COMPONENT)
        self.cronjobs.on_add(lambda c: self.queue.add(object_key(c)))
        self.cronjobs.on_update(lambda _o, c: self.queue.add(object_key(c)))
        self.jobs.on_add(self._job_changed)
        self.jobs.on_update(lambda _o, j: self._job_changed(j))
        self.jobs.on_delete(self._job_changed)

    def _job_changed(self, job: Obj) -> None:
        ref = m.controller_of(job)
        if ref is None or ref.get("kind") != "CronJob":
            return
        for cj in self.cronjobs.by_index(UID_INDEX, ref.get("uid", "")):
            self.queue.add(object_key(cj))

    async def reconcile(self, key: str) -> float | None:
        """Sync one CronJob; returns when to look again."""
        if not (self.cronjobs.has_synced.is_set() and self.jobs.has_synced.is_set()):
            return 0.1
        cached = self.cronjobs.get(key)
        if cached is None:
            return None
        cronjob = copy.deepcopy(cached)
        jobs = [j for j in self.jobs.by_index(CONTROLLER_INDEX, m.uid_of(cronjob))
                if m.namespace_of(j) == m.namespace_of(cronjob)]
        listed = {ref.get("uid") for ref in (cronjob.get("status") or {}).get("active") or []}
        if any(not js.is_finished(j) and m.uid_of(j) not in listed for j in jobs):
            # Our cache may predate the status write that listed the job: read it fresh
            # before calling the job unexpected (as upstream does).
            with contextlib.suppress(StatusError):
                fresh = await self.client.get("batch", "v1", "cronjobs", m.name_of(cronjob),
                                              m.namespace_of(cronjob))
                if m.uid_of(fresh) == m.uid_of(cronjob):
                    fresh.setdefault("kind", "CronJob")
                    fresh.setdefault("apiVersion", "batch/v1")
                    cronjob = fresh
        original_status = copy.deepcopy(cronjob.get("status") or {})
        try:
            requeue = await self._sync(cronjob, jobs)
            status = cronjob.get("status") or {}
            if status != original_status:
                await self.client.update_status("batch", "v1", "cronjobs", cronjob)
        except StatusError as err:
            if err.code != 409:
                raise
            # Our cache was behind the server; look again once it has caught up.
            return CONFLICT_RETRY
        await self._cleanup_finished(cronjob, jobs)
        return requeue

    async def _sync(self, cronjob: Obj, jobs: list[Obj]) -> float | None:
        now = self.clock()
        status = cronjob.setdefault("status", {})
        spec = cronjob.get("spec") or {}
        children = {m.uid_of(j) for j in jobs}
        active = list(status.get("active") or [])
        for j in jobs:
            uid = m.uid_of(j)
            found = any(ref.get("uid") == uid for ref in active)
            if not found and not js.is_finished(j):
                self.recorder.event(cronjob, "Warning", "UnexpectedJob",
                                      f"Saw a job that the controller did not create or forgot: "
                                      f"{m.name_of(j)}")
            elif found and js.is_finished(j):
                cond = js.finished_condition(j) or {}
                active = [ref for ref in active if ref.get("uid") != uid]
                self.recorder.event(cronjob, "Normal", "SawCompletedJob",
                                     f"Saw completed job: {m.name_of(j)}, condition: "
                                     f"{cond.get('type', '')}")
            if js.true_condition(j, js.COMPLETE):
                done = (j.get("status") or {}).get("completionTime")
                last = status.get("lastSuccessfulTime")
                if done and (not last or (m.parse_time(done) or now) > (m.parse_time(last)
                                                                         or now)):
                    status["lastSuccessfulTime"] = done
        # Jobs in the list that we no longer see were deleted by someone.
        for ref in list(active):
            if ref.get("uid") not in children:
                try:
                    live = await self.client.get("batch", "v1", "jobs", ref.get("name", ""),
                                                 ref.get("namespace", m.namespace_of(cronjob)))
                    if m.uid_of(live) == ref.get("uid"):
                        continue
                except StatusError as err:
                    if err.code != 404:
                        raise
                active = [r for r in active if r.get("uid") != ref.get("uid")]
        _set_active(status, active)
        if (cronjob.get("metadata") or {}).get("deletionTimestamp"):
            return None
        try:
            tz = cs.zone(spec.get("timeZone"))
        except cs.UnknownTimeZone:
            zone_name = spec.get("timeZone")
            self.recorder.event(cronjob, "Warning", "UnknownTimeZone",
                                f"invalid timeZone: {_quote(zone_name)}: unknown time zone "
                                f"{zone_name}")
            return None
        if spec.get("suspend"):
            return None
        try:
            schedule = parse_cron(spec.get("schedule") or "")
        except CronError as err:
            self.recorder.event(cronjob, "Warning", "UnparseableSchedule",
                                  f"unparseable schedule: {_quote(spec.get('schedule'))} : {err}")
            return None
        missed = cs.most_recent_schedule(schedule, tz, cs.earliest_time(cronjob, now), now)
        if missed.count > cs.MANY_MISSED:
            self.recorder.event(cronjob, "Warning", "TooManyMissedTimes",
                                  "too many missed start times. Set or decrease "
                                  ".spec.startingDeadlineSeconds or check clock skew")
        next_in = self._next_in(schedule, tz, now)
        scheduled = missed.most_recent
        if scheduled is None:
            return next_in
        deadline = spec.get("startingDeadlineSeconds")
        if isinstance(deadline, int) and scheduled + dt.timedelta(seconds=deadline) < now:
            self.recorder.event(cronjob, "Warning", "MissSchedule",
                                  f"Missed scheduled time to start a job: {_rfc1123z(scheduled)}")
            return next_in
        name = job_name(m.name_of(cronjob), scheduled)
        last = m.parse_time(status.get("lastScheduleTime") or "")
        if any(ref.get("name") == name for ref in active) or last == scheduled:
            return next_in
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            self.recorder.event(cronjob, "Normal", "JobAlreadyActive",
                                 "Not starting job because prior execution is running and "
                                 "concurrency policy is Forbid")
            return next_in
        if policy == "Replace":
            for ref in list(active):
                if not await self._delete_job(cronjob, ref.get("name", "")):
                    # As upstream: no new run while the one it replaces could not go.
                    _set_active(status, active)
                    return REPLACE_RETRY
                active = [r for r in active if r.get("uid") != ref.get("uid")]
            _set_active(status, active)
        job = self._job_from_template(cronjob, scheduled, tz)
        try:
            created = await self.client.create("batch", "v1", "jobs", job,
                                               m.namespace_of(cronjob))
        except StatusError as err:
            if err.code == 409:
                # An earlier sync created it but did not get to record it: record it now.
                existing = await self.client.get("batch", "v1", "jobs", m.name_of(job),
                                                 m.namespace_of(cronjob))
                if (m.controller_of(existing) or {}).get("uid") == m.uid_of(cronjob):
                    existing.setdefault("kind", "Job")
                    existing.setdefault("apiVersion", "batch/v1")
                    if not any(r.get("uid") == m.uid_of(existing) for r in active):
                        active.append(involved_object(existing))
                    _set_active(status, active)
                    status["lastScheduleTime"] = m.rfc3339(scheduled)
                return next_in
            if not (err.code == 403 and "being terminated" in err.message):
                self.recorder.event(cronjob, "Warning", "FailedCreate",
                                      f"Error creating job: {err.message}")
            raise
        created.setdefault("kind", "Job")
        created.setdefault("apiVersion", "batch/v1")
        self.recorder.event(cronjob, "Normal", "SuccessfulCreate",
                            f"Created job {m.name_of(created)}")
        ref = involved_object(created)
        active.append(ref)
        _set_active(status, active)
        status["lastScheduleTime"] = m.rfc3339(scheduled)
        return next_in

    def _next_in(self, schedule: Any, tz: dt.tzinfo, now: dt.datetime) -> float | None:
        nxt = cs.next_time(schedule, now, tz)
        if nxt is None:
            return None
        return max(0.0, (nxt - now).total_seconds()) + NEXT_SCHEDULE_DELTA

    def _job_from_template(self, cronjob: Obj, scheduled: dt.datetime, tz: dt.tzinfo) -> Obj:
        template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
        tmeta = template.get("metadata") or {}
        annotations = dict(tmeta.get("annotations") or {})
        annotations[SCHEDULED_TIMESTAMP] = scheduled.astimezone(tz).isoformat().replace(
            "+00:00", "Z")
        md: Obj = {
            "name": job_name(m.name_of(cronjob), scheduled),
            "namespace": m.namespace_of(cronjob),
            "annotations": annotations,
            "ownerReferences": [owner_reference(cronjob)],
        }
        if tmeta.get("labels"):
            md["labels"] = dict(tmeta["labels"])
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": md,
                "spec": copy.deepcopy(template.get("spec") or {})}

    async def _delete_job(self, cronjob: Obj, name: str) -> bool:
        try:
            await self.client.delete("batch", "v1", "jobs", name, m.namespace_of(cronjob),
                                     propagation_policy="Background")
        except StatusError as err:
            if err.code != 404:
                self.recorder.event(cronjob, "Warning", "FailedDelete",
                                      f"Deleted job: {err.message}")
                return False
            return True
        self.recorder.event(cronjob, "Normal", "SuccessfulDelete", f"Deleted job {name}")
        return True

    async def _cleanup_finished(self, cronjob: Obj, jobs: list[Obj]) -> None:
        """Keep the newest successfulJobsHistoryLimit / failedJobsHistoryLimit finished Jobs."""
        spec = cronjob.get("spec") or {}
        active = {ref.get("uid") for ref in (cronjob.get("status") or {}).get("active") or []}
        for ctype, limit_key in ((js.COMPLETE, "successfulJobsHistoryLimit"),
                                 (js.FAILED, "failedJobsHistoryLimit")):
            limit = spec.get(limit_key)
            if not isinstance(limit, int):
                continue
            done = [j for j in jobs if js.true_condition(j, ctype) and m.uid_of(j) not in active
                    and not (j.get("metadata") or {}).get("deletionTimestamp")]
            if len(done) <= limit:
                continue
            done.sort(key=_start_key)
            for j in done[:len(done) - limit]:
                await self._delete_job(cronjob, m.name_of(j))

    async def run(self) -> None:
        """Watch CronJobs and Jobs until cancelled."""
        await run_controller(self.queue, self.reconcile, self.workers, self._own, self.recorder)


def _quote(value: Any) -> str:
    """A value quoted as Go's %q does in upstream's messages (None as an empty string)."""
    return render_value(str(value if value is not None else ""))


def _set_active(status: Obj, active: list[Obj]) -> None:
    if active:
        status["active"] = active
    else:
        status.pop("active", None)


def _start_key(job: Obj) -> tuple[int, dt.datetime, str]:
    """Oldest first, as upstream's byJobStartTime: by startTime, then by name; jobs
    that never started count as the newest (they are deleted last)."""
    start = m.parse_time((job.get("status") or {}).get("startTime") or "")
    never = start is None
    return (1 if never else 0, start or dt.datetime.min.replace(tzinfo=dt.UTC), m.name_of(job))

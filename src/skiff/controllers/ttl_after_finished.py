"""The TTL-after-finished controller: deletes finished Jobs once their TTL has passed.

A Job with `spec.ttlSecondsAfterFinished` is deleted (with its pods, in the
foreground) that many seconds after its Complete or Failed condition appeared.
The Job is read again from the server before deleting, and the delete is guarded
by its resourceVersion, so a TTL changed at the last moment is respected.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client.http_client import Client
from skiff.client.informer import Informer, object_key, split_key
from skiff.client.workqueue import WorkQueue
from skiff.controllers import job_status as js
from skiff.controllers.informers import run_controller, use_informer

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def expires_in(job: Obj, now: dt.datetime) -> float | None:
    """Seconds until a finished Job's TTL runs out (≤ 0: due); None if it has none."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if not isinstance(ttl, int) or (job.get("metadata") or {}).get("deletionTimestamp"):
        return None
    finished = js.finish_time(job)
    if finished is None:
        return None
    return (finished + dt.timedelta(seconds=ttl) - now).total_seconds()


class TTLAfterFinishedController:
    """Reconciles Jobs by key, deleting expired ones."""

    def __init__(self, client: Client, *, workers: int = 2,
                 clock: Callable[[], dt.datetime] = m.now, jobs: Informer | None = None) -> None:
        self.client = client
        self.clock = clock
        self.workers = workers
        self._own: list[Informer] = []
        self.jobs = use_informer(client, jobs, self._own, "batch", "v1", "jobs")
        self.queue = WorkQueue(name="ttl-after-finished")
        self.jobs.on_add(self._maybe_queue)
        self.jobs.on_update(lambda _o, j: self._maybe_queue(j))

    def _maybe_queue(self, job: Obj) -> None:
        if expires_in(job, self.clock()) is not None:
            self.queue.add(object_key(job))

    async def reconcile(self, key: str) -> float | None:
        """Delete the Job if its TTL expired; otherwise come back when it will."""
        cached = self.jobs.get(key)
        if cached is None:
            return None
        left = expires_in(cached, self.clock())
        if left is None:
            return None
        if left > 0:
            return left
        ns, name = split_key(key)
        try:
            fresh = await self.client.get("batch", "v1", "jobs", name, ns)
        except StatusError as err:
            if err.code == 404:
                return None
            raise
        left = expires_in(fresh, self.clock())
        if left is None:
            return None
        if left > 0:
            return left
        md = fresh.get("metadata") or {}
        try:
            await self.client.delete(
                "batch", "v1", "jobs", name, ns, propagation_policy="Foreground",
                preconditions={"uid": md.get("uid"), "resourceVersion": md.get("resourceVersion")})
        except StatusError as err:
            if err.code == 404:
                return None
            if err.code == 409:
                return 0.0
            raise
        log.info("deleted job %s: its ttlSecondsAfterFinished expired", key)
        return None

    async def run(self) -> None:
        """Watch Jobs until cancelled."""
        await run_controller(self.queue, self.reconcile, self.workers, self._own)

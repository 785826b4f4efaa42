"""The CronJob controller against a real API server, on a clock the test moves.

The server runs without its own controllers; the test runs a CronJobController in
process with a fake clock and nudges it after each move, so schedules minutes
apart take milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client import Client
from skiff.controllers.cronjob import CronJobController, _start_key, job_name
from tests.cluster_fixture import Cluster, running_cluster
from tests.controller_helpers import container, events_for, eventually, seed

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster"),
                         extra_args=("--no-controllers", "--nodes", "0")) as c:
        yield c


class Clock:
    """A clock the test sets."""

    def __init__(self) -> None:
        self.now = m.now()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def controller(client: Client, clock: Clock) -> AsyncIterator[CronJobController]:
    ctl = CronJobController(client, clock=clock)
    task = asyncio.create_task(ctl.run())
    await ctl.cronjobs.has_synced.wait()
    await ctl.jobs.has_synced.wait()
    yield ctl
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def cronjob(name: str, schedule: str = "* * * * *", **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {
                "metadata": {"labels": {"from": name}},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                                               "containers": [container()]}}}}}}


async def jobs_of(client: Client, ns: str) -> list[Obj]:
    out = await client.list("batch", "v1", "jobs", ns)
    return sorted(out.get("items") or [], key=lambda j: j["metadata"]["name"])


async def tick(ctl: CronJobController, clock: Clock, ns: str, name: str,
               seconds: float) -> None:
    clock.advance(seconds)
    ctl.queue.add(f"{ns}/{name}")


async def finish_job(client: Client, job: Obj, ctype: str = "Complete") -> None:
    now = m.rfc3339()
    fresh = await client.get("batch", "v1", "jobs", job["metadata"]["name"],
                             job["metadata"]["namespace"])
    conds = [{"type": "SuccessCriteriaMet" if ctype == "Complete" else "FailureTarget",
              "status": "True", "lastTransitionTime": now},
             {"type": ctype, "status": "True", "lastTransitionTime": now}]
    fresh["status"] = {"startTime": now, "conditions": conds,
                       **({"completionTime": now, "succeeded": 1} if ctype == "Complete"
                          else {"failed": 1})}
    await client.update_status("batch", "v1", "jobs", fresh)


async def test_runs_on_schedule_with_forbid(client: Client, ns: str, clock: Clock,
                                            controller: CronJobController) -> None:
    await client.create("batch", "v1", "cronjobs",
                        cronjob("tick", concurrencyPolicy="Forbid"), ns)
    await asyncio.sleep(0.3)
    assert await jobs_of(client, ns) == []
    await tick(controller, clock, ns, "tick", 61)

    async def one() -> list[Obj]:
        jobs = await jobs_of(client, ns)
        return jobs if len(jobs) == 1 else []
    first = (await eventually(one, "the first job starts"))[0]
    cj = await client.get("batch", "v1", "cronjobs", "tick", ns)
    scheduled = m.parse_time(cj["status"]["lastScheduleTime"])
    assert scheduled is not None and scheduled.second == 0
    assert first["metadata"]["name"] == job_name("tick", scheduled)
    assert first["metadata"]["labels"] == {"from": "tick"}
    assert first["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert first["metadata"]["annotations"][
        "batch.kubernetes.io/cronjob-scheduled-timestamp"] == m.rfc3339(scheduled)
    assert [r["name"] for r in cj["status"]["active"]] == [first["metadata"]["name"]]

    # A minute later the first is still running: Forbid skips this run.
    await tick(controller, clock, ns, "tick", 60)

    async def forbidden() -> bool:
        return any(e["reason"] == "JobAlreadyActive" for e in await events_for(client, ns,
                                                                                "tick"))
    await eventually(forbidden, "the run is skipped with JobAlreadyActive")
    assert len(await jobs_of(client, ns)) == 1

    await finish_job(client, first)

    # The skipped run is still due once the first job finishes, so it starts now.
    async def caught_up() -> Obj | None:
        c = await client.get("batch", "v1", "cronjobs", "tick", ns)
        st = c.get("status") or {}
        names = [r["name"] for r in st.get("active") or []]
        return c if (st.get("lastSuccessfulTime") and names
                     and first["metadata"]["name"] not in names) else None
    cj = await eventually(caught_up, "the completed job leaves status.active, the next starts")
    assert len(await jobs_of(client, ns)) == 2
    assert cj["status"]["lastScheduleTime"] == m.rfc3339(scheduled + dt.timedelta(minutes=1))
    reasons = [e["reason"] for e in await events_for(client, ns, "tick")]
    assert "SawCompletedJob" in reasons and "SuccessfulCreate" in reasons


async def test_replace_deletes_the_running_job(client: Client, ns: str, clock: Clock,
                                               controller: CronJobController) -> None:
    await client.create("batch", "v1", "cronjobs",
                        cronjob("swap", concurrencyPolicy="Replace"), ns)
    await tick(controller, clock, ns, "swap", 61)

    async def names() -> list[str]:
        return [j["metadata"]["name"] for j in await jobs_of(client, ns)
                if not j["metadata"].get("deletionTimestamp")]
    first = (await eventually(names, "a job starts"))[0]
    await tick(controller, clock, ns, "swap", 60)

    async def replaced() -> list[str]:
        got = await names()
        return got if got and first not in got else []
    second = await eventually(replaced, "the next run replaces the running job")
    assert len(second) == 1
    cj = await client.get("batch", "v1", "cronjobs", "swap", ns)
    assert [r["name"] for r in cj["status"]["active"]] == second


async def test_allow_runs_concurrently_and_history_is_trimmed(
        client: Client, ns: str, clock: Clock, controller: CronJobController) -> None:
    await client.create("batch", "v1", "cronjobs",
                        cronjob("many", successfulJobsHistoryLimit=1), ns)
    for n in (1, 2):
        await tick(controller, clock, ns, "many", 61 if n == 1 else 60)

        async def count(n: int = n) -> bool:
            return len(await jobs_of(client, ns)) == n
        await eventually(count, f"{n} jobs run at once")
    for j in await jobs_of(client, ns):
        await finish_job(client, j)

    async def trimmed() -> list[Obj]:
        live = [j for j in await jobs_of(client, ns) if not j["metadata"].get("deletionTimestamp")]
        return live if len(live) == 1 else []
    await eventually(trimmed, "only one successful job is kept")


async def test_too_many_missed_and_suspend(client: Client, ns: str, clock: Clock,
                                           controller: CronJobController) -> None:
    await client.create("batch", "v1", "cronjobs", cronjob("late", suspend=True), ns)
    await tick(controller, clock, ns, "late", 200 * 60)
    await asyncio.sleep(0.3)
    assert await jobs_of(client, ns) == []
    await client.patch("batch", "v1", "cronjobs", "late", {"spec": {"suspend": False}}, ns)

    async def warned() -> bool:
        return any(e["reason"] == "TooManyMissedTimes" and e["type"] == "Warning"
                   for e in await events_for(client, ns, "late"))
    await eventually(warned, "a TooManyMissedTimes warning")
    jobs = await eventually(lambda: jobs_of(client, ns), "the most recent run starts")
    assert len(jobs) == 1
    cj = await client.get("batch", "v1", "cronjobs", "late", ns)
    last = m.parse_time(cj["status"]["lastScheduleTime"])
    assert last is not None and clock.now - last < dt.timedelta(minutes=1)


async def test_starting_deadline_bounds_the_catch_up(
        client: Client, ns: str, clock: Clock, controller: CronJobController) -> None:
    await client.create("batch", "v1", "cronjobs",
                        cronjob("hourly", "@hourly", startingDeadlineSeconds=60), ns)
    # Hours pass unnoticed; only a start within the last 60 s may still run.
    clock.now = clock.now.replace(minute=30) + dt.timedelta(hours=5)
    controller.queue.add(f"{ns}/hourly")
    await asyncio.sleep(0.5)
    assert await jobs_of(client, ns) == []
    clock.now = clock.now.replace(minute=0, second=20) + dt.timedelta(hours=1)
    controller.queue.add(f"{ns}/hourly")
    jobs = await eventually(lambda: jobs_of(client, ns), "the on-time run starts")
    assert jobs[0]["metadata"]["name"] == job_name(
        "hourly", clock.now.replace(second=0, microsecond=0))
    reasons = [e["reason"] for e in await events_for(client, ns, "hourly")]
    assert "TooManyMissedTimes" not in reasons


def test_history_is_trimmed_oldest_start_first_never_started_last() -> None:
    def j(name: str, start: str | None) -> Obj:
        return {"metadata": {"name": name, "creationTimestamp": "2024-01-01T00:00:00Z"},
                "status": {"startTime": start} if start else {}}
    jobs = [j("x-2", "2024-01-01T00:02:00Z"), j("x-0", None), j("x-1", "2024-01-01T00:02:00Z"),
            j("x-3", "2024-01-01T00:01:00Z")]
    assert [x["metadata"]["name"] for x in sorted(jobs, key=_start_key)] == [
        "x-3", "x-1", "x-2", "x-0"]


class _DeleteFailsClient:
    """A server whose Job deletes fail; creates are recorded."""

    def __init__(self) -> None:
        self.created: list[str] = []

    async def delete(self, *args: Any, **kw: Any) -> Obj:
        raise StatusError(500, "InternalError", "etcd is on fire")

    async def create(self, group: str, version: str, plural: str, obj: Obj,
                     namespace: str = "") -> Obj:
        self.created.append(obj["metadata"]["name"])
        return obj

    async def update_status(self, *args: Any, **kw: Any) -> Obj:
        return {}

    async def get(self, *args: Any, **kw: Any) -> Obj:
        raise StatusError(404, "NotFound", "not found")


async def test_replace_starts_no_run_while_the_old_one_cannot_be_deleted() -> None:
    client: Any = _DeleteFailsClient()
    clock = Clock()
    clock.now = dt.datetime(2026, 1, 1, 10, 0, 30, tzinfo=dt.UTC)
    ctl = CronJobController(client, clock=clock)
    cj = cronjob("swap", concurrencyPolicy="Replace")
    old = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": "swap-old", "namespace": "ns", "uid": "old-uid", "ownerReferences": [{
            "apiVersion": "batch/v1", "kind": "CronJob", "name": "swap", "uid": "cj-uid",
            "controller": True}]}, "status": {"active": 1}}
    cj["metadata"].update(namespace="ns", uid="cj-uid", creationTimestamp="2026-01-01T09:00:00Z")
    cj["status"] = {"lastScheduleTime": "2026-01-01T09:59:00Z", "active": [
        {"kind": "Job", "name": "swap-old", "namespace": "ns", "uid": "old-uid",
         "apiVersion": "batch/v1"}]}
    await seed(ctl.cronjobs, cj)
    await seed(ctl.jobs, old)
    requeue = await ctl.reconcile("ns/swap")
    # The 10:00 run waits until the running job is gone, and is tried again soon.
    assert client.created == []
    assert requeue is not None and requeue <= 1.0


async def test_unusable_schedule_and_zone_events_quote_as_upstream() -> None:
    client: Any = _DeleteFailsClient()
    ctl = CronJobController(client)
    bad_zone = cronjob("zone", timeZone="Mars/Olympus")
    bad_schedule = cronjob("sched", "every tuesday")
    for cj in (bad_zone, bad_schedule):
        cj["metadata"].update(namespace="ns", uid=cj["metadata"]["name"])
    await seed(ctl.cronjobs, bad_zone, bad_schedule)
    await seed(ctl.jobs)
    await ctl.reconcile("ns/zone")
    await ctl.reconcile("ns/sched")
    sent = [(e["reason"], e["message"]) for e in ctl.recorder._pending]  # noqa: SLF001
    assert sent[0] == ("UnknownTimeZone",
                       'invalid timeZone: "Mars/Olympus": unknown time zone Mars/Olympus')
    assert sent[1][0] == "UnparseableSchedule"
    assert sent[1][1].startswith('unparseable schedule: "every tuesday" : ')

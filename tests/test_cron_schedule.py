"""Missed start times and time zones of CronJob schedules."""

from __future__ import annotations

import datetime as dt

import pytest

from skiff.api.cron import parse_cron
from skiff.controllers import cron_schedule as cs
from skiff.controllers.cronjob import job_name

UTC = dt.UTC


def t(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_most_recent_and_count() -> None:
    every5 = parse_cron("*/5 * * * *")
    missed = cs.most_recent_schedule(every5, UTC, t(2024, 1, 1, 0, 0), t(2024, 1, 1, 0, 17))
    assert missed.most_recent == t(2024, 1, 1, 0, 15)
    assert missed.count == 3
    none = cs.most_recent_schedule(every5, UTC, t(2024, 1, 1, 0, 0), t(2024, 1, 1, 0, 4))
    assert none.most_recent is None and none.count == 0


def test_too_many_missed_still_finds_the_latest() -> None:
    minutely = parse_cron("* * * * *")
    missed = cs.most_recent_schedule(minutely, UTC, t(2024, 1, 1), t(2024, 1, 3, 5, 7, 30))
    assert missed.count > cs.MANY_MISSED
    assert missed.most_recent == t(2024, 1, 3, 5, 7)


def test_time_zone() -> None:
    daily3 = parse_cron("0 3 * * *")
    tokyo = cs.zone("Asia/Tokyo")
    # 03:00 in Tokyo is 18:00 UTC the day before.
    assert cs.next_time(daily3, t(2024, 6, 1, 12, 0), tokyo) == t(2024, 6, 1, 18, 0)
    with pytest.raises(cs.UnknownTimeZone):
        cs.zone("Mars/Olympus")


def test_earliest_time_respects_the_deadline() -> None:
    now = t(2024, 1, 1, 12)
    cj = {"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"},
          "spec": {"startingDeadlineSeconds": 120}, "status": {}}
    assert cs.earliest_time(cj, now) == now - dt.timedelta(seconds=120)
    cj["spec"] = {}
    cj["status"]["lastScheduleTime"] = "2024-01-01T11:00:00Z"
    assert cs.earliest_time(cj, now) == t(2024, 1, 1, 11)


def test_job_name_is_minutes_since_epoch() -> None:
    assert job_name("backup", t(2024, 1, 1, 0, 1)) == f"backup-{1704067260 // 60}"


def test_every_counts_from_the_last_start() -> None:
    every = parse_cron("@every 90s")
    missed = cs.most_recent_schedule(every, UTC, t(2024, 1, 1, 0, 0, 10),
                                     t(2024, 1, 1, 0, 5))
    assert missed.most_recent == t(2024, 1, 1, 0, 4, 40)
    assert missed.count == 3

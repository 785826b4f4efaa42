"""When a CronJob should have started, in its time zone (upstream's cronjob utilities).

The parser in `skiff.api.cron` works on wall-clock fields; this module converts
instants to the CronJob's zone and back, and finds the most recent start time that
was missed, counting how many were (more than 100 is reported to the user).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from skiff.api import meta as m
from skiff.api.cron import Schedule

# Upstream warns when more than this many start times were missed.
MANY_MISSED = 100


class UnknownTimeZone(ValueError):
    """spec.timeZone names no zone in the tz database."""


def zone(name: str | None) -> dt.tzinfo:
    """The tzinfo for spec.timeZone (UTC when unset, as the controller runs in UTC)."""
    if not name:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise UnknownTimeZone(name) from err


def next_time(schedule: Schedule, after: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
    """The first start strictly after `after` (an aware datetime), in UTC."""
    local = after.astimezone(tz)
    nxt = schedule.next_after(local.replace(tzinfo=None))
    if nxt is None:
        return None
    return nxt.replace(tzinfo=tz).astimezone(dt.UTC)


@dataclass(frozen=True)
class Missed:
    """The most recent start time due by now, and how many were due since `earliest`."""

    most_recent: dt.datetime | None
    count: int


def most_recent_schedule(schedule: Schedule, tz: dt.tzinfo, earliest: dt.datetime,
                         now: dt.datetime) -> Missed:
    """Start times in (earliest, now]: the last one and their number.

    Counting stops just past MANY_MISSED, which is all a caller needs to know.
    """
    t = next_time(schedule, earliest, tz)
    last: dt.datetime | None = None
    count = 0
    while t is not None and t <= now:
        if count > MANY_MISSED:
            last = _last_start(schedule, tz, max(earliest, last or earliest), now) or last
            break
        last = t
        count += 1
        t = next_time(schedule, t, tz)
    return Missed(last, count)


_WINDOWS = (dt.timedelta(minutes=2), dt.timedelta(hours=2), dt.timedelta(days=2),
            dt.timedelta(days=62), dt.timedelta(days=800), dt.timedelta(days=366 * 6))


def _last_start(schedule: Schedule, tz: dt.tzinfo, earliest: dt.datetime,
                now: dt.datetime) -> dt.datetime | None:
    """The last start in (earliest, now], looking back in growing windows."""
    for window in _WINDOWS:
        t = next_time(schedule, max(earliest, now - window), tz)
        if t is None or t > now:
            continue
        last = t
        while (t := next_time(schedule, t, tz)) is not None and t <= now:
            last = t
        return last
    return None


def earliest_time(cronjob: dict, now: dt.datetime) -> dt.datetime:
    """Where to start looking for missed runs: the last schedule, or creation,
    but no further back than startingDeadlineSeconds."""
    md = cronjob.get("metadata") or {}
    status = cronjob.get("status") or {}
    spec = cronjob.get("spec") or {}
    earliest = (m.parse_time(status.get("lastScheduleTime") or "")
                or m.parse_time(md.get("creationTimestamp") or "") or now)
    deadline = spec.get("startingDeadlineSeconds")
    if isinstance(deadline, int):
        floor = now - dt.timedelta(seconds=deadline)
        if floor > earliest:
            earliest = floor
    return earliest

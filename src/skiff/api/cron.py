"""Standard five-field cron schedules, as CronJob's `spec.schedule` accepts them.

Validation and the CronJob controller must agree on what a schedule means, so both use
this one parser: minute, hour, day of month, month, day of week; `*`/`?`, lists,
ranges, steps, month and weekday names, the `@hourly`-style macros and `@every 5m`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}

# (name, low, high, symbolic names)
_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)
# A schedule like "0 0 30 2 *" never fires; give up after this many years of search.
_SEARCH_YEARS = 5


class CronError(ValueError):
    """A schedule that does not parse; the message is shown to the user as is."""


def _number(text: str, names: dict[str, int], field: str) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}: invalid {field} value")
    return int(text)


def _parse_field(
    text: str, field: str, low: int, high: int, names: dict[str, int]
) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"invalid step {step_text!r} in {field} field {text!r}")
            step = int(step_text)
        if rng in ("*", "?"):
            start, end = low, high
        elif "-" in rng:
            a, _, b = rng.partition("-")
            start, end = _number(a, names, field), _number(b, names, field)
        else:
            start = _number(rng, names, field)
            end = high if step_text else start
        if start < low or end > high:
            raise CronError(f"{field} value out of range ({low}-{high}): {rng}")
        if start > end:
            raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {rng}")
        out.update(range(start, end + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule: the set of allowed values per field."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    # Classic cron: when both day fields are restricted a day matches if either does.
    days_restricted: bool
    weekdays_restricted: bool

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def next_after(self, after: datetime) -> datetime | None:
        """The first firing time strictly after `after`, in `after`'s own clock.

        Works on wall-clock fields of `after` (pass a datetime already converted to the
        CronJob's time zone). None when the schedule never fires.
        """
        t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = after.year + _SEARCH_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = t.replace(year=year, month=month, day=1, hour=0, minute=0)
            elif not self._day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
            elif t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
            elif t.minute not in self.minutes:
                t = t + timedelta(minutes=1)
            else:
                return t
        return None


@dataclass(frozen=True)
class EverySchedule:
    """`@every <duration>`: fixed intervals (whole seconds, at least one) from a start."""

    delay: timedelta

    def next_after(self, after: datetime) -> datetime | None:
        """`after` plus the interval, its fraction of a second dropped."""
        return after.replace(microsecond=0) + self.delay


Schedule = CronSchedule | EverySchedule

_EVERY = "@every "
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                   "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def _go_duration(text: str) -> float:
    """Seconds in a Go duration (`90s`, `1h30m`, `1.5h`); ValueError if it is not one."""
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0.0
    seconds, pos = 0.0, 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None:
            raise ValueError(f"time: invalid duration {text!r}")
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not body:
        raise ValueError(f"time: invalid duration {text!r}")
    return -seconds if text.startswith("-") else seconds


def _parse_every(text: str) -> EverySchedule:
    try:
        seconds = _go_duration(text[len(_EVERY):])
    except ValueError as err:
        raise CronError(f"failed to parse duration {text}: {err}") from err
    # As the cron library: under a second means one; fractions of a second are dropped.
    return EverySchedule(timedelta(seconds=max(1, int(seconds))))


def parse_cron(schedule: str) -> Schedule:
    """Parse a standard cron schedule; raise CronError saying what is wrong."""
    text = schedule.strip()
    if text.startswith("@"):
        # Descriptors are case-sensitive, as in the cron library Kubernetes uses.
        if text.startswith(_EVERY):
            return _parse_every(text)
        if text not in _MACROS:
            raise CronError(f"unrecognized descriptor: {text}")
        text = _MACROS[text]
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {schedule!r}")
    sets = [
        _parse_field(f, name, low, high, names)
        for f, (name, low, high, names) in zip(fields, _FIELDS, strict=True)
    ]
    return CronSchedule(
        minutes=sets[0],
        hours=sets[1],
        days=sets[2],
        months=sets[3],
        weekdays=sets[4],
        days_restricted=not _is_star(fields[2]),
        weekdays_restricted=not _is_star(fields[4]),
    )


def _is_star(text: str) -> bool:
    """Whether a day field counts as unrestricted for the either-day rule.

    As in the cron library Kubernetes uses, a `*` or `?` part counts unless stepped by
    more than one: `*/2` in day of month restricts it, so `0 0 */2 * 1` fires on odd
    days and on Mondays.
    """
    for part in text.split(","):
        rng, _, step = part.partition("/")
        if rng in ("*", "?") and (not step or int(step) <= 1):
            return True
    return False

"""Ages and durations the way `kubectl get` prints them.

Upstream rounds a duration to at most two units and drops the finer unit as the
duration grows ("90s", "3m2s", "10m", "5h4m", "20h", "2d3h", "30d", "3y45d", "9y"),
so that a column of ages stays narrow and still says what matters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

UNKNOWN = "<unknown>"


def human_duration(seconds: float) -> str:
    """Render a duration in upstream's compact form.

    Slightly negative values (clock skew between components of up to two
    seconds) read as "0s"; anything more negative is "<invalid>".
    """
    whole = int(seconds)  # truncates toward zero, as a Go int conversion does
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        rest = whole % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    days = hours // 24
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{days // 365}y" if rest == 0 else f"{days // 365}y{rest}d"
    return f"{days // 365}y"


def parse_time(value: Any) -> datetime | None:
    """Parse an RFC 3339 timestamp (seconds or microseconds); None when absent or bad.

    Objects reach the printers straight from users, so a malformed timestamp must
    degrade to "<unknown>" rather than fail the whole list.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def elapsed(moment: datetime, now: datetime) -> float:
    """Seconds from `moment` to `now`, treating naive datetimes as UTC."""
    return (_aware(now) - _aware(moment)).total_seconds()


def since(value: Any, now: datetime) -> str:
    """How long ago `value` (a timestamp string) was, or "<unknown>" without one."""
    moment = parse_time(value)
    if moment is None:
        return UNKNOWN
    return human_duration(elapsed(moment, now))


def between(start: Any, end: Any) -> str | None:
    """The duration from one timestamp to another; None when either is missing."""
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None:
        return None
    return human_duration((b - a).total_seconds())


def age(obj: dict[str, Any], now: datetime) -> str:
    """The AGE cell of an object: time since its creationTimestamp."""
    meta = obj.get("metadata")
    return since(meta.get("creationTimestamp") if isinstance(meta, dict) else None, now)

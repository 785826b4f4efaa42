"""The cron schedule parser shared by CronJob validation and its controller."""

from datetime import datetime

import pytest

from skiff.api.cron import CronError, parse_cron


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/15 * * * *", datetime(2024, 1, 1, 10, 7), datetime(2024, 1, 1, 10, 15)),
        ("0 * * * *", datetime(2024, 1, 1, 10, 0), datetime(2024, 1, 1, 11, 0)),
        ("@hourly", datetime(2024, 1, 1, 10, 30), datetime(2024, 1, 1, 11, 0)),
        ("@daily", datetime(2024, 1, 1, 10, 30), datetime(2024, 1, 2, 0, 0)),
        ("@yearly", datetime(2024, 3, 1), datetime(2025, 1, 1)),
        ("30 9 * * mon-fri", datetime(2024, 6, 7, 10, 0), datetime(2024, 6, 10, 9, 30)),
        ("0 0 1 JAN *", datetime(2024, 6, 7), datetime(2025, 1, 1)),
        ("5-10/5 2 * * *", datetime(2024, 1, 1, 2, 5), datetime(2024, 1, 1, 2, 10)),
        # Both day fields restricted: either may match (classic cron).
        ("0 0 13 * 5", datetime(2024, 9, 1), datetime(2024, 9, 6)),
        ("0 0 29 2 *", datetime(2023, 3, 1), datetime(2024, 2, 29)),
        # A stepped star restricts its day field: odd days of month, or Mondays.
        ("0 0 */2 * 1", datetime(2024, 1, 1, 12), datetime(2024, 1, 3)),
        ("0 0 */2 * 1", datetime(2024, 1, 5, 12), datetime(2024, 1, 7)),
        ("0 0 */2 * 1", datetime(2024, 1, 7, 12), datetime(2024, 1, 8)),
        ("0 0 */1 * 1", datetime(2024, 1, 1, 12), datetime(2024, 1, 8)),
        # `@every` counts from the time given, in whole seconds (at least one).
        ("@every 5m", datetime(2024, 1, 1, 10, 7, 3, 500), datetime(2024, 1, 1, 10, 12, 3)),
        ("@every 1h30m", datetime(2024, 1, 1, 10, 7), datetime(2024, 1, 1, 11, 37)),
        ("@every 1.5s", datetime(2024, 1, 1, 10, 7), datetime(2024, 1, 1, 10, 7, 1)),
        ("@every 10ms", datetime(2024, 1, 1, 10, 7), datetime(2024, 1, 1, 10, 7, 1)),
    ],
)
def test_next_after(schedule: str, after: datetime, expected: datetime) -> None:
    assert parse_cron(schedule).next_after(after) == expected


def test_never_firing_schedule_returns_none() -> None:
    assert parse_cron("0 0 30 2 *").next_after(datetime(2024, 1, 1)) is None


@pytest.mark.parametrize(
    "bad",
    ["", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
     "* * * * 7", "*/0 * * * *", "5-1 * * * *", "@often", "a * * * *",
     # Descriptors are case-sensitive; `@every` takes a Go duration.
     "@HOURLY", "@every ", "@every 5", "@every 5 m", "@every five"],
)
def test_rejects(bad: str) -> None:
    with pytest.raises(CronError):
        parse_cron(bad)

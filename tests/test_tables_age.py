"""Ages in upstream's compact form."""

from datetime import UTC, datetime, timedelta

import pytest

from skiff.api.tables import human_duration
from skiff.api.tables.age import between, since

MIN = 60
HOUR = 3600
DAY = 86400
YEAR = 365 * DAY


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "<invalid>"),
        (-1.5, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (3 * MIN + 2, "3m2s"),
        (9 * MIN + 59, "9m59s"),
        (10 * MIN + 30, "10m"),
        (179 * MIN, "179m"),
        (3 * HOUR, "3h"),
        (5 * HOUR + 4 * MIN, "5h4m"),
        (8 * HOUR + 30 * MIN, "8h"),
        (47 * HOUR, "47h"),
        (2 * DAY, "2d"),
        (2 * DAY + 3 * HOUR, "2d3h"),
        (7 * DAY + 23 * HOUR, "7d23h"),
        (8 * DAY + 5 * HOUR, "8d"),
        (729 * DAY, "729d"),
        (2 * YEAR, "2y"),
        (3 * YEAR + 45 * DAY, "3y45d"),
        (8 * YEAR + 100 * DAY, "8y"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


def test_since_and_between() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert since("2024-05-01T11:55:00Z", now) == "5m"
    assert since("2024-05-01T11:59:59.500000Z", now) == "0s"
    assert since(None, now) == "<unknown>"
    assert since("yesterday", now) == "<unknown>"
    # A naive `now` is read as UTC.
    assert since("2024-05-01T11:00:00Z", now.replace(tzinfo=None) + timedelta(0)) == "60m"
    assert between("2024-05-01T11:00:00Z", "2024-05-01T11:00:42Z") == "42s"
    assert between(None, "2024-05-01T11:00:42Z") is None

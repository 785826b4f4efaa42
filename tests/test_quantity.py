"""Resource quantities: parsing, canonical formatting and milli-value helpers."""

from decimal import Decimal

import pytest

from skiff.api.quantity import (
    BINARY_SI,
    DECIMAL_SI,
    canonicalize,
    format_quantity,
    from_milli,
    int_value,
    milli_value,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("1Gi", Decimal(2**30)),
        ("1e3", Decimal(1000)),
        ("0.5", Decimal("0.5")),
        (".5", Decimal("0.5")),
        ("2", Decimal(2)),
        (3, Decimal(3)),
        (0.25, Decimal("0.25")),
        ("1.5k", Decimal(1500)),
        ("128Mi", Decimal(128 * 2**20)),
        ("5n", Decimal("5e-9")),
        ("1E-3", Decimal("0.001")),
        ("-1", Decimal(-1)),
    ],
)
def test_parse(text: str | int | float, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["", "abc", "1Gb", "1.2.3", "1 Gi", "Mi", "1ii", True, None, []])
def test_parse_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_quantity(bad)  # type: ignore[arg-type]


def test_error_message_quotes_upstream_pattern() -> None:
    with pytest.raises(ValueError, match=r"quantities must match the regular expression"):
        parse_quantity("abc")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("1000m", "1"),
        ("0.5", "500m"),
        ("1500", "1500"),
        ("1000", "1k"),
        ("1Gi", "1Gi"),
        ("1024Mi", "1Gi"),
        ("1.5Gi", "1536Mi"),
        ("512", "512"),
        ("0.5Ki", "512"),
        ("1e3", "1e3"),
        ("0", "0"),
        ("100m", "100m"),
    ],
)
def test_canonicalize(text: str, canonical: str) -> None:
    assert canonicalize(text) == canonical


def test_format_rounds_up_below_nano() -> None:
    assert format_quantity(Decimal("1e-10")) == "1n"
    assert format_quantity(Decimal(2**20), BINARY_SI) == "1Mi"
    assert format_quantity(Decimal(2**20), DECIMAL_SI) == "1048576"


def test_milli_helpers() -> None:
    assert milli_value("100m") == 100
    assert milli_value("1") == 1000
    assert milli_value("0.0001") == 1  # rounds up, never down
    assert int_value("1Ki") == 1024
    assert int_value("1500m") == 2
    assert from_milli(1500) == "1500m"
    assert from_milli(2000) == "2"

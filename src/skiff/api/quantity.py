"""Kubernetes resource quantities (`100m`, `1Gi`, `1e3`, `0.5`).

Quantities are exact decimals: the scheduler sums requests and the kubelet compares
them against capacity, so floating point rounding would let a node be overcommitted
by a hair. Everything here works on `Decimal`; strings only appear at the edges.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation, localcontext

BINARY_SI = "BinarySI"
DECIMAL_SI = "DecimalSI"
DECIMAL_EXPONENT = "DecimalExponent"

# The pattern upstream quotes in its error message; kept identical so users see the
# same hint they would from a real cluster.
QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
QUANTITY_ERROR = f"quantities must match the regular expression '{QUANTITY_PATTERN}'"

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL.items()}
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_EXPONENT = re.compile(r"[eE][+-]?[0-9]+")
_NANO = Decimal("1e-9")


def _split(s: str) -> tuple[str, str]:
    m = _NUMBER.match(s)
    if m is None:
        raise ValueError(QUANTITY_ERROR)
    return m.group(0), s[m.end():]


def _suffix_scale(suffix: str) -> tuple[Decimal, str]:
    if suffix in _BINARY:
        return Decimal(2) ** _BINARY[suffix], BINARY_SI
    if suffix in _DECIMAL:
        return Decimal(10) ** _DECIMAL[suffix], DECIMAL_SI
    if _EXPONENT.fullmatch(suffix):
        return Decimal(10) ** int(suffix[1:]), DECIMAL_EXPONENT
    raise ValueError(QUANTITY_ERROR)


def parse_with_format(s: str | int | float | Decimal) -> tuple[Decimal, str]:
    """Parse a quantity and report the notation it was written in.

    The notation matters because upstream re-serializes a quantity in the family it was
    given in (`1Gi` stays binary, `1e3` stays exponent), and clients diff on that.
    """
    if isinstance(s, bool):
        raise ValueError(QUANTITY_ERROR)
    if isinstance(s, int):
        return Decimal(s), DECIMAL_SI
    if isinstance(s, float):
        if not math.isfinite(s):
            raise ValueError(QUANTITY_ERROR)
        return Decimal(repr(s)), DECIMAL_SI
    if isinstance(s, Decimal):
        return s, DECIMAL_SI
    if not isinstance(s, str):
        raise ValueError(QUANTITY_ERROR)
    s = s.strip()
    if not s:
        raise ValueError("quantities must be non-empty")
    number, suffix = _split(s)
    scale, fmt = _suffix_scale(suffix)
    try:
        with localcontext() as ctx:
            ctx.prec = 80
            value = Decimal(number) * scale
    except InvalidOperation as e:
        raise ValueError(QUANTITY_ERROR) from e
    return value, fmt


def parse_quantity(s: str | int | float | Decimal) -> Decimal:
    """Parse `s` into its exact value; raise ValueError with upstream's hint when malformed."""
    return parse_with_format(s)[0]


def is_quantity(s: object) -> bool:
    """Whether `s` parses as a quantity (for validators that only need a yes/no)."""
    try:
        parse_quantity(s)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


def _round_up_to_nano(value: Decimal) -> Decimal:
    # Upstream keeps at most nano precision and rounds away from zero-ward loss upward,
    # so a request never silently shrinks.
    with localcontext() as ctx:
        ctx.prec = 80
        return (value / _NANO).to_integral_value(rounding=ROUND_CEILING) * _NANO


def _plain(d: Decimal) -> str:
    text = format(d.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _format_decimal(value: Decimal, exponent_style: bool) -> str:
    if value == 0:
        return "0"
    with localcontext() as ctx:
        ctx.prec = 80
        for exp in range(18, -10, -3):
            mantissa = value / (Decimal(10) ** exp)
            if mantissa == mantissa.to_integral_value():
                if exponent_style:
                    return _plain(mantissa) if exp == 0 else f"{_plain(mantissa)}e{exp}"
                return f"{_plain(mantissa)}{_DECIMAL_BY_EXP[exp]}"
    return _plain(value)


def format_quantity(value: Decimal | int, fmt: str = DECIMAL_SI) -> str:
    """Render `value` in upstream's canonical form for notation `fmt`.

    Canonical means the largest suffix that keeps the mantissa an integer, so that
    `1000m`, `1` and `1.0` all print as `1` and comparisons of stored objects are stable.
    """
    value = _round_up_to_nano(Decimal(value))
    if fmt == BINARY_SI and (value <= -1024 or value >= 1024) and value == int(value):
        n = int(value)
        for suffix, bits in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
            if n % (1 << bits) == 0:
                return f"{n >> bits}{suffix}"
        return str(n)
    return _format_decimal(value, fmt == DECIMAL_EXPONENT)


def canonicalize(s: str | int | float) -> str:
    """The canonical text of a quantity as upstream would store it."""
    value, fmt = parse_with_format(s)
    return format_quantity(value, fmt)


def milli_value(s: str | int | float | Decimal) -> int:
    """The value in thousandths, rounded up (how CPU is accounted: `0.1` → 100)."""
    with localcontext() as ctx:
        ctx.prec = 80
        return int((parse_quantity(s) * 1000).to_integral_value(rounding=ROUND_CEILING))


def int_value(s: str | int | float | Decimal) -> int:
    """The value rounded up to an integer (how memory and counts are accounted)."""
    return int(parse_quantity(s).to_integral_value(rounding=ROUND_CEILING))


def from_milli(milli: int) -> str:
    """A canonical quantity for `milli` thousandths (e.g. 1500 → `1500m`, 2000 → `2`)."""
    return format_quantity(Decimal(milli) / 1000, DECIMAL_SI)

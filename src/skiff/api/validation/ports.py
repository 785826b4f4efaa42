"""Port numbers and IANA service names (named ports), as pods and services use them."""

from __future__ import annotations

import re
from typing import Any

from skiff.api.validation import field
from skiff.api.validation.field import Cause

_SVC_CHARS = re.compile(r"[-a-z0-9]+")
_HAS_LETTER = re.compile(r"[a-z]")


def iana_svc_name(value: str) -> list[str]:
    """Errors for a named port (IANA service name syntax, RFC 6335)."""
    out = []
    if len(value) > 15:
        out.append("must be no more than 15 characters")
    if not _SVC_CHARS.fullmatch(value):
        out.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        out.append("must not contain consecutive hyphens")
    if not _HAS_LETTER.search(value):
        out.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        out.append("must not begin or end with a hyphen")
    return out


def port_number(value: int, path: str) -> list[Cause]:
    """A port that must be 1–65535."""
    if not 1 <= value <= 65535:
        return [field.invalid(path, value, "must be between 1 and 65535, inclusive")]
    return []


def validate_port_or_name(value: Any, path: str) -> list[Cause]:
    """An IntOrString port: a number in range or a valid port name."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return [field.type_invalid(path, value, "integer or string")]
    if isinstance(value, int):
        return port_number(value, path)
    if value.isdigit():
        return port_number(int(value), path)
    return [field.invalid(path, value, msg) for msg in iana_svc_name(value)]

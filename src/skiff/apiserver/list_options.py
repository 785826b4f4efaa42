"""Query parameters of list and watch requests, and continue tokens."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson
from multidict import MultiMapping

from skiff.api.errors import StatusError, bad_request


@dataclass
class ListOptions:
    """What a list or watch asked for."""

    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    watch: bool = False
    allow_bookmarks: bool = False
    timeout_seconds: int = 0
    send_initial_events: bool | None = None


_INT64_MAX = 2**63 - 1


def _int(query: MultiMapping[str], name: str) -> int:
    raw = query.get(name, "")
    if raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"invalid value for {name}: {raw!r}: must be an integer") from None
    if value < 0:
        raise bad_request(f"invalid value for {name}: {value}: must be non-negative")
    if value > _INT64_MAX:
        # Upstream's options are int64s; a larger number does not parse there either.
        raise bad_request(f"invalid value for {name}: {raw!r}: value out of range")
    return value


def _bool(query: MultiMapping[str], name: str) -> bool:
    return query.get(name, "").lower() in ("true", "1")


def parse_list_options(query: MultiMapping[str]) -> ListOptions:
    """Read list/watch options from a request's query, rejecting malformed values."""
    opts = ListOptions(
        label_selector=query.get("labelSelector", ""),
        field_selector=query.get("fieldSelector", ""),
        limit=_int(query, "limit"),
        continue_token=query.get("continue", ""),
        resource_version=query.get("resourceVersion", ""),
        resource_version_match=query.get("resourceVersionMatch", ""),
        watch=_bool(query, "watch"),
        allow_bookmarks=_bool(query, "allowWatchBookmarks"),
        timeout_seconds=_int(query, "timeoutSeconds"),
    )
    if "sendInitialEvents" in query:
        opts.send_initial_events = _bool(query, "sendInitialEvents")
    rv = opts.resource_version
    if rv and not rv.isdigit():
        raise StatusError(
            400, "BadRequest", f'invalid resource version "{rv}": must be a non-negative integer'
        )
    match = opts.resource_version_match
    if match and match not in ("Exact", "NotOlderThan"):
        raise StatusError(
            422,
            "Invalid",
            f'resourceVersionMatch: Unsupported value: "{match}": '
            'supported values: "Exact", "NotOlderThan"',
        )
    if match and not rv:
        raise StatusError(
            422, "Invalid", "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden "
            "unless resourceVersion is provided"
        )
    if match == "Exact" and rv == "0":
        raise StatusError(
            422, "Invalid", "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is "
            "forbidden for resourceVersion \"0\""
        )
    if opts.continue_token and rv and rv != "0" and not opts.watch:
        raise StatusError(
            422, "Invalid", "resourceVersion: Forbidden: specifying resource version is not "
            "allowed when using continue"
        )
    return opts


def encode_continue(revision: int, last_key: str) -> str:
    """An opaque token for the next page: the list's revision and where it stopped."""
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str, prefix: str) -> tuple[int, str]:
    """Validate a continue token for a list under `prefix`; returns (revision, last key).

    Revision -1 (from a token handed out with a 410 for a compacted one) means:
    continue at the latest revision, accepting an inconsistent list."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data: Any = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        rev = data["rv"]
        start = data["start"]
        ok = (
            data.get("v") == "meta.k8s.io/v1"
            and isinstance(rev, int)
            and (rev > 0 or rev == -1)
            and isinstance(start, str)
            and start.startswith(prefix)
            and ".." not in start
        )
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        ok = False
    if not ok:
        raise bad_request("continue key is not valid: incorrect encoded start resourceVersion")
    return rev, start

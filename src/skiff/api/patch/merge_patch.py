"""JSON merge patch (RFC 7386), the `application/merge-patch+json` patch type.

kubectl sends it for `kubectl patch --type=merge`, for `kubectl scale`, and for
client-side apply of kinds it has no Go types for (CRDs).
"""

from __future__ import annotations

from typing import Any

from skiff.api.errors import StatusError, bad_request
from skiff.api.patch._values import clone

# Upstream's json-patch library answers a patch that is neither an object nor an
# array with this text, which the API server returns as a 400.
BAD_MERGE_PATCH = "Invalid JSON Patch"


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch to `doc` and return the result.

    Objects merge key by key, `null` removes a key, and anything else (arrays
    included) replaces the target wholesale. Neither input is modified and the
    result shares no containers with them, so callers may mutate it freely.

    A `null` or scalar patch is rejected with 400, as upstream does: such a body
    is almost always a client bug rather than a request to replace the object.
    """
    if isinstance(patch, list):
        return clone(patch)
    if not isinstance(patch, dict):
        raise _bad_patch()
    if not isinstance(doc, dict):
        return _merge_into({}, patch)
    return _merge_into(clone(doc), patch)


def _bad_patch() -> StatusError:
    return bad_request(BAD_MERGE_PATCH)


def _merge_into(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    # `target` is already a private copy, so it is updated in place.
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            base = current if isinstance(current, dict) else {}
            target[key] = _merge_into(base, value)
        else:
            target[key] = clone(value)
    return target

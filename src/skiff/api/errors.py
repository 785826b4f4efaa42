"""Kubernetes Status errors.

Every failure the API reports is a `StatusError`: it carries the HTTP code, the
machine-readable reason and, for invalid objects, the field causes, and renders as
the `Status` object kubectl and the client libraries parse.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# Cause reasons, as upstream's field.ErrorType renders them.
FIELD_REQUIRED = "FieldValueRequired"
FIELD_INVALID = "FieldValueInvalid"
FIELD_NOT_SUPPORTED = "FieldValueNotSupported"
FIELD_DUPLICATE = "FieldValueDuplicate"
FIELD_TOO_LONG = "FieldValueTooLong"
FIELD_TOO_MANY = "FieldValueTooMany"
FIELD_FORBIDDEN = "FieldValueForbidden"
FIELD_TYPE_INVALID = "FieldValueTypeInvalid"
FIELD_NOT_FOUND = "FieldValueNotFound"
FIELD_UNKNOWN = "FieldValueUnknown"


def cause(reason: str, field: str, message: str) -> dict[str, str]:
    """Build one entry of `details.causes`."""
    return {"reason": reason, "message": message, "field": field}


def cause_text(c: dict[str, str]) -> str:
    """Render a cause the way upstream's aggregate error message shows it."""
    return f"{c['field']}: {c['message']}" if c.get("field") else c["message"]


class StatusError(Exception):
    """An API failure that renders as a Kubernetes `Status` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        # ListMeta of the Status: an expired continue token carries its successor.
        self.metadata = metadata

    def to_status(self) -> dict[str, Any]:
        """The `Status` object for this error."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": dict(self.metadata or {}),
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            # As upstream's omitempty: a Status built without a reason has none.
            del status["reason"]
        if self.details:
            status["details"] = self.details
        return status


def _details(group: str, kind: str, name: str | None) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": kind}
    if name:
        d["name"] = name
    if group:
        d["group"] = group
    return d


def _qualified(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> StatusError:
    """404 for a named object that does not exist."""
    return StatusError(
        404,
        "NotFound",
        f'{_qualified(group, plural)} "{name}" not found',
        _details(group, plural, name),
    )


def already_exists(group: str, plural: str, name: str) -> StatusError:
    """409 for a create whose name is taken."""
    return StatusError(
        409,
        "AlreadyExists",
        f'{_qualified(group, plural)} "{name}" already exists',
        _details(group, plural, name),
    )


def conflict(group: str, plural: str, name: str, why: str) -> StatusError:
    """409 for a write that lost a compare-and-swap race or a field conflict."""
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(group, plural)} "{name}": {why}',
        _details(group, plural, name),
    )


STALE_OBJECT = ("the object has been modified; please apply your changes to the latest version "
                "and try again")


def invalid(group: str, kind: str, name: str, causes: list[dict[str, str]]) -> StatusError:
    """422 for an object that fails validation, with one cause per bad field."""
    label = f"{kind}.{group}" if group else kind
    text = ", ".join(cause_text(c) for c in causes)
    if len(causes) > 1:
        text = f"[{text}]"
    details = _details(group, kind, name)
    details["causes"] = causes
    return StatusError(422, "Invalid", f'{label} "{name}" is invalid: {text}', details)


def bad_request(message: str) -> StatusError:
    """400 for a request that cannot be understood."""
    return StatusError(400, "BadRequest", message)


def method_not_allowed(message: str) -> StatusError:
    """405 for a verb a resource does not serve."""
    return StatusError(405, "MethodNotAllowed", message)


def unsupported_media_type(accepted: Iterable[str]) -> StatusError:
    """415 for a body in a content type the endpoint does not accept.

    Upstream names the media types the endpoint does accept, not the rejected one.
    """
    return StatusError(
        415, "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def not_acceptable(accept: str) -> StatusError:
    """406 for an Accept header the server cannot satisfy."""
    return StatusError(406, "NotAcceptable",
                       f"only the following media types are accepted: {accept}")


def gone(message: str) -> StatusError:
    """410 for a resourceVersion that compaction has removed."""
    return StatusError(410, "Expired", message)


def too_large(message: str = "Request entity too large: limit is 3145728") -> StatusError:
    """413 for a body over the request size limit."""
    return StatusError(413, "RequestEntityTooLarge", message)


def forbidden(message: str) -> StatusError:
    """403 for an operation the caller may not perform."""
    return StatusError(403, "Forbidden", message)


def unauthorized() -> StatusError:
    """401 for a request without valid credentials."""
    return StatusError(401, "Unauthorized", "Unauthorized")


def internal(message: str) -> StatusError:
    """500 for a failure that is the server's fault (always a bug)."""
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def timeout(message: str) -> StatusError:
    """504 for an operation that did not finish in time."""
    return StatusError(504, "Timeout", message)


def service_unavailable(message: str) -> StatusError:
    """503 for a server that cannot serve the request right now."""
    return StatusError(503, "ServiceUnavailable", message)

"""Server-side field validation: unknown and duplicate fields (Strict, Warn,
Ignore) and values of the wrong JSON type."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from skiff.api.errors import StatusError, bad_request
from skiff.api.resources import ResourceType
from skiff.api.schema.fields import duplicate_fields, field_problems, prune_unknown
from skiff.apiserver.codec import JSON, media_type
from skiff.apiserver.resource_store import WriteContext

if TYPE_CHECKING:
    from skiff.apiserver.schemas import SchemaCatalog

STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"


class FieldChecker:
    """Applies a request's fieldValidation mode to an object before it is stored."""

    def __init__(self, schemas: SchemaCatalog) -> None:
        self.schemas = schemas

    @staticmethod
    def mode(request: web.Request) -> str:
        """The request's fieldValidation (upstream's default is Warn)."""
        value = request.query.get("fieldValidation", "") or WARN
        if value not in (STRICT, WARN, IGNORE):
            raise bad_request(
                f'fieldValidation: Unsupported value: "{value}": supported values: '
                '"Ignore", "Strict", "Warn"'
            )
        return value

    def check(self, rt: ResourceType, obj: dict[str, Any], mode: str, ctx: WriteContext,
              raw: bytes | None = None, content_type: str | None = JSON,
              stored: dict[str, Any] | None = None) -> None:
        """Reject, warn about or drop unknown fields; reject wrongly typed values.

        `stored` is the object an update replaces (parts sent back unchanged are not
        checked again); custom resources ignore it, as their schema may have changed.
        """
        node = self.schemas.node(rt)
        if node is None:
            return
        # Custom resources report wrong types as 422 field errors from schema
        # validation, as upstream does; built-ins fail decoding with a 400.
        errors, unknown = field_problems(obj, node, types=not rt.crd,
                                         stored=None if rt.crd else stored)
        if errors:
            detail = "; ".join(f"{c['field']}: {c['message']}" for c in errors[:10])
            raise bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {detail}'
            )
        problems: list[str] = []
        if raw is not None and mode != IGNORE and media_type(content_type) in ("", JSON):
            problems += [f'duplicate field "{d}"' for d in duplicate_fields(raw, obj)]
        if mode == IGNORE:
            if unknown:
                prune_unknown(obj, node)
            return
        problems += [f'unknown field "{p}"' for p in unknown]
        if not problems:
            return
        if mode == STRICT:
            raise StatusError(
                400,
                "BadRequest",
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {', '.join(problems)}",
            )
        ctx.warnings.extend(problems)
        prune_unknown(obj, node)

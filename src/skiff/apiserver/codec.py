"""Request body decoding (JSON, YAML, Kubernetes protobuf) and response encoding."""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from skiff.api.errors import StatusError, bad_request, too_large, unsupported_media_type

MAX_BODY = 3 * 1024 * 1024

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"

BODY_TYPES = (JSON, YAML, PROTOBUF)
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header (no parameters), lower-cased."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


class _NoAliasLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses aliases, so a small document cannot expand
    into a huge object (the "billion laughs" attack)."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases are not supported", event.start_mark
            )
        return super().compose_node(parent, index)


def load_yaml(raw: bytes) -> Any:
    """Parse one YAML document; a 400 StatusError when it is malformed."""
    try:
        docs = list(yaml.load_all(raw, Loader=_NoAliasLoader))  # noqa: S506 - safe subclass
    except yaml.YAMLError as exc:
        raise bad_request(f"error converting YAML to JSON: {exc}".replace("\n", " ")) from None
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"error converting YAML to JSON: {exc}") from None
    if len(docs) != 1:
        raise bad_request("the request body must hold exactly one YAML document")
    return _json_safe(docs[0])


_INT_MIN = -(2**63)
_UINT_MAX = 2**64 - 1


def _json_safe(value: Any, depth: int = 0) -> Any:
    # YAML has types JSON lacks (dates, non-string keys, sets); make the result
    # exactly what JSON could have expressed.
    if depth > 200:
        raise bad_request("the request body is nested too deeply")
    if isinstance(value, dict):
        return {_unicode_safe(str(k) if not isinstance(k, bool) else str(k).lower()):
                _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v, depth + 1) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise bad_request("the request body holds a number JSON cannot represent")
    if isinstance(value, str):
        return _unicode_safe(value)
    if isinstance(value, int) and not isinstance(value, bool) and not (
            _INT_MIN <= value <= _UINT_MAX):
        # As orjson.loads reads a JSON body: an integer no 64-bit type holds is a double.
        try:
            return float(value)
        except OverflowError:
            raise bad_request("the request body holds a number JSON cannot represent") from None
    if value is None or isinstance(value, int | float | bool):
        return value
    return str(value)


def _unicode_safe(text: str) -> str:
    # YAML's "\ud800" escapes yield surrogates, which no UTF-8 encoder takes. Pairs
    # become the character they encode; a lone one becomes U+FFFD, as Go's decoder does.
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def load_json(raw: bytes) -> Any:
    """Parse JSON; a 400 StatusError when it is malformed."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"error decoding JSON: {exc}") from None


def check_size(raw: bytes) -> None:
    """Bodies over 3 MiB are refused, as upstream does."""
    if len(raw) > MAX_BODY:
        raise too_large()


def decode_body(raw: bytes, content_type: str | None, expected_kind: str | None = None) -> Any:
    """Decode a create/update body in any supported media type."""
    check_size(raw)
    mt = media_type(content_type)
    if mt in ("", JSON, "*/*"):
        return load_json(raw)
    if mt in (YAML, "application/x-yaml", "text/yaml"):
        return load_yaml(raw)
    if mt == PROTOBUF:
        from skiff.api.protobuf import decode_k8s_protobuf

        return decode_k8s_protobuf(raw, expected_kind)
    # Upstream falls back to JSON only when the header is absent; any other type
    # is refused with the list of the body formats built-in kinds accept.
    raise unsupported_media_type((JSON, YAML, PROTOBUF))


def decode_patch(raw: bytes, content_type: str | None) -> tuple[str, Any]:
    """Decode a PATCH body; returns (patch media type, parsed patch)."""
    check_size(raw)
    mt = media_type(content_type)
    if mt not in PATCH_TYPES:
        raise StatusError(
            415,
            "UnsupportedMediaType",
            f'the body of the request was in an unknown format - accepted media types include: '
            f'{", ".join(PATCH_TYPES)}',
        )
    if mt == APPLY_PATCH:
        return mt, load_yaml(raw)
    return mt, load_json(raw)


def dumps(obj: Any) -> bytes:
    """Encode a response body."""
    return orjson.dumps(obj)

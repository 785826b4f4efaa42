"""The `application/vnd.kubernetes.protobuf` request body: magic, envelope, object.

kubectl's typed commands (`create deployment`, `auth can-i`, ...) send this instead of
JSON. The body is the 4-byte magic `k8s\\x00` followed by a runtime.Unknown message
whose TypeMeta names the kind and whose raw bytes are the object's own message.
"""

from __future__ import annotations

from typing import Any

from skiff.api.errors import StatusError, bad_request
from skiff.api.protobuf.decode import decode_message
from skiff.api.protobuf.types import KINDS
from skiff.api.protobuf.wire import LEN, ProtoError, iter_fields

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


def _strings(buf: bytes, pos: int, end: int, wanted: tuple[int, ...]) -> dict[int, str]:
    found: dict[int, str] = {}
    for number, wt, a, b in iter_fields(buf, pos, end):
        if number in wanted:
            if wt != LEN:
                raise ProtoError(f"envelope field {number} has wire type {wt}")
            found[number] = buf[a:b].decode("utf-8", "replace")
    return found


def _envelope(body: bytes) -> tuple[str, str, str, tuple[int, int]]:
    api_version = kind = encoding = ""
    raw = (len(body), len(body))
    for number, wt, a, b in iter_fields(body, len(MAGIC), len(body)):
        if number in (1, 2, 3) and wt != LEN:
            raise ProtoError(f"envelope field {number} has wire type {wt}")
        if number == 1:
            meta = _strings(body, a, b, (1, 2))
            api_version = meta.get(1, api_version)
            kind = meta.get(2, kind)
        elif number == 2:
            raw = (a, b)
        elif number == 3:
            encoding = body[a:b].decode("utf-8", "replace")
    return api_version, kind, encoding, raw


def decode_k8s_protobuf(body: bytes, expected_kind: str | None = None) -> dict[str, Any]:
    """Decode a Kubernetes protobuf body into the object's JSON form.

    The result carries `apiVersion` and `kind` from the envelope (a missing kind falls
    back to `expected_kind`), so callers can treat it exactly like a parsed JSON body.
    Malformed bytes raise a 400 StatusError; a kind skiff has no table for raises 415,
    telling the client to send JSON instead.
    """
    if not body.startswith(MAGIC):
        raise bad_request(
            "protobuf body does not start with the Kubernetes magic prefix 'k8s\\x00'"
        )
    try:
        api_version, kind, encoding, (start, end) = _envelope(body)
    except ProtoError as e:
        raise bad_request(f"malformed protobuf envelope: {e}") from None
    if encoding:
        raise StatusError(
            415, "UnsupportedMediaType", f"protobuf content encoding {encoding!r} is not supported"
        )
    kind = kind or expected_kind or ""
    if not api_version or not kind:
        raise bad_request("protobuf envelope does not name the object's apiVersion and kind")
    if expected_kind and kind != expected_kind:
        raise bad_request(
            f"the body holds a {kind} but this endpoint expects a {expected_kind}"
        )
    message = KINDS.get(f"{api_version}/{kind}")
    if message is None:
        raise StatusError(
            415,
            "UnsupportedMediaType",
            f"cannot decode {kind} ({api_version}) from protobuf; send it as application/json",
        )
    try:
        obj = decode_message(message, body, start, end)
    except ProtoError as e:
        raise bad_request(f"malformed protobuf {kind}: {e}") from None
    except RecursionError:
        raise bad_request(f"malformed protobuf {kind}: nesting too deep") from None
    return {"apiVersion": api_version, "kind": kind, **obj}

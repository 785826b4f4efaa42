"""Compact JSON Web Signatures with ES256 (RFC 7515 / RFC 7518), the form of a JWT.

Only what service account tokens need: sign a claims object with the cluster's P-256
key, and verify a token against that key. Verification accepts ES256 alone, so a
token cannot pick a weaker algorithm ("none", or HMAC keyed with the public key).
The `cryptography` package does the elliptic-curve work; this module only frames it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "ES256"
_COORDINATE_BYTES = 32  # P-256: r and s are 32 bytes each in a JWS signature


class InvalidToken(Exception):
    """The text is not a well-formed ES256 JWS, or its signature does not verify."""


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE writes every part."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("a part is not base64url") from None


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The `kid` of a key: base64url SHA-256 of its DER SubjectPublicKeyInfo, as upstream."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url(hashlib.sha256(der).digest())


def sign(claims: dict[str, Any], key: ec.EllipticCurvePrivateKey, kid: str) -> str:
    """The compact JWS of `claims` signed with `key`."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    header = {"alg": ALGORITHM, "kid": kid}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")
    return signing_input + "." + b64url(raw)


def looks_like_jws(token: str) -> bool:
    """Whether `token` has the three dot-separated parts of a compact JWS."""
    return token.count(".") == 2


def verify(token: str, public_key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """The claims of `token` once its ES256 signature verifies; raises InvalidToken."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("a JWS has three parts")
    try:
        header = json.loads(_unb64url(parts[0]))
    except ValueError:
        raise InvalidToken("the header is not JSON") from None
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        raise InvalidToken(f"only {ALGORITHM} is accepted")
    raw = _unb64url(parts[2])
    if len(raw) != 2 * _COORDINATE_BYTES:
        raise InvalidToken("the signature has the wrong length")
    der = encode_dss_signature(int.from_bytes(raw[:_COORDINATE_BYTES], "big"),
                               int.from_bytes(raw[_COORDINATE_BYTES:], "big"))
    try:
        public_key.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise InvalidToken("the signature does not verify") from None
    try:
        claims = json.loads(_unb64url(parts[1]))
    except ValueError:
        raise InvalidToken("the payload is not JSON") from None
    if not isinstance(claims, dict):
        raise InvalidToken("the payload is not a JSON object")
    return claims

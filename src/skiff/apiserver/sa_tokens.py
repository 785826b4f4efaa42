"""Service account tokens: the claims a bound token carries, signing them, and
checking a presented token back into a user.

Tokens are JWTs shaped as upstream's bound service account tokens: `iss`, `sub`
(`system:serviceaccount:NS:NAME`), `aud`, `exp`, `iat`, `nbf`, `jti` and the private
`kubernetes.io` claim naming the namespace, the service account and, for a token bound
to a pod, the pod (and the node it runs on). A token stays valid only while the
objects it names exist with the same uids, so deleting a pod revokes its tokens.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skiff.api import meta as m
from skiff.apiserver import jws

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

Obj = dict[str, Any]
# (plural, namespace, name) → the stored object or None; core/v1 kinds only.
Lookup = Callable[[str, str, str], Obj | None]

# kubeadm's --service-account-issuer; --api-audiences defaults to the issuer.
ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_AUDIENCES = (ISSUER,)
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 1 << 32
# Upstream's JWT validator tolerates this much clock skew on exp and nbf.
LEEWAY_SECONDS = 60
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
# Keys of the user's extra information, as upstream's authenticator sets them.
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"

_VERIFIED_CACHE_SIZE = 4096


def username(namespace: str, name: str) -> str:
    """The user name of a service account."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def groups(namespace: str) -> tuple[str, ...]:
    """The groups every service account of `namespace` belongs to."""
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}",
            "system:authenticated")


def _ref(obj: Obj) -> Obj:
    md = obj.get("metadata") or {}
    return {"name": md.get("name", ""), "uid": md.get("uid", "")}


def build_claims(sa: Obj, audiences: list[str], expiration_seconds: int, *,
                 pod: Obj | None = None, node: Obj | None = None, secret: Obj | None = None,
                 now: int | None = None) -> Obj:
    """The claims of a token for `sa`, optionally bound to a pod (on `node`) or a secret."""
    issued = int(time.time()) if now is None else now
    md = sa.get("metadata") or {}
    namespace = md.get("namespace", "")
    private: Obj = {"namespace": namespace, "serviceaccount": _ref(sa)}
    if pod is not None:
        private["pod"] = _ref(pod)
        if node is not None:
            private["node"] = _ref(node)
    if secret is not None:
        private["secret"] = _ref(secret)
    return {
        "aud": list(audiences),
        "exp": issued + expiration_seconds,
        "iat": issued,
        "iss": ISSUER,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": private,
        "nbf": issued,
        "sub": username(namespace, md.get("name", "")),
    }


@dataclass(frozen=True)
class Identity:
    """The user a service account token authenticates as."""

    name: str
    groups: tuple[str, ...]
    uid: str
    extra: dict[str, list[str]] = field(compare=False)
    audiences: tuple[str, ...] = ()


class TokenSigner:
    """Signs and verifies tokens with the cluster's service account key.

    The key is read on first use, so a start that serves no token pays nothing for
    it. Without a key file (a server with no PKI) a key lives in memory only.
    """

    def __init__(self, key_path: Path | None) -> None:
        self._path = key_path
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._public: ec.EllipticCurvePublicKey | None = None
        self._kid = ""

    def _load(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        if self._path is not None and self._path.exists():
            key = serialization.load_pem_private_key(self._path.read_bytes(), None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{self._path.name} is not an elliptic-curve key")
        else:
            key = ec.generate_private_key(ec.SECP256R1())
        self._key = key
        self._public = key.public_key()
        self._kid = jws.key_id(self._public)

    @property
    def key_id(self) -> str:
        """The `kid` tokens carry in their header."""
        if self._key is None:
            self._load()
        return self._kid

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The key that verifies tokens."""
        if self._public is None:
            self._load()
        assert self._public is not None
        return self._public

    def sign(self, claims: Obj) -> str:
        """The JWT of `claims`."""
        if self._key is None:
            self._load()
        assert self._key is not None
        return jws.sign(claims, self._key, self._kid)

    def verify(self, token: str) -> Obj:
        """The claims of a token this key signed; raises jws.InvalidToken."""
        return jws.verify(token, self.public_key())


class TokenAuthenticator:
    """Turns a presented service account token into the user it names, or None.

    Signatures are verified once per token (a bounded cache keeps the claims of
    recent tokens); expiry, audience and the bound objects are checked on every
    request, against the store, so a deleted pod's token stops working at once.
    """

    def __init__(self, signer: TokenSigner, lookup: Lookup,
                 audiences: tuple[str, ...] = DEFAULT_AUDIENCES) -> None:
        self.signer = signer
        self.lookup = lookup
        self.audiences = audiences
        self._verified: OrderedDict[str, Obj] = OrderedDict()

    def _claims(self, token: str) -> Obj | None:
        claims = self._verified.get(token)
        if claims is not None:
            self._verified.move_to_end(token)
            return claims
        try:
            claims = self.signer.verify(token)
        except jws.InvalidToken:
            return None
        self._verified[token] = claims
        if len(self._verified) > _VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def authenticate(self, token: str, now: float | None = None,
                     audiences: tuple[str, ...] | None = None) -> Identity | None:
        """Who a valid token names; None for any other token.

        `audiences` (default: the API server's) are those the token must be meant for
        at least one of; the identity lists the ones it matched.
        """
        if not jws.looks_like_jws(token):
            return None
        claims = self._claims(token)
        if claims is None or claims.get("iss") != ISSUER:
            return None
        t = time.time() if now is None else now
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if not isinstance(exp, int) or t > exp + LEEWAY_SECONDS:
            return None
        if isinstance(nbf, int) and t < nbf - LEEWAY_SECONDS:
            return None
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        matched = [a for a in (audiences or self.audiences) if a in auds]
        if not matched:
            return None
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict):
            return None
        namespace = private.get("namespace")
        sa_ref = private.get("serviceaccount") or {}
        if not isinstance(namespace, str) or not isinstance(sa_ref, dict):
            return None
        sa = self.lookup("serviceaccounts", namespace, str(sa_ref.get("name", "")))
        if sa is None or not _same(sa, sa_ref):
            return None
        extra: Obj = {}
        if claims.get("jti"):
            extra[EXTRA_CREDENTIAL_ID] = [f"JTI={claims['jti']}"]
        pod_ref = private.get("pod")
        if isinstance(pod_ref, dict):
            pod = self.lookup("pods", namespace, str(pod_ref.get("name", "")))
            if pod is None or not _same(pod, pod_ref) or _deleted_before(pod, t):
                return None
            extra[EXTRA_POD_NAME] = [pod_ref.get("name", "")]
            extra[EXTRA_POD_UID] = [pod_ref.get("uid", "")]
        secret_ref = private.get("secret")
        if isinstance(secret_ref, dict):
            secret = self.lookup("secrets", namespace, str(secret_ref.get("name", "")))
            if secret is None or not _same(secret, secret_ref):
                return None
        node_ref = private.get("node")
        if isinstance(node_ref, dict) and not isinstance(pod_ref, dict):
            # Bound to the node itself (a pod-bound token names its node for information).
            node = self.lookup("nodes", "", str(node_ref.get("name", "")))
            if node is None or not _same(node, node_ref):
                return None
        if isinstance(node_ref, dict):
            extra[EXTRA_NODE_NAME] = [node_ref.get("name", "")]
            extra[EXTRA_NODE_UID] = [node_ref.get("uid", "")]
        return Identity(username(namespace, str(sa_ref.get("name", ""))), groups(namespace),
                        str(sa_ref.get("uid", "")), extra, tuple(matched))


def _same(obj: Obj, ref: Obj) -> bool:
    md = obj.get("metadata") or {}
    return bool(ref.get("uid")) and md.get("uid") == ref.get("uid")


def _deleted_before(obj: Obj, now: float) -> bool:
    """Whether the object's graceful deletion deadline has passed (upstream: then the
    bound token is invalid even though the object is still stored)."""
    stamp = (obj.get("metadata") or {}).get("deletionTimestamp")
    when = m.parse_time(stamp) if isinstance(stamp, str) else None
    return when is not None and when.timestamp() < now

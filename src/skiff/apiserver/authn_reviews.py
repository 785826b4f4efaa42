"""authentication.k8s.io reviews: who am I (SelfSubjectReview, behind `kubectl auth
whoami`) and who is this token (TokenReview, how webhooks and proxies check a
service account token). Both are computed per request and never stored."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skiff.api.errors import bad_request

if TYPE_CHECKING:
    from skiff.apiserver.auth import User
    from skiff.apiserver.server import APIServer

Obj = dict[str, Any]
API_VERSION = "authentication.k8s.io/v1"


def user_info(user: User) -> Obj:
    """A UserInfo object as upstream serialises it (empty fields left out)."""
    out: Obj = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra.items()}
    return out


def self_subject_review(user: User | None, body: Any) -> Obj:
    """The caller's own identity."""
    if not isinstance(body, dict):
        raise bad_request("the body must be a SelfSubjectReview")
    info = user_info(user) if user is not None else {"username": "system:anonymous",
                                                     "groups": ["system:unauthenticated"]}
    return {"kind": "SelfSubjectReview", "apiVersion": API_VERSION,
            "metadata": {"creationTimestamp": None}, "status": {"userInfo": info}}


def token_review(server: APIServer, body: Any) -> Obj:
    """Whether spec.token authenticates, as whom, and for which of spec.audiences."""
    if not isinstance(body, dict):
        raise bad_request("the body must be a TokenReview")
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        raise bad_request("TokenReview: spec.token is required")
    wanted = spec.get("audiences") or []
    if not isinstance(wanted, list) or not all(isinstance(a, str) for a in wanted):
        raise bad_request("TokenReview: spec.audiences must be a list of strings")
    status: Obj
    found = server.token_authenticator.authenticate(token, audiences=tuple(wanted) or None)
    if found is None:
        status = {"authenticated": False, "user": {},
                  "error": "[invalid bearer token, service account token is not valid]"}
    else:
        from skiff.apiserver.auth import User

        status = {"authenticated": True,
                  "user": user_info(User(found.name, found.groups, found.uid, found.extra)),
                  "audiences": list(found.audiences)}
    return {"kind": "TokenReview", "apiVersion": API_VERSION,
            "metadata": {"creationTimestamp": None},
            "spec": {k: v for k, v in spec.items() if k in ("token", "audiences")},
            "status": status}

"""Authentication: who is making a request.

Client certificates signed by the cluster CA (CN = user, O = groups), bearer
tokens the cluster issued, and service account tokens (JWTs the API server signed,
checked by a `TokenAuthenticator`) are accepted. Every authenticated user is allowed
every operation until RBAC lands.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# Paths anyone may read, as upstream's system:public-info-viewer allows.
PUBLIC_PATHS = frozenset({"/version", "/version/", "/livez", "/readyz", "/healthz"})


@dataclass(frozen=True)
class User:
    """An authenticated caller."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    # Upstream's UserInfo.Extra (e.g. the pod a service account token is bound to).
    extra: dict[str, list[str]] = field(default_factory=dict, compare=False)


# Where a request keeps the user it was authenticated as.
USER = web.RequestKey("user", User)


# A second opinion on bearer tokens the static table does not know.
TokenCheck = Callable[[str], "User | None"]


class Authenticator:
    """Maps a request's client certificate or bearer token to a user."""

    def __init__(self, tokens: dict[str, User] | None = None) -> None:
        self._tokens = dict(tokens or {})
        self._token_checks: list[TokenCheck] = []

    def add_token(self, token: str, user: User) -> None:
        """Accept `token` as `user` from now on."""
        self._tokens[token] = user

    def add_token_check(self, check: TokenCheck) -> None:
        """Ask `check` about bearer tokens that are not in the static table."""
        self._token_checks.append(check)

    def authenticate(self, request: web.Request) -> User | None:
        """The request's user, or None if it presented no valid credentials."""
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            token = header[7:].strip()
            for known, user in self._tokens.items():
                if hmac.compare_digest(known, token):
                    return user
            for check in self._token_checks:
                found = check(token)
                if found is not None:
                    return found
            return None
        transport = request.transport
        if transport is None:
            return None
        cert: Any = transport.get_extra_info("peercert")
        if not cert:
            return None
        cn = ""
        orgs: list[str] = []
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    cn = value
                elif key == "organizationName":
                    orgs.append(value)
        if not cn:
            return None
        return User(cn, (*orgs, "system:authenticated"))

"""Authentication: who is making a request.

Client certificates signed by the cluster CA (CN = user, O = groups) and bearer
tokens the cluster issued are accepted. Every authenticated user is allowed every
operation until RBAC lands.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from aiohttp import web

# Paths anyone may read, as upstream's system:public-info-viewer allows.
PUBLIC_PATHS = frozenset({"/version", "/version/", "/livez", "/readyz", "/healthz"})


@dataclass(frozen=True)
class User:
    """An authenticated caller."""

    name: str
    groups: tuple[str, ...] = ()


class Authenticator:
    """Maps a request's client certificate or bearer token to a user."""

    def __init__(self, tokens: dict[str, User] | None = None) -> None:
        self._tokens = dict(tokens or {})

    def add_token(self, token: str, user: User) -> None:
        """Accept `token` as `user` from now on."""
        self._tokens[token] = user

    def authenticate(self, request: web.Request) -> User | None:
        """The request's user, or None if it presented no valid credentials."""
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            token = header[7:].strip()
            for known, user in self._tokens.items():
                if hmac.compare_digest(known, token):
                    return user
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

"""Service account tokens for projected volumes, cached and refreshed as the
kubelet's token manager does.

A token is requested once per (namespace, account, audiences, lifetime, bound pod)
and reused until 80% of its lifetime has passed or it is older than 24 hours; then
the next volume sync gets a fresh one and the projected file is rewritten. If the
refresh fails while the old token is still valid, the old one is kept.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from skiff.api import meta as m

log = logging.getLogger(__name__)

Obj = dict[str, Any]
# (namespace, service account, TokenRequest spec) → the TokenRequest the API returned.
RequestToken = Callable[[str, str, Obj], Awaitable[Obj]]

MAX_TTL_SECONDS = 24 * 3600
REFRESH_FRACTION = 0.8


def _expiry(tr: Obj) -> float | None:
    stamp = (tr.get("status") or {}).get("expirationTimestamp")
    when = m.parse_time(stamp) if isinstance(stamp, str) else None
    return when.timestamp() if when is not None else None


def requires_refresh(tr: Obj, now: float) -> bool:
    """Whether a cached TokenRequest should be replaced at time `now`."""
    exp = _expiry(tr)
    seconds = (tr.get("spec") or {}).get("expirationSeconds")
    if exp is None or not isinstance(seconds, int):
        return True
    issued = exp - seconds
    if now >= issued + MAX_TTL_SECONDS:
        return True
    return now >= issued + REFRESH_FRACTION * seconds


class TokenManager:
    """Hands out service account tokens, asking the API only when one is due."""

    def __init__(self, request: RequestToken, clock: Callable[[], float] = time.time) -> None:
        self.request = request
        self.clock = clock
        # key → (uid of the pod the request bound the token to, the TokenRequest)
        self._cache: dict[str, tuple[str, Obj]] = {}

    @staticmethod
    def _key(namespace: str, sa: str, spec: Obj) -> str:
        return json.dumps([namespace, sa, spec], sort_keys=True)

    async def token(self, namespace: str, sa: str, spec: Obj) -> str:
        """A valid token for `sa` with this TokenRequest spec (raises if none can be had)."""
        key = self._key(namespace, sa, spec)
        now = self.clock()
        cached = self._cache[key][1] if key in self._cache else None
        if cached is not None and not requires_refresh(cached, now):
            return str(cached["status"]["token"])
        try:
            fresh = await self.request(namespace, sa, spec)
        except Exception:
            exp = _expiry(cached) if cached is not None else None
            if cached is None or exp is None or exp <= now:
                raise
            log.warning("refreshing the token of %s/%s failed; the current one is valid "
                        "until %s", namespace, sa, dt.datetime.fromtimestamp(exp, dt.UTC))
            return str(cached["status"]["token"])
        if not (fresh.get("status") or {}).get("token"):
            raise ValueError("the API returned a TokenRequest without a token")
        bound = (spec.get("boundObjectRef") or {}).get("uid") or ""
        self._cache[key] = (str(bound), fresh)
        self._prune(now)
        return str(fresh["status"]["token"])

    def forget_pod(self, uid: str) -> None:
        """Drop the tokens bound to a pod that is gone from this node."""
        for key in [k for k, (bound, _tr) in self._cache.items() if bound == uid]:
            del self._cache[key]

    def _prune(self, now: float) -> None:
        for key in [k for k, (_b, tr) in self._cache.items() if (_expiry(tr) or 0) <= now]:
            del self._cache[key]

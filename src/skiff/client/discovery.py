"""Which resources the server serves, read through the legacy discovery documents.

Controllers that act on *every* resource (namespace deletion, garbage collection) can't
hard-code a list: custom resources come and go. They ask the server instead.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from skiff.api.errors import StatusError
from skiff.client.http_client import Client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class APIResource:
    """One served resource at one group/version."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: frozenset[str]
    preferred: bool = True

    @property
    def api_version(self) -> str:
        """`group/version`, or just `version` for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def supports(self, *verbs: str) -> bool:
        """Whether every one of `verbs` is served."""
        return all(v in self.verbs for v in verbs)


async def _resources(client: Client, path: str, group: str, version: str,
                     preferred: bool) -> list[APIResource]:
    doc = await client.request("GET", path)
    out = []
    for r in doc.get("resources") or []:
        name = r.get("name", "")
        if not name or "/" in name:
            continue
        out.append(APIResource(
            group=group, version=version, plural=name, kind=r.get("kind", ""),
            namespaced=bool(r.get("namespaced")), verbs=frozenset(r.get("verbs") or ()),
            preferred=preferred,
        ))
    return out


async def discover(client: Client) -> list[APIResource]:
    """Every resource of every served group/version (not subresources).

    Group versions whose document fails to load are skipped with a warning, so one
    broken aggregated API does not stop the rest of the cluster's housekeeping.
    """
    core = await client.request("GET", "/api")
    jobs: list[tuple[str, str, str, bool]] = [
        (f"/api/{v}", "", v, i == 0) for i, v in enumerate(core.get("versions") or ["v1"])
    ]
    groups = await client.request("GET", "/apis")
    for g in groups.get("groups") or []:
        preferred = (g.get("preferredVersion") or {}).get("version", "")
        for v in g.get("versions") or []:
            version = v.get("version", "")
            jobs.append((f"/apis/{g['name']}/{version}", g["name"], version,
                         version == preferred))
    results = await asyncio.gather(
        *(_resources(client, *job) for job in jobs), return_exceptions=True
    )
    out: list[APIResource] = []
    for job, res in zip(jobs, results, strict=True):
        if isinstance(res, StatusError | OSError):
            log.warning("discovery of %s failed: %s", job[0], res)
            continue
        if isinstance(res, BaseException):
            raise res
        out.extend(res)
    return out


class ResourceMap:
    """Look-ups over one discovery result: kind → resource, preferred versions."""

    def __init__(self, resources: list[APIResource]) -> None:
        self.resources = resources
        self._by_gvk = {(r.group, r.version, r.kind): r for r in resources}
        self._by_gk: dict[tuple[str, str], APIResource] = {}
        for r in resources:
            if r.preferred or (r.group, r.kind) not in self._by_gk:
                self._by_gk[(r.group, r.kind)] = r

    def for_kind(self, group: str, version: str, kind: str) -> APIResource | None:
        """The resource serving `kind`, at `version` if served, else at any version."""
        return self._by_gvk.get((group, version, kind)) or self._by_gk.get((group, kind))

    def preferred(self) -> list[APIResource]:
        """One entry per group and resource, at the group's preferred version."""
        return [r for r in self.resources if r.preferred]

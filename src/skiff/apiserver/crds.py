"""CustomResourceDefinitions: serving the kinds they define.

A CRD's served versions become `ResourceType`s in the registry (so discovery,
OpenAPI and the generic handlers pick them up), its schema feeds validation and
`kubectl explain`, and deleting it first deletes every custom object it defined.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from skiff.api import meta as m
from skiff.api.resources import Registry, ResourceType, ScalePaths
from skiff.api.schema.crd import crd_component, crd_component_name
from skiff.apiserver import keys
from skiff.apiserver.list_options import ListOptions
from skiff.apiserver.resource_store import DeleteOptions, ResourceStore, WriteContext, decode
from skiff.apiserver.schemas import SchemaCatalog

log = logging.getLogger(__name__)

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def resource_types(crd: dict[str, Any]) -> list[tuple[ResourceType, dict[str, Any]]]:
    """The resource type of every served version of a CRD, with its version entry."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    out = []
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        subs = v.get("subresources") or {}
        scale = None
        sub_names: list[str] = []
        if "status" in subs:
            sub_names.append("status")
        if isinstance(subs.get("scale"), dict):
            sc = subs["scale"]
            sub_names.append("scale")
            scale = ScalePaths(
                spec_replicas=sc.get("specReplicasPath", ".spec.replicas").lstrip("."),
                status_replicas=sc.get("statusReplicasPath", ".status.replicas").lstrip("."),
                label_selector=sc.get("labelSelectorPath"),
            )
        rt = ResourceType(
            group=spec.get("group", ""),
            version=v.get("name", ""),
            kind=names.get("kind", ""),
            plural=names.get("plural", ""),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=tuple(sub_names),
            scale=scale,
            crd=(crd.get("metadata") or {}).get("name", ""),
        )
        out.append((rt, v))
    return out


class CRDManager:
    """Keeps the registry and schema catalog in step with the stored CRDs."""

    def __init__(self, registry: Registry, schemas: SchemaCatalog, objects: ResourceStore,
                 crd_rt: ResourceType) -> None:
        self.registry = registry
        self.schemas = schemas
        self.objects = objects
        self.crd_rt = crd_rt
        self._served: dict[str, list[ResourceType]] = {}
        self.columns: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def load(self) -> None:
        """Register every stored CRD (server start)."""
        res = await self.objects.store.list(keys.collection_prefix(self.crd_rt))
        for kv in res.items:
            crd = decode(kv)
            self.sync(crd, deleted=False)

    def sync(self, crd: dict[str, Any], deleted: bool) -> None:
        """Serve (or stop serving) a CRD's kinds after a committed write."""
        name = m.name_of(crd)
        for rt in self._served.pop(name, []):
            self.registry.unregister(rt.group, rt.version, rt.plural)
            self.schemas.drop_custom(rt)
            self.columns.pop((rt.group, rt.version, rt.plural), None)
        if deleted:
            return
        served = []
        for rt, version in resource_types(crd):
            try:
                component = crd_component(crd, rt.version)
            except (KeyError, TypeError, AttributeError):
                continue
            self.schemas.set_custom(rt, crd_component_name(rt.group, rt.version, rt.kind),
                                    component)
            self.columns[(rt.group, rt.version, rt.plural)] = list(
                version.get("additionalPrinterColumns") or [])
            self.registry.register(rt)
            served.append(rt)
        self._served[name] = served
        if (crd.get("metadata") or {}).get("deletionTimestamp"):
            self._start_cleanup(crd)

    def admit(self, crd: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Accept the CRD's names and mark it established (status set by the server)."""
        md = crd.setdefault("metadata", {})
        if old is None:
            fins = md.setdefault("finalizers", [])
            if CLEANUP_FINALIZER not in fins:
                fins.append(CLEANUP_FINALIZER)
        spec = crd.get("spec") or {}
        names = dict(spec.get("names") or {})
        names.setdefault("singular", str(names.get("kind", "")).lower())
        names.setdefault("listKind", f"{names.get('kind', '')}List")
        status = crd.setdefault("status", {})
        status["acceptedNames"] = names
        stored = set(status.get("storedVersions") or [])
        stored |= {v.get("name") for v in spec.get("versions") or [] if v.get("storage")}
        status["storedVersions"] = sorted(s for s in stored if s)
        now = m.rfc3339()
        conds = {c.get("type"): c for c in status.get("conditions") or []}
        for ctype, reason, msg in (
            ("NamesAccepted", "NoConflicts", "no conflicts found"),
            ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ):
            if ctype not in conds:
                conds[ctype] = {"type": ctype, "status": "True", "lastTransitionTime": now,
                                "reason": reason, "message": msg}
        status["conditions"] = list(conds.values())

    def _start_cleanup(self, crd: dict[str, Any]) -> None:
        name = m.name_of(crd)
        if CLEANUP_FINALIZER not in (crd["metadata"].get("finalizers") or []):
            return
        if any(t.get_name() == f"crd-cleanup-{name}" for t in self._tasks):
            return
        task = asyncio.ensure_future(self._cleanup(crd))
        task.set_name(f"crd-cleanup-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cleanup(self, crd: dict[str, Any]) -> None:
        """Delete every custom object of a deleted CRD, then release its finalizer."""
        name = m.name_of(crd)
        ctx = WriteContext(user="system:apiextensions", field_manager="kube-apiserver")
        rts = [rt for rt, _ in resource_types(crd)]
        try:
            if rts:
                rt = rts[0]
                for _ in range(100):
                    listing = await self.objects.list(rt, "", ListOptions())
                    if not listing["items"]:
                        break
                    for obj in listing["items"]:
                        with contextlib.suppress(Exception):
                            await self.objects.delete(rt, m.namespace_of(obj), m.name_of(obj),
                                                      DeleteOptions(), ctx)
                    await asyncio.sleep(0.2)

            def release(cur: dict[str, Any]) -> dict[str, Any]:
                fins = [f for f in cur["metadata"].get("finalizers") or []
                        if f != CLEANUP_FINALIZER]
                cur["metadata"]["finalizers"] = fins
                return cur

            await self.objects.guaranteed_update(self.crd_rt, "", name, release, ctx,
                                                 prepared=False)
        except Exception:  # noqa: BLE001 - logged; the CRD stays Terminating and is retried
            log.exception("cleanup of CRD %s failed", name)

    async def close(self) -> None:
        """Stop cleanup tasks (server shutdown)."""
        for t in list(self._tasks):
            t.cancel()

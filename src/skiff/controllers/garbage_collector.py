"""The garbage collector: deletes dependents whose owners are gone, and carries out
foreground and orphan deletion of owners.

It watches every resource that can be listed, watched and deleted, keeps an
owner → dependents graph by uid (`gc_graph`), and reconciles one uid at a time:

- a live object all of whose owners are gone is deleted in the background;
- an owner being deleted with the `foregroundDeletion` finalizer has its dependents
  deleted, and loses the finalizer once no dependent with `blockOwnerDeletion` remains;
- an owner being deleted with the `orphan` finalizer has its references removed from
  its dependents, then loses the finalizer.

Caches lag behind the server, so "owner is gone" is always confirmed with a live GET.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from skiff.api.errors import StatusError
from skiff.client.discovery import APIResource, ResourceMap, discover
from skiff.client.event_recorder import EventRecorder
from skiff.client.http_client import Client, split_api_version
from skiff.client.informer import Informer, drop_managed_fields
from skiff.client.workqueue import WorkQueue, run_workers
from skiff.controllers.gc_graph import Graph, Node, node_from

log = logging.getLogger(__name__)

Obj = dict[str, Any]

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"

# As upstream's default configuration: events are never owners worth tracking, and
# watching them would dominate the collector's work.
IGNORED = frozenset({("", "events"), ("events.k8s.io", "events")})

COMPONENT = "garbage-collector-controller"

# Re-check of owners blocked on dependents, in case an event was missed.
BLOCKED_RECHECK = 5.0
UNSYNCED_RECHECK = 0.2


class GarbageCollector:
    """Watches everything deletable and collects according to ownerReferences."""

    def __init__(
        self, client: Client, *, workers: int = 4, rediscover_every: float = 30.0,
        shared: Callable[[str, str, str], Informer | None] | None = None,
    ) -> None:
        self.client = client
        # Where the collector may find an informer other controllers already run for a
        # resource (pods, ReplicaSets, …), so that it does not watch those a second time.
        self._shared = shared or (lambda _g, _v, _p: None)
        self._borrowed: set[tuple[str, str]] = set()
        self.graph = Graph()
        self.queue = WorkQueue(name="garbage-collector")
        self.resources = ResourceMap([])
        self.informers: dict[tuple[str, str], Informer] = {}
        self.workers = workers
        self.rediscover_every = rediscover_every
        self._watched: dict[tuple[str, str], APIResource] = {}
        self._rediscover = asyncio.Event()
        self.recorder = EventRecorder(client, COMPONENT)

    # -- observing ----------------------------------------------------------------------------

    def synced(self) -> bool:
        """Whether every watched resource has been listed at least once."""
        return all(inf.has_synced.is_set() for inf in self.informers.values())

    def observe(self, kind: str, obj: Obj, resource: APIResource) -> None:
        """Fold one informer event into the graph and queue the uids it may affect."""
        if kind != "DELETED" and _unchanged(self.graph, obj, resource):
            # Most updates (status, spec) leave owners, deletion and finalizers alone.
            return
        node = node_from(obj, resource)
        if node is None:
            return
        if kind == "DELETED":
            old = self.graph.remove(node.uid)
            gone = old or node
            for uid in gone.owner_uids() | self.graph.dependent_uids(gone.uid):
                self.queue.add(uid)
            return
        old = self.graph.upsert(node)
        if old is not None and old.same_decision_inputs(node):
            return
        self._check_owner_namespaces(node, old)
        if node.owners or node.deleting:
            self.queue.add(node.uid)
        owners = node.owner_uids() | (old.owner_uids() if old else set())
        for uid in owners:
            self.queue.add(uid)

    def _check_owner_namespaces(self, node: Node, old: Node | None) -> None:
        """Warn, as upstream, about references to an observed namespaced owner in
        another namespace: such a reference can never hold its dependent."""
        for uid in node.owner_uids() - (old.owner_uids() if old else set()):
            owner = self.graph.get(uid)
            if owner is not None and owner.namespace and owner.namespace != node.namespace:
                self._report_invalid_namespace(node, uid)
        if old is None and node.namespace:
            # The owner may be observed after its dependents.
            for uid in self.graph.dependent_uids(node.uid):
                dep = self.graph.get(uid)
                if dep is not None and dep.namespace != node.namespace:
                    self._report_invalid_namespace(dep, node.uid)

    def _report_invalid_namespace(self, node: Node, owner_uid: str) -> None:
        ref = node.owner_ref(owner_uid) or {}
        obj = {"apiVersion": node.api_version, "kind": node.kind,
               "metadata": {"name": node.name, "namespace": node.namespace, "uid": node.uid}}
        self.recorder.event(
            obj, "Warning", "OwnerRefInvalidNamespace",
            f"ownerRef [{ref.get('apiVersion', '')}/{ref.get('kind', '')}, namespace: "
            f"{node.namespace}, name: {ref.get('name', '')}, uid: {owner_uid}] does not exist "
            f'in namespace "{node.namespace}"')

    def _handlers(self, inf: Informer, resource: APIResource) -> None:
        key = (resource.group, resource.plural)

        def live() -> bool:
            # A borrowed informer keeps its handlers after the collector lets go of it.
            return self.informers.get(key) is inf

        inf.on_add(lambda obj: live() and self.observe("ADDED", obj, resource))
        inf.on_update(lambda _old, obj: live() and self.observe("MODIFIED", obj, resource))
        inf.on_delete(lambda obj: live() and self.observe("DELETED", obj, resource))

    def _release(self, key: tuple[str, str]) -> Informer:
        """Stop following a resource (stopping its informer unless it is borrowed)."""
        inf = self.informers.pop(key)
        if key in self._borrowed:
            self._borrowed.discard(key)
        else:
            inf.stop()
        return inf

    async def sync_resources(self) -> None:
        """Rediscover resources; start informers for new ones and stop vanished ones."""
        self.resources = ResourceMap(await discover(self.client))
        wanted = {
            (r.group, r.plural): r for r in self.resources.preferred()
            if r.supports("list", "watch", "delete") and (r.group, r.plural) not in IGNORED
        }
        for key in [k for k in self.informers if k not in wanted]:
            inf = self._release(key)
            gone = self._watched.pop(key)
            for obj in inf.list():
                self.observe("DELETED", obj, gone)
        for key, r in wanted.items():
            inf = self.informers.get(key)
            if inf is not None and inf.version == r.version:
                continue
            if inf is not None:
                self._release(key)
            shared = self._shared(r.group, r.version, r.plural)
            inf = shared or Informer(self.client, r.group, r.version, r.plural,
                                     transform=drop_managed_fields)
            self.informers[key] = inf
            self._handlers(inf, r)
            if r.group == "apiextensions.k8s.io" and r.plural == "customresourcedefinitions":
                inf.on_add(lambda _o: self._rediscover.set())
                inf.on_update(lambda _o, _n: self._rediscover.set())
                inf.on_delete(lambda _o: self._rediscover.set())
            self._watched[key] = r
            if shared is None:
                inf.start()
                continue
            self._borrowed.add(key)
            # What the shared informer has cached already reaches no new handler.
            for obj in inf.list():
                self.observe("ADDED", obj, r)

    # -- reconciling ----------------------------------------------------------------------------

    async def reconcile(self, uid: str) -> float | None:
        """Take one step toward the ownership rules for the object `uid`."""
        node = self.graph.get(uid)
        if node is None:
            return None
        if node.deleting:
            if ORPHAN not in node.finalizers and FOREGROUND not in node.finalizers:
                return None
            # A partial graph could make an owner look dependent-free.
            if not self.synced():
                return UNSYNCED_RECHECK
            if ORPHAN in node.finalizers:
                return await self._orphan_dependents(node)
            return await self._delete_dependents(node)
        if node.owners:
            await self._collect_if_ownerless(node)
        return None

    async def _collect_if_ownerless(self, node: Node) -> None:
        if len(node.owners) == 1:
            # The common case (a pod of one ReplicaSet) needs no bookkeeping.
            if await self._owner_state(node, node.owners[0]) != "absent":
                return  # present, or unknown (never collect on a guess)
        else:
            states = {ref.get("uid", ""): await self._owner_state(node, ref, solid=True)
                      for ref in node.owners}
            going = [uid for uid, state in states.items() if state in ("absent", "waiting")]
            if len(going) < len(states):
                # Kept by a live owner: as upstream, the references to owners that are
                # gone or waiting for their dependents go, so those do not wait on it.
                for uid in going:
                    await self._remove_owner_ref(node, uid)
                return
            if "waiting" in states.values() and self.graph.dependent_uids(node.uid):
                # An owner waits for this object's whole subtree, as upstream.
                await self._delete(node, "Foreground")
                return
        log.info("deleting %s %s/%s: all owners are gone", node.kind, node.namespace, node.name)
        await self._delete(node, _default_policy(node))

    async def _has_solid_owner(self, node: Node, except_uid: str) -> bool:
        """Whether an owner of `node` other than `except_uid` exists and is not itself
        waiting for its dependents (foreground deletion)."""
        for ref in node.owners:
            if ref.get("uid") == except_uid:
                continue
            if await self._owner_state(node, ref, solid=True) in ("present", "unknown"):
                return True  # never collect on a guess
        return False

    async def _owner_state(self, node: Node, ref: Obj, solid: bool = False) -> str:
        """'present', 'absent' or 'unknown' for one owner reference of `node`.

        With `solid`, an owner in foreground deletion is 'waiting' instead of present:
        it is about to go and will not keep its dependents.
        """
        uid = ref.get("uid", "")
        owner = self.graph.get(uid)
        if owner is not None and (not owner.namespace or owner.namespace == node.namespace):
            if solid and owner.deleting and FOREGROUND in owner.finalizers:
                return "waiting"
            return "present"
        group, version = split_api_version(ref.get("apiVersion", ""))
        resource = self.resources.for_kind(group, version, ref.get("kind", ""))
        if resource is None:
            return "unknown"
        if resource.namespaced and not node.namespace:
            # A cluster-scoped object cannot be owned by a namespaced one; as upstream
            # this is an error that is left alone, never a reason to collect.
            return "unknown"
        try:
            live = await self.client.get(
                resource.group, resource.version, resource.plural, ref.get("name", ""),
                node.namespace if resource.namespaced else "",
            )
        except StatusError as err:
            if err.code == 404:
                return "absent"
            raise
        md = live.get("metadata") or {}
        if md.get("uid") != uid:
            return "absent"
        if solid and md.get("deletionTimestamp") and FOREGROUND in (md.get("finalizers") or ()):
            return "waiting"
        return "present"

    async def _delete_dependents(self, owner: Node) -> float | None:
        blocking = 0
        for dep in self.graph.dependents(owner.uid):
            ref = dep.owner_ref(owner.uid) or {}
            if not dep.deleting:
                if len(dep.owners) > 1 and await self._has_solid_owner(dep, owner.uid):
                    # As upstream, another live owner keeps the dependent: it only stops
                    # naming the owner being deleted, which then no longer waits for it.
                    await self._remove_owner_ref(dep, owner.uid)
                    continue
                # Only a dependent with dependents of its own needs foreground deletion;
                # leaves go in the background, as upstream, so they gain no finalizer.
                await self._delete(dep, "Foreground" if self.graph.dependent_uids(dep.uid)
                                   else _default_policy(dep))
            if ref.get("blockOwnerDeletion"):
                blocking += 1
        if blocking:
            return BLOCKED_RECHECK
        await self._remove_finalizer(owner, FOREGROUND)
        return None

    async def _orphan_dependents(self, owner: Node) -> float | None:
        for dep in self.graph.dependents(owner.uid):
            await self._remove_owner_ref(dep, owner.uid)
        await self._remove_finalizer(owner, ORPHAN)
        return None

    # -- writes ------------------------------------------------------------------------------

    async def _delete(self, node: Node, policy: str) -> None:
        r = node.resource
        try:
            await self.client.delete(
                r.group, r.version, r.plural, node.name, node.namespace,
                propagation_policy=policy, preconditions={"uid": node.uid},
            )
        except StatusError as err:
            _raise_unless_gone(err)

    async def _patch_live(self, node: Node, build: Any) -> None:
        """GET the object, let `build(metadata)` compute JSON patch ops, and apply them.

        The ops guard themselves with `test`, so a concurrent change fails the patch
        (and the key is retried) instead of removing the wrong list element.
        """
        r = node.resource
        try:
            live = await self.client.get(r.group, r.version, r.plural, node.name, node.namespace)
        except StatusError as err:
            _raise_unless_gone(err)
            return
        md = live.get("metadata") or {}
        if md.get("uid") != node.uid:
            return
        ops = build(md)
        if not ops:
            return
        try:
            await self.client.patch(r.group, r.version, r.plural, node.name,
                                    [{"op": "test", "path": "/metadata/uid", "value": node.uid},
                                     *ops], node.namespace, patch_type="json")
        except StatusError as err:
            _raise_unless_gone(err)

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        def build(md: Obj) -> list[Obj]:
            fins = md.get("finalizers") or []
            return _remove_ops("/metadata/finalizers", fins, lambda f: f == finalizer)

        await self._patch_live(node, build)

    async def _remove_owner_ref(self, node: Node, owner_uid: str) -> None:
        def build(md: Obj) -> list[Obj]:
            refs = md.get("ownerReferences") or []
            return _remove_ops("/metadata/ownerReferences", refs,
                               lambda ref: isinstance(ref, dict) and ref.get("uid") == owner_uid)

        await self._patch_live(node, build)

    # -- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Discover, watch and collect until cancelled."""
        workers = asyncio.create_task(run_workers(self.queue, self.reconcile, self.workers))
        events = asyncio.create_task(self.recorder.run())
        try:
            while True:
                try:
                    await self.sync_resources()
                except (StatusError, OSError) as err:
                    log.warning("garbage collector: discovery failed: %s", err)
                self._rediscover.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._rediscover.wait(), self.rediscover_every)
                # Let a burst of CRD changes settle into one rediscovery.
                await asyncio.sleep(0.2)
        finally:
            self.queue.shutdown()
            for key in list(self.informers):
                self._release(key)
            workers.cancel()
            events.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await workers
            with contextlib.suppress(asyncio.CancelledError):
                await events


def _unchanged(graph: Graph, obj: Obj, resource: APIResource) -> bool:
    """Whether `obj` is in the graph, seen through the same resource, with the same
    owners, deletion and finalizers (what `Node.same_decision_inputs` compares),
    checked without building a Node."""
    md = obj.get("metadata") or {}
    node = graph.get(md.get("uid") or "")
    if node is None or (node.resource is not resource and node.resource != resource):
        return False
    return (node.deleting == bool(md.get("deletionTimestamp"))
            and node.finalizers == tuple(md.get("finalizers") or ())
            and node.owners == [r for r in md.get("ownerReferences") or []
                                if isinstance(r, dict)])


def _default_policy(node: Node) -> str:
    """The propagation policy for collecting `node`: what its own finalizers already
    ask for, else background (an explicit policy would override them)."""
    if ORPHAN in node.finalizers:
        return "Orphan"
    if FOREGROUND in node.finalizers:
        return "Foreground"
    return "Background"


def _raise_unless_gone(err: StatusError) -> None:
    """Swallow 'already gone' outcomes (404, or a uid precondition that no longer holds)."""
    if err.code == 404:
        return
    if err.code == 409 and "precondition" in err.message.lower() and "uid" in err.message.lower():
        return
    raise err


def _remove_ops(path: str, items: list[Any], match: Any) -> list[Obj]:
    ops: list[Obj] = []
    # Highest index first, so earlier removals do not shift later ones.
    for i in reversed(range(len(items))):
        if match(items[i]):
            ops.append({"op": "test", "path": f"{path}/{i}", "value": items[i]})
            ops.append({"op": "remove", "path": f"{path}/{i}"})
    return ops



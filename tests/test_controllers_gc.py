"""The garbage collector's graph and decisions, against a recording fake client."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.api.errors import StatusError, not_found
from skiff.client.discovery import APIResource, ResourceMap
from skiff.controllers.garbage_collector import BLOCKED_RECHECK, GarbageCollector
from skiff.controllers.gc_graph import Graph, node_from

CM = APIResource("", "v1", "configmaps", "ConfigMap", True,
                 frozenset({"get", "list", "watch", "delete"}))
NS = APIResource("", "v1", "namespaces", "Namespace", False,
                 frozenset({"get", "list", "watch", "delete"}))


class FakeClient:
    """Holds live objects by (plural, namespace, name) and records writes."""

    def __init__(self) -> None:
        self.live: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.deletes: list[tuple[str, str, str | None]] = []
        self.patches: list[tuple[str, list[dict[str, Any]]]] = []
        self.gets = 0

    async def get(self, group: str, version: str, plural: str, name: str,
                  namespace: str = "") -> dict[str, Any]:
        self.gets += 1
        try:
            return self.live[(plural, namespace, name)]
        except KeyError:
            raise not_found(group, plural, name) from None

    async def delete(self, group: str, version: str, plural: str, name: str,
                     namespace: str = "", propagation_policy: str | None = None,
                     grace_period_seconds: int | None = None,
                     preconditions: dict[str, Any] | None = None) -> dict[str, Any]:
        obj = self.live.get((plural, namespace, name))
        if obj is None:
            raise not_found(group, plural, name)
        if preconditions and preconditions.get("uid") != obj["metadata"]["uid"]:
            raise StatusError(409, "Conflict", "Precondition failed: UID in precondition")
        self.deletes.append((namespace, name, propagation_policy))
        return obj

    async def patch(self, group: str, version: str, plural: str, name: str, patch: Any,
                    namespace: str = "", patch_type: str = "merge", **_: Any) -> dict[str, Any]:
        assert patch_type == "json"
        self.patches.append((name, patch))
        return self.live[(plural, namespace, name)]


def cm(name: str, uid: str, owners: list[tuple[str, str, bool]] | None = None,
       deleting: bool = False, finalizers: list[str] | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": "ns", "uid": uid}
    if owners:
        md["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": n, "uid": u,
             "blockOwnerDeletion": b} for n, u, b in owners
        ]
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    if finalizers:
        md["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md}


@pytest.fixture
def fake() -> FakeClient:
    return FakeClient()


@pytest.fixture
def gc(fake: FakeClient) -> GarbageCollector:
    collector = GarbageCollector(fake)  # type: ignore[arg-type]
    collector.resources = ResourceMap([CM, NS])
    return collector


def put(fake: FakeClient, gc: GarbageCollector, obj: dict[str, Any], live: bool = True) -> None:
    """Make `obj` both observed by the collector and (optionally) live on the 'server'."""
    gc.observe("ADDED", obj, CM)
    if live:
        fake.live[("configmaps", "ns", obj["metadata"]["name"])] = obj


# -- graph -------------------------------------------------------------------------------------


def test_graph_tracks_dependents_through_updates_and_removal() -> None:
    g = Graph()
    owner = node_from(cm("o", "u-o"), CM)
    dep = node_from(cm("d", "u-d", [("o", "u-o", True)]), CM)
    assert owner and dep
    g.upsert(dep)  # a dependent may arrive before its owner
    assert [n.name for n in g.dependents("u-o")] == ["d"]
    g.upsert(owner)
    moved = node_from(cm("d", "u-d", [("x", "u-x", False)]), CM)
    assert moved
    g.upsert(moved)
    assert g.dependents("u-o") == []
    assert [n.name for n in g.dependents("u-x")] == ["d"]
    g.remove("u-d")
    assert g.dependents("u-x") == [] and g.dependent_uids("u-x") == set()
    assert len(g) == 1


def test_objects_without_uid_are_not_tracked() -> None:
    assert node_from({"metadata": {"name": "x"}}, CM) is None


def test_events_queue_owner_and_dependents(gc: GarbageCollector, fake: FakeClient) -> None:
    put(fake, gc, cm("o", "u-o"))
    put(fake, gc, cm("d", "u-d", [("o", "u-o", False)]))
    queued = set(gc.queue._dirty)
    assert {"u-d", "u-o"} <= queued
    gc.queue._dirty.clear()
    gc.queue._queue.clear()
    gc.observe("DELETED", cm("o", "u-o"), CM)
    assert "u-d" in gc.queue._dirty, "a deleted owner's dependents must be re-examined"


# -- background ----------------------------------------------------------------------------------


async def test_dependent_of_absent_owner_is_deleted_in_background(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    put(fake, gc, cm("d", "u-d", [("o", "u-o", False)]))
    await gc.reconcile("u-d")
    assert fake.deletes == [("ns", "d", "Background")]


async def test_owner_missing_from_cache_but_live_is_not_collected(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    fake.live[("configmaps", "ns", "o")] = cm("o", "u-o")  # cache has not caught up
    put(fake, gc, cm("d", "u-d", [("o", "u-o", False)]))
    await gc.reconcile("u-d")
    assert fake.deletes == []
    assert fake.gets == 1


async def test_owner_with_same_name_but_new_uid_counts_as_absent(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    fake.live[("configmaps", "ns", "o")] = cm("o", "u-new")
    put(fake, gc, cm("d", "u-d", [("o", "u-old", False)]))
    await gc.reconcile("u-d")
    assert fake.deletes == [("ns", "d", "Background")]


async def test_one_surviving_owner_keeps_the_dependent(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    put(fake, gc, cm("alive", "u-a"))
    put(fake, gc, cm("d", "u-d", [("gone", "u-g", False), ("alive", "u-a", False)]))
    await gc.reconcile("u-d")
    assert fake.deletes == []
    # As upstream, the dangling reference is dropped.
    (name, ops), = fake.patches
    assert name == "d"
    assert ops[-1] == {"op": "remove", "path": "/metadata/ownerReferences/0"}


async def test_dependent_of_gone_and_waiting_owners_with_dependents_goes_in_foreground(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    put(fake, gc, cm("o", "u-o", deleting=True, finalizers=["foregroundDeletion"]))
    put(fake, gc, cm("d", "u-d", [("gone", "u-g", False), ("o", "u-o", True)]))
    put(fake, gc, cm("leaf", "u-l", [("d", "u-d", True)]))
    await gc.reconcile("u-d")
    assert fake.deletes == [("ns", "d", "Foreground")]


async def test_cluster_scoped_object_with_a_namespaced_owner_is_left_alone(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    ns_obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "n", "uid": "u-n", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-o"}]}}
    gc.observe("ADDED", ns_obj, NS)
    fake.live[("namespaces", "", "n")] = ns_obj
    await gc.reconcile("u-n")
    assert fake.deletes == [] and fake.patches == []


def test_owner_in_another_namespace_is_reported(gc: GarbageCollector, fake: FakeClient) -> None:
    owner = cm("o", "u-o")
    owner["metadata"]["namespace"] = "elsewhere"
    gc.observe("ADDED", owner, CM)
    put(fake, gc, cm("d", "u-d", [("o", "u-o", False)]))
    # And the other order: the owner observed after its dependent.
    put(fake, gc, cm("d2", "u-d2", [("o2", "u-o2", False)]))
    owner2 = cm("o2", "u-o2")
    owner2["metadata"]["namespace"] = "elsewhere"
    gc.observe("ADDED", owner2, CM)
    events = list(gc.recorder._pending)
    assert [(e["ref"]["name"], e["type"], e["reason"]) for e in events] == [
        ("d", "Warning", "OwnerRefInvalidNamespace"),
        ("d2", "Warning", "OwnerRefInvalidNamespace")]
    assert events[0]["message"] == (
        'ownerRef [v1/ConfigMap, namespace: ns, name: o, uid: u-o] does not exist in '
        'namespace "ns"')


async def test_unknown_owner_kind_is_never_collected(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    obj = cm("d", "u-d")
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": "u-w"}]
    put(fake, gc, obj)
    await gc.reconcile("u-d")
    assert fake.deletes == []


# -- foreground ----------------------------------------------------------------------------------


async def test_foreground_deletes_dependents_and_waits_for_blocking_ones(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    put(fake, gc, cm("o", "u-o", deleting=True, finalizers=["foregroundDeletion"]))
    put(fake, gc, cm("blocker", "u-b", [("o", "u-o", True)]))
    put(fake, gc, cm("free", "u-f", [("o", "u-o", False)]))
    assert await gc.reconcile("u-o") == BLOCKED_RECHECK
    # Leaves go in the background, as upstream: they gain no finalizer to be removed again.
    assert sorted(fake.deletes) == [("ns", "blocker", "Background"), ("ns", "free", "Background")]
    assert fake.patches == [], "the finalizer stays while a blocking dependent exists"

    # The non-blocking one going away changes nothing; the blocking one releases the owner.
    gc.observe("DELETED", cm("free", "u-f", [("o", "u-o", False)]), CM)
    assert await gc.reconcile("u-o") == BLOCKED_RECHECK
    gc.observe("DELETED", cm("blocker", "u-b", [("o", "u-o", True)]), CM)
    assert await gc.reconcile("u-o") is None
    name, ops = fake.patches[-1]
    assert name == "o"
    assert ops == [
        {"op": "test", "path": "/metadata/uid", "value": "u-o"},
        {"op": "test", "path": "/metadata/finalizers/0", "value": "foregroundDeletion"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
    ]


async def test_foreground_deletes_dependents_with_dependents_in_foreground(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    put(fake, gc, cm("o", "u-o", deleting=True, finalizers=["foregroundDeletion"]))
    put(fake, gc, cm("mid", "u-m", [("o", "u-o", True)]))
    put(fake, gc, cm("leaf", "u-l", [("mid", "u-m", True)]))
    put(fake, gc, cm("orphaner", "u-x", [("o", "u-o", False)], finalizers=["orphan"]))
    assert await gc.reconcile("u-o") == BLOCKED_RECHECK
    assert sorted(fake.deletes) == [("ns", "mid", "Foreground"), ("ns", "orphaner", "Orphan")]


async def test_foreground_keeps_a_dependent_with_another_live_owner(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    put(fake, gc, cm("o", "u-o", deleting=True, finalizers=["foregroundDeletion"]))
    put(fake, gc, cm("other", "u-x"))
    put(fake, gc, cm("d", "u-d", [("other", "u-x", False), ("o", "u-o", True)]))
    # The other owner is itself going in the foreground: it keeps nothing.
    put(fake, gc, cm("o2", "u-o2", deleting=True, finalizers=["foregroundDeletion"]))
    put(fake, gc, cm("d2", "u-d2", [("o2", "u-o2", False), ("o", "u-o", True)]))
    assert await gc.reconcile("u-o") == BLOCKED_RECHECK
    assert fake.deletes == [("ns", "d2", "Background")]
    (name, ops), = fake.patches
    assert name == "d"
    assert ops[-1] == {"op": "remove", "path": "/metadata/ownerReferences/1"}
    # Once the reference is gone the owner no longer waits for it.
    put(fake, gc, cm("d", "u-d", [("other", "u-x", False)]))
    gc.observe("DELETED", cm("d2", "u-d2", [("o2", "u-o2", False), ("o", "u-o", True)]), CM)
    assert await gc.reconcile("u-o") is None
    assert fake.patches[-1][0] == "o"


async def test_collected_dependent_keeps_the_policy_its_finalizers_ask_for(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    put(fake, gc, cm("d", "u-d", [("o", "u-o", False)], finalizers=["orphan"]))
    await gc.reconcile("u-d")
    assert fake.deletes == [("ns", "d", "Orphan")]


async def test_dependent_already_terminating_keeps_blocking_without_new_delete(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    put(fake, gc, cm("o", "u-o", deleting=True, finalizers=["foregroundDeletion"]))
    put(fake, gc, cm("d", "u-d", [("o", "u-o", True)], deleting=True,
                     finalizers=["foregroundDeletion"]))
    assert await gc.reconcile("u-o") == BLOCKED_RECHECK
    assert fake.deletes == []


async def test_owner_decisions_wait_for_informers_to_sync(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    class Unsynced:
        class has_synced:  # noqa: N801 - mimics the Informer attribute
            @staticmethod
            def is_set() -> bool:
                return False

    gc.informers[("", "configmaps")] = Unsynced()  # type: ignore[assignment]
    put(fake, gc, cm("o", "u-o", deleting=True, finalizers=["foregroundDeletion"]))
    assert await gc.reconcile("u-o") is not None
    assert fake.patches == []


# -- orphan ----------------------------------------------------------------------------------


async def test_orphan_strips_references_then_releases_owner(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    put(fake, gc, cm("o", "u-o", deleting=True, finalizers=["x/keep", "orphan"]))
    put(fake, gc, cm("d", "u-d", [("other", "u-x", False), ("o", "u-o", True)]))
    assert await gc.reconcile("u-o") is None
    assert fake.deletes == []
    (dep_name, dep_ops), (owner_name, owner_ops) = fake.patches
    assert dep_name == "d"
    assert dep_ops[1:] == [
        {"op": "test", "path": "/metadata/ownerReferences/1",
         "value": {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-o",
                   "blockOwnerDeletion": True}},
        {"op": "remove", "path": "/metadata/ownerReferences/1"},
    ]
    assert owner_name == "o"
    assert owner_ops[-1] == {"op": "remove", "path": "/metadata/finalizers/1"}


async def test_deleted_objects_and_plain_terminating_ones_are_left_alone(
    gc: GarbageCollector, fake: FakeClient
) -> None:
    assert await gc.reconcile("no-such-uid") is None
    put(fake, gc, cm("t", "u-t", deleting=True, finalizers=["example.com/x"]))
    assert await gc.reconcile("u-t") is None
    assert fake.deletes == [] and fake.patches == []


def test_updates_that_keep_ownership_queue_nothing(gc: GarbageCollector, fake: FakeClient
                                                   ) -> None:
    put(fake, gc, cm("d", "u-d", [("o", "u-o", False)]))
    gc.queue._dirty.clear()
    gc.queue._queue.clear()
    changed_data = cm("d", "u-d", [("o", "u-o", False)])
    changed_data["data"] = {"k": "v"}
    gc.observe("MODIFIED", changed_data, CM)
    assert not gc.queue._dirty, "a data-only update changes no collection decision"
    gc.observe("MODIFIED", cm("d", "u-d", [("x", "u-x", False)]), CM)
    assert {"u-d", "u-o", "u-x"} <= gc.queue._dirty
    assert [n.name for n in gc.graph.dependents("u-x")] == ["d"]
    gc.queue._dirty.clear()
    gc.observe("MODIFIED", cm("d", "u-d", [("x", "u-x", False)], finalizers=["f"]), CM)
    assert gc.graph.get("u-d").finalizers == ("f",)  # type: ignore[union-attr]

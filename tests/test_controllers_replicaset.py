"""ReplicaSet and ReplicationController controllers, against a real `skiff up`.

Pods are run by a fake kubelet in the test process (binding and status through the
API), so readiness and availability are real status the controllers read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from skiff.api.errors import StatusError
from skiff.client import Client
from skiff.controllers.expectations import Expectations
from skiff.controllers.pod_ranking import DELETION_COST, rank_for_deletion
from skiff.controllers.replicaset import ReplicaSetController, replica_status
from skiff.controllers.status_patch import status_diff
from tests.controller_helpers import (
    events_for,
    eventually,
    live_pods_in,
    pod_template,
    replicaset,
    seed,
)
from tests.fake_kubelet import FakeKubelet

Obj = dict[str, Any]

# -- unit: ranking, expectations, status ---------------------------------------------------

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def _pod(name: str, *, node: str = "", phase: str = "Pending", ready: bool = False,
         created_ago: float = 100, ready_ago: float = 50, restarts: int = 0,
         cost: int | None = None) -> Obj:
    created = (NOW - dt.timedelta(seconds=created_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    md: Obj = {"name": name, "uid": f"uid-{name}", "creationTimestamp": created}
    if cost is not None:
        md["annotations"] = {DELETION_COST: str(cost)}
    status: Obj = {"phase": phase, "containerStatuses": [{"restartCount": restarts}]}
    if ready:
        since = (NOW - dt.timedelta(seconds=ready_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status["conditions"] = [{"type": "Ready", "status": "True",
                                 "lastTransitionTime": since}]
    return {"metadata": md, "spec": {"nodeName": node}, "status": status}


def _names(pods: list[Obj]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_scale_down_ranking_follows_upstream_order() -> None:
    pods = [
        _pod("running-ready-old", node="n3", phase="Running", ready=True, created_ago=10000,
             ready_ago=9000),
        _pod("running-ready-new", node="n4", phase="Running", ready=True, created_ago=10,
             ready_ago=5),
        _pod("running-notready", node="n1", phase="Running"),
        _pod("unknown", node="n1", phase="Unknown"),
        _pod("pending-assigned", node="n1"),
        _pod("unassigned"),
    ]
    ranked = _names(rank_for_deletion(pods, pods, NOW))
    assert ranked == ["unassigned", "pending-assigned", "unknown", "running-notready",
                      "running-ready-new", "running-ready-old"]


def test_scale_down_ranking_cost_doubling_restarts() -> None:
    cheap = _pod("cheap", node="n1", phase="Running", ready=True, cost=-5)
    dear = _pod("dear", node="n2", phase="Running", ready=True, cost=5)
    assert _names(rank_for_deletion([dear, cheap], [dear, cheap], NOW)) == ["cheap", "dear"]
    a = _pod("a", node="n1", phase="Running", ready=True)
    b = _pod("b", node="n2", phase="Running", ready=True)
    sibling = _pod("sibling", node="n2", phase="Running", ready=True)
    # b shares its node with a sibling (of another ReplicaSet of the same Deployment).
    assert _names(rank_for_deletion([a, b], [a, b, sibling], NOW))[0] == "b"
    crashy = _pod("crashy", node="n1", phase="Running", ready=True, restarts=7)
    calm = _pod("calm", node="n2", phase="Running", ready=True)
    assert _names(rank_for_deletion([calm, crashy], [calm, crashy], NOW))[0] == "crashy"


def test_scale_down_ranking_same_age_bucket_breaks_ties_by_uid() -> None:
    # 1000 s and 1010 s ago fall in the same log2(ns) bucket: the UID decides.
    x = _pod("x", created_ago=1000)
    y = _pod("y", created_ago=1010)
    assert _names(rank_for_deletion([y, x], [], NOW)) == ["x", "y"]
    # 10 s versus 1000 s: the newer one goes first.
    new, old = _pod("z-new", created_ago=10), _pod("a-old", created_ago=1000)
    assert _names(rank_for_deletion([old, new], [], NOW)) == ["z-new", "a-old"]


def test_expectations_wait_for_creations_and_named_deletions() -> None:
    exp = Expectations()
    assert exp.satisfied("ns/rs")
    exp.expect_creations("ns/rs", 2)
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")
    exp.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    exp.deletion_observed("ns/rs", "ns/other")  # not one we wait for
    exp.deletion_observed("ns/rs", "ns/a")
    assert not exp.satisfied("ns/rs")
    exp.deletion_observed("ns/rs", "ns/b")
    assert exp.satisfied("ns/rs")
    exp.expect_creations("ns/rs", 1)
    exp.timeout = -1
    assert exp.satisfied("ns/rs"), "expectations expire"


def test_replica_status_counts_and_failure_condition() -> None:
    owner = {"metadata": {"generation": 3},
             "spec": {"minReadySeconds": 0, "template": {"metadata": {"labels": {"a": "1"}}}},
             "status": {}}
    pods = [{"metadata": {"labels": {"a": "1"}}, "status": {"conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]}},
        {"metadata": {"labels": {"b": "2"}}, "status": {}}]
    status = replica_status(owner, pods, ("FailedCreate", "quota exceeded"))
    assert status["replicas"] == 2
    assert status["fullyLabeledReplicas"] == 1
    assert status["readyReplicas"] == status["availableReplicas"] == 1
    assert status["observedGeneration"] == 3
    cond = status["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("ReplicaFailure", "True",
                                                              "FailedCreate")
    owner["status"] = status
    again = replica_status(owner, pods, ("FailedCreate", "quota exceeded again"))
    assert again["conditions"] == status["conditions"], "the first failure stays reported"
    cleared = replica_status(owner, pods, None)
    assert "conditions" not in cleared


def test_status_diff_nulls_vanished_fields() -> None:
    assert status_diff({"a": 1}, {"a": 1}) == {}
    assert status_diff({"a": 1, "b": 2}, {"a": 2}) == {"a": 2, "b": None}
    assert status_diff({"m": {"x": 1, "y": 2}}, {"m": {"x": 1}}) == {"m": {"y": None}}
    assert status_diff({"m": {"x": 1}}, {"m": {}}) == {"m": None}


class _FailingClient:
    """Records calls; every pod creation fails as a quota admission would."""

    def __init__(self) -> None:
        self.creates = 0
        self.patches: list[tuple[Any, ...]] = []

    async def create(self, *args: Any, **kw: Any) -> Obj:
        self.creates += 1
        raise StatusError(403, "Forbidden", 'pods "x" is forbidden: exceeded quota')

    async def patch(self, *args: Any, **kw: Any) -> Obj:
        self.patches.append(args)
        return {}


async def test_failed_create_stops_the_slow_start_and_reports_replica_failure() -> None:
    client: Any = _FailingClient()
    ctrl = ReplicaSetController(client)
    rs = replicaset("web", 5, {"app": "web"})
    rs["metadata"].update(namespace="ns", uid="rs-uid", generation=1, resourceVersion="1")
    await seed(ctrl.owners, rs)
    await seed(ctrl.pods)
    await ctrl.reconcile("ns/web")
    # Slow start: the first batch of one failed, so the other four were never sent.
    assert client.creates == 1
    assert ctrl.expectations.satisfied("ns/web")
    status_patch = client.patches[-1][4]["status"]
    cond = status_patch["conditions"][0]
    assert cond["reason"] == "FailedCreate" and "exceeded quota" in cond["message"]
    queued = [e["reason"] for e in ctrl.recorder._pending]  # noqa: SLF001
    assert queued == ["FailedCreate"]


# -- integration: a real cluster ----------------------------------------------------------


async def _status(client: Client, ns: str, name: str, plural: str = "replicasets",
                  group: str = "apps") -> Obj:
    return (await client.get(group, "v1", plural, name, ns)).get("status") or {}


async def test_replicaset_keeps_replicas_and_replaces_deleted_pod(client: Client,
                                                                   ns: str) -> None:
    async with FakeKubelet(client, ns):
        rs = await client.create("apps", "v1", "replicasets",
                                 replicaset("web", 3, {"app": "web"}), ns)

        async def all_available() -> bool:
            st = await _status(client, ns, "web")
            return st.get("availableReplicas") == 3 and st.get("readyReplicas") == 3

        await eventually(all_available, "3 pods are available")
        pods = await live_pods_in(client, ns, "app=web")
        assert len(pods) == 3
        for pod in pods:
            ref = pod["metadata"]["ownerReferences"][0]
            assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                           "uid": rs["metadata"]["uid"], "controller": True,
                           "blockOwnerDeletion": True}
            assert pod["metadata"]["name"].startswith("web-")
        st = await _status(client, ns, "web")
        assert st["fullyLabeledReplicas"] == 3 and st["observedGeneration"] == 1
        victim = pods[0]["metadata"]["name"]
        await client.delete("", "v1", "pods", victim, ns)

        async def replaced() -> bool:
            names = {p["metadata"]["name"] for p in await live_pods_in(client, ns, "app=web")}
            return len(names) == 3 and victim not in names

        await eventually(replaced, "the deleted pod is replaced")
        await eventually(all_available, "3 pods are available again")
        reasons = [e["reason"] for e in await events_for(client, ns, "web")]
        assert reasons.count("SuccessfulCreate") == 4


async def test_pods_naming_a_missing_service_account_are_refused(client: Client,
                                                                  ns: str) -> None:
    # Straight away, as upstream's ServiceAccount admission (the `default` account of
    # this brand-new namespace is there by then or waited for).
    pod = {"metadata": {"name": "lone"}, "spec": {
        "serviceAccountName": "ghost", "automountServiceAccountToken": False,
        "containers": [{"name": "c", "image": "nginx:1"}]}}
    with pytest.raises(StatusError) as err:
        await client.create("", "v1", "pods", pod, ns)
    assert (err.value.code, err.value.reason) == (403, "Forbidden")
    assert err.value.message == (f'pods "lone" is forbidden: error looking up service account '
                                 f'{ns}/ghost: serviceaccount "ghost" not found')
    del pod["spec"]["serviceAccountName"]
    assert (await client.create("", "v1", "pods", pod, ns))["spec"]["serviceAccountName"] == \
        "default"
    # A controller's pods are named by generateName, which is what the refusal quotes.
    rs = replicaset("ghostly", 1, {"app": "g"})
    rs["spec"]["template"]["spec"]["serviceAccountName"] = "ghost"
    await client.create("apps", "v1", "replicasets", rs, ns)

    async def refused() -> list[str]:
        return [e["message"] for e in await events_for(client, ns, "ghostly")
                if e["reason"] == "FailedCreate"]

    messages = await eventually(refused, "the ReplicaSet reports FailedCreate")
    assert messages[0] == (f'Error creating: pods "ghostly-" is forbidden: error looking up '
                           f'service account {ns}/ghost: serviceaccount "ghost" not found')
    assert await live_pods_in(client, ns, "app=g") == []


async def test_replicaset_never_overshoots_under_a_burst(client: Client, ns: str) -> None:
    await client.create("apps", "v1", "replicasets", replicaset("burst", 20, {"app": "b"}), ns)

    async def twenty() -> bool:
        return (await _status(client, ns, "burst")).get("replicas") == 20

    await eventually(twenty, "20 pods exist")
    await asyncio.sleep(0.5)
    assert len(await live_pods_in(client, ns, "app=b")) == 20


async def test_orphans_are_adopted_and_relabelled_pods_released(client: Client,
                                                                 ns: str) -> None:
    orphan = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "orphan", "labels": {"app": "adopt"}},
              "spec": pod_template({})["spec"]}
    await client.create("", "v1", "pods", orphan, ns)
    rs = await client.create("apps", "v1", "replicasets", replicaset("adopt", 2,
                                                                     {"app": "adopt"}), ns)

    async def adopted() -> bool:
        pod = await client.get("", "v1", "pods", "orphan", ns)
        refs = pod["metadata"].get("ownerReferences") or []
        return bool(refs) and refs[0]["uid"] == rs["metadata"]["uid"]

    await eventually(adopted, "the orphan is adopted")

    async def two() -> bool:
        return len(await live_pods_in(client, ns, "app=adopt")) == 2

    await eventually(two, "the set has exactly two pods")
    # Relabel the adopted pod: the set releases it and makes a replacement.
    await client.patch("", "v1", "pods", "orphan", {"metadata": {"labels": {"app": "gone"}}},
                       ns)

    async def released() -> bool:
        pod = await client.get("", "v1", "pods", "orphan", ns)
        return not pod["metadata"].get("ownerReferences")

    await eventually(released, "the relabelled pod is released")
    await eventually(two, "a replacement is created")


async def test_scale_down_removes_not_ready_pods_first(client: Client, ns: str) -> None:
    slow: set[str] = set()

    def ready(pod: Obj) -> bool:
        return pod["metadata"]["name"] not in slow

    async with FakeKubelet(client, ns, ready=ready) as kubelet:
        await client.create("apps", "v1", "replicasets", replicaset("sd", 4, {"app": "sd"}),
                            ns)

        async def four_ready() -> bool:
            return (await _status(client, ns, "sd")).get("readyReplicas") == 4

        await eventually(four_ready, "4 pods are ready")
        names = sorted(p["metadata"]["name"] for p in await live_pods_in(client, ns, "app=sd"))
        slow.update(names[:2])
        kubelet.poke()

        async def two_ready() -> bool:
            return (await _status(client, ns, "sd")).get("readyReplicas") == 2

        await eventually(two_ready, "two pods turned not ready")
        await client.patch("apps", "v1", "replicasets", "sd", {"spec": {"replicas": 2}}, ns,
                           subresource="scale")

        async def survivors() -> set[str] | None:
            left = {p["metadata"]["name"] for p in await live_pods_in(client, ns, "app=sd")}
            return left if len(left) == 2 else None

        left = await eventually(survivors, "scaled down to 2")
        assert left == set(names[2:])

        async def deletes_recorded() -> bool:
            # Events are written in the background, and repeats fold into a count.
            events = await events_for(client, ns, "sd")
            return sum(e.get("count") or 1 for e in events
                       if e["reason"] == "SuccessfulDelete") == 2

        await eventually(deletes_recorded, "both deletions are recorded as events")


async def test_min_ready_seconds_delays_availability(client: Client, ns: str) -> None:
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "replicasets",
                            replicaset("mr", 1, {"app": "mr"}, minReadySeconds=2), ns)

        async def ready() -> bool:
            return (await _status(client, ns, "mr")).get("readyReplicas") == 1

        await eventually(ready, "the pod is ready")
        assert "availableReplicas" not in await _status(client, ns, "mr")

        async def available() -> bool:
            return (await _status(client, ns, "mr")).get("availableReplicas") == 1

        await eventually(available, "the pod is available after minReadySeconds", timeout=8)


async def test_replication_controller_shares_the_replica_logic(client: Client,
                                                                ns: str) -> None:
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
          "spec": {"replicas": 2, "template": pod_template({"app": "rc"})}}
    created = await client.create("", "v1", "replicationcontrollers", rc, ns)
    assert created["spec"]["selector"] == {"app": "rc"}
    assert created["metadata"]["labels"] == {"app": "rc"}
    async with FakeKubelet(client, ns):
        async def ready() -> bool:
            st = await _status(client, ns, "rc", "replicationcontrollers", "")
            return st.get("readyReplicas") == 2 and st.get("availableReplicas") == 2

        await eventually(ready, "the RC's pods are ready")
        scale = await client.patch("", "v1", "replicationcontrollers", "rc",
                                   {"spec": {"replicas": 1}}, ns, subresource="scale")
        assert scale["status"]["selector"] == "app=rc"

        async def one() -> bool:
            return len(await live_pods_in(client, ns, "app=rc")) == 1

        await eventually(one, "the RC scaled down")
    pod = (await live_pods_in(client, ns, "app=rc"))[0]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"


async def test_replication_controller_validation(client: Client, ns: str) -> None:
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "bad"},
          "spec": {"selector": {"app": "x"}, "template": pod_template({"app": "y"})}}
    with pytest.raises(StatusError) as err:
        await client.create("", "v1", "replicationcontrollers", rc, ns)
    assert err.value.code == 422
    assert "`selector` does not match template `labels`" in err.value.message


async def test_replication_controller_follows_a_changed_selector(client: Client,
                                                                 ns: str) -> None:
    # An RC's selector, unlike a ReplicaSet's, may change: pods it no longer selects
    # are released and replaced by pods the new selector matches.
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "sel"},
          "spec": {"replicas": 2, "selector": {"app": "sel"},
                   "template": pod_template({"app": "sel", "tier": "a"})}}
    await client.create("", "v1", "replicationcontrollers", rc, ns)

    async def owned(tier: str) -> list[Obj]:
        return [p for p in await live_pods_in(client, ns, f"app=sel,tier={tier}")
                if p["metadata"].get("ownerReferences")]

    async def two_a() -> bool:
        return len(await owned("a")) == 2

    await eventually(two_a, "the RC made its first pods")
    await client.patch("", "v1", "replicationcontrollers", "sel",
                       {"spec": {"selector": {"app": "sel", "tier": "b"},
                                 "template": pod_template({"app": "sel", "tier": "b"})}},
                       ns, patch_type="merge")

    async def moved() -> bool:
        return len(await owned("b")) == 2 and not await owned("a")

    await eventually(moved, "the old pods are released and new ones made")
    released = await live_pods_in(client, ns, "app=sel,tier=a")
    assert len(released) == 2, "released pods are orphaned, not deleted"

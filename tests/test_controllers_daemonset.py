"""The DaemonSet controller inside a real `skiff up`, pods driven by the fake kubelet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from skiff.api.errors import StatusError
from skiff.client import Client
from skiff.controllers import daemonset_nodes as dn
from tests.controller_helpers import container, events_for, eventually, new_namespace, pods_in
from tests.fake_kubelet import FakeKubelet, finish_pod

Obj = dict[str, Any]


@pytest.fixture
async def ns(client: Client) -> AsyncIterator[str]:
    name = await new_namespace(client)
    yield name
    # Nodes are cluster-wide: each test removes the ones it made.
    nodes = await client.list("", "v1", "nodes")
    for n in nodes.get("items") or []:
        if n["metadata"]["name"].startswith(f"{name}-"):
            await client.delete("", "v1", "nodes", n["metadata"]["name"])


async def add_node(client: Client, name: str, labels: dict[str, str] | None = None,
                   taints: list[Obj] | None = None) -> None:
    body: Obj = {"apiVersion": "v1", "kind": "Node",
                 "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                       **(labels or {})}},
                 "spec": {"taints": taints} if taints else {}}
    await client.create("", "v1", "nodes", body)


def ds(name: str, **spec: Any) -> Obj:
    pod_spec = spec.pop("podSpec", {})
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [container("agent", "agent:1")],
                                           **pod_spec}},
                     **spec}}


async def placement(client: Client, ns: str, app: str) -> dict[str, str]:
    """node → image of the running pods of the DaemonSet (not being deleted)."""
    out: dict[str, str] = {}
    for p in await pods_in(client, ns, f"app={app}"):
        if (p["metadata"].get("deletionTimestamp") or not p["spec"].get("nodeName")
                or (p.get("status") or {}).get("phase") != "Running"):
            continue
        out[p["spec"]["nodeName"]] = p["spec"]["containers"][0]["image"]
    return out


async def get_ds(client: Client, ns: str, name: str) -> Obj:
    return await client.get("apps", "v1", "daemonsets", name, ns)


async def test_follows_nodes_selectors_and_taints(client: Client, ns: str) -> None:
    n = f"{ns}-"
    await add_node(client, n + "a", {"disk": "ssd"})
    await add_node(client, n + "b", {"disk": "ssd"}, taints=[
        {"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    await add_node(client, n + "c", {"disk": "hdd"})
    await add_node(client, n + "d", {"disk": "ssd"})
    await client.patch("", "v1", "nodes", n + "d", {"spec": {"unschedulable": True}})
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "daemonsets", ds("agent", podSpec={
            "nodeSelector": {"disk": "ssd"}}), ns)

        async def on(nodes: set[str]) -> bool:
            return set(await placement(client, ns, "agent")) == nodes
        # b is tainted, c not selected; d is cordoned but daemons tolerate that.
        await eventually(lambda: on({n + "a", n + "d"}), "pods on a and d")
        pod = [p for p in await pods_in(client, ns, "app=agent")
               if p["spec"]["nodeName"] == n + "a"][0]
        terms = pod["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert terms == [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                           "values": [n + "a"]}]}]
        keys = {t.get("key") for t in pod["spec"]["tolerations"]}
        assert {"node.kubernetes.io/unschedulable", "node.kubernetes.io/not-ready"} <= keys
        assert pod["metadata"]["labels"]["controller-revision-hash"]
        assert pod["metadata"]["labels"]["pod-template-generation"] == "1"

        # A node joins; a label change makes another eligible.
        await add_node(client, n + "e", {"disk": "ssd"})
        await client.patch("", "v1", "nodes", n + "c", {"metadata": {"labels": {"disk": "ssd"}}})
        await eventually(lambda: on({n + "a", n + "c", n + "d", n + "e"}), "pods follow nodes")

        async def status() -> Obj | None:
            s = await get_ds(client, ns, "agent")
            st = s.get("status") or {}
            return s if (st.get("desiredNumberScheduled") == 4
                         and st.get("numberAvailable") == 4) else None
        s = await eventually(status, "status counts four")
        st = s["status"]
        assert st["currentNumberScheduled"] == 4 and st["numberReady"] == 4
        assert st["updatedNumberScheduled"] == 4 and st["numberMisscheduled"] == 0
        assert st["observedGeneration"] == s["metadata"]["generation"]

        # A node leaves: its pod goes with it. A NoExecute taint evicts another.
        await client.delete("", "v1", "nodes", n + "e")
        await client.patch("", "v1", "nodes", n + "a", {"spec": {"taints": [
            {"key": "maintenance", "effect": "NoExecute"}]}})
        await eventually(lambda: on({n + "c", n + "d"}), "pods leave with their nodes")
        reasons = {e["reason"] for e in await events_for(client, ns, "agent")}
        assert {"SuccessfulCreate", "SuccessfulDelete"} <= reasons


async def test_rolling_update_max_unavailable(client: Client, ns: str) -> None:
    nodes = [f"{ns}-{i}" for i in range(3)]
    for name in nodes:
        await add_node(client, name)
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "daemonsets", ds("roll"), ns)

        async def images(image: str) -> bool:
            got = await placement(client, ns, "roll")
            return set(got) == set(nodes) and set(got.values()) == {image}
        await eventually(lambda: images("agent:1"), "agent:1 on every node")
        live: list[int] = []

        async def count() -> None:
            while True:
                pods = [p for p in await pods_in(client, ns, "app=roll")
                        if not p["metadata"].get("deletionTimestamp")
                        and (p.get("status") or {}).get("phase") == "Running"]
                live.append(len(pods))
                await asyncio.sleep(0.02)
        watcher = asyncio.create_task(count())
        await client.patch("apps", "v1", "daemonsets", "roll", {"spec": {"template": {"spec": {
            "containers": [container("agent", "agent:2")]}}}}, ns, patch_type="strategic")
        await eventually(lambda: images("agent:2"), "agent:2 everywhere")
        watcher.cancel()
        # maxUnavailable 1: never fewer than two of three running.
        assert min(live) >= 2, live

        async def rolled() -> Obj | None:
            s = await get_ds(client, ns, "roll")
            st = s.get("status") or {}
            return s if st.get("updatedNumberScheduled") == 3 and st.get(
                "numberAvailable") == 3 else None
        await eventually(rolled, "status shows the rollout done")
        revs = await client.list("apps", "v1", "controllerrevisions", ns)
        assert sorted(r["revision"] for r in revs["items"]) == [1, 2]


async def test_surge_creates_before_deleting(client: Client, ns: str) -> None:
    node = f"{ns}-only"
    await add_node(client, node)
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "daemonsets", ds("surge", updateStrategy={
            "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}), ns)
        await eventually(lambda: _is(placement(client, ns, "surge"), {node: "agent:1"}),
                         "one pod")
        seen_two = asyncio.Event()

        async def watch() -> None:
            while True:
                pods = [p for p in await pods_in(client, ns, "app=surge")
                        if not p["metadata"].get("deletionTimestamp")]
                if len(pods) == 2:
                    seen_two.set()
                await asyncio.sleep(0.01)
        watcher = asyncio.create_task(watch())
        await client.patch("apps", "v1", "daemonsets", "surge", {"spec": {"template": {"spec": {
            "containers": [container("agent", "agent:2")]}}}}, ns, patch_type="strategic")
        await eventually(lambda: _is(placement(client, ns, "surge"), {node: "agent:2"}),
                         "the new pod replaces the old")
        watcher.cancel()
        assert seen_two.is_set(), "the new pod should run beside the old one for a while"


async def _is(got: Any, want: Any) -> bool:
    return await got == want


async def test_on_delete_and_failed_pod(client: Client, ns: str) -> None:
    node = f"{ns}-x"
    await add_node(client, node)
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "daemonsets",
                            ds("od", updateStrategy={"type": "OnDelete"}), ns)
        await eventually(lambda: _is(placement(client, ns, "od"), {node: "agent:1"}), "a pod")
        await client.patch("apps", "v1", "daemonsets", "od", {"spec": {"template": {"spec": {
            "containers": [container("agent", "agent:2")]}}}}, ns, patch_type="strategic")
        await asyncio.sleep(0.5)
        assert await placement(client, ns, "od") == {node: "agent:1"}
        pod = (await pods_in(client, ns, "app=od"))[0]
        # A failed daemon pod is killed and replaced — here at the new template.
        await finish_pod(client, pod, exit_code=2)
        await eventually(lambda: _is(placement(client, ns, "od"), {node: "agent:2"}),
                         "the failed pod is replaced")
        assert any(e["reason"] == "FailedDaemonPod" for e in await events_for(client, ns, "od"))
        try:
            await client.get("", "v1", "pods", pod["metadata"]["name"], ns)
            raise AssertionError("the failed pod should be gone")
        except StatusError as err:
            assert err.code == 404


async def test_min_ready_seconds_counts_ready_before_available(client: Client, ns: str) -> None:
    node = f"{ns}-m"
    await add_node(client, node)
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "daemonsets", ds("slow", minReadySeconds=4), ns)

        async def status(ready: int, available: int) -> Obj | None:
            st = (await get_ds(client, ns, "slow")).get("status") or {}
            return st if (st.get("numberReady", 0) == ready
                          and st.get("numberAvailable", 0) == available) else None
        # Ready but not yet available for minReadySeconds: counted as such, not stuck at 0.
        st = await eventually(lambda: status(1, 0), "one ready pod not yet available")
        assert st["numberUnavailable"] == 1 and st["currentNumberScheduled"] == 1
        # Nothing changes when the pod turns available: the controller looks again by itself.
        st = await eventually(lambda: status(1, 1), "the pod turns available")
        assert "numberUnavailable" not in st


async def test_succeeded_pod_is_replaced(client: Client, ns: str) -> None:
    node = f"{ns}-s"
    await add_node(client, node)
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "daemonsets", ds("done"), ns)
        await eventually(lambda: _is(placement(client, ns, "done"), {node: "agent:1"}), "a pod")
        pod = (await pods_in(client, ns, "app=done"))[0]
        # A daemon pod that exited cleanly (a node shutdown ends them so) is replaced too.
        await finish_pod(client, pod, exit_code=0)

        async def replaced() -> bool:
            pods = await pods_in(client, ns, "app=done")
            return (await placement(client, ns, "done") == {node: "agent:1"}
                    and all(p["metadata"]["uid"] != pod["metadata"]["uid"] for p in pods))
        await eventually(replaced, "the succeeded pod is replaced")
        events = [e for e in await events_for(client, ns, "done")
                  if e["reason"] == "SucceededDaemonPod"]
        assert events and events[0]["type"] == "Normal"
        assert events[0]["message"] == (f"Found succeeded daemon pod {ns}/"
                                        f"{pod['metadata']['name']} on node {node}, "
                                        "will try to delete it")


async def test_surge_keeps_old_pod_until_new_is_available(client: Client, ns: str) -> None:
    node = f"{ns}-v"
    await add_node(client, node)
    async with FakeKubelet(client, ns):
        strategy = {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
        await client.create("apps", "v1", "daemonsets",
                            ds("sv", minReadySeconds=60, updateStrategy=strategy), ns)
        await eventually(lambda: _is(placement(client, ns, "sv"), {node: "agent:1"}), "one pod")
        await client.patch("apps", "v1", "daemonsets", "sv", {"spec": {"template": {"spec": {
            "containers": [container("agent", "agent:2")]}}}}, ns, patch_type="strategic")

        async def both() -> dict[str, Obj] | None:
            pods = {p["spec"]["containers"][0]["image"]: p
                    for p in await pods_in(client, ns, "app=sv")}
            new = pods.get("agent:2")
            ready = any(c["type"] == "Ready" and c["status"] == "True"
                        for c in ((new or {}).get("status") or {}).get("conditions") or [])
            return pods if ready and "agent:1" in pods else None
        old = (await eventually(both, "the new pod is ready beside the old one"))["agent:1"]
        # Ready is not enough: until the new pod has been ready for minReadySeconds the old
        # one keeps serving.
        await asyncio.sleep(1.0)
        pods = await both()
        assert pods is not None, "the old pod went before the new one was available"
        assert pods["agent:1"]["metadata"]["uid"] == old["metadata"]["uid"]
        assert not pods["agent:1"]["metadata"].get("deletionTimestamp")


@pytest.mark.parametrize("surge", [False, True])
async def test_rollout_retires_pod_of_node_no_longer_taking_new_ones(
        client: Client, ns: str, surge: bool) -> None:
    keep, tainted = f"{ns}-k", f"{ns}-t"
    for name in (keep, tainted):
        await add_node(client, name)
    strategy = ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
                if surge else {"type": "RollingUpdate"})
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "daemonsets", ds("rt", updateStrategy=strategy), ns)
        await eventually(lambda: _is(placement(client, ns, "rt"),
                                     {keep: "agent:1", tainted: "agent:1"}), "a pod per node")
        # NoSchedule: no new daemon pod starts there, the running one may stay.
        await client.patch("", "v1", "nodes", tainted, {"spec": {"taints": [
            {"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}})

        async def misscheduled() -> Obj | None:
            st = (await get_ds(client, ns, "rt")).get("status") or {}
            return st if st.get("numberMisscheduled") == 1 else None
        await eventually(misscheduled, "the pod on the tainted node counts as misscheduled")
        assert await placement(client, ns, "rt") == {keep: "agent:1", tainted: "agent:1"}
        await client.patch("apps", "v1", "daemonsets", "rt", {"spec": {"template": {"spec": {
            "containers": [container("agent", "agent:2")]}}}}, ns, patch_type="strategic")
        # The rollout replaces the pod where it should run and retires the other one.
        await eventually(lambda: _is(placement(client, ns, "rt"), {keep: "agent:2"}),
                         "agent:2 on the untainted node only")

        async def done() -> Obj | None:
            st = (await get_ds(client, ns, "rt")).get("status") or {}
            return st if (st.get("numberMisscheduled") == 0
                          and st.get("updatedNumberScheduled") == 1) else None
        await eventually(done, "nothing misscheduled after the rollout")


async def test_failed_pod_held_by_finalizer_does_not_block_replacement(
        client: Client, ns: str) -> None:
    node = f"{ns}-h"
    await add_node(client, node)
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "daemonsets", ds("held"), ns)
        await eventually(lambda: _is(placement(client, ns, "held"), {node: "agent:1"}), "a pod")
        pod = (await pods_in(client, ns, "app=held"))[0]
        name = pod["metadata"]["name"]
        await client.patch("", "v1", "pods", name,
                           {"metadata": {"finalizers": ["test.skiff.dev/hold"]}}, ns)
        await finish_pod(client, pod, exit_code=1)
        try:
            # The failed pod is deleted but stays (finalizer); a new one runs meanwhile.
            async def replaced() -> bool:
                pods = await pods_in(client, ns, "app=held")
                old = [p for p in pods if p["metadata"]["name"] == name]
                return (bool(old and old[0]["metadata"].get("deletionTimestamp"))
                        and await placement(client, ns, "held") == {node: "agent:1"})
            await eventually(replaced, "a new pod beside the failed one held for deletion")

            async def status() -> Obj | None:
                st = (await get_ds(client, ns, "held")).get("status") or {}
                return st if st.get("numberAvailable") == 1 else None
            st = await eventually(status, "the new pod counts")
            assert st["currentNumberScheduled"] == 1 and st["desiredNumberScheduled"] == 1
        finally:
            await client.patch("", "v1", "pods", name, {"metadata": {"finalizers": None}}, ns)


def test_daemon_tolerations_replace_the_templates_own() -> None:
    spec: Obj = {"tolerations": [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 60},
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
        {"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoSchedule"}]}
    dn.add_daemon_tolerations(spec)
    tolerations = spec["tolerations"]
    # The daemon toleration wins over the template's (no tolerationSeconds: never evicted).
    assert tolerations[0] == {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                              "effect": "NoExecute"}
    # Others stay as written; the missing daemon ones are added once.
    assert tolerations[1] == {"key": "node.kubernetes.io/not-ready", "operator": "Exists"}
    assert tolerations[2]["key"] == "dedicated"
    keys = [(t["key"], t.get("effect")) for t in tolerations]
    assert keys.count(("node.kubernetes.io/not-ready", "NoExecute")) == 1
    assert len(keys) == len(set(keys))
    dn.add_daemon_tolerations(spec)
    assert spec["tolerations"] == tolerations


def test_failed_pod_back_off_starts_over_after_a_quiet_spell(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from skiff.controllers import daemonset as dsmod
    clock = [1000.0]
    monkeypatch.setattr(dsmod.time, "monotonic", lambda: clock[0])
    ctl = dsmod.DaemonSetController.__new__(dsmod.DaemonSetController)
    ctl._failed_backoff = {}
    owner: Obj = {"metadata": {"uid": "u1"}}
    waits = []
    for _ in range(6):
        assert ctl._failed_pod_wait(owner, "n") == 0.0
        waits.append(ctl._failed_pod_wait(owner, "n"))
        clock[0] += waits[-1]
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    # A day without failures: the next one is killed at once and the back-off is 1 s again.
    clock[0] += 86400
    assert ctl._failed_pod_wait(owner, "n") == 0.0
    assert ctl._failed_pod_wait(owner, "n") == 1.0
    # A changed spec (a new observed generation) starts over too.
    for _ in range(3):
        clock[0] += ctl._failed_pod_wait(owner, "n")
        ctl._failed_pod_wait(owner, "n")
    assert ctl._failed_pod_wait(owner, "n") > 1.0
    owner["status"] = {"observedGeneration": 2}
    assert ctl._failed_pod_wait(owner, "n") == 0.0
    assert len(ctl._failed_backoff) == 1, "the old generation's entry is dropped"


def test_a_nodes_pods_rank_scheduled_then_oldest_then_by_name() -> None:
    from skiff.controllers.daemonset import _oldest_first

    def pod(name: str, created: str, node: str = "", phase: str = "Pending") -> Obj:
        return {"metadata": {"name": name, "creationTimestamp": created},
                "spec": {"nodeName": node} if node else {}, "status": {"phase": phase}}
    pods = [pod("d", "2026-01-01T00:00:03Z", "n", "Running"),
            pod("c", "2026-01-01T00:00:01Z"),
            pod("b", "2026-01-01T00:00:02Z", "n"),
            pod("a", "2026-01-01T00:00:02Z", "n")]
    # An older pod that is scheduled but not yet running still ranks before a newer running one.
    assert [p["metadata"]["name"] for p in sorted(pods, key=_oldest_first)] == ["a", "b", "d", "c"]


async def test_recreated_after_orphaning_takes_back_its_history(client: Client, ns: str) -> None:
    node = f"{ns}-o"
    await add_node(client, node)
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "daemonsets", ds("oh"), ns)
        await eventually(lambda: _is(placement(client, ns, "oh"), {node: "agent:1"}), "a pod")
        pod = (await pods_in(client, ns, "app=oh"))[0]
        await client.delete("apps", "v1", "daemonsets", "oh", ns, propagation_policy="Orphan")

        async def orphaned() -> bool:
            revs = (await client.list("apps", "v1", "controllerrevisions", ns))["items"]
            return bool(revs) and all(not r["metadata"].get("ownerReferences") for r in revs)
        await eventually(orphaned, "the revision is orphaned")
        await client.create("apps", "v1", "daemonsets", ds("oh"), ns)

        async def adopted() -> Obj | None:
            d = await get_ds(client, ns, "oh")
            revs = (await client.list("apps", "v1", "controllerrevisions", ns))["items"]
            owners = [(r["metadata"].get("ownerReferences") or [{}])[0].get("uid") for r in revs]
            st = d.get("status") or {}
            return d if (owners == [d["metadata"]["uid"]]
                         and st.get("updatedNumberScheduled") == 1) else None
        d = await eventually(adopted, "the old revision is adopted")
        assert "collisionCount" not in d["status"]
        assert [p["metadata"]["uid"] for p in await pods_in(client, ns, "app=oh")] == [
            pod["metadata"]["uid"]]

"""Node lifecycle controller: taints by node condition and cordon, taint-based eviction
(with the controller's informers seeded and a client that records what it is asked)."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.api import meta as m
from skiff.controllers.node_lifecycle import NodeLifecycleController, wanted_taints
from tests.controller_helpers import seed

Obj = dict[str, Any]


class _RecordingClient:
    """Records patches, deletions and events; every write succeeds."""

    def __init__(self) -> None:
        self.patches: list[tuple[str, Obj, str]] = []
        self.deleted: list[str] = []
        self.events: list[Obj] = []

    async def patch(self, group: str, version: str, plural: str, name: str, patch: Obj,
                    namespace: str = "", **kw: Any) -> Obj:
        self.patches.append((name, patch, kw.get("subresource", "")))
        return {}

    async def delete(self, group: str, version: str, plural: str, name: str,
                     namespace: str = "", **kw: Any) -> Obj:
        self.deleted.append(f"{namespace}/{name}")
        return {}

    async def create(self, group: str, version: str, plural: str, obj: Obj,
                     namespace: str = "") -> Obj:
        self.events.append(obj)
        return obj

    def taint_patches(self) -> list[tuple[str, Obj]]:
        return [(name, p) for name, p, sub in self.patches if "spec" in p and not sub]


def _node(name: str, ready: str = "True", *, unschedulable: bool = False,
          taints: list[Obj] | None = None, **conditions: str) -> Obj:
    conds = [{"type": "Ready", "status": ready, "lastHeartbeatTime": m.rfc3339()}]
    conds += [{"type": t, "status": s} for t, s in conditions.items()]
    spec: Obj = {}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    return {"metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "7"},
            "spec": spec, "status": {"conditions": conds}}


def _pod(name: str, node: str, tolerations: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
            "spec": {"nodeName": node, "tolerations": tolerations or []}}


async def _controller(client: _RecordingClient, nodes: list[Obj],
                      pods: list[Obj] = ()) -> NodeLifecycleController:  # type: ignore[assignment]
    ctrl = NodeLifecycleController(client, grace_period=40)  # type: ignore[arg-type]
    await seed(ctrl.nodes, *nodes)
    await seed(ctrl.pods, *pods)
    await seed(ctrl.leases)
    return ctrl


def test_wanted_taints_follow_conditions_and_cordon() -> None:
    assert wanted_taints(_node("a")) == set()
    assert wanted_taints(_node("a", unschedulable=True)) == {
        ("node.kubernetes.io/unschedulable", "NoSchedule")}
    assert wanted_taints(_node("a", "False")) == {
        ("node.kubernetes.io/not-ready", "NoSchedule"),
        ("node.kubernetes.io/not-ready", "NoExecute")}
    assert wanted_taints(_node("a"), "Unknown") == {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute")}
    pressed = _node("a", MemoryPressure="True", DiskPressure="True", PIDPressure="True",
                    NetworkUnavailable="True")
    assert wanted_taints(pressed) == {
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/network-unavailable", "NoSchedule")}
    # Pressure that is Unknown (a silent node) or False taints nothing.
    assert wanted_taints(_node("a", MemoryPressure="Unknown", DiskPressure="False")) == set()


async def test_cordon_adds_the_unschedulable_taint_and_uncordon_removes_it() -> None:
    client = _RecordingClient()
    mine = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    cordoned = _node("a", unschedulable=True, taints=[mine])
    ctrl = await _controller(client, [cordoned, _node("b")])
    await ctrl.monitor()
    [(name, patch)] = client.taint_patches()
    assert name == "a" and patch["metadata"] == {"resourceVersion": "7"}
    kept, added = patch["spec"]["taints"]
    assert kept == mine
    assert added["key"] == "node.kubernetes.io/unschedulable"
    assert added["effect"] == "NoSchedule" and m.parse_time(added["timeAdded"])

    client.patches.clear()
    uncordoned = _node("a", taints=[mine, added])
    await seed(ctrl.nodes, uncordoned)
    await ctrl.monitor()
    assert client.taint_patches() == [("a", {"metadata": {"resourceVersion": "7"},
                                             "spec": {"taints": [mine]}})]
    # Nothing changes once the taints are right.
    client.patches.clear()
    await seed(ctrl.nodes, _node("a", taints=[mine]))
    await ctrl.monitor()
    assert client.patches == []


async def test_a_node_reporting_not_ready_or_pressure_is_tainted() -> None:
    client = _RecordingClient()
    ctrl = await _controller(client, [_node("a", "False"), _node("b", DiskPressure="True")])
    await ctrl.monitor()
    by_node = {name: {(t["key"], t["effect"]) for t in p["spec"]["taints"]}
               for name, p in client.taint_patches()}
    assert by_node == {
        "a": {("node.kubernetes.io/not-ready", "NoSchedule"),
              ("node.kubernetes.io/not-ready", "NoExecute")},
        "b": {("node.kubernetes.io/disk-pressure", "NoSchedule")}}
    # Ready again: the controller's taints go, not another unreachable pair.
    client.patches.clear()
    tainted = [{"key": "node.kubernetes.io/not-ready", "effect": e, "timeAdded": m.rfc3339()}
               for e in ("NoSchedule", "NoExecute")]
    await seed(ctrl.nodes, _node("a", taints=tainted), _node("b"))
    await ctrl.monitor()
    assert client.taint_patches() == [("a", {"metadata": {"resourceVersion": "7"},
                                             "spec": {"taints": None}})]
    # A silent node's not-ready pair becomes the unreachable one.
    await seed(ctrl.nodes, _node("a", "Unknown", taints=tainted))
    client.patches.clear()
    await ctrl.monitor()
    [(_, patch)] = client.taint_patches()
    assert {(t["key"], t["effect"]) for t in patch["spec"]["taints"]} == {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute")}


@pytest.mark.parametrize("ready", ["False", "Unknown"])
async def test_taint_eviction_marks_and_cancels(ready: str) -> None:
    key = "node.kubernetes.io/not-ready" if ready == "False" else "node.kubernetes.io/unreachable"
    taints = [{"key": key, "effect": e, "timeAdded": m.rfc3339()}
              for e in ("NoSchedule", "NoExecute")]
    waiting = _pod("waiting", "a", [{"key": key, "operator": "Exists", "effect": "NoExecute",
                                     "tolerationSeconds": 300}])
    forever = _pod("forever", "a", [{"operator": "Exists"}])
    client = _RecordingClient()
    ctrl = await _controller(client, [_node("a", ready, taints=taints)],
                             [_pod("plain", "a"), waiting, forever])
    await ctrl.monitor()
    assert client.deleted == ["ns/plain"]
    assert [(e["reason"], e["message"], e["involvedObject"]["name"]) for e in client.events
            if e["involvedObject"]["kind"] == "Pod"] == [
        ("TaintManagerEviction", "Marking for deletion Pod ns/plain", "plain")]

    # The node recovers before the 300 s are up: the waiting pod's deletion is called off.
    client.events.clear()
    await seed(ctrl.nodes, _node("a"))
    await ctrl.monitor()
    assert [(e["reason"], e["message"]) for e in client.events] == [
        ("TaintManagerEviction", "Cancelling deletion of Pod ns/waiting")]
    client.events.clear()
    await ctrl.monitor()
    assert client.events == [] and client.deleted == ["ns/plain"]

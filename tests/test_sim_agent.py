"""The sim agent's event handling: which pod and node events lead to a reconcile."""

from __future__ import annotations

import copy
from typing import Any

from skiff.client.http_client import Client
from skiff.runtime.sim.agent import SimAgent, _Addresses
from skiff.runtime.sim.pod_status import EXIT_AFTER, running_status

Obj = dict[str, Any]


def node(name: str = "n1", ip: str = "10.0.0.1", cidr: str = "10.64.0.0/24") -> Obj:
    return {"metadata": {"name": name, "resourceVersion": "1"}, "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}


def pod(name: str = "p", node_name: str = "n1", status: Obj | None = None) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}",
                         "resourceVersion": "1"},
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "i"}]},
            "status": status or {"phase": "Pending"}}


async def agent_with(*nodes: Obj) -> SimAgent:
    agent = SimAgent(Client("https://127.0.0.1:1"))
    for n in nodes:
        agent.nodes._cache[n["metadata"]["name"]] = n
        agent._node_added(n)
    return agent


def queued(agent: SimAgent) -> set[str]:
    return set(agent.queue._dirty)


async def test_pods_are_queued_until_they_run_as_reported() -> None:
    agent = await agent_with(node())
    p = pod()
    agent._pod_changed(p)
    assert queued(agent) == {"ns/p"}
    agent.queue._dirty.clear()
    ip = agent._addresses.get(node(), "ns/p")
    running = pod(status=running_status(p, "10.0.0.1", ip, "2024-01-01T00:00:00Z"))
    agent._pod_updated(p, running)
    assert queued(agent) == set(), "the echo of the agent's own status write needs nothing"
    # A pod that plans to exit, is being deleted, or shows another address does.
    exiting = copy.deepcopy(running)
    exiting["metadata"]["annotations"] = {EXIT_AFTER: "5s"}
    agent._pod_updated(running, exiting)
    deleting = copy.deepcopy(running)
    deleting["metadata"]["name"] = "q"
    deleting["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    agent._pod_updated(running, deleting)
    assert queued(agent) == {"ns/p", "ns/q"}
    # Pods of nodes that are not simulated are none of the agent's business.
    agent.queue._dirty.clear()
    agent._pod_changed(pod("r", node_name="elsewhere"))
    assert queued(agent) == set()


async def test_node_heartbeats_revisit_pods_only_when_addressing_changes() -> None:
    n = node()
    agent = await agent_with(n)
    p = pod()
    agent.pods._cache["ns/p"] = p
    agent.pods._index_add("ns/p", p)
    agent.queue._dirty.clear()
    beat = copy.deepcopy(n)
    beat["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    agent._node_updated(n, beat)
    assert queued(agent) == set()
    moved = copy.deepcopy(beat)
    moved["status"]["addresses"][0]["address"] = "10.0.0.9"
    agent._node_updated(beat, moved)
    assert queued(agent) == {"ns/p"}


def test_addresses_are_stable_claimable_and_follow_a_new_cidr() -> None:
    addrs = _Addresses()
    n = node()
    first = addrs.get(n, "ns/a")
    assert first == "10.64.0.2" and addrs.get(n, "ns/a") == first
    addrs.claim(n, "ns/b", "10.64.0.7")
    assert addrs.get(n, "ns/b") == "10.64.0.7"
    assert addrs.get(n, "ns/c") == "10.64.0.3"
    addrs.release("ns/a")
    assert addrs.get(n, "ns/d") == "10.64.0.2"
    assert addrs.get(node(cidr="10.65.0.0/24"), "ns/b") == "10.65.0.7"
    assert addrs.get(node(cidr="bad"), "ns/b") == ""

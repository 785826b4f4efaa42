"""Simulated node objects, their address plan and the command-line spec parsing."""

from __future__ import annotations

import pytest

from skiff.api.validation.core import validate_node
from skiff.runtime.sim.manage import natural_key, numbered_specs
from skiff.runtime.sim.nodes import (
    SIM_LABEL,
    SimNodeSpec,
    addresses_for,
    index_of,
    internal_ip,
    is_simulated,
    node_object,
    parse_pairs,
    parse_taint,
)


def test_node_object_has_upstream_labels_capacity_and_ready() -> None:
    spec = SimNodeSpec(name="n1", cpu="8", memory="32Gi", pods=50, zone="zone-b",
                       labels={"disktype": "ssd"}, taints=[parse_taint("dedicated=ml:NoSchedule")],
                       resources={"nvidia.com/gpu": "2"})
    node = node_object(spec, 3)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "n1"
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"] == "amd64"
    assert labels["topology.kubernetes.io/zone"] == "zone-b"
    assert labels["node.kubernetes.io/instance-type"] == "sim.large"
    assert labels["disktype"] == "ssd"
    assert is_simulated(node) and labels[SIM_LABEL] == "true"
    cap = node["status"]["capacity"]
    assert cap == {"cpu": "8", "memory": "32Gi", "pods": "50", "ephemeral-storage": "100Gi",
                   "nvidia.com/gpu": "2"}
    assert node["status"]["allocatable"] == cap
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "True" and ready["reason"] == "KubeletReady"
    assert node["spec"]["taints"] == [{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}]
    assert node["spec"]["podCIDR"] == "10.64.3.0/24"
    assert internal_ip(node) == "172.16.0.4"
    assert index_of(node) == 3
    assert validate_node(node, None) == []


def test_address_plan_is_unique_and_bounded() -> None:
    seen = {addresses_for(i) for i in range(0, 5000)}
    assert len({c for c, _ in seen}) == 5000 and len({h for _, h in seen}) == 5000
    with pytest.raises(ValueError):
        addresses_for(16384)
    assert index_of({"spec": {"podCIDR": "192.168.0.0/24"}}) is None


def test_taint_and_pair_parsing() -> None:
    assert parse_taint("a:NoExecute") == {"key": "a", "effect": "NoExecute"}
    assert parse_taint("k=v:PreferNoSchedule") == {"key": "k", "value": "v",
                                                  "effect": "PreferNoSchedule"}
    for bad in ("k=v", "k=v:Sometimes", ":NoSchedule"):
        with pytest.raises(ValueError):
            parse_taint(bad)
    assert parse_pairs(["a=1", "b="], "label") == {"a": "1", "b": ""}
    with pytest.raises(ValueError):
        parse_pairs(["nope"], "label")
    with pytest.raises(ValueError):
        SimNodeSpec(name="x", cpu="lots").check()


def test_numbered_specs_skip_taken_names_and_rotate_zones() -> None:
    specs = numbered_specs(4, "sim-node-", ["sim-node-2"], SimNodeSpec(name=""))
    assert [s.name for s in specs] == ["sim-node-1", "sim-node-3", "sim-node-4", "sim-node-5"]
    assert [s.zone for s in specs] == ["zone-a", "zone-c", "zone-a", "zone-b"]
    fixed = numbered_specs(2, "n", [], SimNodeSpec(name="", zone="z"))
    assert [s.zone for s in fixed] == ["z", "z"]
    assert sorted(["n10", "n2", "n1"], key=natural_key) == ["n1", "n2", "n10"]

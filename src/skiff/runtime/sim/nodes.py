"""What a simulated node is: its spec on the command line and its Node object.

Simulated nodes carry the label `SIM_LABEL`; the sim agent of `skiff up` watches
Nodes with that label, so nodes added later (by `skiff sim-nodes add`, or by anyone
creating a Node with the label) are picked up without telling the agent.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from skiff.api import meta as m
from skiff.api.quantity import parse_quantity

Obj = dict[str, Any]

SIM_LABEL = "skiff.dev/simulated"
KUBELET_VERSION = "v1.32.4-skiff"
RUNTIME_VERSION = "sim://0.1.0"

# Each node gets a /24 of pod addresses out of this range (16,384 nodes fit) and an
# InternalIP out of HOST_RANGE; neither is routable, as with KWOK.
POD_RANGE = ipaddress.ip_network("10.64.0.0/10")
HOST_RANGE = ipaddress.ip_network("172.16.0.0/12")
MAX_NODES = POD_RANGE.num_addresses // 256

DEFAULT_ZONES = ("zone-a", "zone-b", "zone-c")
DEFAULT_REGION = "sim-region"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_TAINT = re.compile(r"^(?P<key>[^=:]+)(=(?P<value>[^:]*))?:(?P<effect>[A-Za-z]+)$")


@dataclass
class SimNodeSpec:
    """The shape of one simulated node (capacity, placement labels, taints)."""

    name: str
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"
    zone: str = ""
    region: str = DEFAULT_REGION
    instance_type: str = "sim.large"
    arch: str = "amd64"
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    # Extended resources such as nvidia.com/gpu, by name.
    resources: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """Raise ValueError naming the first bad quantity."""
        for what, value in (("cpu", self.cpu), ("memory", self.memory),
                            ("ephemeral-storage", self.ephemeral_storage),
                            *self.resources.items()):
            try:
                parse_quantity(value)
            except ValueError as exc:
                raise ValueError(f"{what}: {value!r} is not a quantity") from exc
        if self.pods < 0:
            raise ValueError("pods must not be negative")


def parse_taint(text: str) -> dict[str, str]:
    """`key=value:Effect` or `key:Effect`, as `kubectl taint` writes them."""
    match = _TAINT.match(text.strip())
    if match is None or match["effect"] not in TAINT_EFFECTS:
        raise ValueError(f"invalid taint {text!r}: want key[=value]:Effect with Effect one of "
                         f"{', '.join(TAINT_EFFECTS)}")
    taint = {"key": match["key"], "effect": match["effect"]}
    if match["value"]:
        taint["value"] = match["value"]
    return taint


def parse_pairs(items: list[str] | None, what: str) -> dict[str, str]:
    """`k=v` arguments as a dict."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"invalid {what} {item!r}: want key=value")
        out[key] = value
    return out


def addresses_for(index: int) -> tuple[str, str]:
    """The pod CIDR and InternalIP of the node with allocation `index` (0-based)."""
    if not 0 <= index < MAX_NODES:
        raise ValueError(f"no addresses left for simulated node number {index + 1}")
    cidr = ipaddress.ip_network((int(POD_RANGE.network_address) + index * 256, 24))
    host = HOST_RANGE.network_address + index + 1
    return str(cidr), str(host)


def index_of(node: Obj) -> int | None:
    """The allocation index a node's pod CIDR says it has (None if not one of ours)."""
    cidr = (node.get("spec") or {}).get("podCIDR") or ""
    try:
        net = ipaddress.ip_network(cidr)
    except ValueError:
        return None
    if net.prefixlen != 24 or not net.subnet_of(POD_RANGE):  # type: ignore[arg-type]
        return None
    return (int(net.network_address) - int(POD_RANGE.network_address)) // 256


def ready_conditions(now: str) -> list[Obj]:
    """The conditions of a healthy node, all heartbeating at `now`."""
    rows = (
        ("MemoryPressure", "False", "KubeletHasSufficientMemory",
         "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    )
    return [{"type": t, "status": s, "reason": r, "message": msg,
             "lastHeartbeatTime": now, "lastTransitionTime": now} for t, s, r, msg in rows]


def node_object(spec: SimNodeSpec, index: int) -> Obj:
    """The Node a simulated node registers as, ready from the start."""
    cidr, host_ip = addresses_for(index)
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": spec.arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": spec.arch,
        "node.kubernetes.io/instance-type": spec.instance_type,
        SIM_LABEL: "true",
    }
    if spec.zone:
        labels["topology.kubernetes.io/zone"] = spec.zone
        if spec.region:
            labels["topology.kubernetes.io/region"] = spec.region
    labels.update(spec.labels)
    capacity = {"cpu": spec.cpu, "memory": spec.memory, "pods": str(spec.pods),
                "ephemeral-storage": spec.ephemeral_storage, **spec.resources}
    now = m.rfc3339()
    node: Obj = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels,
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": ready_conditions(now),
            "addresses": [{"type": "InternalIP", "address": host_ip},
                          {"type": "Hostname", "address": spec.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": "", "osImage": "skiff simulated node",
                "containerRuntimeVersion": RUNTIME_VERSION,
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": spec.arch,
            },
            "phase": "Running",
        },
    }
    if spec.taints:
        node["spec"]["taints"] = [dict(t) for t in spec.taints]
    return node


def is_simulated(node: Obj) -> bool:
    """Whether the sim agent owns this node."""
    return m.labels_of(node).get(SIM_LABEL) == "true"


def internal_ip(node: Obj) -> str:
    """The node's InternalIP address, if it reports one."""
    for addr in (node.get("status") or {}).get("addresses") or []:
        if isinstance(addr, dict) and addr.get("type") == "InternalIP":
            return str(addr.get("address") or "")
    return ""

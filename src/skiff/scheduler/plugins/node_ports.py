"""NodePorts: a host port (protocol, port) can be claimed once per host IP on a node;
0.0.0.0 claims it on every IP."""

from __future__ import annotations

import numpy as np

from skiff.scheduler.cache import ClusterCache, NodeInfo
from skiff.scheduler.framework import CycleState, Status, unschedulable
from skiff.scheduler.pod_info import PodInfo

NAME = "NodePorts"
REASON = "node(s) didn't have free ports for the requested pod ports"
ANY_IP = "0.0.0.0"


def conflicts(info: NodeInfo, wanted: list[tuple[str, str, int]]) -> bool:
    """Whether any wanted host port is taken on the node."""
    if not info.ports:
        return False
    for ip, proto, port in wanted:
        for used_ip, used_proto, used_port in info.ports:
            if used_port == port and used_proto == proto and \
                    (ip == used_ip or ip == ANY_IP or used_ip == ANY_IP):
                return True
    return False


class NodePorts:
    """Filter out nodes where a requested host port is in use."""

    name = NAME

    def filter_mask(self, state: CycleState, pod: PodInfo, cache: ClusterCache
                    ) -> np.ndarray | None:
        """Per slot, whether the wanted host ports are free (None: the pod wants none)."""
        if not pod.ports:
            return None
        mask = np.ones(cache.capacity, dtype=bool)
        for info in cache.nodes.values():
            if info.ports and conflicts(info, pod.ports):
                mask[info.slot] = False
        return mask

    def filter(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
               slots: np.ndarray) -> np.ndarray:
        """Nodes where every requested host port is free."""
        if not pod.ports:
            return np.ones(slots.size, dtype=bool)
        return np.array([not conflicts(cache.info_at(int(s)), pod.ports) for s in slots],
                        dtype=bool)

    def filter_status(self, state: CycleState, pod: PodInfo, cache: ClusterCache,
                      info: NodeInfo) -> Status:
        """The fixed reason."""
        return unschedulable(REASON)

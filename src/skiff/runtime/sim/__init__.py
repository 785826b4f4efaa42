"""Simulated nodes: Node objects kept alive by one shared agent that runs no processes.

Like KWOK, the agent only writes what a kubelet would write (leases, node status, pod
status, the final delete of a terminating pod), so thousands of nodes cost a few
hundred objects' worth of API traffic rather than thousands of processes.
"""

from skiff.runtime.sim.nodes import SIM_LABEL, SimNodeSpec, node_object

__all__ = ["SIM_LABEL", "SimNodeSpec", "node_object"]

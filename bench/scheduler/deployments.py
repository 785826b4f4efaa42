"""The scheduler's CPU per pod for the controllers benchmark's workload, in process.

    python bench/scheduler/deployments.py                    # 1,000 nodes, 1,000 × 10 pods
    python bench/scheduler/deployments.py --nodes 300 --deployments 300 --profile

`bench/controllers/run.py` runs the scheduler beside the controllers and the sim agent,
so its CPU per pod mixes all three. This script drives a real `Scheduler` without an
API server: informer events are applied directly, and bindings go to a stand-in
pipeline that only records them. What it replays is what the scheduler sees there:

- Deployment pods (one `nginx:1` container, no requests, the default tolerations),
  each owned by a ReplicaSet, so the default topology spreading applies;
- pods arriving interleaved over the ReplicaSets in slow-start waves (1, 2, 4, ... per
  ReplicaSet), in chunks that are scheduled as they come;
- each binding's echo (the pod with spec.nodeName), then the sim agent's status update
  (Running), and the node's status gaining the image once a pod ran there.

Only the scheduler's own work is timed (CPU time, not wall time): its event handlers,
the scheduling cycles and the bindings' bookkeeping. Prints µs of CPU per pod and a
BENCH_JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import cProfile
import gc
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from skiff.client import Client  # noqa: E402
from skiff.runtime.sim.agent import SIM_IMAGE_SIZE  # noqa: E402
from skiff.runtime.sim.nodes import DEFAULT_ZONES, SimNodeSpec, node_object  # noqa: E402
from skiff.scheduler.scheduler import Scheduler  # noqa: E402

Obj = dict[str, Any]
NAMESPACE = "many"
IMAGE = "nginx:1"
DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
]


class RecordingPipeline:
    """Stands in for the scheduler's request pipeline: bindings are only recorded."""

    def __init__(self) -> None:
        self.bound: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, body: Obj) -> Obj:
        """Record a binding (pod key, node)."""
        md = body["metadata"]
        self.bound.append((f"{md['namespace']}/{md['name']}", body["target"]["name"]))
        return {}

    async def close(self) -> None:
        """Nothing to close."""


def replica_set(d: int) -> Obj:
    """The ReplicaSet of Deployment `d`."""
    labels = {"app": f"d{d}", "pod-template-hash": f"h{d:06d}"}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"d{d}-h{d:06d}", "namespace": NAMESPACE, "uid": f"rs-{d}",
                         "resourceVersion": "1", "labels": labels},
            "spec": {"replicas": 10, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": IMAGE}]}}}}


def pod(d: int, i: int) -> Obj:
    """Pod `i` of Deployment `d`, as the ReplicaSet controller and admission make it."""
    labels = {"app": f"d{d}", "pod-template-hash": f"h{d:06d}"}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"d{d}-h{d:06d}-{i:05d}", "namespace": NAMESPACE,
                     "uid": f"pod-{d}-{i}", "resourceVersion": "1", "labels": labels,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": f"d{d}-h{d:06d}", "uid": f"rs-{d}",
                                          "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"containers": [{"name": "c", "image": IMAGE, "resources": {},
                                 "imagePullPolicy": "IfNotPresent",
                                 "terminationMessagePath": "/dev/termination-log",
                                 "terminationMessagePolicy": "File"}],
                 "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                 "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
                 "schedulerName": "default-scheduler", "priority": 0,
                 "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
                 "tolerations": copy.deepcopy(DEFAULT_TOLERATIONS)},
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }


def arrival_order(deployments: int, replicas: int) -> list[tuple[int, int]]:
    """(deployment, index) in the order the ReplicaSet controllers create pods: waves of
    1, 2, 4, ... pods per ReplicaSet (slow start), every ReplicaSet in each wave."""
    order = []
    start, size = 0, 1
    while start < replicas:
        end = min(start + size, replicas)
        order += [(d, i) for d in range(deployments) for i in range(start, end)]
        start, size = end, size * 2
    return order


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    """Replay the workload against a scheduler; CPU seconds of the scheduler's work."""
    client = Client("https://127.0.0.1:1")
    s = Scheduler(client, events=False)
    pipeline = RecordingPipeline()
    s.pipeline = pipeline  # type: ignore[assignment]
    nodes: dict[str, Obj] = {}
    for n in range(args.nodes):
        spec = SimNodeSpec(name=f"sim-node-{n + 1}", zone=DEFAULT_ZONES[n % len(DEFAULT_ZONES)])
        node = node_object(spec, n)
        node["metadata"]["resourceVersion"] = "1"
        nodes[spec.name] = node
        await s.nodes._apply("ADDED", node)  # noqa: SLF001 - no API server here
    await s.namespaces._apply("ADDED", {"metadata": {"name": NAMESPACE}})  # noqa: SLF001
    for d in range(args.deployments):
        await s.replicasets._apply("ADDED", replica_set(d))  # noqa: SLF001
    pods = [pod(d, i) for d, i in arrival_order(args.deployments, args.replicas)]
    # The garbage collector as `skiff components` sets it up.
    gc.freeze()
    imaged: set[str] = set()
    cpu = 0.0
    profiler = cProfile.Profile() if args.profile else None
    rv = 1

    def timed_start() -> float:
        if profiler is not None:
            profiler.enable()
        return time.process_time()

    def timed_end(t0: float) -> float:
        spent = time.process_time() - t0
        if profiler is not None:
            profiler.disable()
        return spent

    for c in range(0, len(pods), args.chunk):
        chunk = pods[c:c + args.chunk]
        t0 = timed_start()
        for p in chunk:
            await s.pods._apply("ADDED", p)  # noqa: SLF001
        while (qp := s.queue.pop_nowait()) is not None:
            s.schedule_one(qp)
            await asyncio.sleep(0)
        while s._tasks:  # noqa: SLF001 - the bindings in flight
            await asyncio.sleep(0)
        cpu += timed_end(t0)
        # The echoes of the bindings, then the sim agent's status updates.
        bound, pipeline.bound = pipeline.bound, []
        echoes, running, touched = [], [], set()
        for key, node_name in bound:
            old = s.pods.get(key)
            assert old is not None
            rv += 1
            new = {**old, "metadata": {**old["metadata"], "resourceVersion": str(rv)},
                   "spec": {**old["spec"], "nodeName": node_name}}
            echoes.append(new)
            rv += 1
            running.append({**new, "metadata": {**new["metadata"], "resourceVersion": str(rv)},
                            "status": {**new["status"], "phase": "Running",
                                       "podIP": "10.0.0.1", "startTime": "now"}})
            if node_name not in imaged:
                imaged.add(node_name)
                touched.add(node_name)
        updated = []
        for name in sorted(touched):
            old = nodes[name]
            rv += 1
            new = {**old, "metadata": {**old["metadata"], "resourceVersion": str(rv)},
                   "status": {**old["status"], "images": [{"names": [IMAGE],
                                                           "sizeBytes": SIM_IMAGE_SIZE}]}}
            nodes[name] = new
            updated.append(new)
        t0 = timed_start()
        for new in echoes:
            await s.pods._apply("MODIFIED", new)  # noqa: SLF001
        for new in running:
            await s.pods._apply("MODIFIED", new)  # noqa: SLF001
        for new in updated:
            await s.nodes._apply("MODIFIED", new)  # noqa: SLF001
        cpu += timed_end(t0)
    placed = len(s.cache.pods)
    per_node = [len(info.pods) for info in s.cache.nodes.values()]
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        pstats.Stats(profiler).sort_stats("cumtime").print_stats(40)
    await client.close()
    return {"nodes": args.nodes, "pods": len(pods), "placed": placed,
            "us_per_pod": round(cpu / max(len(pods), 1) * 1e6, 1),
            "pods_per_node_min": min(per_node), "pods_per_node_max": max(per_node)}


def main() -> int:
    """Run the replay and print its figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--deployments", type=int, default=1000)
    p.add_argument("--replicas", type=int, default=10)
    p.add_argument("--chunk", type=int, default=200,
                   help="pods arriving between two scheduling runs")
    p.add_argument("--profile", action="store_true", help="print a cProfile summary")
    gc.set_threshold(20_000, 50, 100)
    out = asyncio.run(drive(p.parse_args()))
    print(f"{out['nodes']} nodes, {out['pods']} pods ({out['placed']} placed, "
          f"{out['pods_per_node_min']}-{out['pods_per_node_max']} per node): "
          f"{out['us_per_pod']} µs scheduler CPU per pod")
    print("BENCH_JSON " + orjson.dumps(out).decode(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

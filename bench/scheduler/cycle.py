"""The scheduling cycle alone, in process: filter → score → select → assume per pod.

    python bench/scheduler/cycle.py                    # 5,000 nodes, 1,000 + 5,000 pods
    python bench/scheduler/cycle.py --variant spread --profile

No API server, no bindings: this measures the CPU time (not wall time, so that other
load on the machine matters less) the scheduler spends deciding, which bounds what
`run.py` can reach end to end. Nodes and pods are those of `run.py`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from bench.scheduler.run import NAMESPACE, ZONES, pod_body  # noqa: E402
from skiff.runtime.sim.nodes import SimNodeSpec, node_object  # noqa: E402
from skiff.scheduler.algorithm import Algorithm, default_framework  # noqa: E402
from skiff.scheduler.cache import ClusterCache  # noqa: E402
from skiff.scheduler.explain import scheduled  # noqa: E402
from skiff.scheduler.framework import CycleState  # noqa: E402
from skiff.scheduler.pod_info import pod_info  # noqa: E402

BATCH = 250


def _pod(i: int, prefix: str, variant: str) -> dict[str, Any]:
    body = pod_body(i, prefix, variant)
    body["metadata"]["uid"] = f"uid-{prefix}-{i}"
    body["metadata"]["namespace"] = NAMESPACE
    return body


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Fill a cache, then time the cycles of the measured pods."""
    cache = ClusterCache()
    for i in range(args.nodes):
        spec = SimNodeSpec(name=f"node-{i}", cpu="4", memory="32Gi", pods=110,
                           zone=ZONES[i % len(ZONES)])
        cache.set_node(node_object(spec, i))
    algorithm = Algorithm(default_framework())

    def place(prefix: str, n: int) -> list[float]:
        """Schedule n pods; CPU seconds per batch of BATCH pods."""
        pods = [pod_info(_pod(i, prefix, args.variant)) for i in range(n)]
        batches = []
        for b in range(0, n, BATCH):
            t0 = time.process_time()
            for pod in pods[b:b + BATCH]:
                state = CycleState()
                decision = algorithm.schedule(state, pod, cache)
                cache.assume(pod, decision.node)
                if args.explain:
                    scheduled(decision, cache, cache.node_count())
            batches.append((time.process_time() - t0) / len(pods[b:b + BATCH]))
        return batches

    place("init", args.init_pods)
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    batches = place("pod", args.pods)
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    mean = sum(batches) / len(batches)
    # The best batch is the figure least disturbed by other load on the machine.
    best = min(batches)
    return {"variant": args.variant, "nodes": args.nodes, "pods": args.pods,
            "explain": args.explain, "us_per_pod": round(mean * 1e6, 1),
            "best_us_per_pod": round(best * 1e6, 1), "pods_per_s": round(1 / mean, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=5000)
    p.add_argument("--init-pods", type=int, default=1000)
    p.add_argument("--pods", type=int, default=5000)
    p.add_argument("--variant", choices=["basic", "spread"], default="basic")
    p.add_argument("--no-explain", dest="explain", action="store_false",
                   help="leave out building the explanation annotation")
    p.add_argument("--profile", action="store_true", help="print a cProfile summary")
    out = run(p.parse_args())
    print(f"{out['variant']}, {out['nodes']} nodes: {out['us_per_pod']} µs CPU per pod "
          f"(best batch {out['best_us_per_pod']} µs; {out['pods_per_s']} pods per CPU second)")
    print("BENCH_JSON " + orjson.dumps(out).decode(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

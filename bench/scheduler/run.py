"""Scheduler benchmark in the shape of upstream scheduler_perf's SchedulingBasic.

    python bench/scheduler/run.py                      # 5,000 nodes, 1,000 + 10,000 pods
    python bench/scheduler/run.py --nodes 500          # the 500-node variant
    python bench/scheduler/run.py --variant spread     # topology spread + anti-affinity

The API server (`skiff up --no-controllers --nodes 0`: no controllers, no node agent)
and the scheduler (`skiff scheduler`) run as separate processes pinned to separate
cores; this script is the client. As in scheduler_perf, nodes are plain Node objects
and no kubelet (nor the sim agent) runs: pods stay bound but not Running, and nothing
else competes with the bindings. Steps:

1. create the nodes; create the initial pods and start the scheduler; wait until
   they are bound (watching pods);
2. stop the scheduler and create the measured pods (so that pod creation, a write as
   costly as a binding, does not share the API server with the bindings);
3. start the scheduler again and count bindings as a watch sees them (pod modified
   with spec.nodeName set), per second.

Printed: pods/s over the measured pods (from the first to the last binding, and from
the scheduler's start, which includes its list-and-sync), and the p50/p90/p99 of the
per-second throughput samples, as upstream reports them; then a BENCH_JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from bench.api.benchlib import (  # noqa: E402
    CLK_TCK,
    CPUMeter,
    Server,
    free_port,
    percentile,
    pin,
)
from skiff.client import Client  # noqa: E402
from skiff.runtime.sim.nodes import SimNodeSpec, node_object  # noqa: E402

NAMESPACE = "bench"
ZONES = [f"zone-{i}" for i in range(10)]


def pod_body(i: int, prefix: str, variant: str) -> dict[str, Any]:
    """A pod like scheduler_perf's default pod template (pause, 100m CPU, 500Mi)."""
    labels = {"app": prefix}
    spec: dict[str, Any] = {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                                            "resources": {"requests": {"cpu": "100m",
                                                                       "memory": "500Mi"}}}]}
    if variant == "spread":
        group = f"g{i % 100}"
        labels["group"] = group
        spec["topologySpreadConstraints"] = [{
            "maxSkew": 5, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": prefix}}}]
        spec["affinity"] = {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": {"group": group}},
                "topologyKey": "kubernetes.io/hostname"}]}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{prefix}-{i}", "namespace": NAMESPACE, "labels": labels},
            "spec": spec}


async def run_bounded(n: int, concurrency: int, op: Any) -> float:
    """Run op(0..n-1) with `concurrency` workers; returns the seconds taken."""
    next_i = 0
    t0 = time.perf_counter()

    async def worker() -> None:
        nonlocal next_i
        while next_i < n:
            i = next_i
            next_i += 1
            await op(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0


class BindWatch:
    """Counts bindings of pods with a name prefix, as a watch reports them."""

    def __init__(self, client: Client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix + "-"
        self.times: list[float] = []
        self.seen: set[str] = set()
        self.ready = asyncio.Event()

    async def run(self, rv: str) -> None:
        self.ready.set()
        async for kind, obj in self.client.watch("", "v1", "pods", NAMESPACE,
                                                 resource_version=rv, timeout_seconds=3600):
            name = (obj.get("metadata") or {}).get("name", "")
            if kind in ("ADDED", "MODIFIED") and name.startswith(self.prefix) \
                    and (obj.get("spec") or {}).get("nodeName") and name not in self.seen:
                self.seen.add(name)
                self.times.append(time.perf_counter())


def start_scheduler(kubeconfig: Path, cpu: int | None, log: Path,
                    events: bool) -> subprocess.Popen[bytes]:
    """`skiff scheduler` in its own process, pinned to `cpu`."""

    def preexec() -> None:
        if cpu is not None:
            pin({cpu})

    cmd = [sys.executable, "-m", "skiff.cli.main", "scheduler", "--kubeconfig", str(kubeconfig)]
    if not events:
        cmd.append("--no-events")
    out = open(log, "ab")  # noqa: SIM115 - owned by the child's lifetime
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, preexec_fn=preexec,
                            env=env)
    out.close()
    return proc


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process `pid` used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def start_profiler(pid: int, output: str) -> subprocess.Popen[bytes]:
    """py-spy sampling the scheduler process `pid` into `output` (speedscope JSON, or
    collapsed stacks when the name ends in .txt)."""
    fmt = "raw" if output.endswith(".txt") else "speedscope"
    spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen([str(spy), "record", "-p", str(pid), "-r", "200", "-f", fmt,
                             "-o", output], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s (by PID)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_bound(watch: BindWatch, count: int, timeout: float) -> bool:
    """Wait until `count` bindings were seen."""
    deadline = time.perf_counter() + timeout
    while len(watch.times) < count:
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def per_second(times: list[float], start: float) -> list[int]:
    """Bindings in each whole second after `start` (scheduler_perf's throughput samples)."""
    if not times:
        return []
    buckets = [0] * (int(max(times) - start) + 1)
    for t in times:
        buckets[int(t - start)] += 1
    return buckets


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="skiff-bench-sched-"))
    # API only (Server starts it without controllers, scheduler or node agents): as in
    # scheduler_perf, nodes are bare Node objects.
    server = Server(data / "server", free_port())
    cpus = os.cpu_count() or 1
    server.start(0 if cpus > 1 else None)
    kubeconfig = server.data_dir / "kubeconfig"
    client = Client.from_kubeconfig(str(kubeconfig), component="bench")
    sched_log = data / "scheduler.log"
    sched: subprocess.Popen[bytes] | None = None
    out: dict[str, Any] = {"variant": args.variant, "nodes": args.nodes,
                           "init_pods": args.init_pods, "measured_pods": args.pods,
                           "events": not args.no_events}
    try:
        await client.create("", "v1", "namespaces", {"metadata": {"name": NAMESPACE}})
        # No serviceaccounts controller runs here, and admission refuses pods whose
        # account does not exist.
        await client.create("", "v1", "serviceaccounts", {"metadata": {"name": "default"}},
                            NAMESPACE)

        async def make_node(i: int) -> None:
            spec = SimNodeSpec(name=f"node-{i}", cpu="4", memory="32Gi", pods=110,
                               zone=ZONES[i % len(ZONES)])
            await client.create("", "v1", "nodes", node_object(spec, i))

        out["node_create_s"] = round(await run_bounded(args.nodes, 32, make_node), 2)

        async def make(prefix: str, n: int) -> float:
            async def one(i: int) -> None:
                await client.create("", "v1", "pods", pod_body(i, prefix, args.variant),
                                    NAMESPACE)
            return await run_bounded(n, 32, one)

        # 1. initial pods, placed by the scheduler.
        rv = (await client.list("", "v1", "pods", NAMESPACE, limit=1))["metadata"][
            "resourceVersion"]
        init_watch = BindWatch(client, "init")
        init_task = asyncio.ensure_future(init_watch.run(rv))
        await make("init", args.init_pods)
        sched = start_scheduler(kubeconfig, 1 if cpus > 1 else None, sched_log,
                                not args.no_events)
        if not await wait_bound(init_watch, args.init_pods, args.timeout):
            raise RuntimeError(f"initial pods not bound: {len(init_watch.times)}")
        init_task.cancel()
        stop_process(sched)
        sched = None
        # 2. measured pods, created while no scheduler runs.
        out["pod_create_per_s"] = round(args.pods / await make("pod", args.pods), 1)
        rv = (await client.list("", "v1", "pods", NAMESPACE, limit=1))["metadata"][
            "resourceVersion"]
        watch = BindWatch(client, "pod")
        watch_task = asyncio.ensure_future(watch.run(rv))
        await watch.ready.wait()
        await asyncio.sleep(0.2)
        # 3. schedule them, counting bindings.
        with CPUMeter(server) as meter:
            started = time.perf_counter()
            sched = start_scheduler(kubeconfig, 1 if cpus > 1 else None, sched_log,
                                    not args.no_events)
            profilers = []
            if args.profile:
                profilers.append(start_profiler(sched.pid, args.profile))
            if args.profile_server:
                assert server.proc is not None
                profilers.append(start_profiler(server.proc.pid, args.profile_server))
            done = await wait_bound(watch, args.pods, args.timeout)
            # The scheduler started in this phase: all its CPU time is this phase's.
            sched_cpu = cpu_seconds(sched.pid)
            for profiler in profilers:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(30)
        watch_task.cancel()
        times = sorted(watch.times)
        events = (await client.list("", "v1", "events", NAMESPACE)).get("items") or []
        out["scheduled_events"] = sum(1 for e in events if e.get("reason") == "Scheduled")
        out["bound"] = len(times)
        out["completed"] = done
        if len(times) >= 2:
            first, last = times[0], times[-1]
            samples = per_second(times, first)
            steady = sorted(samples[:-1] or samples)
            out["pods_per_s"] = round(len(times) / max(last - first, 1e-9), 1)
            out["pods_per_s_from_start"] = round(len(times) / (last - started), 1)
            out["sync_s"] = round(first - started, 2)
            out["p50"] = percentile(steady, 50)
            out["p90"] = percentile(steady, 90)
            out["p99"] = percentile(steady, 99)
            out["server_cpu"] = meter.result.get("server_cpu")
            out["bench_client_cpu"] = meter.result.get("client_cpu")
            # CPU per pod is what other load on the machine disturbs least.
            out["scheduler_cpu_ms_per_pod"] = round(sched_cpu * 1000 / len(times), 3)
            out["server_cpu_ms_per_pod"] = round(meter.server_s * 1000 / len(times), 3)
    finally:
        if sched is not None:
            stop_process(sched)
        await client.close()
        server.stop()
        if not args.keep:
            server.cleanup()
            sched_log.unlink(missing_ok=True)
    return out


def report(out: dict[str, Any]) -> None:
    """A small table."""
    rows = [
        ("workload", f"{out['variant']}: {out['nodes']} nodes, {out['init_pods']} initial + "
                     f"{out['measured_pods']} measured pods"),
        ("kubelets", "none, as in scheduler_perf (pods stay bound, not Running)"),
        ("events", f"recorded at <= 50/s after a burst of 100 (kube-scheduler's client rate); "
                   f"{out.get('scheduled_events')} Scheduled events by the end"
                   if out["events"] else "off"),
        ("node creation", f"{out.get('node_create_s')} s"),
        ("pod creation", f"{out.get('pod_create_per_s')} pods/s"),
        ("bound (measured)", f"{out.get('bound')} (complete: {out.get('completed')})"),
        ("throughput, first→last bind", f"{out.get('pods_per_s')} pods/s"),
        ("throughput incl. scheduler sync", f"{out.get('pods_per_s_from_start')} pods/s "
                                            f"(sync {out.get('sync_s')} s)"),
        ("per-second p50 / p90 / p99", f"{out.get('p50')} / {out.get('p90')} / "
                                       f"{out.get('p99')} pods/s"),
        ("API server CPU while binding", f"{out.get('server_cpu')} cores, "
                                         f"{out.get('server_cpu_ms_per_pod')} ms per pod"),
        ("scheduler CPU (incl. its sync)", f"{out.get('scheduler_cpu_ms_per_pod')} ms per pod"),
        ("this client's CPU (watching)", f"{out.get('bench_client_cpu')} cores"),
    ]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=5000)
    p.add_argument("--init-pods", type=int, default=1000)
    p.add_argument("--pods", type=int, default=10000)
    p.add_argument("--variant", choices=["basic", "spread"], default="basic")
    p.add_argument("--no-events", action="store_true", help="scheduler records no events")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait per phase")
    p.add_argument("--profile", metavar="FILE",
                   help="sample the scheduler with py-spy during the measured phase")
    p.add_argument("--profile-server", metavar="FILE",
                   help="sample the API server with py-spy during the measured phase")
    p.add_argument("--keep", action="store_true", help="keep the data folder and logs")
    args = p.parse_args()
    out = asyncio.run(bench(args))
    report(out)
    print("BENCH_JSON " + orjson.dumps(out).decode(), flush=True)
    return 0 if out.get("completed") else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Workload controller benchmark: many Deployments at once, and one big rolling update.

    python bench/controllers/run.py            # 1,000 sim nodes, 1,000 × 10, 1,000-replica update
    python bench/controllers/run.py --quick    # 50 nodes, 50 × 10, a 100-replica update
    python bench/controllers/run.py --profile DIR   # also py-spy both processes in phase 1

The cluster is a plain `skiff up --sim-nodes N`: its API server in one process, and the
controller manager, the scheduler and the sim agent (which moves bound pods to Running
and Ready) in its `skiff components` child. This script is only a client: it creates
the Deployments, follows them through a watch and reads the components' /metrics
(`--components-metrics-port`) for reconciles and API requests.

1. D Deployments × R replicas created at once (32 requests in flight): the time until
   every one reports R updated, ready and available replicas (target: 10,000 pods in
   under 30 s);
2. a rolling update (new image) of one Deployment of B replicas: the time until it
   reports B updated and available replicas again.

Reconciles are the ReplicaSet and Deployment controllers' processed keys; API requests
are the controller manager's (watches excluded). Prints a table and `BENCH_JSON {...}`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from bench.api.benchlib import CLK_TCK, free_port  # noqa: E402
from skiff.client import Client  # noqa: E402
from skiff.client.informer import Informer  # noqa: E402
from skiff.client.metrics import parse as parse_metrics  # noqa: E402

TARGET_ALL_AVAILABLE_S = 30.0
WORKLOAD_QUEUES = ("deployments", "replicasets")
CREATE_CONCURRENCY = 32


class Cluster:
    """`skiff up --sim-nodes N` and its components child."""

    def __init__(self, data: Path, nodes: int) -> None:
        self.data = data
        self.nodes = nodes
        self.port = free_port()
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        """Start it; ready once the kubeconfig exists and the components answer."""
        self.data.mkdir(parents=True, exist_ok=True)
        log = open(self.data / "server.log", "wb")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skiff.cli.main", "up", "--nodes", "0",
             "--data-dir", str(self.data), "--port", str(self.port),
             "--sim-nodes", str(self.nodes),
             "--components-metrics-port", str(self.metrics_port)],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while not (self.data / "kubeconfig").exists() or not self.components_pid():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.log()[-3000:])
            time.sleep(0.05)

    def log(self) -> str:
        """What the cluster printed."""
        return (self.data / "server.log").read_text(errors="replace")

    def components_pid(self) -> int:
        """The `skiff components` child's pid (0 until it runs)."""
        assert self.proc is not None
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return 0
        return int(children.split()[0]) if children.split() else 0

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Figures:
    """Reconciles, API requests and CPU over one phase, from /metrics and /proc."""

    def __init__(self, cluster: Cluster, session: aiohttp.ClientSession) -> None:
        self.cluster = cluster
        self.session = session
        self.start: dict[str, float] = {}

    async def sample(self) -> dict[str, float]:
        """The counters now."""
        url = f"http://127.0.0.1:{self.cluster.metrics_port}/metrics"
        async with self.session.get(url) as resp:
            metrics = parse_metrics(await resp.text())
        out: dict[str, float] = {"reconciles": 0.0, "all_reconciles": 0.0}
        for labels, n in metrics.get("workqueue_work_duration_seconds_count", {}).items():
            name = dict(labels)["name"]
            if name in WORKLOAD_QUEUES:
                out["reconciles"] += n
            if name != "sim-pods":
                out["all_reconciles"] += n
        for labels, n in metrics.get("rest_client_requests_total", {}).items():
            lab = dict(labels)
            if lab["method"] != "WATCH":
                key = f"requests:{lab['component']}"
                out[key] = out.get(key, 0.0) + n
                key = f"by:{lab['component']} {lab['method']}"
                out[key] = out.get(key, 0.0) + n
        assert self.cluster.proc is not None
        out["cpu:apiserver"] = cpu_seconds(self.cluster.proc.pid)
        out["cpu:components"] = cpu_seconds(self.cluster.components_pid())
        out["t"] = time.perf_counter()
        return out

    async def begin(self) -> None:
        """Start a phase."""
        self.start = await self.sample()

    async def end(self, seconds: float) -> dict[str, Any]:
        """The phase's figures; `seconds` is its measured duration."""
        now = await self.sample()
        d = {k: now.get(k, 0.0) - self.start.get(k, 0.0) for k in now}
        wall = max(d["t"], 1e-9)
        reconciles = int(d["reconciles"])
        requests = int(d.get("requests:controller-manager", 0))
        by = {k[3:]: int(v) for k, v in sorted(d.items()) if k.startswith("by:") and v}
        return {
            "reconciles": reconciles,
            "reconciles_per_s": round(reconciles / seconds, 1),
            "all_controller_reconciles": int(d["all_reconciles"]),
            "api_requests": requests,
            "requests_per_reconcile": round(requests / max(reconciles, 1), 2),
            "scheduler_requests": int(d.get("requests:scheduler", 0)),
            "sim_agent_requests": int(d.get("requests:sim-agent", 0)),
            "apiserver_cpu": round(d["cpu:apiserver"] / wall, 2),
            "components_cpu": round(d["cpu:components"] / wall, 2),
            "apiserver_cpu_s": round(d["cpu:apiserver"], 2),
            "components_cpu_s": round(d["cpu:components"], 2),
            "requests_by_component": by,
        }


def deployment(name: str, replicas: int, image: str = "nginx:1") -> dict[str, Any]:
    """A Deployment of `replicas` pods."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def rolled_out(d: dict[str, Any]) -> bool:
    """Whether a Deployment reports every replica updated, ready and available."""
    want = (d.get("spec") or {}).get("replicas", 1)
    st = d.get("status") or {}
    return (st.get("observedGeneration", 0) >= d["metadata"].get("generation", 0)
            and st.get("updatedReplicas") == want and st.get("availableReplicas") == want
            and st.get("readyReplicas") == want and st.get("replicas") == want)


class Progress:
    """Follows the Deployments of one namespace through a watch."""

    def __init__(self, client: Client, namespace: str) -> None:
        self.informer = Informer(client, "apps", "v1", "deployments", namespace)
        self.done: set[str] = set()
        self.changed = asyncio.Event()
        self.informer.on_add(self._seen)
        self.informer.on_update(lambda _old, new: self._seen(new))

    def _seen(self, d: dict[str, Any]) -> None:
        name = d["metadata"]["name"]
        if rolled_out(d):
            self.done.add(name)
        else:
            self.done.discard(name)
        self.changed.set()

    def available_pods(self) -> int:
        """availableReplicas summed over the Deployments."""
        return sum((d.get("status") or {}).get("availableReplicas") or 0
                   for d in self.informer.list())

    async def wait(self, names: set[str], t0: float, timeout: float,
                   timeline: list[tuple[float, int]]) -> float:
        """Seconds from `t0` until every Deployment in `names` rolled out."""
        next_mark = 1.0
        while not names <= self.done:
            now = time.perf_counter() - t0
            if now > timeout:
                raise TimeoutError(f"{len(names - self.done)} of {len(names)} Deployments "
                                   f"not rolled out after {timeout} s")
            if now >= next_mark:
                timeline.append((round(now, 1), self.available_pods()))
                next_mark = now + 1.0
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 0.2)
            except TimeoutError:
                pass
        return time.perf_counter() - t0


async def wait_nodes(client: Client, count: int, timeout: float = 120) -> None:
    """Until `count` nodes exist (the sim agent registers them Ready)."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = (await client.list("", "v1", "nodes"))["items"]
        if len(nodes) >= count:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(nodes)} of {count} nodes registered")
        await asyncio.sleep(0.5)


def start_profiles(cluster: Cluster, folder: Path | None, seconds: float
                   ) -> list[subprocess.Popen[bytes]]:
    """py-spy both processes for `seconds` (collapsed stacks into `folder`)."""
    if folder is None:
        return []
    spy = Path(sys.executable).parent / "py-spy"
    folder.mkdir(parents=True, exist_ok=True)
    assert cluster.proc is not None
    procs = []
    for name, pid in (("apiserver", cluster.proc.pid), ("components", cluster.components_pid())):
        procs.append(subprocess.Popen(
            [str(spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "50",
             "--duration", str(int(seconds)), "--nonblocking", "--output",
             str(folder / f"{name}.txt")], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
    return procs


async def bench(cluster: Cluster, args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Run both phases against the cluster."""
    client = Client.from_kubeconfig(cluster.data / "kubeconfig", component="bench")
    session = aiohttp.ClientSession()
    figures = Figures(cluster, session)
    try:
        await wait_nodes(client, args.nodes)
        for ns in ("many", "big"):
            await client.create("", "v1", "namespaces", {"metadata": {"name": ns}})
        many = Progress(client, "many")
        big = Progress(client, "big")
        tasks = [many.informer.start(), big.informer.start()]
        await many.informer.has_synced.wait()
        await big.informer.has_synced.wait()
        await asyncio.sleep(2)  # let the components settle after registering the nodes

        # Phase 1: D Deployments × R replicas created at once.
        sem = asyncio.Semaphore(CREATE_CONCURRENCY)

        async def create(i: int) -> None:
            async with sem:
                await client.create("apps", "v1", "deployments",
                                    deployment(f"d{i}", args.replicas), "many")

        names = {f"d{i}" for i in range(args.deployments)}
        spies = start_profiles(cluster, args.profile, args.profile_seconds)
        await figures.begin()
        t0 = time.perf_counter()
        await asyncio.gather(*(create(i) for i in range(args.deployments)))
        created = time.perf_counter() - t0
        timeline: list[tuple[float, int]] = []
        total = await many.wait(names, t0, args.timeout, timeline)
        out["many"] = {"deployments": args.deployments, "replicas": args.replicas,
                       "pods": args.deployments * args.replicas,
                       "create_s": round(created, 2), "all_available_s": round(total, 2),
                       **await figures.end(total), "timeline": timeline}
        for p in spies:
            p.wait()

        # Phase 2: a rolling update of one big Deployment.
        t1 = time.perf_counter()
        await client.create("apps", "v1", "deployments", deployment("big", args.big), "big")
        await big.wait({"big"}, t1, args.timeout, [])
        await asyncio.sleep(1)
        await figures.begin()
        t0 = time.perf_counter()
        big.done.discard("big")
        await client.patch("apps", "v1", "deployments", "big",
                           {"spec": {"template": {"spec": {"containers": [
                               {"name": "c", "image": "nginx:2"}]}}}}, "big",
                           patch_type="strategic")
        timeline = []
        rolled = await big.wait({"big"}, t0, args.timeout, timeline)
        out["rolling_update"] = {"replicas": args.big, "seconds": round(rolled, 2),
                                 **await figures.end(rolled), "timeline": timeline}
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await session.close()
        await client.close()


def report(out: dict[str, Any]) -> None:
    """The human-readable table."""
    many, roll = out["many"], out["rolling_update"]

    def row(label: str, value: object) -> None:
        print(f"{label:<44}{value!s:>14}")

    row("nodes (simulated)", out["nodes"])
    row("deployments x replicas", f"{many['deployments']} x {many['replicas']}")
    row("  creating them took (s)", f"{many['create_s']:.2f}")
    row("  all pods available after (s)", f"{many['all_available_s']:.2f}")
    for phase in (many, roll):
        if phase is roll:
            row("rolling update of replicas", roll["replicas"])
            row("  rolled out after (s)", f"{roll['seconds']:.2f}")
        row("  reconciles (Deployment + ReplicaSet)", phase["reconciles"])
        row("  reconciles / s", phase["reconciles_per_s"])
        row("  controller API requests / reconcile", phase["requests_per_reconcile"])
        row("  scheduler / sim agent API requests",
            f"{phase['scheduler_requests']} / {phase['sim_agent_requests']}")
        row("  CPU: API server / components (cores)",
            f"{phase['apiserver_cpu']} / {phase['components_cpu']}")
        pods = phase.get("pods") or phase["replicas"]
        row("  CPU per pod: API server / components (ms)",
            f"{1000 * phase['apiserver_cpu_s'] / pods:.1f} / "
            f"{1000 * phase['components_cpu_s'] / pods:.1f}")
    print("available pods per second (phase 1): "
          + " ".join(f"{t:.0f}s:{n}" for t, n in many["timeline"]))
    print("targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}"
                                  for k, v in out["targets"].items()))


def main() -> int:
    """Run the benchmark and print its figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small run for development")
    p.add_argument("--nodes", type=int, default=0)
    p.add_argument("--deployments", type=int, default=0)
    p.add_argument("--replicas", type=int, default=10)
    p.add_argument("--big", type=int, default=0, help="replicas of the rolled Deployment")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--profile", type=Path, default=None,
                   help="py-spy the API server and the components in phase 1 (into DIR)")
    p.add_argument("--profile-seconds", type=float, default=30.0)
    args = p.parse_args()
    args.nodes = args.nodes or (50 if args.quick else 1000)
    args.deployments = args.deployments or (50 if args.quick else 1000)
    args.big = args.big or (100 if args.quick else 1000)
    out: dict[str, Any] = {"quick": args.quick, "nodes": args.nodes}
    tmp = Path(tempfile.mkdtemp(prefix="skiff-bench-controllers-"))
    cluster = Cluster(tmp / "data", args.nodes)
    try:
        cluster.start()
        asyncio.run(bench(cluster, args, out))
    except BaseException:
        print(cluster.log()[-3000:], file=sys.stderr)
        raise
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    out["targets"] = {"all_available<30s": out["many"]["all_available_s"]
                      < TARGET_ALL_AVAILABLE_S}
    report(out)
    print("BENCH_JSON " + orjson.dumps(out).decode(), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())

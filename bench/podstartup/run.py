"""Pod startup latency: created → Running and Ready, seen by a watch.

Run as `.venv/bin/python bench/podstartup/run.py [--pods 100] [--nodes 3] [--rate 20]`.
Starts `skiff up --nodes N` (process runtime) on a free port with a temporary data
folder, creates the pods at a steady rate, spread over the nodes by spec.nodeName
(no scheduler involved), each running `sleep`, and watches them: a pod's latency is
the time from just before its create request to the watch event that shows it
Running with Ready=True. With every pod running it reads each agent's resident
memory, and beside it what the node spends on its containers' supervision: the
agent's shim zygote (resident) and its shims (proportional set size, since shims
forked from the zygote share most of their pages). Prints a table and the same
figures as one line of JSON prefixed `BENCH_JSON `. Target: p99 under 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from skiff.client.http_client import Client  # noqa: E402

TARGET_P99_MS = 300.0
NAMESPACE = "bench"


def free_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of sorted values."""
    if not values:
        return 0.0
    k = max(0, min(len(values) - 1, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pss_mb(pid: int) -> float:
    """Proportional set size of a process in MiB (shared pages split among sharers)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """The pids of a process's children."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def helpers(agent_pid: int) -> tuple[float, float, int]:
    """(zygote RSS, shims' total PSS, number of shims) of one agent, in MiB."""
    for pid in children(agent_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"zygote.py" in cmdline:
            shims = children(pid)
            return rss_mb(pid), sum(pss_mb(s) for s in shims), len(shims)
    return 0.0, 0.0, 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ready(pod: dict[str, Any]) -> bool:
    """Running with the Ready condition True."""
    status = pod.get("status") or {}
    if status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in status.get("conditions") or [])


async def wait_nodes(client: Client, n: int, timeout: float = 30) -> None:
    """Until `n` nodes report Ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = (await client.list("", "v1", "nodes")).get("items") or []
        if sum(ready_node(x) for x in nodes) >= n:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("nodes did not become Ready")


def ready_node(node: dict[str, Any]) -> bool:
    """Whether a node is Ready."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


async def measure(client: Client, pods: int, nodes: int, rate: float) -> dict[str, float]:
    """Create the pods and return each one's latency in seconds."""
    try:
        await client.create("", "v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": NAMESPACE}})
    except Exception:  # noqa: BLE001 - it may exist from an earlier run in this folder
        pass
    # Admission holds pods until the namespace's `default` account exists; wait for it
    # here so that wait is not counted as pod startup.
    for _ in range(100):
        if (await client.list("", "v1", "serviceaccounts", NAMESPACE)).get("items"):
            break
        await asyncio.sleep(0.05)
    created: dict[str, float] = {}
    done: dict[str, float] = {}
    all_ready = asyncio.Event()
    rv = (await client.list("", "v1", "pods", NAMESPACE))["metadata"]["resourceVersion"]

    async def watch() -> None:
        async for _kind, pod in client.watch("", "v1", "pods", NAMESPACE, resource_version=rv,
                                             timeout_seconds=300):
            name = pod["metadata"]["name"]
            if name not in done and ready(pod):
                done[name] = time.perf_counter()
                if len(done) == pods:
                    all_ready.set()
                    return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.2)

    async def create(i: int) -> None:
        name = f"p{i:04d}"
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"nodeName": f"node-{i % nodes + 1}", "terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "c", "image": "busybox",
                                         "command": ["sleep", "3600"]}]}}
        created[name] = time.perf_counter()
        await client.create("", "v1", "pods", body, NAMESPACE)

    tasks = []
    start = time.perf_counter()
    for i in range(pods):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(create(i)))
    await asyncio.gather(*tasks)
    await asyncio.wait_for(all_ready.wait(), 120)
    watcher.cancel()
    return {n: done[n] - created[n] for n in created}


async def run(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """Start the cluster, measure, read agent memory, tear down."""
    port = free_port()
    log = open(data / "skiff.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "skiff.cli.main", "up", "--data-dir",
                             str(data), "--port", str(port), "--nodes", str(args.nodes)],
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    try:
        deadline = time.monotonic() + 30
        while not (data / "kubeconfig").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data / "skiff.log").read_text())
            await asyncio.sleep(0.05)
        client = Client.from_kubeconfig(data / "kubeconfig", component="bench")
        await wait_nodes(client, args.nodes)
        await asyncio.sleep(1)
        agent_pids = {f.parent.name: int(f.read_text())
                      for f in sorted((data / "agents").glob("*/agent.pid"))}
        cpu_before = {"server": cpu_seconds(proc.pid),
                      **{k: cpu_seconds(v) for k, v in agent_pids.items()}}
        latencies = await measure(client, args.pods, args.nodes, args.rate)
        cpu_used = {"server": cpu_seconds(proc.pid) - cpu_before["server"],
                    **{k: cpu_seconds(v) - cpu_before[k] for k, v in agent_pids.items()}}
        await asyncio.sleep(1)
        agents = {}
        zygotes = {}
        shims = {}
        for pid_file in sorted((data / "agents").glob("*/agent.pid")):
            agent_pid = int(pid_file.read_text())
            agents[pid_file.parent.name] = rss_mb(agent_pid)
            zygote_rss, shims_pss, count = helpers(agent_pid)
            zygotes[pid_file.parent.name] = zygote_rss
            shims[pid_file.parent.name] = (shims_pss, count)
        await client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    ms = sorted(v * 1000 for v in latencies.values())
    return {"pods": args.pods, "nodes": args.nodes, "rate_per_s": args.rate,
            "p50_ms": round(percentile(ms, 50), 1), "p90_ms": round(percentile(ms, 90), 1),
            "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(ms[-1], 1),
            "agent_rss_mb": {k: round(v, 1) for k, v in agents.items()},
            "zygote_rss_mb": {k: round(v, 1) for k, v in zygotes.items()},
            "shims_pss_mb": {k: round(v[0], 1) for k, v in shims.items()},
            "shims": {k: v[1] for k, v in shims.items()},
            "cpu_ms_per_pod": {k: round(v * 1000 / args.pods, 1) for k, v in cpu_used.items()},
            "target_p99_ms": TARGET_P99_MS}


def main() -> None:
    """Parse flags, run, print."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pods", type=int, default=100)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--rate", type=float, default=20.0, help="pod creations per second")
    args = p.parse_args()
    data = Path(tempfile.mkdtemp(prefix="skiff-podstartup-"))
    try:
        result = asyncio.run(run(args, data))
    finally:
        shutil.rmtree(data, ignore_errors=True)
    print(f"pod startup: {result['pods']} pods on {result['nodes']} agents, "
          f"{result['rate_per_s']:g} creations/s")
    print(f"{'metric':<22}{'value':>12}{'target':>12}")
    for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
        target = f"{TARGET_P99_MS:g}" if key == "p99_ms" else ""
        print(f"{key:<22}{result[key]:>12}{target:>12}")
    for node, mb in result["agent_rss_mb"].items():
        print(f"{'rss ' + node + ' (MiB)':<22}{mb:>12}")
    for node, mb in result["zygote_rss_mb"].items():
        print(f"{'rss zygote ' + node[-1] + ' (MiB)':<22}{mb:>12}")
    for node, mb in result["shims_pss_mb"].items():
        label = f"pss {result['shims'][node]} shims {node[-1]}"
        print(f"{label + ' (MiB)':<22}{mb:>12}")
    for part, ms in result["cpu_ms_per_pod"].items():
        print(f"{'cpu/pod ' + part + ' (ms)':<22}{ms:>12}")
    print("BENCH_JSON " + orjson.dumps(result).decode())


if __name__ == "__main__":
    main()

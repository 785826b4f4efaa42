"""Workload controller benchmark: many Deployments at once, and one big rolling update.

    python bench/controllers/run.py            # 1,000 sim nodes, 1,000 × 10, 1,000-replica update
    python bench/controllers/run.py --quick    # 50 nodes, 50 × 10, a 100-replica update

A `skiff up --no-controllers --sim-nodes N` serves the API and runs the simulated
nodes; the ReplicaSet and Deployment controllers run in this process (they are
API clients like any other), so their reconciles and API requests can be counted.
Until the scheduler runs in `skiff up`, a watch-driven binder here places pods
round robin (with a scheduler present its bindings lose and are ignored).

Prints a table and one line `BENCH_JSON {...}`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

from skiff.api.errors import StatusError
from skiff.client import Client
from skiff.client.informer import Informer
from skiff.controllers.deployment import DeploymentController
from skiff.controllers.replicaset import ReplicaSetController

TARGET_ALL_AVAILABLE_S = 30.0


class CountingClient(Client):
    """A client that counts the requests it sends (watches excluded)."""

    requests = 0

    async def request(self, *args: Any, **kw: Any) -> Any:  # noqa: D102 - counts, then sends
        CountingClient.requests += 1
        return await super().request(*args, **kw)


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data: Path, port: int, nodes: int) -> subprocess.Popen[bytes]:
    """`skiff up --no-controllers --sim-nodes N`, ready once the kubeconfig exists."""
    data.mkdir(parents=True, exist_ok=True)
    log = open(data / "server.log", "wb")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen([sys.executable, "-m", "skiff.cli.main", "up", "--no-controllers",
                             "--data-dir", str(data), "--port", str(port),
                             "--sim-nodes", str(nodes)], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 60
    while not (data / "kubeconfig").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((data / "server.log").read_text()[-3000:])
        time.sleep(0.05)
    return proc


class Binder:
    """Binds unbound pods to Ready nodes round robin, driven by a pod watch."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.pods = Informer(client, "", "v1", "pods", field_selector="spec.nodeName=")
        self.nodes: list[str] = []
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.pods.on_add(lambda p: self.queue.put_nowait(
            (p["metadata"]["namespace"], p["metadata"]["name"])))
        self._next = 0

    async def run(self, workers: int = 16) -> None:
        """Bind until cancelled."""
        while len(self.nodes) == 0:
            items = (await self.client.list("", "v1", "nodes"))["items"]
            self.nodes = sorted(n["metadata"]["name"] for n in items)
            await asyncio.sleep(0.1)
        task = self.pods.start()
        try:
            await asyncio.gather(*(self._worker() for _ in range(workers)))
        finally:
            self.pods.stop()
            task.cancel()

    async def _worker(self) -> None:
        while True:
            ns, name = await self.queue.get()
            node = self.nodes[self._next % len(self.nodes)]
            self._next += 1
            with contextlib.suppress(StatusError, OSError):
                await self.client.request(
                    "POST", self.client.path("", "v1", "pods", name, ns, "binding"),
                    body={"apiVersion": "v1", "kind": "Binding",
                          "metadata": {"name": name, "namespace": ns},
                          "target": {"apiVersion": "v1", "kind": "Node", "name": node}})


def deployment(name: str, replicas: int, image: str = "nginx:1") -> dict[str, Any]:
    """A Deployment of `replicas` pods."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


async def wait_available(client: Client, ns: str, count: int, replicas: int,
                         timeout: float) -> float:
    """Seconds until `count` Deployments in `ns` all report `replicas` available."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        items = (await client.list("apps", "v1", "deployments", ns))["items"]
        done = sum(1 for d in items if (d.get("status") or {}).get(
            "availableReplicas") == replicas and (d.get("status") or {}).get(
            "updatedReplicas") == replicas and (d.get("status") or {}).get(
            "replicas") == replicas)
        if done == count:
            return time.perf_counter() - t0
        await asyncio.sleep(0.25)
    raise TimeoutError(f"not all {count} deployments available after {timeout} s")


async def bench(kubeconfig: Path, args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Run both phases against the server."""
    client = CountingClient.from_kubeconfig(kubeconfig, component="bench-controllers")
    side = Client.from_kubeconfig(kubeconfig, component="bench")
    pods = Informer(client, "", "v1", "pods")
    replicasets = Informer(client, "apps", "v1", "replicasets")
    rs_ctrl = ReplicaSetController(client, pods=pods, owners=replicasets, workers=8)
    d_ctrl = DeploymentController(client, replicasets=replicasets, pods=pods, workers=8)
    binder = Binder(side)
    tasks = [pods.start(), replicasets.start(), asyncio.create_task(rs_ctrl.run()),
             asyncio.create_task(d_ctrl.run()), asyncio.create_task(binder.run())]
    try:
        for ns in ("many", "big"):
            await side.create("", "v1", "namespaces", {"metadata": {"name": ns}})
        while len(binder.nodes) < args.nodes:
            binder.nodes = []
            await asyncio.sleep(0.5)
            items = (await side.list("", "v1", "nodes"))["items"]
            binder.nodes = sorted(n["metadata"]["name"] for n in items)
        # Phase 1: D deployments × R replicas created at once.
        sem = asyncio.Semaphore(32)

        async def create(i: int) -> None:
            async with sem:
                await side.create("apps", "v1", "deployments",
                                  deployment(f"d{i}", args.replicas), "many")

        req0, rec0 = CountingClient.requests, rs_ctrl.reconciles + d_ctrl.reconciles
        t0 = time.perf_counter()
        await asyncio.gather(*(create(i) for i in range(args.deployments)))
        created = time.perf_counter() - t0
        waited = await wait_available(side, "many", args.deployments, args.replicas,
                                      args.timeout)
        total = created + waited
        reconciles = rs_ctrl.reconciles + d_ctrl.reconciles - rec0
        requests = CountingClient.requests - req0
        out["many"] = {"deployments": args.deployments, "replicas": args.replicas,
                       "pods": args.deployments * args.replicas,
                       "create_s": round(created, 2), "all_available_s": round(total, 2),
                       "reconciles": reconciles,
                       "reconciles_per_s": round(reconciles / total, 1),
                       "api_requests": requests,
                       "requests_per_reconcile": round(requests / max(reconciles, 1), 2)}
        # Phase 2: a rolling update of one big Deployment.
        await side.create("apps", "v1", "deployments", deployment("big", args.big), "big")
        await wait_available(side, "big", 1, args.big, args.timeout)
        req0, rec0 = CountingClient.requests, rs_ctrl.reconciles + d_ctrl.reconciles
        t0 = time.perf_counter()
        await side.patch("apps", "v1", "deployments", "big",
                         {"spec": {"template": {"spec": {"containers": [
                             {"name": "c", "image": "nginx:2"}]}}}}, "big",
                         patch_type="strategic")
        await asyncio.sleep(0.5)
        rolled = await wait_available(side, "big", 1, args.big, args.timeout) + 0.5
        reconciles = rs_ctrl.reconciles + d_ctrl.reconciles - rec0
        requests = CountingClient.requests - req0
        out["rolling_update"] = {"replicas": args.big, "seconds": round(rolled, 2),
                                 "reconciles": reconciles,
                                 "reconciles_per_s": round(reconciles / rolled, 1),
                                 "api_requests": requests,
                                 "requests_per_reconcile": round(requests / max(reconciles, 1),
                                                                 2)}
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
        await side.close()


def report(out: dict[str, Any]) -> None:
    """The human-readable table."""
    many, roll = out["many"], out["rolling_update"]
    print(f"{'nodes (simulated)':<42}{out['nodes']:>12}")
    print(f"{'deployments x replicas':<42}{many['deployments']:>6} x {many['replicas']:<4}")
    print(f"{'  creating them took':<42}{many['create_s']:>10.2f} s")
    print(f"{'  all pods available after':<42}{many['all_available_s']:>10.2f} s")
    print(f"{'  reconciles / s':<42}{many['reconciles_per_s']:>12}")
    print(f"{'  API requests / reconcile':<42}{many['requests_per_reconcile']:>12}")
    print(f"{'rolling update of replicas':<42}{roll['replicas']:>12}")
    print(f"{'  rolled out after':<42}{roll['seconds']:>10.2f} s")
    print(f"{'  reconciles / s':<42}{roll['reconciles_per_s']:>12}")
    print(f"{'  API requests / reconcile':<42}{roll['requests_per_reconcile']:>12}")
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
    args = p.parse_args()
    args.nodes = args.nodes or (50 if args.quick else 1000)
    args.deployments = args.deployments or (50 if args.quick else 1000)
    args.big = args.big or (100 if args.quick else 1000)
    out: dict[str, Any] = {"quick": args.quick, "nodes": args.nodes}
    tmp = Path(tempfile.mkdtemp(prefix="skiff-bench-controllers-"))
    proc = start_server(tmp / "data", free_port(), args.nodes)
    try:
        asyncio.run(bench(tmp / "data" / "kubeconfig", args, out))
    except BaseException:
        print((tmp / "data" / "server.log").read_text(errors="replace")[-3000:],
              file=sys.stderr)
        raise
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    out["targets"] = {"all_available<30s": out["many"]["all_available_s"]
                      < TARGET_ALL_AVAILABLE_S}
    report(out)
    print("BENCH_JSON " + orjson.dumps(out).decode(), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())

"""API server benchmark: startup, memory, and create/get/list/watch through HTTPS.

Run as `.venv/bin/python bench/api/run.py [--quick]`. Starts `skiff up
--no-controllers --nodes 0` on a free loopback port with a temporary data folder, pinned to
CPU 0; this process is the load generator, pinned to CPU 1 (one asyncio loop,
aiohttp with a keep-alive connection pool, bearer-token auth, TLS verified
against the cluster CA). Prints a table and the same figures as one line of JSON
prefixed `BENCH_JSON `.

Server and client CPU use are reported per phase as fractions of one core: a
phase whose server CPU is near 1.0 is limited by the server, one whose client
CPU is near 1.0 by the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from benchlib import CPUMeter, Server, closed_loop, free_port, pin, summary_ms

TARGETS = {"startup_s": 0.5, "creates_per_s": 2000, "create_p99_ms": 50, "rss_idle_mb": 100}


class API:
    """A small HTTPS client of the server under test."""

    def __init__(self, server: Server, pool: int) -> None:
        self.base = f"https://127.0.0.1:{server.port}"
        conn = aiohttp.TCPConnector(limit=pool, ssl=server.tls_context(),
                                    keepalive_timeout=60)
        self.session = aiohttp.ClientSession(
            connector=conn, headers={"Authorization": f"Bearer {server.token()}"},
            timeout=aiohttp.ClientTimeout(total=None, sock_read=60))

    async def close(self) -> None:
        """Close the pool."""
        await self.session.close()

    async def request(self, method: str, path: str, body: bytes | None = None,
                      params: dict[str, str] | None = None) -> tuple[int, bytes]:
        """(status, body) of one request."""
        headers = {"Content-Type": "application/json"} if body is not None else None
        async with self.session.request(method, self.base + path, data=body, params=params,
                                        headers=headers) as resp:
            return resp.status, await resp.read()


def configmap(name: str) -> bytes:
    """A small ConfigMap, like a typical application's."""
    return orjson.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "api"}},
        "data": {"config.yaml": "replicas: 3\nlevel: info\n", "mode": "fast"},
    })


async def create_range(api: API, ns: str, start: int, count: int, concurrency: int,
                       time_cap: float) -> dict[str, Any]:
    """Create ConfigMaps cm-START … in `ns`."""
    path = f"/api/v1/namespaces/{ns}/configmaps"

    async def op(i: int) -> bool:
        status, _ = await api.request("POST", path, configmap(f"cm-{start + i:05d}"))
        return status == 201

    return await closed_loop(count, concurrency, op, time_cap)


async def list_figures(api: API, ns: str, repeats: int) -> dict[str, Any]:
    """Latency of a full list and of a paged (limit=500) traversal."""
    path = f"/api/v1/namespaces/{ns}/configmaps"
    full: list[float] = []
    items = 0
    size = 0
    for _ in range(repeats):
        t = time.perf_counter()
        status, body = await api.request("GET", path)
        full.append(time.perf_counter() - t)
        assert status == 200, body[:200]
        size = len(body)
    items = len(orjson.loads(body)["items"])
    pages: list[float] = []
    traversals: list[float] = []
    for _ in range(repeats):
        cont = ""
        t_all = time.perf_counter()
        seen = 0
        while True:
            params = {"limit": "500"}
            if cont:
                params["continue"] = cont
            t = time.perf_counter()
            status, body = await api.request("GET", path, params=params)
            pages.append(time.perf_counter() - t)
            assert status == 200, body[:200]
            doc = orjson.loads(body)
            seen += len(doc["items"])
            cont = doc["metadata"].get("continue", "")
            if not cont:
                break
        traversals.append(time.perf_counter() - t_all)
        assert seen == items, (seen, items)
    return {"items": items, "bytes": size, "full": summary_ms(full),
            "paged500_page": summary_ms(pages),
            "paged500_total_ms": round(statistics.median(traversals) * 1000, 2)}


async def watch_figures(api: API, server: Server, watchers: int, writes: int,
                        concurrency: int) -> dict[str, Any]:
    """Open `watchers` watches on one namespace, burst `writes` creates into it, and
    time each event's delivery to each watcher."""
    ns = "bench-watch"
    status, body = await api.request("POST", "/api/v1/namespaces", orjson.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
    assert status == 201, body[:200]
    status, body = await api.request("GET", f"/api/v1/namespaces/{ns}/configmaps",
                                     params={"limit": "1"})
    rv = orjson.loads(body)["metadata"]["resourceVersion"]
    conn = aiohttp.TCPConnector(limit=0, ssl=server.tls_context())
    wsession = aiohttp.ClientSession(
        connector=conn, headers={"Authorization": f"Bearer {server.token()}"},
        timeout=aiohttp.ClientTimeout(total=None, sock_read=None))
    received: list[list[tuple[bytes, float]]] = [[] for _ in range(watchers)]
    opened = 0
    all_open = asyncio.Event()
    done_count = 0
    all_done = asyncio.Event()
    url = f"{api.base}/api/v1/namespaces/{ns}/configmaps"

    async def watcher(k: int) -> None:
        nonlocal opened, done_count
        mine = received[k]
        params = {"watch": "1", "resourceVersion": rv}
        async with wsession.get(url, params=params) as resp:
            assert resp.status == 200
            # Headers arrive once the server has subscribed this watch.
            opened += 1
            if opened == watchers:
                all_open.set()
            async for line in resp.content:
                now = time.perf_counter()
                ev = orjson.loads(line)
                if ev["type"] == "ADDED":
                    mine.append((ev["object"]["metadata"]["name"], now))
                    if len(mine) == writes:
                        done_count += 1
                        if done_count == watchers:
                            all_done.set()
                        return

    t_open = time.perf_counter()
    tasks = [asyncio.ensure_future(watcher(k)) for k in range(watchers)]
    try:
        await asyncio.wait_for(all_open.wait(), 30)
        open_s = time.perf_counter() - t_open
        sent: dict[str, float] = {}
        acked: dict[str, float] = {}
        path = f"/api/v1/namespaces/{ns}/configmaps"

        async def op(i: int) -> bool:
            name = f"w-{i:05d}"
            sent[name] = time.perf_counter()
            status, _ = await api.request("POST", path, configmap(name))
            acked[name] = time.perf_counter()
            return status == 201

        meter = CPUMeter(server)
        with meter:
            t0 = time.perf_counter()
            burst = await closed_loop(writes, concurrency, op, 60)
            try:
                await asyncio.wait_for(all_done.wait(), 60)
            except TimeoutError:
                pass
            t_end = time.perf_counter()
        from_ack: list[float] = []
        from_send: list[float] = []
        early = 0
        total = 0
        last = t0
        for mine in received:
            for name, at in mine:
                total += 1
                last = max(last, at)
                d = at - acked.get(name, at)
                if d < 0:
                    early += 1
                from_ack.append(max(d, 0.0))
                from_send.append(at - sent.get(name, at))
        expected = watchers * burst["n"]
        return {
            "watchers": watchers, "writes": burst["n"], "write_errors": burst["errors"],
            "write_ops_per_s": burst["ops_per_s"], "open_all_s": round(open_s, 3),
            "events_expected": expected, "events_received": total,
            "events_per_s": round(total / max(last - t0, 1e-9), 1),
            "delivery_after_ack": summary_ms(from_ack),
            "delivery_after_send": summary_ms(from_send),
            "events_before_ack": early, "seconds": round(t_end - t0, 3), **meter.result,
        }
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await wsession.close()


async def load(server: Server, args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Every phase that runs against the started server."""
    quick = args.quick
    api = API(server, pool=max(args.concurrency, 4))
    try:
        status, body = await api.request("POST", "/api/v1/namespaces", orjson.dumps(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}))
        assert status == 201, body[:200]
        # Warm the connection pool (TLS handshakes are not part of the figures).
        await asyncio.gather(*(api.request("GET", "/version") for _ in range(args.concurrency)))

        total = 2000 if quick else 10_000
        cap = 10.0 if quick else 60.0
        first = 1000
        meter = CPUMeter(server)
        with meter:
            c1 = await create_range(api, "bench", 0, first, args.concurrency, cap)
        meter.per_op(c1)
        lists: dict[str, Any] = {}
        lists[str(c1["n"])] = await list_figures(api, "bench", 5 if quick else 10)
        with meter:
            c2 = await create_range(api, "bench", first, total - first, args.concurrency,
                                    cap - c1["seconds"])
        meter.per_op(c2)
        lists[str(c1["n"] + c2["n"])] = await list_figures(api, "bench", 3 if quick else 5)
        out["create_first_1000"] = c1
        out["create"] = c2
        out["objects"] = c1["n"] + c2["n"]
        out["list"] = lists
        out["rss_after_objects_mb"] = round(server.rss_mb(), 1)

        names = [f"cm-{i:05d}" for i in range(out["objects"])]
        rng = random.Random(7)
        picks = [rng.choice(names) for _ in range(total)]

        async def get(i: int) -> bool:
            status, _ = await api.request("GET",
                                          f"/api/v1/namespaces/bench/configmaps/{picks[i]}")
            return status == 200

        with meter:
            g = await closed_loop(total, args.concurrency, get, cap)
        meter.per_op(g)
        out["get"] = g

        out["watch"] = await watch_figures(api, server, args.watchers, 200 if quick else 1000,
                                           args.concurrency)
        out["rss_end_mb"] = round(server.rss_mb(), 1)
    finally:
        await api.close()


def report(out: dict[str, Any]) -> None:
    """The human-readable table."""
    def row(label: str, value: str) -> None:
        print(f"  {label:<38} {value}")

    print("skiff API benchmark" + (" (quick)" if out["quick"] else ""))
    row("startup to /readyz, first start", f"{out['startup_cold_s'] * 1000:.0f} ms")
    row("startup to /readyz, restart (median)", f"{out['startup_warm_s'] * 1000:.0f} ms")
    row("RSS idle after start", f"{out['rss_idle_mb']:.1f} MiB")
    row(f"RSS with {out['objects']} objects", f"{out['rss_after_objects_mb']:.1f} MiB")
    for key, label in (("create_first_1000", "create (first 1000)"), ("create", "create"),
                       ("get", "get")):
        r = out[key]
        row(f"{label} x{r['n']} c={r['concurrency']}",
            f"{r['ops_per_s']:>8.0f}/s  p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms"
            f"  err {r['errors']}  cpu srv {r['server_cpu']:.2f} cli {r['client_cpu']:.2f}"
            f"  srv {r['server_cpu_ms_per_op']:.2f} ms/op")
    for n, r in out["list"].items():
        row(f"list {n} full ({r['bytes'] // 1024} KiB)",
            f"p50 {r['full']['p50_ms']:.1f} ms  p99 {r['full']['p99_ms']:.1f} ms")
        row(f"list {n} limit=500",
            f"page p50 {r['paged500_page']['p50_ms']:.1f} ms  p99 "
            f"{r['paged500_page']['p99_ms']:.1f} ms  all pages {r['paged500_total_ms']:.1f} ms")
    w = out["watch"]
    row(f"watch {w['watchers']} watchers x {w['writes']} writes",
        f"{w['events_received']}/{w['events_expected']} events  {w['events_per_s']:.0f} ev/s"
        f"  cpu srv {w['server_cpu']:.2f} cli {w['client_cpu']:.2f}")
    row("  delivery after ack",
        f"p50 {w['delivery_after_ack']['p50_ms']:.1f} ms  "
        f"p99 {w['delivery_after_ack']['p99_ms']:.1f} ms")
    row("  delivery after send",
        f"p50 {w['delivery_after_send']['p50_ms']:.1f} ms  "
        f"p99 {w['delivery_after_send']['p99_ms']:.1f} ms")
    row("  writes during watch", f"{w['write_ops_per_s']:.0f}/s")
    t = out["targets"]
    print("targets: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in t.items()))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a smaller run (< 30 s)")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent client workers")
    p.add_argument("--watchers", type=int, default=100)
    p.add_argument("--restarts", type=int, default=0,
                   help="restarts to time (default 1 with --quick, else 3)")
    args = p.parse_args()
    two_cpus = len(os.sched_getaffinity(0)) >= 2
    server_cpu = 0 if two_cpus else None
    if two_cpus:
        pin({1})
    out: dict[str, Any] = {"quick": args.quick, "pinned": two_cpus}
    tmp = Path(tempfile.mkdtemp(prefix="skiff-bench-"))
    server = Server(tmp / "data", free_port())
    t_run = time.perf_counter()
    try:
        server.compile_bytecode(tmp / "pycache")
        out["startup_cold_s"] = round(server.start(server_cpu), 4)
        warm = []
        for _ in range(args.restarts or (1 if args.quick else 3)):
            server.stop()
            warm.append(server.start(server_cpu))
        out["startup_warm_all_s"] = [round(w, 4) for w in warm]
        out["startup_warm_s"] = round(statistics.median(warm), 4)
        time.sleep(0.5)
        out["rss_idle_mb"] = round(server.rss_mb(), 1)
        asyncio.run(load(server, args, out))
    except BaseException:
        print(server.log()[-4000:], file=sys.stderr)
        raise
    finally:
        server.stop()
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    out["run_seconds"] = round(time.perf_counter() - t_run, 1)
    out["targets"] = {
        "startup<0.5s": out["startup_warm_s"] < TARGETS["startup_s"],
        "creates>=2000/s": out["create"]["ops_per_s"] >= TARGETS["creates_per_s"],
        "create_p99<50ms": out["create"]["p99_ms"] < TARGETS["create_p99_ms"],
        "idle_rss<100MiB": out["rss_idle_mb"] < TARGETS["rss_idle_mb"],
    }
    report(out)
    print("BENCH_JSON " + orjson.dumps(out).decode(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

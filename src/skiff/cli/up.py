"""`skiff up`: the whole cluster in one foreground process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger("skiff")


async def _serve(args: argparse.Namespace, data_dir: Path, started: float) -> int:
    from skiff.apiserver.kubeconfig import admin_kubeconfig, write_kubeconfig
    from skiff.apiserver.pki import ensure_pki
    from skiff.apiserver.server import APIServer
    from skiff.store.sqlite import SQLiteStore

    data_dir.mkdir(parents=True, exist_ok=True)
    pki = ensure_pki(data_dir / "pki")
    store = SQLiteStore(str(data_dir / "store.db"))
    await store.open()
    server = APIServer(store, pki, host=args.host, port=args.port)
    try:
        await server.start()
    except OSError as exc:
        await store.close()
        if exc.errno == errno.EADDRINUSE:
            print(f"skiff: port {args.port} on {args.host} is in use; pick another with --port",
                  file=sys.stderr)
            return 1
        raise
    host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    url = f"https://{host}:{server.port}"
    kubeconfig = data_dir / "kubeconfig"
    write_kubeconfig(kubeconfig, admin_kubeconfig(pki, url))
    # What startup built (schemas, modules, caches) lives as long as the process:
    # keep it out of every later full collection.
    gc.freeze()
    elapsed = time.monotonic() - started
    print(f"skiff is up at {url} (ready in {elapsed * 1000:.0f} ms)", flush=True)
    print(f"  export KUBECONFIG={kubeconfig}", flush=True)
    print("  kubectl get namespaces", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    components: list[asyncio.Task[None]] = []
    if not args.no_controllers:
        components.append(asyncio.ensure_future(_run_controllers(kubeconfig, stop)))
    if not args.no_scheduler and not args.no_controllers:
        components.append(asyncio.ensure_future(_run_scheduler(kubeconfig, stop)))
    # The sim agent runs even without --sim-nodes (it costs two idle watches) so that
    # `skiff sim-nodes add` works on any cluster; --no-controllers means API only.
    if args.sim_nodes > 0 or not args.no_controllers:
        components.append(asyncio.ensure_future(
            _run_sim_agent(kubeconfig, stop, args.sim_nodes)))
    await stop.wait()
    print("skiff: shutting down", flush=True)
    for component in components:
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(component, 5)
    await server.stop()
    await store.close()
    return 0


async def _run_controllers(kubeconfig: Path, stop: asyncio.Event) -> None:
    """Run the controller manager as an API client of this server."""
    try:
        from skiff.client import Client
        from skiff.controllers.manager import run_controllers
    except ImportError as exc:  # pragma: no cover - reported, not hidden
        log.error("controllers unavailable: %s", exc)
        return
    client = Client.from_kubeconfig(str(kubeconfig), component="controller-manager")
    try:
        await run_controllers(client, stop)
    except Exception:  # noqa: BLE001 - the API keeps serving; the failure is logged
        log.exception("controller manager failed")
    finally:
        await client.close()


async def _run_scheduler(kubeconfig: Path, stop: asyncio.Event) -> None:
    """Run the scheduler as an API client of this server until `stop`."""
    from skiff.client import Client
    from skiff.scheduler.scheduler import Scheduler

    client = Client.from_kubeconfig(str(kubeconfig), component="scheduler")
    client.field_manager = "default-scheduler"

    async def supervise() -> None:
        while True:
            try:
                await Scheduler(client).run()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - logged; a fresh scheduler starts over
                log.exception("scheduler crashed; restarting")
            await asyncio.sleep(1.0)

    task = asyncio.ensure_future(supervise())
    try:
        await stop.wait()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await client.close()


async def _run_sim_agent(kubeconfig: Path, stop: asyncio.Event, count: int) -> None:
    """Register `count` simulated nodes, then run the shared sim agent until `stop`."""
    from skiff.client import Client
    from skiff.runtime.sim.agent import SimAgent
    from skiff.runtime.sim.manage import add_nodes, list_nodes, numbered_specs
    from skiff.runtime.sim.nodes import SimNodeSpec

    client = Client.from_kubeconfig(str(kubeconfig), component="sim-agent")
    agent = SimAgent(client)
    task = asyncio.ensure_future(agent.run())
    try:
        if count > 0:
            existing = [n["metadata"]["name"] for n in await list_nodes(client)]
            # `--sim-nodes M` means M numbered nodes exist; a restart adds none twice.
            missing = max(0, count - sum(1 for n in existing if n.startswith("sim-node-")))
            specs = numbered_specs(missing, "sim-node-", existing, SimNodeSpec(name=""))
            created = await add_nodes(client, specs)
            if created:
                print(f"skiff: {len(created)} simulated node(s) added", flush=True)
        await stop.wait()
    except Exception:  # noqa: BLE001 - the API keeps serving; the failure is logged
        log.exception("sim agent failed")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await client.close()


def run_up(args: argparse.Namespace, data_dir: Path) -> int:
    """Run the cluster until SIGINT or SIGTERM."""
    started = time.monotonic()
    # Requests allocate many short-lived dicts; with the default threshold the
    # collector runs every few requests and a 10k-object list pays triple for it.
    gc.set_threshold(20_000, 50, 100)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    from skiff.cli.event_loop import run

    return run(_serve(args, data_dir, started))

"""`skiff components`: the controller manager, scheduler and sim agent in one process.

`skiff up` starts this as a child process once its API server is ready, so the API
server keeps a core (and a GIL) of its own while the components reconcile. The
command is internal (not listed in `skiff --help`): it is `skiff up`'s half of the
cluster and takes the same flags. It is an API client only; it reads the admin
kubeconfig `skiff up` wrote and dies with its parent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skiff.client.shared_informers import SharedInformers

log = logging.getLogger("skiff")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `components`, hidden from the list of commands."""
    p = sub.add_parser("components")
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--no-controllers", action="store_true")
    p.add_argument("--no-scheduler", action="store_true")
    p.add_argument("--sim-nodes", type=int, default=0)
    p.add_argument("--node-monitor-grace-period", type=float, default=40.0)
    p.add_argument("--hpa-sync-period", type=float, default=15.0)
    p.add_argument("--metrics-port", type=int, default=0,
                   help="serve Prometheus metrics on 127.0.0.1:PORT (0: none)")
    p.add_argument("-v", "--verbose", action="store_true")
    # Internal: keep it out of `skiff --help`'s list of commands.
    sub._choices_actions = [a for a in sub._choices_actions if a.dest != "components"]


def component_args(args: argparse.Namespace, kubeconfig: Path) -> list[str]:
    """The `skiff components` command line for a `skiff up` with these flags."""
    cmd = ["components", "--kubeconfig", str(kubeconfig),
           "--sim-nodes", str(args.sim_nodes),
           "--node-monitor-grace-period", str(args.node_monitor_grace_period),
           "--hpa-sync-period", str(args.hpa_sync_period)]
    if args.no_controllers:
        cmd.append("--no-controllers")
    if args.no_scheduler:
        cmd.append("--no-scheduler")
    if getattr(args, "components_metrics_port", 0):
        cmd += ["--metrics-port", str(args.components_metrics_port)]
    if args.verbose:
        cmd.append("-v")
    return cmd


def wanted(args: argparse.Namespace) -> bool:
    """Whether a `skiff up` with these flags runs any component at all."""
    # The sim agent runs even without --sim-nodes (it costs two idle watches) so that
    # `skiff sim-nodes add` works on any cluster; --no-controllers means API only.
    return not args.no_controllers or args.sim_nodes > 0


async def _serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    kubeconfig: Path = args.kubeconfig
    from skiff.client import Client
    from skiff.client.shared_informers import SharedInformers

    # One watch per resource for the whole process: the controllers, the scheduler
    # and the sim agent all take their pod informer (and more) from here, so every
    # pod change crosses the wire and is decoded once instead of three times.
    informer_client = Client.from_kubeconfig(str(kubeconfig), component="shared-informers")
    shared = SharedInformers(informer_client)
    tasks: list[asyncio.Task[None]] = []
    if not args.no_controllers:
        tasks.append(asyncio.ensure_future(_run_controllers(kubeconfig, stop, args, shared)))
        if not args.no_scheduler:
            tasks.append(asyncio.ensure_future(_run_scheduler(kubeconfig, stop, shared)))
    if wanted(args):
        tasks.append(asyncio.ensure_future(
            _run_sim_agent(kubeconfig, stop, args.sim_nodes, shared)))
    metrics = None
    if args.metrics_port:
        from skiff.cli.component_metrics import serve_metrics

        metrics = await serve_metrics("127.0.0.1", args.metrics_port)
    # Let every component build itself and register its handlers before the shared
    # informers list (a late handler would be replayed the cache; this saves that).
    await asyncio.sleep(0)
    shared.start()
    # Everything imported and built so far lives as long as the process.
    gc.freeze()
    await stop.wait()
    for task in tasks:
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)
    await shared.stop()
    await informer_client.close()
    if metrics is not None:
        await metrics.cleanup()
    return 0


async def _run_controllers(kubeconfig: Path, stop: asyncio.Event,
                           args: argparse.Namespace, shared: SharedInformers) -> None:
    """Run the controller manager as an API client of the server."""
    from skiff.client import Client
    from skiff.controllers.manager import run_controllers

    client = Client.from_kubeconfig(str(kubeconfig), component="controller-manager")
    # Dozens of informers each hold a watch connection (aiohttp's pool); the workers'
    # requests, thousands a second in a burst, go over pipelined connections, which
    # cost a fraction of aiohttp's CPU per request.
    client.connection_limit = 256
    client.use_pipeline()
    try:
        settings = {"node_monitor_grace_period": args.node_monitor_grace_period,
                    "hpa_sync_period": args.hpa_sync_period}
        await run_controllers(client, stop, settings, shared)
    except Exception:  # noqa: BLE001 - the API keeps serving; the failure is logged
        log.exception("controller manager failed")
    finally:
        await client.close()


async def _run_scheduler(kubeconfig: Path, stop: asyncio.Event,
                         shared: SharedInformers) -> None:
    """Run the scheduler as an API client of the server until `stop`."""
    from skiff.client import Client
    from skiff.scheduler.scheduler import Scheduler

    client = Client.from_kubeconfig(str(kubeconfig), component="scheduler")
    client.field_manager = "default-scheduler"

    async def supervise() -> None:
        while True:
            try:
                await Scheduler(client, shared=shared).run()
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


async def _run_sim_agent(kubeconfig: Path, stop: asyncio.Event, count: int,
                         shared: SharedInformers) -> None:
    """Register `count` simulated nodes, then run the shared sim agent until `stop`."""
    from skiff.client import Client
    from skiff.runtime.sim.agent import SimAgent
    from skiff.runtime.sim.manage import add_nodes, list_nodes, numbered_specs
    from skiff.runtime.sim.nodes import SimNodeSpec

    client = Client.from_kubeconfig(str(kubeconfig), component="sim-agent")
    # A status write per pod and a lease renewal per node every 10 s: small requests,
    # pipelined for the same reason as the controller manager's.
    client.use_pipeline()
    agent = SimAgent(client, shared=shared)
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


def run_components(args: argparse.Namespace) -> int:
    """Run the components until SIGINT or SIGTERM (or the parent's death)."""
    # Informer caches and reconciles allocate many short-lived dicts; see `skiff up`.
    gc.set_threshold(20_000, 50, 100)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.kubeconfig.exists():
        print(f"skiff components: no kubeconfig at {args.kubeconfig}", file=sys.stderr)
        return 1
    from skiff.cli.event_loop import run

    return run(_serve(args))

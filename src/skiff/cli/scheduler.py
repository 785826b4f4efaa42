"""`skiff scheduler`: the scheduler as a process of its own, against any skiff API server.

`skiff up` runs the scheduler in-process; this command is for running it apart (on
another core or machine, or a second scheduler with another name).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `scheduler`."""
    p = sub.add_parser("scheduler", help="run the scheduler against a running API server")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--kubeconfig", type=Path, default=None)
    p.add_argument("--scheduler-name", default="default-scheduler",
                   help="schedule pods whose spec.schedulerName is this")
    p.add_argument("--no-events", action="store_true",
                   help="do not record Scheduled/FailedScheduling events")
    p.add_argument("--event-qps", type=float, default=50.0,
                   help="events written per second at most, after a burst (0: no limit; "
                        "default 50, kube-scheduler's client rate); beyond a backlog of "
                        "1,000, events are dropped")
    p.add_argument("--event-burst", type=int, default=100,
                   help="events that may be written at once before --event-qps applies")
    p.add_argument("-v", "--verbose", action="store_true")


async def _run(args: argparse.Namespace, kubeconfig: Path) -> int:
    from skiff.client import Client
    from skiff.scheduler.scheduler import Scheduler

    client = Client.from_kubeconfig(str(kubeconfig), component="scheduler")
    client.field_manager = args.scheduler_name
    scheduler = Scheduler(client, scheduler_name=args.scheduler_name,
                          events=not args.no_events, event_qps=args.event_qps,
                          event_burst=args.event_burst, manage_gc=True)
    task = asyncio.ensure_future(scheduler.run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    task.cancel()
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    await client.close()
    return 0


def run_scheduler(args: argparse.Namespace, data_dir: Path) -> int:
    """Run the scheduler until SIGINT/SIGTERM."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kubeconfig = (args.kubeconfig or data_dir / "kubeconfig").expanduser()
    if not kubeconfig.exists():
        print(f"no kubeconfig at {kubeconfig}", file=sys.stderr)
        return 1
    from skiff.cli.event_loop import run

    return run(_run(args, kubeconfig))

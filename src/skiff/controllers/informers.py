"""Informers a controller shares with others or owns, and running a controller on them.

The controller manager hands shared informers (pods, jobs, nodes, revisions) to the
controllers that watch the same resource; a controller built alone (in a test)
makes its own, and then starts and stops them itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from skiff.client.http_client import Client
from skiff.client.informer import Informer
from skiff.client.workqueue import Reconcile, WorkQueue, run_workers


class _Recorder(Protocol):
    async def run(self) -> None: ...


def use_informer(client: Client, given: Informer | None, own: list[Informer], group: str,
                 version: str, plural: str) -> Informer:
    """`given` (a shared informer), or a new one recorded in `own` for the caller to run."""
    if given is not None:
        return given
    inf = Informer(client, group, version, plural)
    own.append(inf)
    return inf


async def run_controller(queue: WorkQueue, reconcile: Reconcile, workers: int,
                         own: list[Informer], recorder: _Recorder | None = None) -> None:
    """Start the owned informers (and event recorder), work the queue until cancelled."""
    tasks: list[asyncio.Task[None]] = [inf.start() for inf in own]
    if recorder is not None:
        tasks.append(asyncio.create_task(recorder.run()))
    try:
        await run_workers(queue, reconcile, workers)
    finally:
        queue.shutdown()
        for inf in own:
            inf.stop()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

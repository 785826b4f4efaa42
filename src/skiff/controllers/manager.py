"""Starting and stopping the controllers that keep the cluster's housekeeping going."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from skiff.client.http_client import Client
from skiff.controllers.cronjob import CronJobController
from skiff.controllers.daemonset import DaemonSetController
from skiff.controllers.garbage_collector import GarbageCollector
from skiff.controllers.job import JobController
from skiff.controllers.namespace import NamespaceController
from skiff.controllers.serviceaccounts import ServiceAccountsController
from skiff.controllers.statefulset import StatefulSetController
from skiff.controllers.ttl_after_finished import TTLAfterFinishedController

log = logging.getLogger(__name__)


async def run_controllers(client: Client, stop: asyncio.Event) -> None:
    """Run every controller until `stop` is set, then cancel and await them all.

    A controller that crashes is logged and restarted after a pause rather than
    taking the others down with it.
    """
    factories = {
        "namespace": lambda: NamespaceController(client),
        "garbage-collector": lambda: GarbageCollector(client),
        "serviceaccounts": lambda: ServiceAccountsController(client),
        "job": lambda: JobController(client),
        "statefulset": lambda: StatefulSetController(client),
        "daemonset": lambda: DaemonSetController(client),
        "cronjob": lambda: CronJobController(client),
        "ttl-after-finished": lambda: TTLAfterFinishedController(client),
    }

    async def supervise(name: str) -> None:
        while True:
            try:
                await factories[name]().run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("controller %s crashed; restarting", name)
            await asyncio.sleep(1.0)

    tasks = [asyncio.create_task(supervise(n), name=f"controller:{n}") for n in factories]
    try:
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

"""Starting and stopping the controllers that keep the cluster's housekeeping going."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from skiff.client.http_client import Client
from skiff.client.shared_informers import SharedInformers
from skiff.controllers.cronjob import CronJobController
from skiff.controllers.daemonset import DaemonSetController
from skiff.controllers.deployment import DeploymentController
from skiff.controllers.disruption import DisruptionController
from skiff.controllers.garbage_collector import GarbageCollector
from skiff.controllers.job import JobController
from skiff.controllers.namespace import NamespaceController
from skiff.controllers.node_lifecycle import NodeLifecycleController
from skiff.controllers.podautoscaler import HorizontalPodAutoscalerController
from skiff.controllers.replicaset import (
    REPLICATION_CONTROLLER,
    ReplicaSetController,
)
from skiff.controllers.root_ca_publisher import RootCAPublisher
from skiff.controllers.serviceaccounts import ServiceAccountsController
from skiff.controllers.statefulset import StatefulSetController
from skiff.controllers.ttl_after_finished import TTLAfterFinishedController

log = logging.getLogger(__name__)

# Workers of the ReplicaSet and Deployment controllers. Upstream runs 5 of each, but
# a worker here is a coroutine that mostly waits on the API; with requests taking
# tens of milliseconds under load, 5 would leave a burst of new Deployments queued
# while the API server has room for more.
WORKLOAD_WORKERS = 16


def controller_factories(client: Client, shared: SharedInformers,
                         settings: dict[str, float] | None = None
                         ) -> dict[str, Callable[[], Any]]:
    """Name → a function building that controller (each has an async `run()`).

    `settings` tunes cluster-wide timings (`node_monitor_grace_period`,
    `hpa_sync_period`).
    """
    settings = settings or {}
    pods = shared.get("", "v1", "pods")
    replicasets = shared.get("apps", "v1", "replicasets")
    # Shared so that the garbage collector borrows it instead of watching them again.
    deployments = shared.get("apps", "v1", "deployments")
    jobs = shared.get("batch", "v1", "jobs")
    nodes = shared.get("", "v1", "nodes")
    revisions = shared.get("apps", "v1", "controllerrevisions")
    return {
        "namespace": lambda: NamespaceController(client),
        "garbage-collector": lambda: GarbageCollector(client, shared=shared.existing),
        "serviceaccounts": lambda: ServiceAccountsController(client),
        "root-ca-cert-publisher": lambda: RootCAPublisher(client),
        "replicaset": lambda: ReplicaSetController(client, pods=pods, owners=replicasets,
                                                   workers=WORKLOAD_WORKERS),
        "replicationcontroller": lambda: ReplicaSetController(client, REPLICATION_CONTROLLER,
                                                              pods=pods),
        "deployment": lambda: DeploymentController(client, replicasets=replicasets, pods=pods,
                                                   deployments=deployments,
                                                   workers=WORKLOAD_WORKERS),
        "disruption": lambda: DisruptionController(client, pods=pods),
        "job": lambda: JobController(client, pods=pods, jobs=jobs),
        "statefulset": lambda: StatefulSetController(client, pods=pods, revisions=revisions),
        "daemonset": lambda: DaemonSetController(client, pods=pods, nodes=nodes,
                                                 revisions=revisions),
        "cronjob": lambda: CronJobController(client, jobs=jobs),
        "ttl-after-finished": lambda: TTLAfterFinishedController(client, jobs=jobs),
        "node-lifecycle": lambda: NodeLifecycleController(
            client, grace_period=float(settings.get("node_monitor_grace_period", 40.0)),
            nodes=nodes, pods=pods),
        "horizontal-pod-autoscaler": lambda: HorizontalPodAutoscalerController(
            client, pods=pods, sync_period=float(settings.get("hpa_sync_period", 15.0))),
    }


async def run_controllers(client: Client, stop: asyncio.Event,
                          settings: dict[str, float] | None = None,
                          shared: SharedInformers | None = None) -> None:
    """Run every controller until `stop` is set, then cancel and await them all.

    A controller that crashes is logged and restarted after a pause rather than
    taking the others down with it. `shared` is a process-wide informer factory
    (its owner starts and stops it); without one the controllers get their own.
    """
    owned = shared is None
    if shared is None:
        shared = SharedInformers(client)
    factories = controller_factories(client, shared, settings)

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
    shared.start()
    try:
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if owned:
            await shared.stop()

"""Every active namespace has a ServiceAccount named `default`.

Pods that name no service account run as `default`, and admission refuses pods whose
service account does not exist, so the account must appear with the namespace and
come back if someone deletes it.
"""

from __future__ import annotations

from typing import Any

from skiff.api.errors import StatusError
from skiff.client.http_client import Client
from skiff.client.informer import Informer
from skiff.client.workqueue import WorkQueue
from skiff.controllers.informers import run_controller

Obj = dict[str, Any]

DEFAULT = "default"


class ServiceAccountsController:
    """Reconciles namespaces by name, creating their `default` ServiceAccount."""

    def __init__(self, client: Client, *, workers: int = 2) -> None:
        self.client = client
        self.namespaces = Informer(client, "", "v1", "namespaces")
        self.accounts = Informer(client, "", "v1", "serviceaccounts")
        self.queue = WorkQueue(name="serviceaccounts")
        self.workers = workers
        self.namespaces.on_add(lambda ns: self.queue.add(ns["metadata"]["name"]))
        self.namespaces.on_update(lambda _o, ns: self.queue.add(ns["metadata"]["name"]))
        self.accounts.on_delete(self._account_deleted)

    def _account_deleted(self, sa: Obj) -> None:
        md = sa.get("metadata") or {}
        if md.get("name") == DEFAULT and md.get("namespace"):
            self.queue.add(md["namespace"])

    async def reconcile(self, name: str) -> float | None:
        """Create `default` in namespace `name` if it is active and lacks one."""
        if not self.accounts.has_synced.is_set():
            return 0.1
        ns = self.namespaces.get(name)
        if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if (ns.get("status") or {}).get("phase", "Active") != "Active":
            return None
        if self.accounts.get(f"{name}/{DEFAULT}") is not None:
            return None
        sa = {"apiVersion": "v1", "kind": "ServiceAccount",
              "metadata": {"name": DEFAULT, "namespace": name}}
        try:
            await self.client.create("", "v1", "serviceaccounts", sa, name)
        except StatusError as err:
            # Already there (our cache lags) or the namespace began terminating.
            if err.code not in (403, 404, 409):
                raise
        return None

    async def run(self) -> None:
        """Watch namespaces and service accounts until cancelled."""
        await run_controller(self.queue, self.reconcile, self.workers,
                             [self.namespaces, self.accounts])

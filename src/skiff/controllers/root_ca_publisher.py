"""Every active namespace has a ConfigMap `kube-root-ca.crt` holding the cluster CA.

As upstream's root-ca-cert-publisher: pods mount it (the default service account
volume takes `ca.crt` from it) to verify the API server at kubernetes.default.svc.
The CA is the one this controller's own client trusts (upstream falls back to the
controller manager's kubeconfig CA the same way). A deleted or edited ConfigMap is
put back.
"""

from __future__ import annotations

from typing import Any

from skiff.api.errors import StatusError
from skiff.client.http_client import Client
from skiff.client.informer import Informer
from skiff.client.workqueue import WorkQueue
from skiff.controllers.informers import run_controller

Obj = dict[str, Any]

NAME = "kube-root-ca.crt"
KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using "
               "internal endpoints such as the internal service IP or kubernetes.default.svc. "
               "No other usage is guaranteed across distributions of Kubernetes clusters.")


class RootCAPublisher:
    """Reconciles namespaces by name, keeping their `kube-root-ca.crt` ConfigMap."""

    def __init__(self, client: Client, ca_pem: str | None = None, *, workers: int = 2) -> None:
        self.client = client
        self.ca_pem = ca_pem if ca_pem is not None else (client.ca_data or b"").decode()
        self.namespaces = Informer(client, "", "v1", "namespaces")
        self.configmaps = Informer(client, "", "v1", "configmaps",
                                   field_selector=f"metadata.name={NAME}")
        self.queue = WorkQueue(name="root-ca-cert-publisher")
        self.workers = workers
        self.namespaces.on_add(lambda ns: self.queue.add(ns["metadata"]["name"]))
        self.namespaces.on_update(lambda _o, ns: self.queue.add(ns["metadata"]["name"]))
        self.configmaps.on_update(lambda _o, cm: self._configmap_changed(cm))
        self.configmaps.on_delete(self._configmap_changed)

    def _configmap_changed(self, cm: Obj) -> None:
        ns = (cm.get("metadata") or {}).get("namespace")
        if ns:
            self.queue.add(ns)

    def _wanted(self, current: Obj | None) -> bool:
        if current is None:
            return False
        data = current.get("data") or {}
        annotations = (current.get("metadata") or {}).get("annotations") or {}
        return data == {KEY: self.ca_pem} and DESCRIPTION_ANNOTATION in annotations

    async def reconcile(self, name: str) -> float | None:
        """Create or repair `kube-root-ca.crt` in namespace `name` if it is active."""
        if not self.ca_pem:
            return None
        if not self.configmaps.has_synced.is_set():
            return 0.1
        ns = self.namespaces.get(name)
        if ns is None or (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if (ns.get("status") or {}).get("phase", "Active") != "Active":
            return None
        current = self.configmaps.get(f"{name}/{NAME}")
        if self._wanted(current):
            return None
        try:
            if current is None:
                await self.client.create("", "v1", "configmaps", {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": NAME, "namespace": name,
                                 "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                    "data": {KEY: self.ca_pem}}, name)
            else:
                # The data is replaced whole, as upstream: keys added by hand go too.
                extra = {k: None for k in current.get("data") or {} if k != KEY}
                await self.client.patch("", "v1", "configmaps", NAME, {
                    "metadata": {"annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                    "data": {**extra, KEY: self.ca_pem}}, name)
        except StatusError as err:
            # Our cache lags (409), or the namespace began terminating (403/404).
            if err.code not in (403, 404, 409):
                raise
            if err.code == 409:
                return 0.5
        return None

    async def run(self) -> None:
        """Watch namespaces and the published ConfigMaps until cancelled."""
        await run_controller(self.queue, self.reconcile, self.workers,
                             [self.namespaces, self.configmaps])

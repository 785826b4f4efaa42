"""ServiceAccount admission for pods, as upstream's plugin: a pod runs as `default`
unless it names an account, and gets the account's API credentials mounted.

Unless automountServiceAccountToken is false (on the pod, or else on its service
account), the pod gains a projected volume `kube-api-access-<random>` holding a
bound token (`token`), the cluster CA (`ca.crt`, from the kube-root-ca.crt ConfigMap)
and its namespace (`namespace`), mounted read-only at
/var/run/secrets/kubernetes.io/serviceaccount in every container that does not
mount something there already.

A pod naming an account that does not exist is Forbidden, as upstream. The
serviceaccounts controller creates `default` just after its namespace, so for
`default` the lookup is retried for a second or two: a pod created right after its
namespace still gets in.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.store.sqlite import SQLiteStore

Obj = dict[str, Any]

DEFAULT = "default"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
# Upstream's default: just over an hour, so a token of this length can be told apart.
TOKEN_EXPIRATION_SECONDS = 3607
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
_PREFIX = "/registry/core/serviceaccounts/"
# As upstream: `default` is looked up this many times, 100-200 ms apart, before the
# pod is refused; any other account once.
DEFAULT_ATTEMPTS = 10


def _service_account(store: SQLiteStore, namespace: str, name: str) -> Obj | None:
    kv = store.get_now(f"{_PREFIX}{namespace}/{name}")
    return orjson.loads(kv.value) if kv is not None else None


async def _wait_for_service_account(store: SQLiteStore, namespace: str,
                                    name: str) -> Obj | None:
    sa = _service_account(store, namespace, name)
    if sa is not None or name != DEFAULT:
        return sa
    interval = random.uniform(0.1, 0.2)  # noqa: S311 - spreads retries, not a secret
    for _ in range(DEFAULT_ATTEMPTS - 1):
        # Sleeping, not blocking: the controller creating the account may be in this
        # very process.
        await asyncio.sleep(interval)
        sa = _service_account(store, namespace, name)
        if sa is not None:
            return sa
    return None


def _automount(spec: Obj, sa: Obj | None) -> bool:
    if isinstance(spec.get("automountServiceAccountToken"), bool):
        return bool(spec["automountServiceAccountToken"])
    if sa is not None and isinstance(sa.get("automountServiceAccountToken"), bool):
        return bool(sa["automountServiceAccountToken"])
    return True


def api_access_volume(name: str) -> Obj:
    """The projected volume the plugin adds (fully defaulted, as stored upstream)."""
    return {"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS,
                                 "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP,
                       "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


async def admit_pod(store: SQLiteStore, pod: Obj) -> None:
    """Default the pod's service account, check it exists and mount its credentials.

    Raises a 403 StatusError when the account does not exist, as upstream.
    """
    spec = pod.setdefault("spec", {})
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or DEFAULT
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if MIRROR_ANNOTATION in annotations:
        return
    md = pod.get("metadata") or {}
    namespace = md.get("namespace", "")
    sa_name = spec["serviceAccountName"]
    sa = await _wait_for_service_account(store, namespace, sa_name)
    if sa is None:
        name = md.get("name") or ""
        raise StatusError(403, "Forbidden",
                          f'pods "{name}" is forbidden: error looking up service account '
                          f'{namespace}/{sa_name}: serviceaccount "{sa_name}" not found',
                          {"name": name, "kind": "pods"})
    if not _automount(spec, sa):
        return
    containers = [c for key in ("initContainers", "containers")
                  for c in spec.get(key) or [] if isinstance(c, dict)]
    needing = [c for c in containers
               if not any(isinstance(vm, dict) and vm.get("mountPath") == MOUNT_PATH
                          for vm in c.get("volumeMounts") or [])]
    if not needing:
        return
    volumes = spec.get("volumes")
    if not isinstance(volumes, list):
        volumes = spec["volumes"] = []
    taken = {v.get("name") for v in volumes if isinstance(v, dict)}
    name = ""
    while not name or name in taken:
        # A name, not a secret: upstream draws the suffix like generateName's.
        name = m.generate_name(VOLUME_PREFIX)
    volumes.append(api_access_volume(name))
    for c in needing:
        mounts = c.get("volumeMounts")
        if not isinstance(mounts, list):
            mounts = c["volumeMounts"] = []
        mounts.append({"name": name, "readOnly": True, "mountPath": MOUNT_PATH})

"""Writing the admin kubeconfig."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from skiff.apiserver.pki import ClusterPKI


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def admin_kubeconfig(pki: ClusterPKI, server_url: str, cluster: str = "skiff") -> dict:
    """A kubeconfig for the admin: client certificate (and the bearer token as fallback)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "server": server_url,
                    "certificate-authority-data": _b64(pki.pem(pki.ca_cert)),
                },
            }
        ],
        "users": [
            {
                "name": f"{cluster}-admin",
                "user": {
                    "client-certificate-data": _b64(pki.pem(pki.admin_cert)),
                    "client-key-data": _b64(pki.pem(pki.admin_key)),
                },
            }
        ],
        "contexts": [
            {
                "name": cluster,
                "context": {"cluster": cluster, "user": f"{cluster}-admin", "namespace": "default"},
            }
        ],
        "current-context": cluster,
        "preferences": {},
    }


def write_kubeconfig(path: Path, config: dict) -> None:
    """Write atomically and owner-only: it holds the admin's private key."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    os.replace(tmp, path)

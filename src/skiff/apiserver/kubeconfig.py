"""Writing the admin kubeconfig."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from urllib.parse import quote

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


def local_socket_url(socket_path: Path) -> str:
    """The server URL of the API server's local socket, as skiff's client reads it."""
    return "http+unix://" + quote(str(socket_path), safe="")


def components_kubeconfig(pki: ClusterPKI, socket_path: Path, cluster: str = "skiff") -> dict:
    """The kubeconfig `skiff up` gives its own components: the admin's bearer token over
    the API server's owner-only local socket (no TLS to pay for on the same host)."""
    config = admin_kubeconfig(pki, local_socket_url(socket_path), cluster)
    config["users"][0]["user"] = {"token": pki.admin_token}
    return config


def write_kubeconfig(path: Path, config: dict) -> None:
    """Write atomically and owner-only: it holds the admin's private key."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    os.replace(tmp, path)

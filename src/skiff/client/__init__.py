"""Clients of the API server: HTTP client, informers, work queues, discovery."""

from skiff.client.discovery import APIResource, ResourceMap, discover
from skiff.client.http_client import Client, resource_path, split_api_version
from skiff.client.informer import Informer, object_key, split_key
from skiff.client.workqueue import WorkQueue, run_workers

__all__ = [
    "APIResource",
    "Client",
    "Informer",
    "ResourceMap",
    "WorkQueue",
    "discover",
    "object_key",
    "resource_path",
    "run_workers",
    "split_api_version",
    "split_key",
]

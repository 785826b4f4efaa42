"""Shared pieces of controller tests: polling, namespaces, objects, listings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from skiff.client import Client
from skiff.client.informer import Informer

Obj = dict[str, Any]


async def eventually(check: Callable[[], Awaitable[Any]], what: str,
                     timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until `check()` returns something truthy (and return it)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting until {what} (last: {result!r})")
        await asyncio.sleep(interval)


async def new_namespace(client: Client, *, default_account: bool = False) -> str:
    """A fresh namespace for one test.

    `default_account` also creates its `default` ServiceAccount, for clusters running
    without the serviceaccounts controller: admission refuses pods without one.
    """
    name = f"t-{uuid.uuid4().hex[:8]}"
    await client.create("", "v1", "namespaces", {"metadata": {"name": name}})
    if default_account:
        await client.create("", "v1", "serviceaccounts", {"metadata": {"name": "default"}}, name)
    return name


def pod_template(labels: dict[str, str], image: str = "nginx:1") -> Obj:
    """A minimal pod template with one container."""
    return {"metadata": {"labels": dict(labels)},
            "spec": {"containers": [{"name": "c", "image": image}]}}


def replicaset(name: str, replicas: int, labels: dict[str, str], **spec: Any) -> Obj:
    """An apps/v1 ReplicaSet selecting `labels`."""
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": pod_template(labels), **spec}}


def deployment(name: str, replicas: int, labels: dict[str, str], image: str = "nginx:1",
               **spec: Any) -> Obj:
    """An apps/v1 Deployment selecting `labels`."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": pod_template(labels, image), **spec}}


async def pods_in(client: Client, namespace: str, selector: str = "") -> list[Obj]:
    """The pods of a namespace (those being deleted too), sorted by name."""
    out = await client.list("", "v1", "pods", namespace, label_selector=selector)
    return sorted(out.get("items") or [], key=lambda p: p["metadata"]["name"])


async def live_pods_in(client: Client, namespace: str, selector: str = "") -> list[Obj]:
    """The pods of a namespace that are not being deleted, sorted by name."""
    return [p for p in await pods_in(client, namespace, selector)
            if not p["metadata"].get("deletionTimestamp")]


async def events_for(client: Client, namespace: str, name: str) -> list[Obj]:
    """Events about the object `name` in `namespace`."""
    return (await client.list("", "v1", "events", namespace,
                              field_selector=f"involvedObject.name={name}"))["items"]


async def seed(informer: Informer, *objs: Obj) -> None:
    """Fill an informer's cache as if it had listed `objs` (for unit tests)."""
    for obj in objs:
        await informer._apply("ADDED", obj)  # noqa: SLF001 - test seam
    informer.has_synced.set()


def container(name: str = "main", image: str = "busybox") -> Obj:
    """A minimal container."""
    return {"name": name, "image": image, "command": ["true"]}

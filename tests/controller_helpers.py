"""Small helpers shared by the workload controller integration tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from skiff.client.http_client import Client

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


async def new_namespace(client: Client) -> str:
    """A fresh namespace for one test."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    await client.create("", "v1", "namespaces", {"metadata": {"name": name}})
    return name


async def pods_in(client: Client, namespace: str, selector: str = "") -> list[Obj]:
    """The pods of a namespace, sorted by name."""
    out = await client.list("", "v1", "pods", namespace, label_selector=selector)
    return sorted(out.get("items") or [], key=lambda p: p["metadata"]["name"])


async def events_for(client: Client, namespace: str, name: str) -> list[Obj]:
    """The events about object `name` in `namespace`."""
    out = await client.list("", "v1", "events", namespace,
                            field_selector=f"involvedObject.name={name}")
    return out.get("items") or []


def container(name: str = "main", image: str = "busybox") -> Obj:
    """A minimal container."""
    return {"name": name, "image": image, "command": ["true"]}

"""Adding and removing simulated nodes through the API (used by `skiff up` and the CLI)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

from skiff.api.errors import StatusError
from skiff.client.http_client import Client
from skiff.runtime.sim.nodes import (
    DEFAULT_ZONES,
    MAX_NODES,
    SimNodeSpec,
    index_of,
    is_simulated,
    node_object,
)

Obj = dict[str, Any]

# Concurrent creates: enough to hide round trips, few enough not to starve other clients.
CONCURRENCY = 16


async def _all_nodes(client: Client) -> list[Obj]:
    items: list[Obj] = []
    cont = ""
    while True:
        page = await client.list("", "v1", "nodes", limit=500, continue_=cont)
        items.extend(page.get("items") or [])
        cont = (page.get("metadata") or {}).get("continue") or ""
        if not cont:
            return items


def numbered_specs(count: int, prefix: str, existing: Iterable[str], template: SimNodeSpec,
                   zones: tuple[str, ...] = DEFAULT_ZONES) -> list[SimNodeSpec]:
    """`count` specs named PREFIX1, PREFIX2, … skipping names already taken.

    Zones go round-robin over `zones` unless the template names one.
    """
    taken = set(existing)
    out: list[SimNodeSpec] = []
    n = 0
    while len(out) < count:
        n += 1
        name = f"{prefix}{n}"
        if name in taken:
            continue
        spec = SimNodeSpec(**{**template.__dict__, "name": name,
                              "labels": dict(template.labels),
                              "taints": [dict(t) for t in template.taints],
                              "resources": dict(template.resources)})
        if not spec.zone and zones:
            spec.zone = zones[(n - 1) % len(zones)]
        out.append(spec)
    return out


async def add_nodes(client: Client, specs: list[SimNodeSpec]) -> list[str]:
    """Create a Node per spec (skipping names that exist); returns the names created.

    Each node gets the lowest free address block, so removing and adding nodes reuses
    addresses instead of running out.
    """
    for spec in specs:
        spec.check()
    nodes = await _all_nodes(client)
    names = {n["metadata"]["name"] for n in nodes}
    used = {i for i in (index_of(n) for n in nodes if is_simulated(n)) if i is not None}
    todo: list[tuple[SimNodeSpec, int]] = []
    index = 0
    for spec in specs:
        if spec.name in names:
            continue
        while index in used:
            index += 1
        if index >= MAX_NODES:
            raise ValueError(f"at most {MAX_NODES} simulated nodes fit the address plan")
        used.add(index)
        names.add(spec.name)
        todo.append((spec, index))
    limit = asyncio.Semaphore(CONCURRENCY)
    created: list[str] = []

    async def create(spec: SimNodeSpec, index: int) -> None:
        async with limit:
            try:
                await client.create("", "v1", "nodes", node_object(spec, index))
            except StatusError as err:
                if err.code != 409:
                    raise
                return
            created.append(spec.name)

    await asyncio.gather(*(create(s, i) for s, i in todo))
    return sorted(created, key=natural_key)


def natural_key(name: str) -> list[tuple[int, int, str]]:
    """Sort key putting node-2 before node-10."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name) if p]


async def remove_nodes(client: Client, names: list[str]) -> list[str]:
    """Delete simulated nodes by name; refuses nodes that are not simulated.

    The sim agent then removes the pods that were bound to them (as the pod garbage
    collector does for pods of a deleted node) and the nodes' leases go with them
    through their owner reference.
    """
    removed: list[str] = []
    for name in names:
        try:
            node = await client.get("", "v1", "nodes", name)
        except StatusError as err:
            if err.code == 404:
                raise ValueError(f'node "{name}" not found') from err
            raise
        if not is_simulated(node):
            raise ValueError(f'node "{name}" is not a simulated node')
        try:
            await client.delete("", "v1", "nodes", name)
        except StatusError as err:
            if err.code != 404:
                raise
        removed.append(name)
    return removed


async def list_nodes(client: Client) -> list[Obj]:
    """Every simulated node."""
    return [n for n in await _all_nodes(client) if is_simulated(n)]

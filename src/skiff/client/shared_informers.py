"""One informer per resource for every component of a process that watches it.

The controller manager, the scheduler and the sim agent of `skiff components` all
follow pods (and some of them nodes and ReplicaSets). An informer each would make
the API server send, and this process decode, every change once per component;
one shared informer per resource sends and decodes it once and hands the same
read-only object to every component's handlers.
"""

from __future__ import annotations

import asyncio
import contextlib

from skiff.client.http_client import Client
from skiff.client.informer import Informer, drop_managed_fields


class SharedInformers:
    """A process-wide factory of informers, one per (group, version, plural).

    Components take their informers from `get` and register their handlers on them;
    they neither start nor stop a shared informer (the factory does) and remove their
    handlers when they stop. A handler registered after the informer has listed is
    first called with every cached object as an add, so a component (re)started late
    sees the same world as one started first.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self._informers: dict[tuple[str, str, str], Informer] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    def get(self, group: str, version: str, plural: str) -> Informer:
        """The shared informer for a resource (started with the others)."""
        key = (group, version, plural)
        inf = self._informers.get(key)
        if inf is None:
            # Cached without managedFields, as upstream's components cache objects.
            inf = self._informers[key] = Informer(self.client, group, version, plural,
                                                  transform=drop_managed_fields)
            if self._started:
                self._tasks.append(inf.start())
        return inf

    def existing(self, group: str, version: str, plural: str) -> Informer | None:
        """The shared informer for a resource if some component asked for one."""
        return self._informers.get((group, version, plural))

    def start(self) -> None:
        """Start every informer created so far (and later ones as they are created)."""
        if self._started:
            return
        self._started = True
        for inf in self._informers.values():
            self._tasks.append(inf.start())

    async def stop(self) -> None:
        """Stop every informer and wait for their tasks."""
        for inf in self._informers.values():
            inf.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

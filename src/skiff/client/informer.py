"""Informers: a local, continuously updated cache of one resource type.

An informer lists once, then watches from the list's resourceVersion. When the watch
ends it resumes from the last version it saw; when the server says that version is
gone (410) or the connection breaks, it lists again and reports the difference as
ordinary add/update/delete events, so handlers never see a gap.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from skiff.api.errors import StatusError
from skiff.client.http_client import Client

log = logging.getLogger(__name__)

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]
Handler = Callable[..., Any]
Transform = Callable[[Obj], Obj]

LIST_PAGE = 500


def object_key(obj: Obj) -> str:
    """`namespace/name` for namespaced objects, `name` otherwise (as client-go keys them)."""
    md = obj.get("metadata", {})
    ns = md.get("namespace")
    return f"{ns}/{md.get('name', '')}" if ns else md.get("name", "")


def drop_managed_fields(obj: Obj) -> Obj:
    """An informer transform: forget `metadata.managedFields` (in place).

    Upstream's controller manager and scheduler cache objects without them (they are
    a large share of every object and no controller reads them); writes that omit
    them leave the server's record as it is.
    """
    md = obj.get("metadata")
    if isinstance(md, dict):
        md.pop("managedFields", None)
    return obj


def split_key(key: str) -> tuple[str, str]:
    """`ns/name` → (`ns`, `name`); `name` → (``, `name`)."""
    ns, _, name = key.rpartition("/")
    return ns, name


class Informer:
    """List + watch + cache + indexes for one resource type (optionally filtered)."""

    def __init__(
        self,
        client: Client,
        group: str,
        version: str,
        plural: str,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        *,
        retry_delay: float = 1.0,
        transform: Transform | None = None,
    ) -> None:
        self.client = client
        self.group = group
        self.version = version
        self.plural = plural
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.has_synced = asyncio.Event()
        self._retry_delay = retry_delay
        # Applied to every listed or watched object before it is cached and handed out.
        self._transform = transform
        self._cache: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        self._add: list[Handler] = []
        self._update: list[Handler] = []
        self._delete: list[Handler] = []
        self._rv = ""
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        gv = f"{self.group}/{self.version}" if self.group else self.version
        return f"<Informer {gv} {self.plural}>"

    # -- handlers and cache -----------------------------------------------------------------

    def on_add(self, fn: Handler) -> Handler:
        """Call `fn(obj)` for every new object (usable as a decorator).

        Objects already cached (a shared informer that listed before this handler
        came) are added to `fn` at once, as client-go does for a late handler.
        """
        self._add.append(fn)
        for obj in list(self._cache.values()):
            try:
                result = fn(obj)
                if inspect.isawaitable(result):
                    asyncio.ensure_future(result)
            except Exception:
                log.exception("%r: event handler %r failed", self, fn)
        return fn

    def on_update(self, fn: Handler) -> Handler:
        """Call `fn(old, new)` for every change."""
        self._update.append(fn)
        return fn

    def on_delete(self, fn: Handler) -> Handler:
        """Call `fn(obj)` with the last known state of every removed object."""
        self._delete.append(fn)
        return fn

    def remove_handler(self, fn: Handler) -> None:
        """Stop calling `fn` (a component leaving a shared informer)."""
        for handlers in (self._add, self._update, self._delete):
            while fn in handlers:
                handlers.remove(fn)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Maintain an index of the cache by the values `fn(obj)` returns."""
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        for key, obj in self._cache.items():
            for value in fn(obj):
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    def has_index(self, name: str) -> bool:
        """Whether an index of that name exists (shared informers are indexed once)."""
        return name in self._indexers

    def by_index(self, name: str, value: str) -> list[Obj]:
        """Cached objects whose index `name` includes `value`."""
        keys = self._indexes[name].get(value, set())
        return [self._cache[k] for k in sorted(keys) if k in self._cache]

    def get(self, key: str) -> Obj | None:
        """The cached object for `key` (`ns/name` or `name`), if any."""
        return self._cache.get(key)

    def list(self) -> list[Obj]:
        """Every cached object."""
        return list(self._cache.values())

    def keys(self) -> list[str]:
        """Every cached key."""
        return list(self._cache)

    @property
    def resource_version(self) -> str:
        """The last resourceVersion this informer has caught up to."""
        return self._rv

    def _index_add(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            for value in fn(obj):
                self._indexes[name].setdefault(value, set()).add(key)

    def _index_remove(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            index = self._indexes[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]

    def _index_update(self, key: str, old: Obj, new: Obj) -> None:
        """Move `key` between index values where `old` and `new` differ (most updates
        change no index value; removing and re-adding would churn the sets)."""
        for name, fn in self._indexers.items():
            before, after = fn(old), fn(new)
            if before == after:
                continue
            index = self._indexes[name]
            for value in before:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in after:
                index.setdefault(value, set()).add(key)

    async def _emit(self, handlers: list[Handler], *args: Obj) -> None:
        for fn in handlers:
            try:
                result = fn(*args)
                # Most handlers are plain functions returning None.
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("%r: event handler %r failed", self, fn)

    async def _apply(self, kind: str, obj: Obj) -> None:
        key = object_key(obj)
        old = self._cache.get(key)
        if kind == "DELETED":
            if old is None:
                return
            del self._cache[key]
            self._index_remove(key, old)
            await self._emit(self._delete, obj)
            return
        self._cache[key] = obj
        if old is None:
            self._index_add(key, obj)
            await self._emit(self._add, obj)
        else:
            self._index_update(key, old, obj)
            await self._emit(self._update, old, obj)

    # -- list and watch ---------------------------------------------------------------------

    async def _list(self) -> None:
        """List everything and fold the result into the cache as a diff."""
        items: list[Obj] = []
        cont = ""
        while True:
            page = await self.client.list(
                self.group, self.version, self.plural, self.namespace,
                label_selector=self.label_selector, field_selector=self.field_selector,
                limit=LIST_PAGE, continue_=cont,
            )
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            cont = meta.get("continue") or ""
            if not cont:
                rv = meta.get("resourceVersion", "")
                break
        seen: dict[str, Obj] = {}
        if self._transform is not None:
            items = [self._transform(item) for item in items]
        for item in items:
            # Lists drop kind/apiVersion from items; handlers should not need to know that.
            item.setdefault("kind", self._item_kind(page))
            item.setdefault("apiVersion", f"{self.group}/{self.version}" if self.group
                            else self.version)
            seen[object_key(item)] = item
        for key in [k for k in self._cache if k not in seen]:
            await self._apply("DELETED", self._cache[key])
        for key, item in seen.items():
            old = self._cache.get(key)
            if old is not None and _rv(old) == _rv(item):
                continue
            await self._apply("MODIFIED", item)
        self._rv = rv

    @staticmethod
    def _item_kind(page: Obj) -> str:
        kind = page.get("kind", "")
        return kind[:-4] if kind.endswith("List") else kind

    async def _watch(self) -> None:
        """Follow the watch until it ends; StatusError(410) means the version expired."""
        timeout = random.randint(240, 480)
        async for kind, obj in self.client.watch(
            self.group, self.version, self.plural, self.namespace,
            resource_version=self._rv, label_selector=self.label_selector,
            field_selector=self.field_selector, timeout_seconds=timeout,
        ):
            rv = _rv(obj)
            if kind == "BOOKMARK":
                self._rv = rv or self._rv
                continue
            if kind not in ("ADDED", "MODIFIED", "DELETED"):
                continue
            if self._transform is not None:
                obj = self._transform(obj)
            await self._apply(kind, obj)
            if rv:
                self._rv = rv

    async def run(self) -> None:
        """List, then watch forever (re-listing as needed) until `stop` or cancellation."""
        if self._task is None or self._task.done():
            self._task = asyncio.current_task()
        need_list = True
        while not self._stopped.is_set():
            try:
                if need_list:
                    await self._list()
                    self.has_synced.set()
                    need_list = False
                await self._watch()
            except asyncio.CancelledError:
                raise
            except StatusError as err:
                if err.code != 410:
                    log.warning("%r: %s (%s); retrying", self, err.message, err.code)
                    await self._sleep(self._retry_delay)
                need_list = True
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as err:
                log.info("%r: connection lost (%s); listing again", self, err)
                need_list = True
                await self._sleep(self._retry_delay)

    async def _sleep(self, delay: float) -> None:
        try:
            await asyncio.wait_for(self._stopped.wait(), delay)
        except TimeoutError:
            pass

    def start(self) -> asyncio.Task[None]:
        """Run in a background task (returned, and cancelled by `stop`)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=repr(self))
        return self._task

    def stop(self) -> None:
        """Stop listing and watching; the cache keeps its last contents."""
        self._stopped.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()


def _rv(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion", "")

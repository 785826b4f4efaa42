"""Shared informers: late handlers see the cache, leaving components stop being called."""

from __future__ import annotations

import asyncio
from typing import Any

from skiff.client.informer import Informer
from skiff.client.shared_informers import SharedInformers


def _pod(name: str, rv: str = "1") -> dict[str, Any]:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


def test_late_handler_is_added_every_cached_object() -> None:
    async def go() -> None:
        inf = Informer(None, "", "v1", "pods")  # type: ignore[arg-type] - never lists
        await inf._apply("ADDED", _pod("a"))
        await inf._apply("ADDED", _pod("b"))
        seen: list[str] = []
        inf.on_add(lambda o: seen.append(o["metadata"]["name"]))
        assert sorted(seen) == ["a", "b"]
        await inf._apply("ADDED", _pod("c"))
        assert sorted(seen) == ["a", "b", "c"]

    asyncio.run(go())


def test_removed_handlers_are_no_longer_called() -> None:
    async def go() -> None:
        inf = Informer(None, "", "v1", "pods")  # type: ignore[arg-type] - never lists
        calls: list[str] = []

        class Component:
            def added(self, o: dict[str, Any]) -> None:
                calls.append("add")

            def updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
                calls.append("update")

        c = Component()
        inf.on_add(c.added)
        inf.on_update(c.updated)
        await inf._apply("ADDED", _pod("a"))
        for fn in (c.added, c.updated):
            inf.remove_handler(fn)
        await inf._apply("MODIFIED", _pod("a", "2"))
        await inf._apply("ADDED", _pod("b"))
        assert calls == ["add"]

    asyncio.run(go())


def test_factory_hands_out_one_informer_per_resource() -> None:
    shared = SharedInformers(None)  # type: ignore[arg-type] - never started
    pods = shared.get("", "v1", "pods")
    assert shared.get("", "v1", "pods") is pods
    assert shared.existing("apps", "v1", "replicasets") is None
    assert shared.get("apps", "v1", "replicasets") is not pods

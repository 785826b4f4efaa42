"""Informer recovery: 410 Gone and broken connections lead to a re-list and a diff."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from skiff.api.errors import StatusError
from skiff.client.informer import Informer


def obj(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


class ScriptedClient:
    """Serves a scripted sequence of list results and watch streams."""

    def __init__(self, lists: list[list[dict[str, Any]]], watches: list[Any]) -> None:
        self.lists = lists
        self.watches = watches
        self.list_calls = 0
        self.watch_from: list[str] = []

    async def list(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        items = self.lists[min(self.list_calls, len(self.lists) - 1)]
        self.list_calls += 1
        return {"kind": "ConfigMapList", "metadata": {"resourceVersion": str(10 * self.list_calls)},
                "items": [dict(i) for i in items]}

    async def watch(self, *args: Any, resource_version: str = "",
                    **kwargs: Any) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        self.watch_from.append(resource_version)
        script = self.watches.pop(0) if self.watches else None
        if script is None:
            await asyncio.sleep(3600)
            return
        for step in script:
            if isinstance(step, BaseException):
                raise step
            yield step


async def test_gone_relists_and_reports_the_difference() -> None:
    client = ScriptedClient(
        lists=[[obj("a", "1"), obj("b", "2")], [obj("b", "5"), obj("c", "6")]],
        watches=[
            [("MODIFIED", obj("a", "3")), ("BOOKMARK", {"metadata": {"resourceVersion": "9"}}),
             StatusError(410, "Expired", "too old")],
            None,
        ],
    )
    inf = Informer(client, "", "v1", "configmaps", retry_delay=0.001)  # type: ignore[arg-type]
    seen: list[tuple[str, str]] = []
    inf.on_add(lambda o: seen.append(("add", o["metadata"]["name"])))
    inf.on_update(lambda _old, o: seen.append(("update", o["metadata"]["name"])))
    inf.on_delete(lambda o: seen.append(("delete", o["metadata"]["name"])))
    task = inf.start()
    for _ in range(200):
        if client.list_calls >= 2 and len(client.watch_from) >= 2:
            break
        await asyncio.sleep(0.005)
    inf.stop()
    await asyncio.gather(task, return_exceptions=True)
    assert client.watch_from == ["10", "20"], "resume from the list, then from the re-list"
    assert seen == [("add", "a"), ("add", "b"), ("update", "a"),
                    ("delete", "a"), ("update", "b"), ("add", "c")]
    assert sorted(inf.keys()) == ["ns/b", "ns/c"]
    assert inf.get("ns/b")["kind"] == "ConfigMap"


async def test_disconnect_relists_and_handler_errors_do_not_stop_the_informer() -> None:
    client = ScriptedClient(
        lists=[[obj("a", "1")]],
        watches=[[("ADDED", obj("x", "2")), aiohttp.ClientPayloadError("cut")], None],
    )
    inf = Informer(client, "", "v1", "configmaps", retry_delay=0.001)  # type: ignore[arg-type]

    def broken(o: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    inf.on_add(broken)
    task = inf.start()
    await asyncio.wait_for(inf.has_synced.wait(), 1)
    for _ in range(200):
        if client.list_calls >= 2:
            break
        await asyncio.sleep(0.005)
    inf.stop()
    await asyncio.gather(task, return_exceptions=True)
    assert client.list_calls >= 2
    # "x" was only ever seen on the broken watch; the re-list says it is not there.
    assert inf.keys() == ["ns/a"]


async def test_updates_move_keys_between_index_values_and_transform_applies() -> None:
    def labelled(name: str, rv: str, team: str) -> dict[str, Any]:
        o = obj(name, rv)
        o["metadata"]["labels"] = {"team": team}
        o["metadata"]["managedFields"] = [{"manager": "m"}]
        return o

    client = ScriptedClient(
        lists=[[labelled("a", "1", "x"), labelled("b", "2", "x")]],
        watches=[[("MODIFIED", labelled("a", "3", "y")), ("MODIFIED", labelled("b", "4", "x"))],
                 None],
    )
    from skiff.client.informer import drop_managed_fields

    inf = Informer(client, "", "v1", "configmaps",  # type: ignore[arg-type]
                   transform=drop_managed_fields)
    inf.add_index("team", lambda o: [o["metadata"]["labels"]["team"]])
    updates: list[str] = []
    inf.on_update(lambda _old, o: updates.append(o["metadata"]["resourceVersion"]))
    task = inf.start()
    for _ in range(200):
        if len(updates) == 2:
            break
        await asyncio.sleep(0.005)
    inf.stop()
    await asyncio.gather(task, return_exceptions=True)
    assert updates == ["3", "4"]
    assert [o["metadata"]["name"] for o in inf.by_index("team", "x")] == ["b"]
    assert [o["metadata"]["name"] for o in inf.by_index("team", "y")] == ["a"]
    assert inf._indexes["team"].keys() == {"x", "y"}
    # Listed and watched objects alike are cached without managedFields.
    assert all("managedFields" not in o["metadata"] for o in inf.list())

"""The HTTP client and informers against a real `skiff up`."""

from __future__ import annotations

import asyncio
import stat
import uuid
from collections.abc import Callable

import pytest

from skiff.api.errors import StatusError
from skiff.apiserver.kubeconfig import local_socket_url
from skiff.client import Client, Informer, discover
from skiff.client.http_client import resource_path, status_error
from tests.cluster_fixture import Cluster


async def eventually(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until `pred()` holds; informers and controllers converge asynchronously."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def _cm(name: str, data: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": data or {}}


def test_resource_paths() -> None:
    assert resource_path("", "v1", "pods", "p", "ns", "log") == "/api/v1/namespaces/ns/pods/p/log"
    assert resource_path("apps", "v1", "deployments") == "/apis/apps/v1/deployments"
    assert resource_path("", "v1", "namespaces", "x", subresource="finalize") == (
        "/api/v1/namespaces/x/finalize")


def test_status_error_from_body_and_from_garbage() -> None:
    err = status_error(404, b'{"kind":"Status","code":404,"reason":"NotFound","message":"nope"}')
    assert (err.code, err.reason, err.message) == (404, "NotFound", "nope")
    err = status_error(502, b"<html>bad gateway</html>")
    assert err.code == 502 and "bad gateway" in err.message


async def test_crud_round_trip_and_errors(client: Client) -> None:
    name = f"cm-{uuid.uuid4().hex[:8]}"
    created = await client.create("", "v1", "configmaps", _cm(name, {"a": "1"}), "default")
    assert created["metadata"]["uid"]
    with pytest.raises(StatusError) as exc:
        await client.create("", "v1", "configmaps", _cm(name), "default")
    assert exc.value.code == 409 and exc.value.reason == "AlreadyExists"

    patched = await client.patch("", "v1", "configmaps", name, {"data": {"b": "2"}}, "default")
    assert patched["data"] == {"a": "1", "b": "2"}
    patched = await client.patch("", "v1", "configmaps", name,
                                 [{"op": "remove", "path": "/data/a"}], "default",
                                 patch_type="json")
    assert patched["data"] == {"b": "2"}

    patched["data"]["c"] = "3"
    updated = await client.update("", "v1", "configmaps", patched)
    assert updated["data"] == {"b": "2", "c": "3"}
    with pytest.raises(StatusError) as exc:
        await client.update("", "v1", "configmaps", patched)  # stale resourceVersion
    assert exc.value.code == 409

    page = await client.list("", "v1", "configmaps", "default",
                             field_selector=f"metadata.name={name}")
    assert [i["metadata"]["name"] for i in page["items"]] == [name]

    await client.delete("", "v1", "configmaps", name, "default")
    with pytest.raises(StatusError) as exc:
        await client.get("", "v1", "configmaps", name, "default")
    assert exc.value.code == 404 and exc.value.reason == "NotFound"


async def test_watch_streams_events_and_reports_gone(client: Client) -> None:
    name = f"w-{uuid.uuid4().hex[:8]}"
    start = (await client.list("", "v1", "configmaps", "default"))["metadata"]["resourceVersion"]

    async def collect() -> list[tuple[str, str]]:
        seen = []
        async for kind, obj in client.watch("", "v1", "configmaps", "default",
                                            resource_version=start, timeout_seconds=5):
            if obj.get("metadata", {}).get("name") == name:
                seen.append((kind, obj["metadata"]["name"]))
                if kind == "DELETED":
                    return seen
        return seen

    watcher = asyncio.create_task(collect())
    await client.create("", "v1", "configmaps", _cm(name), "default")
    await client.patch("", "v1", "configmaps", name, {"data": {"x": "y"}}, "default")
    await client.delete("", "v1", "configmaps", name, "default")
    events = await asyncio.wait_for(watcher, 10)
    assert [k for k, _ in events] == ["ADDED", "MODIFIED", "DELETED"]


async def test_informer_caches_indexes_and_calls_handlers(client: Client) -> None:
    ns = f"inf-{uuid.uuid4().hex[:6]}"
    await client.create("", "v1", "namespaces", {"metadata": {"name": ns}})
    await client.create("", "v1", "configmaps", _cm("before", {"team": "a"}), ns)
    inf = Informer(client, "", "v1", "configmaps", namespace=ns)
    inf.add_index("team", lambda o: [o.get("data", {}).get("team", "")])
    events: list[tuple[str, str]] = []

    def note(kind: str, obj: dict) -> None:
        events.append((kind, obj["metadata"]["name"]))

    inf.on_add(lambda o: note("add", o))
    inf.on_update(lambda _old, o: note("update", o))
    inf.on_delete(lambda o: note("delete", o))
    task = inf.start()
    try:
        await asyncio.wait_for(inf.has_synced.wait(), 5)
        assert inf.get(f"{ns}/before") is not None
        assert inf.get(f"{ns}/before")["kind"] == "ConfigMap"

        await client.create("", "v1", "configmaps", _cm("after", {"team": "b"}), ns)
        await eventually(lambda: inf.get(f"{ns}/after") is not None)
        assert [o["metadata"]["name"] for o in inf.by_index("team", "b")] == ["after"]
        await client.patch("", "v1", "configmaps", "after", {"data": {"team": "a"}}, ns)
        await eventually(lambda: len(inf.by_index("team", "a")) == 2)
        assert inf.by_index("team", "b") == []
        await client.delete("", "v1", "configmaps", "before", ns)
        await eventually(lambda: inf.get(f"{ns}/before") is None)
        assert events == [("add", "before"), ("add", "after"), ("update", "after"),
                          ("delete", "before")]
    finally:
        inf.stop()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_discovery_lists_namespaced_and_cluster_resources(client: Client) -> None:
    resources = {(r.group, r.plural): r for r in await discover(client)}
    cm = resources[("", "configmaps")]
    assert cm.namespaced and cm.supports("list", "watch", "delete", "deletecollection")
    assert not resources[("", "namespaces")].namespaced
    assert ("apps", "deployments") in resources


async def test_informer_relists_after_watch_failure(client: Client) -> None:
    """A watch error makes the informer list again and report what it missed."""
    ns = f"rel-{uuid.uuid4().hex[:6]}"
    await client.create("", "v1", "namespaces", {"metadata": {"name": ns}})
    await client.create("", "v1", "configmaps", _cm("one"), ns)
    inf = Informer(client, "", "v1", "configmaps", namespace=ns, retry_delay=0.01)
    deleted: list[str] = []
    inf.on_delete(lambda o: deleted.append(o["metadata"]["name"]))
    await inf._list()
    # Pretend the watch broke while "one" was deleted and "two" created.
    await client.delete("", "v1", "configmaps", "one", ns)
    await client.create("", "v1", "configmaps", _cm("two"), ns)
    await inf._list()
    assert deleted == ["one"]
    assert sorted(inf.keys()) == [f"{ns}/two"]


async def test_watch_lines_split_across_and_within_chunks() -> None:
    import orjson
    from aiohttp import web

    events = [{"type": "ADDED", "object": {"metadata": {"name": f"o{i}"}, "data": "x" * i * 50}}
              for i in range(6)]
    # The last line has a CR before its newline and the stream ends without one.
    stream = b"".join(orjson.dumps(e) + b"\n" for e in events[:4])
    stream += orjson.dumps(events[4]) + b"\r\n" + orjson.dumps(events[5])
    pieces, rest = [], stream
    # Pieces of every size: several lines in one chunk, one line over many chunks.
    for size in (7, 400, 3, 1, 90, 1):
        pieces.append(rest[:size])
        rest = rest[size:]
    pieces.append(rest)

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for piece in pieces:
            await resp.write(piece)
            await asyncio.sleep(0.01)
        return resp

    app = web.Application()
    app.router.add_get("/api/v1/configmaps", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    c = Client(f"http://127.0.0.1:{port}", component="test")
    try:
        got = [obj async for _, obj in c.watch("", "v1", "configmaps")]
    finally:
        await c.close()
        await runner.cleanup()
    assert got == [e["object"] for e in events]


async def test_components_reach_the_server_over_its_local_socket(cluster: Cluster) -> None:
    """`skiff up` serves its own components plain HTTP on an owner-only Unix socket,
    with the same authentication as the TLS port."""
    sock = cluster.data_dir / "apiserver.sock"
    if not sock.exists():
        pytest.skip("the data directory's path is too long for a socket")
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    own = Client.from_kubeconfig(cluster.data_dir / "components.kubeconfig")
    assert own.unix_socket == str(sock.resolve())
    anonymous = Client(local_socket_url(sock.resolve()))
    try:
        names = [n["metadata"]["name"] for n in (await own.list("", "v1", "namespaces"))["items"]]
        assert "default" in names
        own.use_pipeline(connections=2)
        cm = {"metadata": {"name": "over-socket"}, "data": {"a": "b"}}
        created = await own.create("", "v1", "configmaps", cm, "default")
        assert created["data"] == {"a": "b"}
        await own.delete("", "v1", "configmaps", "over-socket", "default")
        with pytest.raises(StatusError) as err:
            await anonymous.list("", "v1", "namespaces")
        assert err.value.code == 401
    finally:
        await own.close()
        await anonymous.close()


async def test_write_responses_are_the_stored_object(client: Client) -> None:
    """Responses to writes are built from the stored encoding: the same object a read
    returns, resourceVersion included."""
    ns = f"resp-{uuid.uuid4().hex[:6]}"
    await client.create("", "v1", "namespaces", {"metadata": {"name": ns}})
    created = await client.create("", "v1", "configmaps", _cm("a"), ns)
    assert created == await client.get("", "v1", "configmaps", "a", ns)
    created["data"] = {"k": "v2"}
    updated = await client.update("", "v1", "configmaps", created)
    assert updated == await client.get("", "v1", "configmaps", "a", ns)
    assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    patched = await client.patch("", "v1", "configmaps", "a", {"data": {"x": "y"}}, ns,
                                 patch_type="merge")
    assert patched == await client.get("", "v1", "configmaps", "a", ns)

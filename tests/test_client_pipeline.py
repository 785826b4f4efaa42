"""The pipelined request path against a real `skiff up`, and its response parser alone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from skiff.api.errors import StatusError
from skiff.client import Client
from skiff.client.pipeline import RequestPipeline, _Connection
from tests.cluster_fixture import Cluster, running_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster"), extra_args=("--no-scheduler",)) \
            as c:
        yield c


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[Client]:
    c = Client.from_kubeconfig(cluster.kubeconfig, component="test")
    yield c
    await c.close()


def _cm(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"k": name}}


async def test_many_concurrent_writes_are_answered_in_order(client: Client) -> None:
    pipe = RequestPipeline(client, connections=2, depth=8)
    prefix = f"pipe-{uuid.uuid4().hex[:6]}"
    path = client.path("", "v1", "configmaps", namespace="default")
    try:
        results = await asyncio.gather(*(pipe.request("POST", path, _cm(f"{prefix}-{i}"))
                                         for i in range(100)))
    finally:
        await pipe.close()
    # Each answer is the object that request created: responses matched their requests.
    assert [r["metadata"]["name"] for r in results] == [f"{prefix}-{i}" for i in range(100)]
    listed = await client.list("", "v1", "configmaps", "default")
    assert {f"{prefix}-{i}" for i in range(100)} <= {i["metadata"]["name"]
                                                      for i in listed["items"]}


async def test_errors_are_the_servers_status_and_do_not_break_the_stream(
        client: Client) -> None:
    pipe = RequestPipeline(client, connections=1)
    name = f"pipe-{uuid.uuid4().hex[:6]}"
    path = client.path("", "v1", "configmaps", namespace="default")
    try:
        first, dup, missing, bad, after = await asyncio.gather(
            pipe.request("POST", path, _cm(name)),
            pipe.request("POST", path, _cm(name)),
            pipe.request("GET", client.path("", "v1", "configmaps", "nope-" + name,
                                            "default")),
            pipe.request("POST", path, b"{not json"),
            pipe.request("GET", client.path("", "v1", "configmaps", name, "default")),
            return_exceptions=True)
    finally:
        await pipe.close()
    assert first["metadata"]["name"] == name
    assert isinstance(dup, StatusError) and dup.code == 409 and dup.reason == "AlreadyExists"
    assert isinstance(missing, StatusError) and missing.code == 404
    assert isinstance(bad, StatusError) and 400 <= bad.code < 500
    assert after["data"] == {"k": name}


async def test_a_new_connection_after_the_old_one_closed(client: Client) -> None:
    pipe = RequestPipeline(client, connections=1)
    path = client.path("", "v1", "namespaces", "default")
    try:
        assert (await pipe.request("GET", path))["metadata"]["name"] == "default"
        conn = pipe._conns[0]
        assert conn is not None and conn.transport is not None
        conn.transport.close()
        await asyncio.sleep(0.05)
        assert (await pipe.request("GET", path))["metadata"]["name"] == "default"
        assert pipe._conns[0] is not conn
    finally:
        await pipe.close()


async def test_unreachable_server_raises_connection_error(client: Client) -> None:
    closed = Client("https://127.0.0.1:1", component="test")
    pipe = RequestPipeline(closed)
    with pytest.raises(OSError):
        await pipe.request("GET", "/api/v1/namespaces")
    await closed.close()


async def test_parser_handles_split_chunked_and_interim_responses() -> None:
    loop = asyncio.get_running_loop()
    conn = _Connection()
    futs = [loop.create_future() for _ in range(3)]
    conn.waiters.extend(futs)
    stream = (b"HTTP/1.1 100 Continue\r\n\r\n"
              b"HTTP/1.1 201 Created\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
              b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"3\r\n{\"b\r\n4\r\n\":2}\r\n0\r\n\r\n"
              b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}")
    for i in range(0, len(stream), 5):
        conn.data_received(stream[i:i + 5])
    assert [f.result() for f in futs] == [(201, b'{"a":1}'), (200, b'{"b":2}'), (404, b"{}")]


async def test_unreadable_response_fails_waiters() -> None:
    loop = asyncio.get_running_loop()
    conn = _Connection()
    fut = loop.create_future()
    conn.waiters.append(fut)
    conn.data_received(b"SPDY/3 200\r\n\r\n")
    with pytest.raises(ConnectionError):
        fut.result()
    assert conn.closed


async def test_requests_are_counted_with_the_clients_metrics(client: Client) -> None:
    from skiff.client.metrics import METRICS

    pipe = RequestPipeline(client, connections=1)
    before = METRICS.requests[("test", "GET", "200")]
    missing = METRICS.requests[("test", "GET", "404")]
    try:
        await pipe.request("GET", client.path("", "v1", "namespaces", "default"))
        with pytest.raises(StatusError):
            await pipe.request("GET", client.path("", "v1", "namespaces", "nope-nope"))
    finally:
        await pipe.close()
    assert METRICS.requests[("test", "GET", "200")] == before + 1
    assert METRICS.requests[("test", "GET", "404")] == missing + 1


async def test_a_client_can_send_its_requests_through_a_pipeline(cluster: Cluster) -> None:
    c = Client.from_kubeconfig(cluster.kubeconfig, component="test-pipelined")
    c.use_pipeline(connections=2, depth=2)
    name = f"pipe-{uuid.uuid4().hex[:6]}"
    try:
        created = await c.create("", "v1", "configmaps", _cm(name), "default")
        assert created["metadata"]["name"] == name
        # Query parameters travel with the path (fieldManager, labelSelector).
        assert created["metadata"]["managedFields"][0]["manager"] == "skiff-test-pipelined"
        assert await c.patch("", "v1", "configmaps", name, {"data": {"k": "v2"}}, "default",
                             decode=False) is None
        listed = await c.list("", "v1", "configmaps", "default",
                              label_selector="skiff.dev/none notin (a, b)")
        assert name in {i["metadata"]["name"] for i in listed["items"]}
        got = await c.get("", "v1", "configmaps", name, "default")
        assert got["data"] == {"k": "v2"}
        with pytest.raises(StatusError) as err:
            await c.get("", "v1", "configmaps", "nope-" + name, "default")
        assert err.value.code == 404
        assert c._session is None, "no aiohttp session was needed"
    finally:
        await c.close()


async def test_a_pipelined_request_times_out_and_the_stream_stays_in_step() -> None:
    answers: list[asyncio.StreamWriter] = []

    async def slow_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Reads two requests, answers both only after the first one timed out.
        for _ in range(2):
            await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.3)
        for body in (b'{"n":1}', b'{"n":2}'):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        answers.append(writer)
        await writer.drain()

    server = await asyncio.start_server(slow_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    c = Client(f"http://127.0.0.1:{port}", component="test")
    c.use_pipeline(connections=1)
    try:
        first = asyncio.ensure_future(c.request("GET", "/a", timeout=0.1))
        second = asyncio.ensure_future(c.request("GET", "/b", timeout=5))
        with pytest.raises(TimeoutError):
            await first
        assert await second == {"n": 2}, "the late first answer is dropped, not misread"
    finally:
        await c.close()
        for w in answers:
            w.close()
        server.close()
        await server.wait_closed()


def test_query_strings_drop_empty_values_and_quote_the_rest() -> None:
    from skiff.client.http_client import _with_query

    assert _with_query("/api/v1/pods", None) == "/api/v1/pods"
    assert _with_query("/api/v1/pods", {"labelSelector": "", "limit": None}) == "/api/v1/pods"
    assert _with_query("/api/v1/pods", {"labelSelector": "a in (x, y),b!=c", "watch": True,
                                        "force": False}) == (
        "/api/v1/pods?labelSelector=a%20in%20%28x%2C%20y%29%2Cb%21%3Dc&watch=true")

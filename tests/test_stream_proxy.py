"""The API server's relay of upgraded stream requests (skiff.apiserver.stream_proxy)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from skiff.apiserver import stream_proxy as sp


def test_request_to_the_agent_keeps_the_upgrade_and_drops_credentials() -> None:
    headers = CIMultiDict([
        ("Host", "api:6443"), ("Authorization", "Bearer secret"), ("Connection", "Upgrade"),
        ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
        ("X-Stream-Protocol-Version", "v3.channel.k8s.io"), ("Content-Length", "0"),
        ("User-Agent", "kubectl/v1.32.4"), ("X-Bad", "a\r\nInjected: yes")])
    request = make_mocked_request("POST", "/api/v1/namespaces/ns/pods/p/exec", headers=headers)
    head = sp._request_head(request, "127.0.0.1:10250", "/exec/ns/p/c",
                            [("command", "sh"), ("command", "-c"), ("command", "echo a b"),
                             ("output", "1")]).decode()
    lines = head.split("\r\n")
    assert lines[0] == "POST /exec/ns/p/c?command=sh&command=-c&command=echo+a+b&output=1 HTTP/1.1"
    assert "Host: 127.0.0.1:10250" in lines
    assert "Authorization: Bearer secret" not in head and "api:6443" not in head
    assert lines.count("X-Stream-Protocol-Version: v4.channel.k8s.io") == 1
    assert "X-Stream-Protocol-Version: v3.channel.k8s.io" in lines
    assert "Upgrade: SPDY/3.1" in lines and "Connection: Upgrade" in lines
    assert lines.count("Content-Length: 0") == 1
    assert "Injected" not in head
    assert head.endswith("\r\n\r\n")


def test_agent_answer_head() -> None:
    status, reason, headers = sp._parse_head(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n")
    assert (status, reason) == (101, "Switching Protocols")
    assert ("Sec-WebSocket-Protocol", "v5.channel.k8s.io") in headers
    with pytest.raises(ValueError):
        sp._parse_head(b"garbage\r\n\r\n")


def test_only_upgrade_requests_are_relayed() -> None:
    plain = make_mocked_request("GET", "/api/v1/namespaces/ns/pods/p/exec")
    assert not sp._is_upgrade(plain)
    ws = make_mocked_request("GET", "/x", headers={"Connection": "keep-alive, Upgrade",
                                                   "Upgrade": "websocket"})
    assert sp._is_upgrade(ws)

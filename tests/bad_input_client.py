"""A raw HTTPS client for bad-input and fuzz tests: sends exactly the bytes given,
authenticated with the admin bearer token of a running `skiff up`."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Reply:
    """One HTTP answer."""

    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def text(self) -> str:
        """The body as text (for assertion messages)."""
        return self.body[:2000].decode(errors="replace")


class RawClient:
    """Sends raw requests over HTTPS to one server, with the admin token."""

    def __init__(self, data_dir: Path, port: int, timeout: float = 20) -> None:
        self.port = port
        self.timeout = timeout
        self.token = (data_dir / "pki" / "admin.token").read_text().strip()
        self.ssl = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.crt"))

    def request(self, method: str, path: str, body: bytes | str | None = None,
                content_type: str | None = "application/json",
                accept: str | None = "application/json",
                headers: dict[str, str] | None = None) -> Reply:
        """One request on a fresh connection (so a bad request cannot poison the next)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ssl,
                                           timeout=self.timeout)
        h = {"Authorization": f"Bearer {self.token}"}
        if content_type is not None:
            h["Content-Type"] = content_type
        if accept is not None:
            h["Accept"] = accept
        h.update(headers or {})
        if isinstance(body, str):
            body = body.encode()
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            return Reply(resp.status, resp.getheader("Content-Type") or "", data,
                         {k.lower(): v for k, v in resp.getheaders()})
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Reply:
        """GET `path`."""
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> Reply:
        """POST a JSON-encoded object (or raw bytes/str as given)."""
        if not isinstance(body, bytes | str):
            body = json.dumps(body)
        return self.request("POST", path, body, **kw)

    def ready(self) -> bool:
        """Whether /readyz answers ok."""
        r = self.get("/readyz", accept=None)
        return r.status == 200 and r.body == b"ok"

    def wait_for(self, path: str, status: int = 200, timeout: float = 15) -> Reply:
        """Poll GET `path` until it answers `status`."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(path)
            if r.status == status or time.monotonic() > deadline:
                return r
            time.sleep(0.1)

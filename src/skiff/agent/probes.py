"""Startup, liveness and readiness probes, and the handlers lifecycle hooks share.

One worker per (container instance, probe kind) follows upstream's timing: wait
`initialDelaySeconds`, then probe every `periodSeconds` with `timeoutSeconds`; the
result flips after `successThreshold` successes or `failureThreshold` failures in a
row. Liveness and readiness wait until the startup probe (if any) has succeeded.
Initial results are upstream's: liveness passes, readiness fails, startup unknown.
Every change of a result wakes the pod's worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from skiff.runtime.process.exec import run_to_completion
from skiff.runtime.protocol import Runtime, RuntimeFailure

log = logging.getLogger(__name__)

Obj = dict[str, Any]

STARTUP = "startup"
LIVENESS = "liveness"
READINESS = "readiness"
KINDS = {STARTUP: "startupProbe", LIVENESS: "livenessProbe", READINESS: "readinessProbe"}
TITLE = {STARTUP: "Startup", LIVENESS: "Liveness", READINESS: "Readiness"}


class HandlerError(Exception):
    """A probe or hook handler failed; the message is what events show."""


def resolve_port(port: Any, container: Obj) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p.get("containerPort") or 0)
    raise HandlerError(f"couldn't find port: {port} in {container.get('name', '')}")


async def run_handler(runtime: Runtime, container_id: str, container: Obj, handler: Obj,
                      pod_ip: str, timeout: float,
                      session: aiohttp.ClientSession) -> str:
    """Run an exec/httpGet/tcpSocket/sleep handler; returns output, raises HandlerError."""
    if handler.get("exec") is not None:
        command = list((handler["exec"] or {}).get("command") or [])
        try:
            proc = await runtime.exec(container_id, command)
            code, out = await run_to_completion(proc, timeout)  # type: ignore[arg-type]
        except TimeoutError:
            raise HandlerError(f"command {_quote_cmd(command)} timed out") from None
        except RuntimeFailure as exc:
            raise HandlerError(exc.message) from None
        text = out.decode(errors="replace")
        if code != 0:
            raise HandlerError(text.rstrip("\n") or f"command {_quote_cmd(command)} exited "
                                                     f"with {code}")
        return text
    if handler.get("httpGet") is not None:
        h = handler["httpGet"] or {}
        port = resolve_port(h.get("port"), container)
        host = h.get("host") or pod_ip
        scheme = (h.get("scheme") or "HTTP").lower()
        path = h.get("path") or "/"
        if not path.startswith("/"):
            path = "/" + path
        url = f"{scheme}://{host}:{port}{path}"
        headers = {"User-Agent": "kube-probe/1.32", "Accept": "*/*"}
        for hd in h.get("httpHeaders") or []:
            headers[hd.get("name", "")] = hd.get("value", "")
        try:
            async with session.get(url, headers=headers, ssl=False, allow_redirects=True,
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                body = await resp.content.read(10 * 1024)
                if 200 <= resp.status < 400:
                    return body.decode(errors="replace")
                raise HandlerError(f"HTTP probe failed with statuscode: {resp.status}")
        except TimeoutError:
            raise HandlerError(f'Get "{url}": context deadline exceeded (Client.Timeout '
                               f"exceeded while awaiting headers)") from None
        except aiohttp.ClientConnectorError as exc:
            raise HandlerError(f'Get "{url}": dial tcp {host}:{port}: connect: '
                               f"{_os_message(exc.os_error)}") from None
        except aiohttp.ClientError as exc:
            raise HandlerError(f'Get "{url}": {exc}') from None
    if handler.get("tcpSocket") is not None:
        t = handler["tcpSocket"] or {}
        port = resolve_port(t.get("port"), container)
        host = t.get("host") or pod_ip
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return ""
        except TimeoutError:
            raise HandlerError(f"dial tcp {host}:{port}: i/o timeout") from None
        except OSError as exc:
            raise HandlerError(f"dial tcp {host}:{port}: connect: {_os_message(exc)}") from None
    if handler.get("sleep") is not None:
        await asyncio.sleep(min(timeout, float((handler["sleep"] or {}).get("seconds") or 0)))
        return ""
    if handler.get("grpc") is not None:
        raise HandlerError("gRPC probes are not supported by this node agent")
    raise HandlerError("the handler names no action")


def _os_message(exc: OSError | None) -> str:
    if exc is None or exc.errno == errno.ECONNREFUSED:
        return "connection refused"
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc)


def _quote_cmd(command: list[str]) -> str:
    return "[" + " ".join(command) + "]"


@dataclass
class ProbeResult:
    """The current verdict of one probe."""

    ok: bool | None
    message: str = ""


class ProbeManager:
    """Runs probe workers and keeps their latest results."""

    def __init__(self, runtime: Runtime, on_change: Callable[[str], None],
                 on_failure: Callable[[Obj, str, str, str], None]) -> None:
        self.runtime = runtime
        self.on_change = on_change
        self.on_failure = on_failure
        self.results: dict[tuple[str, str], ProbeResult] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session probes and hooks share."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=False, force_close=True, limit=0))
        return self._session

    def result(self, container_id: str, kind: str) -> ProbeResult:
        """The probe's verdict (upstream's initial value before the first run)."""
        got = self.results.get((container_id, kind))
        if got is not None:
            return got
        return ProbeResult({LIVENESS: True, READINESS: False, STARTUP: None}[kind])

    def ensure(self, pod_key: str, pod: Obj, container: Obj, container_id: str,
               pod_ip: str) -> None:
        """Start the container instance's probe workers (once)."""
        for kind, field in KINDS.items():
            probe = container.get(field)
            key = (container_id, kind)
            if not probe or key in self._workers:
                continue
            self._workers[key] = asyncio.create_task(
                self._run(pod_key, pod, container, container_id, kind, probe, pod_ip),
                name=f"probe:{kind}:{container_id[:12]}")

    def stop(self, container_id: str) -> None:
        """Stop the workers of a container instance that ended."""
        for kind in KINDS:
            task = self._workers.pop((container_id, kind), None)
            if task is not None:
                task.cancel()
            self.results.pop((container_id, kind), None)

    def stop_all_except(self, live: set[str]) -> None:
        """Stop workers of every container instance not in `live`."""
        for cid in {cid for cid, _ in self._workers} - live:
            self.stop(cid)

    async def close(self) -> None:
        """Stop every worker."""
        for task in self._workers.values():
            task.cancel()
        self._workers.clear()
        if self._session is not None:
            await self._session.close()

    async def _run(self, pod_key: str, pod: Obj, container: Obj, container_id: str, kind: str,
                   probe: Obj, pod_ip: str) -> None:
        initial = float(probe.get("initialDelaySeconds") or 0)
        period = float(probe.get("periodSeconds") or 10)
        timeout = float(probe.get("timeoutSeconds") or 1)
        success_threshold = int(probe.get("successThreshold") or 1)
        failure_threshold = int(probe.get("failureThreshold") or 3)
        if kind != STARTUP and container.get("startupProbe"):
            while self.result(container_id, STARTUP).ok is not True:
                await asyncio.sleep(0.2)
        if initial:
            await asyncio.sleep(initial)
        else:
            # Upstream staggers the first run a little; keep it short so pods get ready fast.
            await asyncio.sleep(random.uniform(0, min(period, 0.05)))
        successes = failures = 0
        while True:
            try:
                await run_handler(self.runtime, container_id, container, probe, pod_ip, timeout,
                                  self.session())
                ok, message = True, ""
            except HandlerError as exc:
                ok, message = False, str(exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an unexpected probe error is a failure
                ok, message = False, f"{type(exc).__name__}: {exc}"
            if ok:
                successes += 1
                failures = 0
            else:
                failures += 1
                successes = 0
                self.on_failure(pod, container.get("name", ""), kind, message)
            current = self.result(container_id, kind).ok
            verdict = current
            if ok and successes >= success_threshold:
                verdict = True
            elif not ok and failures >= failure_threshold:
                verdict = False
            if verdict != current:
                self.results[(container_id, kind)] = ProbeResult(verdict, message)
                self.on_change(pod_key)
                if kind == STARTUP and verdict:
                    # Startup probes stop once they succeed.
                    return
                if kind in (LIVENESS, STARTUP) and verdict is False:
                    return
            await asyncio.sleep(period)

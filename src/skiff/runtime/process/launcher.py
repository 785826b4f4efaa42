"""Starting container shims: forked from the agent's zygote, else a fresh interpreter.

`ShimLauncher.launch(container_dir)` returns the shim's report (`{"pid": …,
"startedAt": …}` once the container runs, or `{"error": …}`). The fast path sends
the request to the zygote (see `zygote.py`) with a fresh pipe for the report; if
the zygote is not running or has died, the launcher starts a new one for later
requests and starts this shim the slow way, as its own `python shim.py`, so a
broken zygote costs speed, never a container.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SHIM = str(HERE / "shim.py")
ZYGOTE = str(HERE / "zygote.py")
ZYGOTE_STOP_TIMEOUT = 5.0


def parse_report(line: bytes) -> dict[str, Any]:
    """The shim's report line as a dict (an `error` entry if it said nothing useful)."""
    if not line:
        return {"error": "the shim exited without a word"}
    try:
        report = json.loads(line)
    except ValueError:
        return {"error": line.decode(errors="replace")}
    return report if isinstance(report, dict) else {"error": str(report)}


async def read_line(fd: int) -> bytes:
    """Read one line (or up to end-of-file) from a pipe without blocking the loop;
    closes `fd`."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    buf = bytearray()
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        buf.extend(chunk)
        if (not chunk or b"\n" in buf) and not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return bytes(buf).split(b"\n", 1)[0]


async def _writable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Until `sock` has room to send."""
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_writer(sock.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_writer(sock.fileno())


class ShimLauncher:
    """Starts shims (see the module docstring)."""

    def __init__(self, use_zygote: bool = True, owner: str = "") -> None:
        self.use_zygote = use_zygote
        # Shown on the zygote's command line, so `ps` (and a test looking for leftovers
        # of a cluster) can tell whose zygote it is.
        self.owner = owner
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._closed = False

    @property
    def zygote_pid(self) -> int:
        """The zygote's pid (0 if none runs)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else 0

    def start(self) -> None:
        """Start the zygote (a no-op if it runs; on failure, shims start the slow way)."""
        if not self.use_zygote or self._closed or self.zygote_pid:
            return
        self._stop_zygote(wait=False)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-S", "-E", ZYGOTE, *([self.owner] if self.owner else [])],
                stdin=theirs.fileno(),
                stdout=subprocess.DEVNULL, start_new_session=True, cwd="/")
        except OSError as exc:
            log.warning("shim zygote not started (%s); containers start slower", exc)
            ours.close()
            return
        finally:
            theirs.close()
        ours.setblocking(False)
        self._sock = ours

    async def launch(self, container_dir: Path) -> dict[str, Any]:
        """Start the shim of `container_dir` and return its report."""
        if self.use_zygote and not self._closed:
            if not self.zygote_pid:
                self.start()
            if self._sock is not None:
                read_end, write_end = os.pipe()
                try:
                    sent = await self._send(str(container_dir).encode(), write_end)
                finally:
                    os.close(write_end)
                if sent:
                    return parse_report(await read_line(read_end))
                os.close(read_end)
                log.warning("shim zygote gone; starting a new one")
                self._stop_zygote(wait=False)
                self.start()
        return await self._launch_fresh(container_dir)

    async def _send(self, payload: bytes, fd: int) -> bool:
        sock = self._sock
        if sock is None:
            return False
        loop = asyncio.get_running_loop()
        while True:
            try:
                socket.send_fds(sock, [payload], [fd])
                return True
            except BlockingIOError:
                await _writable(loop, sock)
            except OSError:
                return False

    async def _launch_fresh(self, container_dir: Path) -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-S", "-E", SHIM, str(container_dir),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        await proc.wait()
        return parse_report(line.rstrip(b"\n"))

    def _stop_zygote(self, wait: bool) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if not wait:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)
            return
        try:
            proc.wait(ZYGOTE_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    async def close(self) -> None:
        """Stop the zygote (the shims it started keep running)."""
        self._closed = True
        await asyncio.to_thread(self._stop_zygote, True)

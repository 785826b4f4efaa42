"""Helpers of the API benchmark: the server process under test, its resource use,
latency statistics and a closed-loop HTTP load runner."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def skiff_command() -> list[str]:
    """The `skiff` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "skiff"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "skiff.cli.main"]


def pin(cpus: set[int]) -> None:
    """Restrict the calling process to `cpus` (when the machine has them)."""
    if hasattr(os, "sched_setaffinity") and max(cpus) < (os.cpu_count() or 1):
        os.sched_setaffinity(0, cpus)


def percentile(sorted_values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """p50/p99/max of latencies given in seconds, in milliseconds."""
    s = sorted(seconds)
    return {"p50_ms": round(percentile(s, 50) * 1000, 2),
            "p99_ms": round(percentile(s, 99) * 1000, 2),
            "max_ms": round((s[-1] if s else float("nan")) * 1000, 2)}


@dataclass
class Server:
    """`skiff up --no-controllers --nodes 0` (the API server alone), pinned to one CPU."""

    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0
    log_path: Path | None = None
    env: dict[str, str] | None = None

    def compile_bytecode(self, cache_dir: Path) -> None:
        """Have the server's modules compiled once into `cache_dir`, as an installed
        package's are, so that startup is measured with bytecode cached even where
        PYTHONDONTWRITEBYTECODE is set (the work tree is left untouched)."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
        self.env = env
        subprocess.run([sys.executable, "-c", "import skiff.cli.up, skiff.apiserver.server"],
                       env=env, check=True)

    def start(self, cpu: int | None, timeout: float = 30.0) -> float:
        """Spawn the server and return the seconds until /readyz answered 200 over HTTPS."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"server-{time.monotonic_ns()}.log"
        out = open(self.log_path, "wb")  # noqa: SIM115 - owned by the child's lifetime

        def preexec() -> None:
            if cpu is not None:
                pin({cpu})

        cmd = [*skiff_command(), "up", "--no-controllers", "--nodes", "0",
               "--data-dir", str(self.data_dir), "--port", str(self.port)]
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                     preexec_fn=preexec, env=self.env)
        out.close()
        self.startup_s = self._wait_ready(t0, timeout)
        return self.startup_s

    def _wait_ready(self, t0: float, timeout: float) -> float:
        # The CA may not exist before the first start finishes, so readiness is
        # polled without verification; the load afterwards verifies the CA.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        request = (f"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                   "Connection: close\r\n\r\n").encode()
        deadline = t0 + timeout
        assert self.proc is not None
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"skiff up exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw, \
                        ctx.wrap_socket(raw) as tls:
                    tls.sendall(request)
                    head = tls.recv(64)
                if head.startswith(b"HTTP/1.1 200"):
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.001)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"skiff up was not ready within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        """What the server printed."""
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.proc is not None
        return self.proc.pid

    def rss_mb(self) -> float:
        """Resident memory (VmRSS) in MiB."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server used so far."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Stop the server process (by its PID) and reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tls_context(self) -> ssl.SSLContext:
        """A client TLS context trusting the cluster CA."""
        ctx = ssl.create_default_context(cafile=str(self.data_dir / "pki" / "ca.crt"))
        return ctx

    def token(self) -> str:
        """The admin bearer token."""
        return (self.data_dir / "pki" / "admin.token").read_text().strip()

    def cleanup(self) -> None:
        """Remove the data folder."""
        shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class CPUMeter:
    """Server and client CPU use over one phase, as fractions of one core."""

    server: Server
    t0: float = 0.0
    s0: float = 0.0
    c0: float = 0.0
    server_s: float = 0.0
    result: dict[str, float] = field(default_factory=dict)

    def __enter__(self) -> CPUMeter:
        self.t0 = time.perf_counter()
        self.s0 = self.server.cpu_seconds()
        self.c0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = max(time.perf_counter() - self.t0, 1e-9)
        self.server_s = self.server.cpu_seconds() - self.s0
        self.result = {
            "server_cpu": round((self.server.cpu_seconds() - self.s0) / wall, 2),
            "client_cpu": round((time.process_time() - self.c0) / wall, 2),
        }

    def per_op(self, figures: dict[str, Any]) -> dict[str, Any]:
        """`figures` with this phase's CPU use added, also as server CPU ms per operation
        (a figure that other load on the machine disturbs less than throughput)."""
        figures.update(self.result)
        figures["server_cpu_ms_per_op"] = round(self.server_s * 1000 / max(figures["n"], 1), 3)
        return figures


async def closed_loop(
    n: int,
    concurrency: int,
    op: Callable[[int], Awaitable[bool]],
    time_cap: float,
) -> dict[str, Any]:
    """Run op(0..n-1) with `concurrency` workers, each issuing its next request as
    soon as the previous one answered. Stops issuing after `time_cap` seconds.
    Returns throughput and latency figures."""
    latencies: list[float] = []
    errors = 0
    next_i = 0
    start = time.perf_counter()
    stop_at = start + time_cap

    async def worker() -> None:
        nonlocal next_i, errors
        while next_i < n and time.perf_counter() < stop_at:
            i = next_i
            next_i += 1
            t = time.perf_counter()
            ok = await op(i)
            latencies.append(time.perf_counter() - t)
            if not ok:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    return {"n": len(latencies), "concurrency": concurrency, "errors": errors,
            "seconds": round(wall, 3), "ops_per_s": round(len(latencies) / wall, 1),
            **summary_ms(latencies)}

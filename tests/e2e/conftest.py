"""A real `skiff up` for end-to-end tests, and a `kubectl` runner bound to it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

KUBECTL = shutil.which("kubectl")


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """A running `skiff up` process."""

    proc: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    log_path: Path

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig it wrote."""
        return self.data_dir / "kubeconfig"

    @property
    def url(self) -> str:
        """The API server's address."""
        return f"https://127.0.0.1:{self.port}"

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Stop the process (SIGTERM: clean shutdown; SIGKILL: a crash)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_cluster(data_dir: Path, port: int | None = None, *extra: str,
                  timeout: float = 30) -> Cluster:
    """Start `skiff up` and wait until its kubeconfig is written and /readyz answers.

    No node agents unless `extra` asks for some (`--nodes N`): most tests exercise the
    API alone and must not see an agent's background writes.
    """
    port = port or free_port()
    if "--nodes" not in extra:
        extra = (*extra, "--nodes", "0")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"skiff-{port}-{time.monotonic_ns()}.log"
    kubeconfig = data_dir / "kubeconfig"
    if kubeconfig.exists():
        kubeconfig.unlink()
    out = open(log_path, "wb")  # noqa: SIM115 - closed when the process is reaped
    proc = subprocess.Popen(
        [sys.executable, "-m", "skiff.cli.main", "up", "--data-dir", str(data_dir),
         "--port", str(port), *extra],
        stdout=out, stderr=subprocess.STDOUT,
    )
    cluster = Cluster(proc, data_dir, port, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"skiff up exited early:\n{cluster.log()}")
        if kubeconfig.exists():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return cluster
            except OSError:
                pass
        time.sleep(0.05)
    cluster.stop(signal.SIGKILL)
    raise RuntimeError(f"skiff up did not become ready:\n{cluster.log()}")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster shared by the e2e tests of a session."""
    c = start_cluster(tmp_path_factory.mktemp("skiff-e2e"))
    yield c
    c.stop()


@dataclass
class Kubectl:
    """Runs the real kubectl against one cluster, with its own discovery cache."""

    cluster: Cluster
    cache_dir: Path

    def env(self) -> dict[str, str]:
        """The environment kubectl runs in."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.cluster.kubeconfig)
        env["KUBECACHEDIR"] = str(self.cache_dir)
        env["HOME"] = str(self.cache_dir.parent)
        return env

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        """Run `kubectl ARGS`; raise with its output if it fails and `check` is set."""
        assert KUBECTL is not None
        proc = subprocess.run(
            [KUBECTL, "--cache-dir", str(self.cache_dir), *args], input=input,
            capture_output=True, text=True, timeout=timeout, env={**self.env(), **(env or {})},
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def __call__(self, *args: str, **kw: object) -> str:
        """Run kubectl and return its stdout."""
        return self.run(*args, **kw).stdout  # type: ignore[arg-type]


def new_kubectl(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """kubectl bound to `cluster`, with a home and discovery cache of its own."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    home = tmp_path_factory.mktemp("kubectl-home")
    cache = home / ".kube" / "cache"
    cache.mkdir(parents=True)
    return Kubectl(cluster, cache)


@pytest.fixture(scope="session")
def kubectl(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """kubectl bound to the session cluster."""
    return new_kubectl(cluster, tmp_path_factory)


def eventually(check: Callable[[], Any], what: str, timeout: float = 30,
               interval: float = 0.2) -> Any:
    """Poll `check` until it returns something true (which is returned), or fail."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(interval)

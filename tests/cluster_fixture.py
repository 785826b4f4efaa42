"""Starting a real `skiff up` on a free loopback port for integration tests.

Test modules define their own fixture around `running_cluster` (so ruff does not see
an imported fixture being shadowed by a parameter):

    @pytest.fixture(scope="module")
    def cluster(tmp_path_factory):
        with running_cluster(tmp_path_factory.mktemp("cluster")) as c:
            yield c
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SKIFF = Path(sys.executable).with_name("skiff")


@dataclass
class Cluster:
    """A running server: where its kubeconfig is and the process serving it."""

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig `skiff up` wrote."""
        return self.data_dir / "kubeconfig"

    def log(self) -> str:
        """What the server printed so far (for assertion messages)."""
        with contextlib.suppress(OSError):
            return (self.data_dir / "skiff.log").read_text(errors="replace")[-4000:]
        return ""


def free_port() -> int:
    """A loopback port nobody is listening on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running_cluster(data_dir: Path, *, extra_args: tuple[str, ...] = ()) -> Iterator[Cluster]:
    """Run `skiff up` until the block ends; skip the test if skiff cannot start."""
    if not SKIFF.exists():
        pytest.skip("the skiff command is not installed in this environment")
    if "--nodes" not in extra_args:
        # Node agents run real processes; tests of controllers drive pods themselves.
        extra_args = (*extra_args, "--nodes", "0")
    port = free_port()
    log = open(data_dir / "skiff.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(SKIFF), "up", "--data-dir", str(data_dir), "--port", str(port), *extra_args],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    cluster = Cluster(data_dir, port, proc)
    try:
        deadline = time.monotonic() + 20
        while not ((data_dir / "kubeconfig").exists() and _ready(port)):
            if proc.poll() is not None:
                pytest.fail(f"skiff up exited with {proc.returncode}:\n{cluster.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"skiff up did not become ready:\n{cluster.log()}")
            time.sleep(0.05)
        yield cluster
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()

"""Stream benchmark: exec latency and exec, cp and port-forward throughput.

Starts `skiff up --nodes 1` (process runtime; needs root) on a temporary folder,
runs two pods, and measures with the real kubectl, over each transport kubectl can
use (WebSocket, its default, and SPDY):

- exec latency: wall time of `kubectl exec POD -- true` (kubectl's own start
  included, as a user sees it), p50/p99 over `--execs` runs;
- exec throughput: `kubectl exec POD -- cat FILE` of `--mb` megabytes to /dev/null;
- cp throughput: `kubectl cp` of that file into the pod;
- port-forward throughput: one HTTP download of that file through
  `kubectl port-forward` (SPDY tunnelled in a WebSocket, and raw SPDY).

Prints a table and a `BENCH_JSON {...}` line. Bounded: a few dozen commands.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")
SPDY_EXEC = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
SPDY_PF = {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    rank = max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))
    return s[rank]


class Bench:
    """A cluster with one agent and the kubectl bound to it."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.log = open(data / "skiff.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skiff.cli.main", "up", "--data-dir", str(data),
             "--port", str(self.port), "--nodes", "1"], stdout=self.log,
            stderr=subprocess.STDOUT, env=env)
        self.env = {**os.environ, "KUBECONFIG": str(data / "kubeconfig"),
                    "HOME": str(data)}
        deadline = time.monotonic() + 60
        while not (data / "kubeconfig").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("skiff up did not start")
            time.sleep(0.1)
        while " Ready " not in self.kubectl("get", "nodes", "--no-headers", check=False):
            if time.monotonic() > deadline:
                raise SystemExit("the node did not become Ready")
            time.sleep(0.3)

    def kubectl(self, *args: str, env: dict[str, str] | None = None, check: bool = True,
                stdout: int | None = subprocess.PIPE) -> str:
        assert KUBECTL is not None
        res = subprocess.run([KUBECTL, *args], env={**self.env, **(env or {})},
                             stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300)
        if check and res.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} failed: {res.stderr}")
        return res.stdout or ""

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def port_forward_seconds(b: Bench, http_port: int, size: int, env: dict[str, str]) -> float:
    assert KUBECTL is not None
    proc = subprocess.Popen([KUBECTL, "port-forward", "pod/web", f":{http_port}",
                             "--address", "127.0.0.1"], env={**b.env, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        match = re.search(r"127\.0\.0\.1:(\d+)", proc.stdout.readline())
        if match is None:
            raise SystemExit("port-forward did not start")
        url = f"http://127.0.0.1:{match.group(1)}/big"

        def fetch() -> None:
            with urllib.request.urlopen(url, timeout=120) as r:
                got = len(r.read())
            if got != size:
                raise SystemExit(f"port-forward returned {got} bytes, not {size}")

        return timed(fetch)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--execs", type=int, default=20, help="exec runs per transport")
    parser.add_argument("--mb", type=int, default=50, help="size of the transferred file")
    args = parser.parse_args()
    if os.geteuid() != 0 or KUBECTL is None:
        raise SystemExit("needs root (process runtime) and kubectl")
    size = args.mb * 1_000_000
    data = Path(tempfile.mkdtemp(prefix="skiff-bench-streams-"))
    b = Bench(data)
    results: dict[str, float] = {}
    try:
        http_port = free_port()
        manifest = f"""
apiVersion: v1
kind: Pod
metadata: {{name: shell}}
spec:
  nodeName: node-1
  containers: [{{name: main, image: busybox, command: [sh, -c, "sleep 3600"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  nodeName: node-1
  containers:
  - name: web
    image: python
    command: [sh, -c, "mkdir -p /tmp/www && head -c {size} /dev/urandom > /tmp/www/big &&
                       cd /tmp/www && exec python3 -m http.server {http_port}"]
"""
        subprocess.run([KUBECTL, "apply", "-f", "-"], input=manifest, text=True, env=b.env,
                       check=True, capture_output=True)
        b.kubectl("wait", "--for=condition=Ready", "pod/shell", "pod/web", "--timeout=60s")
        local = data / "big"
        local.write_bytes(os.urandom(size))
        for name, env in (("websocket", {}), ("spdy", SPDY_EXEC)):
            lat = [timed(lambda env=env: b.kubectl("exec", "shell", "--", "true", env=env))
                   for _ in range(args.execs)]
            results[f"exec_{name}_p50_ms"] = round(percentile(lat, 50) * 1000, 1)
            results[f"exec_{name}_p99_ms"] = round(percentile(lat, 99) * 1000, 1)
            secs = timed(lambda env=env: b.kubectl("exec", "web", "--", "cat", "/tmp/www/big",
                                                   env=env, stdout=subprocess.DEVNULL))
            results[f"exec_cat_{name}_MBps"] = round(args.mb / secs, 1)
            secs = timed(lambda env=env: b.kubectl("cp", str(local), "shell:/tmp/big",
                                                   env=env))
            results[f"cp_to_pod_{name}_MBps"] = round(args.mb / secs, 1)
        for name, env in (("websocket_tunnel", {}), ("spdy", SPDY_PF)):
            secs = port_forward_seconds(b, http_port, size, env)
            results[f"port_forward_{name}_MBps"] = round(args.mb / secs, 1)
        baseline = [timed(lambda: b.kubectl("get", "pod", "shell", "-o", "name"))
                    for _ in range(args.execs)]
        results["kubectl_get_p50_ms"] = round(percentile(baseline, 50) * 1000, 1)
    finally:
        b.stop()
        shutil.rmtree(data, ignore_errors=True)
    width = max(len(k) for k in results)
    print(f"{'measure':<{width}}  value")
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print("BENCH_JSON " + json.dumps({"bench": "streams", "execs": args.execs,
                                      "mb": args.mb, **results}))


if __name__ == "__main__":
    main()

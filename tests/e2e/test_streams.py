"""exec, attach, cp and port-forward with the real kubectl and the Python client.

Pods run on a cluster of their own with one node agent (process runtime). Each
kubectl command runs twice where it matters: over WebSocket (kubectl 1.32's default) and over SPDY
(`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`, `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`),
so both protocol stacks are exercised end to end through the API server's relay.
"""

from __future__ import annotations

import base64
import concurrent.futures
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import KUBECTL, Cluster, Kubectl, free_port, start_cluster

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the process runtime needs root")

NODE = "node-1"
SPDY_EXEC = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
SPDY_PORT_FORWARD = {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
TRANSPORTS = {"websocket": {}, "spdy": SPDY_EXEC}


@pytest.fixture(scope="module")
def agent_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster with one node agent (process runtime)."""
    c = start_cluster(tmp_path_factory.mktemp("skiff-streams"), None, "--nodes", "1")
    yield c
    c.stop()


@pytest.fixture(scope="module")
def kubectl(agent_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """kubectl bound to the agent cluster, once its node is Ready."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    cache = tmp_path_factory.mktemp("kubectl-streams") / ".kube" / "cache"
    cache.mkdir(parents=True)
    k = Kubectl(agent_cluster, cache)
    deadline = time.monotonic() + 30
    while " Ready " not in k("get", "nodes", "--no-headers"):
        assert time.monotonic() < deadline, "the node did not become Ready"
        time.sleep(0.3)
    return k


class Pods:
    """The namespace and pods the tests share."""

    def __init__(self, kubectl: Kubectl, ns: str, http_port: int) -> None:
        self.kubectl = kubectl
        self.ns = ns
        self.http_port = http_port

    def run(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        """kubectl in the test namespace, not checked."""
        return self.kubectl.run("-n", self.ns, *args, check=False, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pods(kubectl: Kubectl) -> Iterator[Pods]:
    ns = f"streams-{uuid.uuid4().hex[:8]}"
    http_port = free_port()
    kubectl("create", "namespace", ns)
    kubectl("apply", "-n", ns, "-f", "-", input=f"""
apiVersion: v1
kind: Pod
metadata: {{name: shell}}
spec:
  nodeName: {NODE}
  containers:
  - {{name: main, image: busybox, command: [sh, -c, "sleep 3600"]}}
  - {{name: side, image: busybox, command: [sh, -c, "sleep 3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  nodeName: {NODE}
  containers:
  - name: web
    image: python
    command: [sh, -c, "mkdir -p /tmp/www && echo served-by-pod > /tmp/www/index.html &&
                       head -c 300000 /dev/urandom > /tmp/www/big &&
                       cd /tmp/www && exec python3 -m http.server {http_port}"]
---
apiVersion: v1
kind: Pod
metadata: {{name: ticker}}
spec:
  nodeName: {NODE}
  containers:
  - name: tick
    image: busybox
    command: [sh, -c, 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done']
---
apiVersion: v1
kind: Pod
metadata: {{name: reader}}
spec:
  nodeName: {NODE}
  restartPolicy: Never
  containers:
  - name: read
    image: busybox
    stdin: true
    stdinOnce: true
    command: [sh, -c, 'while read line; do echo "got: $line"; done; echo bye']
""")
    kubectl("wait", "--for=condition=Ready", "pod/shell", "pod/web", "pod/ticker", "pod/reader",
            "-n", ns, "--timeout=60s")
    yield Pods(kubectl, ns, http_port)
    kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


# -- exec -----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_output_and_exit_codes(pods: Pods, transport: str) -> None:
    env = TRANSPORTS[transport]
    out = pods.run("exec", "shell", "-c", "main", "--", "echo", "hello", "there", env=env)
    assert (out.returncode, out.stdout) == (0, "hello there\n")
    res = pods.run("exec", "shell", "-c", "main", "--", "sh", "-c",
                   "echo to-out; echo to-err >&2; exit 3", env=env)
    assert res.returncode == 3
    assert res.stdout == "to-out\n"
    assert res.stderr == "to-err\ncommand terminated with exit code 3\n"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_with_stdin(pods: Pods, transport: str) -> None:
    data = "".join(f"line {i}\n" for i in range(2000))
    res = pods.run("exec", "-i", "shell", "-c", "main", "--", "sh", "-c", "wc -l; cat",
                   input=data, env=TRANSPORTS[transport])
    assert res.returncode == 0, res.stderr
    assert res.stdout == "2000\n" or res.stdout.startswith("2000\n")


def test_exec_defaults_to_the_only_container_and_names_choices(pods: Pods) -> None:
    res = pods.run("exec", "web", "--", "cat", "/tmp/www/index.html")
    assert res.stdout == "served-by-pod\n"
    res = pods.run("exec", "shell", "-c", "nope", "--", "true")
    assert res.returncode != 0
    assert "container nope is not valid for pod shell" in res.stderr


def test_exec_errors(pods: Pods) -> None:
    res = pods.run("exec", "shell", "-c", "main", "--", "no-such-command")
    assert res.returncode == 127
    assert ('exec: "no-such-command": executable file not found in $PATH' in res.stderr)
    assert "command terminated with exit code 127" in res.stderr
    res = pods.run("exec", "shell", "-c", "main", "--", "/etc/passwd")
    assert res.returncode == 126 and "permission denied" in res.stderr
    res = pods.run("exec", "ghost", "--", "true")
    assert res.returncode != 0 and 'pods "ghost" not found' in res.stderr


def _run_in_pty(argv: list[str], env: dict[str, str], steps: list[tuple[bytes, str]],
                timeout: float = 20) -> tuple[str, int]:
    """Drive `argv` through a pseudo-terminal: type each input once the previous
    expectation showed up (a ("", "resize") step resizes the terminal; an expectation
    starting with `~` has its input typed again until it shows up)."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execvpe(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    out = b""
    deadline = time.monotonic() + timeout

    def read_until(pattern: str) -> bool:
        nonlocal out
        while time.monotonic() < deadline:
            if re.search(pattern.encode(), out):
                return True
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    return bool(re.search(pattern.encode(), out))
                if not chunk:
                    return False
                out += chunk
        return False

    def read_until_within(pattern: str, seconds: float) -> bool:
        nonlocal deadline
        saved, deadline = deadline, min(deadline, time.monotonic() + seconds)
        try:
            return read_until(pattern)
        finally:
            deadline = saved

    reaped = False
    try:
        for data, expect in steps:
            if expect == "resize":
                fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
                os.kill(pid, signal.SIGWINCH)
                continue
            if expect.startswith("~"):
                # Typed again until seen: the resize travels apart from the keystrokes.
                expect = expect[1:]
                seen = False
                while not seen and time.monotonic() < deadline:
                    os.write(fd, data)
                    seen = read_until_within(expect, 0.5)
                assert seen, f"{expect!r} not seen in {out!r}"
                continue
            if data:
                os.write(fd, data)
            assert read_until(expect), f"{expect!r} not seen in {out!r}"
        _, status = os.waitpid(pid, 0)
        reaped = True
        return out.decode(errors="replace"), os.waitstatus_to_exitcode(status)
    finally:
        if not reaped:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_interactive_terminal_with_resize(kubectl: Kubectl, pods: Pods,
                                               transport: str) -> None:
    assert KUBECTL is not None
    env = {**kubectl.env(), **TRANSPORTS[transport]}
    out, code = _run_in_pty(
        [KUBECTL, "--cache-dir", str(kubectl.cache_dir), "exec", "-it", "shell", "-c", "main",
         "-n", pods.ns, "--", "sh"], env,
        [(b"", r"# "),
         (b"stty size; tty; echo marker-$((6*7))\r", r"marker-42\r\n"),
         (b"", "resize"),
         (b"stty size\r", r"~40 120"),
         (b"exit 5\r", r"exit code 5")])
    assert "33 111" in out and "/dev/pts/" in out
    assert code == 5


def test_exec_into_a_container_that_is_not_running(pods: Pods) -> None:
    pods.run("run", "crash", "--image=busybox", "--restart=Always",
             f'--overrides={{"spec":{{"nodeName":"{NODE}"}}}}', "--", "sh", "-c", "exit 1")
    deadline = time.monotonic() + 30
    while "CrashLoopBackOff" not in pods.run("get", "pod", "crash").stdout:
        assert time.monotonic() < deadline, "the pod did not crash-loop"
        time.sleep(0.3)
    for env in TRANSPORTS.values():
        res = pods.run("exec", "crash", "--", "true", env=env)
        assert res.returncode == 1
        assert 'container "crash" in pod "crash" is not running' in res.stderr
    pods.run("delete", "pod", "crash", "--grace-period=0", "--force")


def _raw_exec(cluster: Cluster, ns: str, protocol: str, script: str) -> list[bytes | str]:
    """The messages of an exec over `protocol`, with a plain WebSocket client."""
    import ssl

    import websocket

    query = urllib.parse.urlencode([("container", "main"), ("command", "sh"),
                                    ("command", "-c"), ("command", script),
                                    ("stdout", "true"), ("stderr", "true")])
    token = (cluster.data_dir / "pki" / "admin.token").read_text().strip()
    ws = websocket.create_connection(
        f"wss://127.0.0.1:{cluster.port}/api/v1/namespaces/{ns}/pods/shell/exec?{query}",
        subprotocols=[protocol], header=[f"Authorization: Bearer {token}"],
        sslopt={"cert_reqs": ssl.CERT_NONE}, timeout=10)
    assert ws.getsubprotocol() == protocol
    messages: list[bytes | str] = []
    try:
        while True:
            opcode, data = ws.recv_data(control_frame=False)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            messages.append(data.decode() if opcode == websocket.ABNF.OPCODE_TEXT else data)
    except websocket.WebSocketConnectionClosedException:
        pass
    finally:
        ws.close()
    return messages


def test_older_channel_protocols(agent_cluster: Cluster, pods: Pods) -> None:
    # v4: an empty message opens stdout; the status is a Status with the exit code.
    got = _raw_exec(agent_cluster, pods.ns, "v4.channel.k8s.io", "echo hi; exit 3")
    assert got[0] == b"\x01" and b"\x01hi\n" in got
    status = json.loads(bytes(got[-1])[1:])  # type: ignore[arg-type]
    assert bytes(got[-1])[:1] == b"\x03"  # type: ignore[arg-type]
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    # base64: text frames, the channel as a digit; failures as text on channel 3.
    got = _raw_exec(agent_cluster, pods.ns, "base64.channel.k8s.io", "echo hi >&2; exit 2")
    assert "2" + base64.b64encode(b"hi\n").decode() in got
    last = str(got[-1])
    assert last[0] == "3" and b"exit code 2" in base64.b64decode(last[1:])
    # channel.k8s.io: success sends no status at all.
    got = _raw_exec(agent_cluster, pods.ns, "channel.k8s.io", "echo ok")
    assert got == [b"\x01", b"\x01ok\n"]


def test_bad_stream_requests_get_a_status(agent_cluster: Cluster, pods: Pods) -> None:
    import ssl

    import websocket

    token = (agent_cluster.data_dir / "pki" / "admin.token").read_text().strip()
    base = f"127.0.0.1:{agent_cluster.port}/api/v1/namespaces/{pods.ns}/pods/shell/exec"
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    req = urllib.request.Request(f"https://{base}?command=true&stdout=true",
                                 headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, context=ctx, timeout=10)
    assert err.value.code == 400
    assert json.loads(err.value.read())["message"] == "Upgrade request required"
    with pytest.raises(websocket.WebSocketBadStatusException) as bad:
        websocket.create_connection(f"wss://{base}?container=main&command=true",
                                    subprotocols=["v5.channel.k8s.io"],
                                    header=[f"Authorization: Bearer {token}"],
                                    sslopt={"cert_reqs": ssl.CERT_NONE}, timeout=10)
    assert bad.value.status_code == 400
    assert b"you must specify at least 1 of stdin, stdout, stderr" in bad.value.resp_body


def _running(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


def _wait(check: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.2)


@pytest.mark.parametrize("tty", [False, True])
def test_a_command_ends_when_its_client_goes(pods: Pods, tty: bool) -> None:
    assert KUBECTL is not None
    seconds = str(4000 + int(tty) * 100 + os.getpid() % 100)
    argv = [KUBECTL, "--cache-dir", str(pods.kubectl.cache_dir), "-n", pods.ns, "exec",
            *(["-it"] if tty else []), "shell", "-c", "main", "--", "sleep", seconds]
    if tty:
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - the child
            os.execvpe(argv[0], argv, pods.kubectl.env())
    else:
        proc = subprocess.Popen(argv, env=pods.kubectl.env())
        pid, fd = proc.pid, -1
    try:
        _wait(lambda: _running(f"^sleep {seconds}$"))
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        if fd >= 0:
            os.close(fd)
    _wait(lambda: not _running(f"^sleep {seconds}$"))


# -- attach ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_attach_streams_new_output(pods: Pods, transport: str) -> None:
    assert KUBECTL is not None
    proc = subprocess.Popen(
        [KUBECTL, "--cache-dir", str(pods.kubectl.cache_dir), "attach", "ticker", "-n",
         pods.ns], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**pods.kubectl.env(), **TRANSPORTS[transport]})
    try:
        time.sleep(2)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    ticks = [int(n) for n in re.findall(rb"tick (\d+)", out)]
    assert len(ticks) >= 3, out
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks)))
    # Attach shows what is written while attached, not the log from the start.
    assert ticks[0] > 1


def test_attach_with_stdin_reaches_the_main_process(pods: Pods) -> None:
    res = pods.run("attach", "-i", "reader", input="one\ntwo\n", timeout=30)
    assert res.returncode == 0, res.stderr
    assert "got: one\ngot: two\nbye\n" in res.stdout
    logs = pods.run("logs", "reader").stdout
    assert logs == "got: one\ngot: two\nbye\n"


# -- cp -------------------------------------------------------------------------------------


def test_cp_to_and_from_a_pod(pods: Pods, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "hello.txt").write_text("hello cp\n")
    blob = os.urandom(700_000)
    (src / "sub" / "blob.bin").write_bytes(blob)
    res = pods.run("cp", str(src / "hello.txt"), "shell:/tmp/hello.txt", "-c", "main")
    assert res.returncode == 0, res.stderr
    assert pods.run("exec", "shell", "-c", "main", "--", "cat", "/tmp/hello.txt").stdout == \
        "hello cp\n"
    res = pods.run("cp", str(src), "shell:/tmp/tree", "-c", "main")
    assert res.returncode == 0, res.stderr
    back = tmp_path / "back"
    res = pods.run("cp", "shell:/tmp/tree", str(back), "-c", "main")
    assert res.returncode == 0, res.stderr
    assert (back / "hello.txt").read_text() == "hello cp\n"
    assert (back / "sub" / "blob.bin").read_bytes() == blob
    one = tmp_path / "one.txt"
    res = pods.run("cp", "shell:/tmp/hello.txt", str(one), "-c", "main", env=SPDY_EXEC)
    assert res.returncode == 0, res.stderr
    assert one.read_text() == "hello cp\n"


# -- port-forward ---------------------------------------------------------------------------


class PortForward:
    """A running `kubectl port-forward` and the local port it listens on."""

    def __init__(self, pods: Pods, remote: int, env: dict[str, str]) -> None:
        assert KUBECTL is not None
        self.proc = subprocess.Popen(
            [KUBECTL, "--cache-dir", str(pods.kubectl.cache_dir), "port-forward", "-n",
             pods.ns, "pod/web", f":{remote}", "--address", "127.0.0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**pods.kubectl.env(), **env})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+) ->", line)
        if match is None:
            self.proc.kill()
            raise AssertionError(f"port-forward did not start: {line!r} "
                                 f"{self.proc.communicate()[1]}")
        self.port = int(match.group(1))

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return bytes(r.read())

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_port_forward_serves_several_connections(pods: Pods, transport: str) -> None:
    env = {} if transport == "websocket" else SPDY_PORT_FORWARD
    fwd = PortForward(pods, pods.http_port, env)
    try:
        for _ in range(3):
            assert fwd.get("/index.html") == b"served-by-pod\n"
        big = fwd.get("/big")
        assert len(big) == 300_000
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda _: fwd.get("/index.html"), range(12)))
        assert results == [b"served-by-pod\n"] * 12
        assert fwd.proc.poll() is None
    finally:
        fwd.stop()


def test_port_forward_to_a_closed_port_reports_the_error(pods: Pods) -> None:
    closed = free_port()
    fwd = PortForward(pods, closed, {})
    try:
        with pytest.raises(OSError):
            fwd.get("/")
        fwd.proc.wait(timeout=10)
    finally:
        err = fwd.stop()
    assert f"error forwarding port {closed} to pod" in err
    assert "lost connection to pod" in err


# -- the Python client ----------------------------------------------------------------------


def _python_client(cluster: Cluster):  # type: ignore[no-untyped-def]
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))


def test_python_client_stream(agent_cluster: Cluster, pods: Pods) -> None:
    from kubernetes.stream import stream

    v1 = _python_client(agent_cluster)
    out = stream(v1.connect_get_namespaced_pod_exec, "shell", pods.ns, container="main",
                 command=["sh", "-c", "echo out; echo err >&2"], stderr=True, stdin=False,
                 stdout=True, tty=False)
    assert out == "out\nerr\n"
    ws = stream(v1.connect_get_namespaced_pod_exec, "shell", pods.ns, container="main",
                command=["sh", "-c", "read x; echo got $x; exit 7"], stderr=True, stdin=True,
                stdout=True, tty=False, _preload_content=False)
    try:
        ws.write_stdin("hello\n")
        ws.run_forever(timeout=10)
        assert ws.read_stdout() == "got hello\n"
        assert ws.returncode == 7
    finally:
        ws.close()


def test_python_client_portforward(agent_cluster: Cluster, pods: Pods) -> None:
    from kubernetes.stream import portforward

    v1 = _python_client(agent_cluster)
    pf = portforward(v1.connect_get_namespaced_pod_portforward, "web", pods.ns,
                     ports=str(pods.http_port))
    sock = pf.socket(pods.http_port)
    sock.settimeout(10)
    sock.sendall(b"GET /index.html HTTP/1.0\r\nHost: pod\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    assert data.startswith(b"HTTP/1.0 200")
    assert data.endswith(b"\r\n\r\nserved-by-pod\n")
    assert pf.error(pods.http_port) is None

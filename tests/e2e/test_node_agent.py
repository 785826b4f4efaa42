"""The node agent with the process runtime, driven by the real kubectl.

The pod life cycle of the reference notes: Pending → Running, crash loops with
back-off, liveness restarts, readiness without restarts, graceful deletion with
preStop, SIGTERM and SIGKILL, emptyDir shared by containers and surviving restarts,
logs, metrics, and what bad input looks like.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Cluster, Kubectl, new_kubectl, start_cluster

pytestmark = pytest.mark.skipif(
    subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0",
    reason="the process runtime needs root")

NODE = "node-1"


def wait_for(check: Callable[[], Any], timeout: float = 30, interval: float = 0.3) -> Any:
    """Poll until `check()` is truthy; return its value or fail with the last one."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


@pytest.fixture(scope="module")
def agent_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster with one node agent (process runtime)."""
    data = tmp_path_factory.mktemp("skiff-agent")
    c = start_cluster(data, None, "--nodes", "1")
    yield c
    c.stop()
    leftovers = subprocess.run(["pgrep", "-f", str(data)], capture_output=True,
                               text=True).stdout
    assert leftovers == "", f"processes left behind: {leftovers}"


@pytest.fixture(scope="module")
def kubectl(agent_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """kubectl bound to the agent cluster, once its node is Ready."""
    k = new_kubectl(agent_cluster, tmp_path_factory)
    wait_for(lambda: " Ready " in k("get", "nodes", "--no-headers"))
    return k


@pytest.fixture
def ns(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace, deleted (with its pods) afterwards."""
    name = f"agent-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl.run("delete", "pods", "--all", "-n", name, "--grace-period=0", "--force",
                "--wait=false", check=False)
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def pod(kubectl: Kubectl, ns: str, name: str) -> dict[str, Any]:
    """The pod as JSON."""
    return json.loads(kubectl("get", "pod", name, "-n", ns, "-o", "json"))


def cstatus(kubectl: Kubectl, ns: str, name: str, index: int = 0) -> dict[str, Any]:
    """One container status of the pod ({} until there is one)."""
    statuses = (pod(kubectl, ns, name).get("status") or {}).get("containerStatuses") or []
    return statuses[index] if len(statuses) > index else {}


def events(kubectl: Kubectl, ns: str, name: str) -> str:
    """The pod's events as `kubectl get events` prints them."""
    return kubectl("get", "events", "-n", ns, "--field-selector",
                   f"involvedObject.name={name}")


def apply(kubectl: Kubectl, ns: str, manifest: str) -> None:
    """kubectl apply a manifest into the namespace."""
    kubectl("apply", "-n", ns, "-f", "-", input=manifest)


def test_pod_runs_and_serves_logs(kubectl: Kubectl, ns: str) -> None:
    apply(kubectl, ns, f"""
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  nodeName: {NODE}
  initContainers:
  - {{name: setup, image: busybox, command: [sh, -c, "echo seeded > /work/seed"],
     volumeMounts: [{{name: work, mountPath: /work}}]}}
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'echo "$(GREETING) from $POD_NAME on $NODE"; cat /work/seed;
                       for i in 1 2 3 4 5; do echo line $i; done; sleep 3600']
    env:
    - {{name: GREETING, value: hello}}
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: NODE, valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}}}
    volumeMounts: [{{name: work, mountPath: /work}}]
  - name: side
    image: busybox
    command: [sh, -c, "echo side says hi >&2; sleep 3600"]
  volumes: [{{name: work, emptyDir: {{}}}}]
""")
    kubectl("wait", "--for=condition=Ready", "pod/web", "-n", ns, "--timeout=30s")
    p = pod(kubectl, ns, "web")
    assert p["status"]["phase"] == "Running"
    assert p["status"]["hostIP"] == "127.0.0.1" and p["status"]["podIP"]
    assert p["status"]["startTime"]
    init = p["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed"
    assert {c["type"] for c in p["status"]["conditions"]} >= {
        "PodScheduled", "Initialized", "ContainersReady", "Ready"}
    out = wait_for(lambda: "line 5" in (o := kubectl("logs", "web", "-n", ns, "-c", "main"))
                   and o)
    assert out.startswith("hello from web on node-1\nseeded\nline 1\n")
    assert kubectl("logs", "web", "-n", ns, "-c", "main", "--tail=2") == "line 4\nline 5\n"
    stamped = kubectl("logs", "web", "-n", ns, "-c", "main", "--tail=1", "--timestamps")
    assert stamped.endswith(" line 5\n") and stamped[:4].isdigit() and "T" in stamped[:20]
    assert kubectl("logs", "web", "-n", ns, "-c", "side") == "side says hi\n"
    both = kubectl("logs", "web", "-n", ns, "--all-containers", "--prefix")
    assert "[pod/web/side] side says hi" in both and "[pod/web/main] line 3" in both
    assert kubectl("logs", "web", "-n", ns, "-c", "setup") == ""
    res = kubectl.run("logs", "web", "-n", ns, check=False)
    assert res.returncode != 0 or "Defaulted container" in res.stderr
    res = kubectl.run("logs", "web", "-n", ns, "-c", "main", "--previous", check=False)
    assert res.returncode != 0
    assert 'previous terminated container "main" in pod "web" not found' in res.stderr
    res = kubectl.run("logs", "web", "-n", ns, "-c", "nope", check=False)
    assert res.returncode != 0 and "container nope is not valid for pod web" in res.stderr
    assert "Created container: main" in events(kubectl, ns, "web")


def test_logs_follow_ends_with_the_container(kubectl: Kubectl, ns: str) -> None:
    apply(kubectl, ns, f"""
apiVersion: v1
kind: Pod
metadata: {{name: counter}}
spec:
  nodeName: {NODE}
  restartPolicy: Never
  containers:
  - {{name: c, image: busybox, command: [sh, -c, "for i in 1 2 3; do echo n$i; sleep 1; done"]}}
""")
    wait_for(lambda: cstatus(kubectl, ns, "counter").get("state", {}).get("running"))
    started = time.monotonic()
    out = kubectl("logs", "-f", "counter", "-n", ns, timeout=30)
    assert out == "n1\nn2\nn3\n"
    assert time.monotonic() - started < 20
    st = wait_for(lambda: cstatus(kubectl, ns, "counter").get("state", {}).get("terminated"))
    assert st["exitCode"] == 0 and st["reason"] == "Completed"
    assert wait_for(lambda: pod(kubectl, ns, "counter")["status"]["phase"] == "Succeeded")


def test_crashing_container_backs_off(kubectl: Kubectl, ns: str) -> None:
    apply(kubectl, ns, f"""
apiVersion: v1
kind: Pod
metadata: {{name: crash}}
spec:
  nodeName: {NODE}
  containers:
  - {{name: c, image: busybox, command: [sh, -c, "echo attempt; exit 3"]}}
""")
    st = wait_for(lambda: (s := cstatus(kubectl, ns, "crash")).get("restartCount", 0) >= 2
                  and s, timeout=40)
    waiting = wait_for(lambda: cstatus(kubectl, ns, "crash").get("state", {}).get("waiting"))
    assert waiting["reason"] == "CrashLoopBackOff"
    assert "back-off" in waiting["message"] and "restarting failed container=c" in \
        waiting["message"]
    last = cstatus(kubectl, ns, "crash")["lastState"]["terminated"]
    assert last["exitCode"] == 3 and last["reason"] == "Error"
    assert st["ready"] is False
    assert kubectl("logs", "crash", "-n", ns, "--previous") == "attempt\n"
    assert "CrashLoopBackOff" in kubectl("get", "pod", "crash", "-n", ns)
    ev = events(kubectl, ns, "crash")
    assert "Back-off restarting failed container c in pod crash_" in ev
    # Back-off: after the immediate first restart, the next waits 10 s.
    p = pod(kubectl, ns, "crash")
    assert p["status"]["phase"] == "Running"


def test_failing_liveness_probe_restarts(kubectl: Kubectl, ns: str) -> None:
    apply(kubectl, ns, f"""
apiVersion: v1
kind: Pod
metadata: {{name: live}}
spec:
  nodeName: {NODE}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600"]
    livenessProbe:
      exec: {{command: [cat, /tmp/healthy]}}
      periodSeconds: 1
      failureThreshold: 2
""")
    st = wait_for(lambda: (s := cstatus(kubectl, ns, "live")).get("restartCount", 0) >= 1
                  and s, timeout=40)
    assert st["lastState"]["terminated"]["exitCode"] == 137
    ev = events(kubectl, ns, "live")
    assert "Liveness probe failed: cat: can't open '/tmp/healthy'" in ev or \
        "Liveness probe failed: cat: /tmp/healthy" in ev
    assert "Container c failed liveness probe, will be restarted" in ev


def test_failing_readiness_probe_is_not_ready_and_not_restarted(kubectl: Kubectl,
                                                                ns: str) -> None:
    apply(kubectl, ns, f"""
apiVersion: v1
kind: Pod
metadata: {{name: unready}}
spec:
  nodeName: {NODE}
  containers:
  - name: c
    image: busybox
    command: [sleep, "3600"]
    readinessProbe:
      httpGet: {{port: 1, path: /healthz}}
      periodSeconds: 1
      failureThreshold: 1
""")
    wait_for(lambda: "Readiness probe failed" in events(kubectl, ns, "unready"), timeout=30)
    time.sleep(3)
    st = cstatus(kubectl, ns, "unready")
    assert st["ready"] is False and st["restartCount"] == 0 and "running" in st["state"]
    p = pod(kubectl, ns, "unready")
    ready = next(c for c in p["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert "connect: connection refused" in events(kubectl, ns, "unready")


def test_delete_runs_prestop_then_sigterm_then_sigkill(kubectl: Kubectl, ns: str,
                                                       tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    apply(kubectl, ns, f"""
apiVersion: v1
kind: Pod
metadata: {{name: stopper}}
spec:
  nodeName: {NODE}
  terminationGracePeriodSeconds: 4
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "trap 'echo sigterm >> /trace/log; sleep 60' TERM;
                       while true; do sleep 0.1; done"]
    volumeMounts: [{{name: trace, mountPath: /trace}}]
    lifecycle:
      preStop:
        exec: {{command: [sh, -c, "echo prestop >> /trace/log; sleep 1"]}}
  volumes: [{{name: trace, hostPath: {{path: {trace}, type: Directory}}}}]
""")
    kubectl("wait", "--for=condition=Ready", "pod/stopper", "-n", ns, "--timeout=30s")
    uid = pod(kubectl, ns, "stopper")["metadata"]["uid"]
    started = time.monotonic()
    kubectl("delete", "pod", "stopper", "-n", ns, "--wait=false")
    # Readiness drops as soon as termination starts.
    wait_for(lambda: cstatus(kubectl, ns, "stopper").get("ready") is False, timeout=5,
             interval=0.1)
    kubectl("wait", "--for=delete", "pod/stopper", "-n", ns, "--timeout=30s")
    took = time.monotonic() - started
    assert 3.0 <= took < 15, took
    assert (trace / "log").read_text() == "prestop\nsigterm\n"
    ev = kubectl("get", "events", "-n", ns, "--field-selector",
                 f"involvedObject.uid={uid}")
    assert "Stopping container c" in ev
    # Nothing of the pod is left on the host.
    out = subprocess.run(["pgrep", "-f", uid], capture_output=True, text=True).stdout
    assert out == ""


def test_empty_dir_is_shared_and_survives_a_restart(kubectl: Kubectl, ns: str) -> None:
    apply(kubectl, ns, f"""
apiVersion: v1
kind: Pod
metadata: {{name: shared}}
spec:
  nodeName: {NODE}
  containers:
  - name: writer
    image: busybox
    command: [sh, -c, "echo run >> /data/runs; [ $(wc -l < /data/runs) -ge 2 ] || exit 1;
                       sleep 3600"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  - name: reader
    image: busybox
    command: [sh, -c, "while true; do echo runs=$(wc -l < /cache/runs); sleep 0.5; done"]
    volumeMounts: [{{name: data, mountPath: /cache}}]
  - name: ram
    image: busybox
    command: [sh, -c, "df -k /mem | tail -1; sleep 3600"]
    volumeMounts: [{{name: mem, mountPath: /mem}}]
  volumes:
  - {{name: data, emptyDir: {{}}}}
  - {{name: mem, emptyDir: {{medium: Memory, sizeLimit: 8Mi}}}}
""")
    kubectl("wait", "--for=condition=Ready", "pod/shared", "-n", ns, "--timeout=40s")
    st = cstatus(kubectl, ns, "shared", 2)
    assert st["name"] == "writer" and st["restartCount"] == 1
    wait_for(lambda: "runs=2" in kubectl("logs", "shared", "-n", ns, "-c", "reader",
                                         "--tail=1"))
    ram = kubectl("logs", "shared", "-n", ns, "-c", "ram")
    assert ram.startswith("tmpfs") and " 8192 " in ram


def test_bad_input_is_explained(kubectl: Kubectl, ns: str) -> None:
    apply(kubectl, ns, f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings}}
data: {{present: "yes"}}
---
apiVersion: v1
kind: Pod
metadata: {{name: nocommand}}
spec:
  nodeName: {NODE}
  containers: [{{name: c, image: nginx}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: missingkey}}
spec:
  nodeName: {NODE}
  containers:
  - name: c
    image: busybox
    command: [sleep, "3600"]
    env: [{{name: X, valueFrom: {{configMapKeyRef: {{name: settings, key: absent}}}}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: notfound}}
spec:
  nodeName: {NODE}
  containers: [{{name: c, image: busybox, command: [no-such-binary, --flag]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: badvolume}}
spec:
  nodeName: {NODE}
  containers:
  - {{name: c, image: busybox, command: [sleep, "3600"],
     volumeMounts: [{{name: v, mountPath: /v}}]}}
  volumes: [{{name: v, configMap: {{name: does-not-exist}}}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: nonroot}}
spec:
  nodeName: {NODE}
  securityContext: {{runAsNonRoot: true}}
  containers: [{{name: c, image: busybox, command: [sleep, "3600"]}}]
""")

    def waiting(name: str) -> dict[str, Any]:
        return cstatus(kubectl, ns, name).get("state", {}).get("waiting") or {}

    w = wait_for(lambda: waiting("nocommand").get("reason") == "CreateContainerConfigError"
                 and waiting("nocommand"))
    assert 'container "c" needs a command' in w["message"]
    w = wait_for(lambda: waiting("missingkey").get("reason") == "CreateContainerConfigError"
                 and waiting("missingkey"))
    assert w["message"] == f"couldn't find key absent in ConfigMap {ns}/settings"
    assert f"Error: couldn't find key absent in ConfigMap {ns}/settings" in \
        events(kubectl, ns, "missingkey")
    w = wait_for(lambda: waiting("nonroot").get("reason") == "CreateContainerConfigError"
                 and waiting("nonroot"))
    assert w["message"].startswith("container has runAsNonRoot and image will run as root")
    last = wait_for(lambda: cstatus(kubectl, ns, "notfound").get("lastState", {})
                    .get("terminated"))
    assert last["reason"] == "StartError" and last["exitCode"] == 128
    assert 'exec: "no-such-binary": executable file not found in $PATH' in last["message"]
    ev = wait_for(lambda: "FailedMount" in (e := events(kubectl, ns, "badvolume")) and e)
    assert 'MountVolume.SetUp failed for volume "v" : configmap "does-not-exist" not found' \
        in ev
    assert pod(kubectl, ns, "badvolume")["status"]["phase"] == "Pending"
    assert "ContainerCreating" in kubectl("get", "pod", "badvolume", "-n", ns)
    # A probe without a handler never reaches the node: the API refuses it.
    res = kubectl.run("apply", "-n", ns, "-f", "-", check=False, input=f"""
apiVersion: v1
kind: Pod
metadata: {{name: badprobe}}
spec:
  nodeName: {NODE}
  containers:
  - {{name: c, image: busybox, command: [sleep, "1"], livenessProbe: {{periodSeconds: 1}}}}
""")
    assert res.returncode != 0 and "must specify a handler type" in res.stderr


def test_top_reports_usage(kubectl: Kubectl, ns: str) -> None:
    apply(kubectl, ns, f"""
apiVersion: v1
kind: Pod
metadata: {{name: busy}}
spec:
  nodeName: {NODE}
  containers:
  - {{name: c, image: busybox, command: [sh, -c, "while true; do :; done"],
     resources: {{limits: {{cpu: 200m, memory: 64Mi}}}}}}
""")
    kubectl("wait", "--for=condition=Ready", "pod/busy", "-n", ns, "--timeout=30s")
    nodes = kubectl("top", "nodes")
    assert nodes.splitlines()[0].split()[:3] == ["NAME", "CPU(cores)", "CPU(%)"]
    assert any(line.startswith(NODE) for line in nodes.splitlines())

    def busy_cpu() -> int:
        res = kubectl.run("top", "pod", "busy", "-n", ns, "--no-headers", check=False)
        if res.returncode != 0 or not res.stdout.strip():
            return 0
        return int(res.stdout.split()[1].rstrip("m"))

    cpu = wait_for(busy_cpu, timeout=30, interval=1)
    # The cgroup CPU limit (200m) holds the busy loop down.
    assert 50 <= cpu <= 260, cpu


def test_cordon_taints_the_node_and_the_agent_reports_it(kubectl: Kubectl) -> None:
    def node() -> dict[str, Any]:
        return json.loads(kubectl("get", "node", NODE, "-o", "json"))

    kubectl("cordon", NODE)
    try:
        assert f"{NODE}   Ready,SchedulingDisabled" in kubectl("get", "nodes", "--no-headers")
        # The node lifecycle controller's taint, as upstream's TaintNodesByCondition.
        taints = wait_for(lambda: node()["spec"].get("taints"))
        assert [(t["key"], t["effect"]) for t in taints] == [
            ("node.kubernetes.io/unschedulable", "NoSchedule")]
        assert taints[0]["timeAdded"]
        # The agent notices on its next status round, as the kubelet does.
        described = wait_for(lambda: "NodeNotSchedulable" in (
            d := kubectl("describe", "node", NODE)) and d)
        assert re.search(r"Taints:\s+node\.kubernetes\.io/unschedulable:NoSchedule\n",
                         described)
        assert re.search(rf"Normal\s+NodeNotSchedulable\s+.*Node {NODE} status is now: "
                         "NodeNotSchedulable", described)
    finally:
        kubectl("uncordon", NODE)
    wait_for(lambda: not node()["spec"].get("taints"))
    wait_for(lambda: "NodeSchedulable " in kubectl(
        "get", "events", "-A", "--field-selector",
        f"involvedObject.kind=Node,involvedObject.name={NODE}"))

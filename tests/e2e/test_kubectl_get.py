"""`kubectl get` (output formats, selectors, paging, sorting, watch) and `kubectl describe`."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import KUBECTL, Kubectl

NS = "e2e-get"
NS2 = "e2e-get-other"

# Labels of the selector fixtures: name -> labels.
LABELLED = {
    "sel-1": {"env": "prod", "tier": "front"},
    "sel-2": {"env": "dev"},
    "sel-3": {"env": "qa", "tier": "back"},
    "sel-4": {},
    "sel-5": {},
}


@pytest.fixture(scope="module")
def ns(kubectl: Kubectl) -> Iterator[str]:
    """A namespace with labelled config maps, three pods, a deployment and a service."""
    kubectl("create", "namespace", NS)
    kubectl("create", "namespace", NS2)
    # sort key `.data.rank` runs against the name order.
    for i, (name, labels) in enumerate(LABELLED.items()):
        kubectl("create", "configmap", name, "-n", NS, f"--from-literal=rank={5 - i}")
        label_args = [f"{k}={v}" for k, v in labels.items()]
        kubectl("label", "configmap", name, "-n", NS, "sel=yes", *label_args)
    kubectl("run", "done", "-n", NS, "--image=busybox:1.36", "--labels=app=done")
    kubectl("run", "wait", "-n", NS, "--image=busybox:1.36", "--labels=app=wait")
    kubectl("create", "-f", "-", input=f"""\
apiVersion: v1
kind: Pod
metadata: {{name: bound, namespace: {NS}, labels: {{app: bound}}}}
spec:
  nodeName: node-e2e-get
  containers: [{{name: main, image: busybox:1.36}}]
""")
    # A finished pod: no kubelet will move it out of Succeeded again.
    kubectl("patch", "pod", "done", "-n", NS, "--subresource=status", "--type=merge",
            "-p", '{"status":{"phase":"Succeeded"}}')
    kubectl("create", "deployment", "web", "-n", NS, "--image=nginx:1.27", "--replicas=3")
    kubectl("create", "service", "clusterip", "web", "-n", NS, "--tcp=80:8080")
    kubectl("create", "configmap", "elsewhere", "-n", NS2, "--from-literal=a=b")
    yield NS
    for n in (NS, NS2):
        kubectl.run("delete", "namespace", n, "--wait=false", check=False)


def rows(out: str) -> list[list[str]]:
    """Table output split into rows of whitespace-separated cells."""
    return [line.split() for line in out.splitlines()]


def names(out: str) -> list[str]:
    """The NAME column of a table (header dropped)."""
    return [r[0] for r in rows(out)[1:] if r]


# -- output formats ---------------------------------------------------------------


def test_default_tables_use_server_columns(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("get", "deployments", "-n", ns)
    assert out.splitlines()[0] == "NAME   READY   UP-TO-DATE   AVAILABLE   AGE"
    web = rows(out)[1]
    assert web[0] == "web"
    assert web[1].endswith("/3")

    out = kubectl("get", "services", "-n", ns)
    assert rows(out)[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    ip = kubectl("get", "svc", "web", "-n", ns, "-o", "jsonpath={.spec.clusterIP}")
    assert rows(out)[1][:5] == ["web", "ClusterIP", ip, "<none>", "80/TCP"]

    out = kubectl("get", "pods", "-n", ns)
    # Column widths depend on the longest name (the Deployment's pods, web-…).
    assert rows(out)[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    table = {r[0]: r[1:4] for r in rows(out)[1:]}
    assert table["done"] == ["0/1", "Succeeded", "0"]

    out = kubectl("get", "configmaps", "sel-1", "-n", ns)
    assert rows(out) == [["NAME", "DATA", "AGE"], ["sel-1", "1", rows(out)[1][2]]]


def test_wide_output(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("get", "pods", "-n", ns, "-o", "wide")
    assert rows(out)[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                            "NOMINATED", "NODE", "READINESS", "GATES"]
    bound = next(r for r in rows(out) if r[0] == "bound")
    assert bound[6] == "node-e2e-get"

    out = kubectl("get", "deploy", "web", "-n", ns, "-o", "wide")
    assert rows(out)[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS",
                            "IMAGES", "SELECTOR"]
    assert rows(out)[1][5:] == ["nginx", "nginx:1.27", "app=web"]


def test_yaml_json_name_jsonpath_custom_columns(kubectl: Kubectl, ns: str) -> None:
    y = kubectl("get", "cm", "sel-1", "-n", ns, "-o", "yaml")
    assert y.startswith("apiVersion: v1\ndata:\n  rank: \"5\"\nkind: ConfigMap\nmetadata:\n")
    assert "  name: sel-1\n" in y
    assert f"  namespace: {ns}\n" in y

    obj = json.loads(kubectl("get", "cm", "sel-1", "-n", ns, "-o", "json"))
    assert (obj["kind"], obj["apiVersion"]) == ("ConfigMap", "v1")
    assert obj["metadata"]["labels"] == {"sel": "yes", "env": "prod", "tier": "front"}
    lst = json.loads(kubectl("get", "cm", "-n", ns, "-l", "sel=yes", "-o", "json"))
    assert (lst["kind"], lst["apiVersion"]) == ("List", "v1")
    assert [i["metadata"]["name"] for i in lst["items"]] == list(LABELLED)
    assert all(i["kind"] == "ConfigMap" for i in lst["items"])

    out = kubectl("get", "cm", "-n", ns, "-l", "sel=yes", "-o", "name")
    assert out == "".join(f"configmap/{n}\n" for n in LABELLED)

    out = kubectl("get", "cm", "-n", ns, "-l", "sel=yes",
                  "-o", 'jsonpath={range .items[*]}{.metadata.name}={.data.rank}{"\\n"}{end}')
    assert out == "sel-1=5\nsel-2=4\nsel-3=3\nsel-4=2\nsel-5=1\n"
    assert kubectl("get", "cm", "sel-3", "-n", ns,
                   "-o", "jsonpath={.metadata.labels.tier}") == "back"

    out = kubectl("get", "cm", "-n", ns, "-l", "sel=yes",
                  "-o", "custom-columns=NAME:.metadata.name,RANK:.data.rank,"
                  "TIER:.metadata.labels.tier")
    assert rows(out) == [["NAME", "RANK", "TIER"], ["sel-1", "5", "front"],
                         ["sel-2", "4", "<none>"], ["sel-3", "3", "back"],
                         ["sel-4", "2", "<none>"], ["sel-5", "1", "<none>"]]


def test_show_labels(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("get", "cm", "-n", ns, "-l", "sel=yes", "--show-labels")
    assert rows(out)[0] == ["NAME", "DATA", "AGE", "LABELS"]
    labels = {r[0]: r[3] for r in rows(out)[1:]}
    assert labels["sel-1"] == "env=prod,sel=yes,tier=front"
    assert labels["sel-4"] == "sel=yes"


# -- selectors --------------------------------------------------------------------


@pytest.mark.parametrize(("selector", "expected"), [
    ("env=prod", ["sel-1"]),
    ("env==prod", ["sel-1"]),
    ("env!=prod", ["sel-2", "sel-3", "sel-4", "sel-5"]),
    ("env in (prod,dev)", ["sel-1", "sel-2"]),
    ("env notin (prod,dev)", ["sel-3", "sel-4", "sel-5"]),
    ("tier", ["sel-1", "sel-3"]),
    ("!tier", ["sel-2", "sel-4", "sel-5"]),
    ("env,tier!=back", ["sel-1", "sel-2"]),
])
def test_label_selector_operators(kubectl: Kubectl, ns: str, selector: str,
                                  expected: list[str]) -> None:
    out = kubectl("get", "cm", "-n", ns, "-l", f"sel=yes,{selector}", "-o", "name")
    assert out.split() == [f"configmap/{n}" for n in expected]


def test_label_selector_without_matches(kubectl: Kubectl, ns: str) -> None:
    res = kubectl.run("get", "cm", "-n", ns, "-l", "env=nowhere")
    assert res.stdout == ""
    assert res.stderr == f"No resources found in {ns} namespace.\n"

    res = kubectl.run("get", "cm", "-n", ns, "-l", "env in (a b)", check=False)
    assert res.returncode == 1
    assert "unable to parse requirement" in res.stderr


def test_field_selectors(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("get", "cm", "-n", ns, "--field-selector", "metadata.name=sel-2", "-o", "name")
    assert out == "configmap/sel-2\n"
    out = kubectl("get", "pods", "-n", ns, "--field-selector", "status.phase=Succeeded")
    assert names(out) == ["done"]
    out = kubectl("get", "pods", "-n", ns, "--field-selector", "status.phase!=Succeeded",
                  "-o", "name")
    # The namespace's Deployment runs pods of its own (web-…): leave those out.
    assert [n for n in out.split() if not n.startswith("pod/web-")] == ["pod/bound", "pod/wait"]
    out = kubectl("get", "pods", "-n", ns, "--field-selector", "spec.nodeName=node-e2e-get",
                  "-o", "name")
    assert out == "pod/bound\n"
    out = kubectl("get", "pods", "-A", "--field-selector",
                  "spec.nodeName=node-e2e-get,metadata.namespace=" + ns, "-o", "name")
    assert out == "pod/bound\n"

    res = kubectl.run("get", "pods", "-n", ns, "--field-selector", "spec.bogus=1", check=False)
    assert res.returncode == 1
    assert res.stderr == (
        'Error from server (BadRequest): Unable to find "/v1, Resource=pods" that match '
        'label selector "", field selector "spec.bogus=1": field label not supported: '
        'spec.bogus\n')


# -- scope, several kinds, all ----------------------------------------------------


def test_all_namespaces(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("get", "cm", "-A", "--field-selector", "metadata.name=elsewhere")
    assert rows(out)[0] == ["NAMESPACE", "NAME", "DATA", "AGE"]
    assert rows(out)[1][:3] == [NS2, "elsewhere", "1"]
    out = kubectl("get", "cm", "-A", "-l", "sel=yes", "-o", "name")
    assert len(out.split()) == len(LABELLED)
    ns_col = {r[0] for r in rows(kubectl("get", "pods", "--all-namespaces"))[1:]}
    assert ns in ns_col


def test_several_kinds_at_once(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("get", "deploy,svc", "-n", ns)
    blocks = out.split("\n\n")
    assert len(blocks) == 2
    assert rows(blocks[0])[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows(blocks[0])[1][0] == "deployment.apps/web"
    assert rows(blocks[1])[0][:2] == ["NAME", "TYPE"]
    assert rows(blocks[1])[1][0] == "service/web"

    out = kubectl("get", "cm/sel-1", "pod/wait", "deploy/web", "-n", ns, "-o", "name")
    assert out.split() == ["configmap/sel-1", "pod/wait", "deployment.apps/web"]


def test_get_all(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("get", "all", "-n", ns)
    found = {r[0] for r in rows(out) if r and r[0] != "NAME"}
    for name in ("pod/done", "pod/wait", "pod/bound", "service/web", "deployment.apps/web"):
        assert name in found
    # Config maps are not in the "all" category.
    assert not any(n.startswith("configmap/") for n in found)


# -- paging and sorting -----------------------------------------------------------


def test_chunk_size_pages_through_everything(kubectl: Kubectl, ns: str) -> None:
    res = kubectl.run("get", "cm", "-n", ns, "-l", "sel=yes", "--chunk-size=2", "-v=6")
    assert names(res.stdout) == list(LABELLED)
    requests = [line for line in res.stderr.splitlines()
                if "GET https://" in line and "/configmaps?" in line]
    assert len(requests) == 3
    assert "limit=2" in requests[0] and "continue=" not in requests[0]
    assert all("continue=" in r and "limit=2" in r for r in requests[1:])
    # One table header for all pages.
    assert res.stdout.count("NAME") == 1


def test_sort_by(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("get", "cm", "-n", ns, "-l", "sel=yes", "--sort-by=.data.rank", "-o", "name")
    assert out.split() == [f"configmap/{n}" for n in reversed(LABELLED)]
    out = kubectl("get", "cm", "-n", ns, "-l", "sel=yes", "--sort-by=.metadata.name")
    assert names(out) == sorted(LABELLED)
    res = kubectl.run("get", "cm", "-n", ns, "-l", "sel=yes", "--sort-by=.metadata.name",
                      "-v=6")
    assert "includeObject=Object" in res.stderr


# -- watch ------------------------------------------------------------------------


class LineReader:
    """Lines a subprocess prints, read in a thread so waits can time out."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, predicate: object, timeout: float = 20) -> str:
        """The first new line that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching line; saw {self.seen}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if predicate(line):  # type: ignore[operator]
                return line


def test_watch_prints_events(kubectl: Kubectl, ns: str) -> None:
    assert KUBECTL is not None
    proc = subprocess.Popen(
        [KUBECTL, "--cache-dir", str(kubectl.cache_dir), "get", "cm", "-n", ns, "-w",
         "--output-watch-events", "-l", "watched"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kubectl.env())
    try:
        kubectl("create", "configmap", "w-before", "-n", ns, "--from-literal=a=1")
        kubectl("label", "configmap", "w-before", "-n", ns, "watched=yes")
        reader = LineReader(proc)
        # The watch starts at the list's revision, so once the existing object is
        # printed (from the list or as an event) every later change is seen.
        reader.wait_for(lambda line: "w-before" in line)
        assert reader.seen[0].split() == ["EVENT", "NAME", "DATA", "AGE"]

        kubectl("create", "configmap", "w-new", "-n", ns, "--from-literal=a=1")
        # Gaining the selected label makes it appear: ADDED, not MODIFIED.
        kubectl("label", "configmap", "w-new", "-n", ns, "watched=yes")
        added = reader.wait_for(lambda line: "w-new" in line)
        assert added.split()[:3] == ["ADDED", "w-new", "1"]

        kubectl("patch", "configmap", "w-new", "-n", ns, "--type=merge",
                "-p", '{"data":{"b":"2"}}')
        modified = reader.wait_for(lambda line: "w-new" in line)
        assert modified.split()[:3] == ["MODIFIED", "w-new", "2"]

        kubectl("delete", "configmap", "w-new", "-n", ns)
        deleted = reader.wait_for(lambda line: "w-new" in line)
        assert deleted.split()[:3] == ["DELETED", "w-new", "2"]
        assert proc.poll() is None, "kubectl get -w must keep watching"
    finally:
        proc.kill()
        proc.wait()


# -- describe ---------------------------------------------------------------------


def describe_fields(out: str) -> dict[str, str]:
    """`Key:   value` lines of a describe output (top level only)."""
    fields: dict[str, str] = {}
    for line in out.splitlines():
        if line and not line[0].isspace() and ":" in line:
            key, _, value = line.partition(":")
            fields.setdefault(key, value.strip())
    return fields


def test_describe_deployment(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("describe", "deployment", "web", "-n", ns)
    f = describe_fields(out)
    assert f["Name"] == "web"
    assert f["Namespace"] == ns
    assert f["Labels"] == "app=web"
    assert f["Selector"] == "app=web"
    assert f["Replicas"].startswith("3 desired |")
    assert f["StrategyType"] == "RollingUpdate"
    assert f["RollingUpdateStrategy"] == "25% max unavailable, 25% max surge"
    assert "    Image:         nginx:1.27\n" in out
    assert "Events" in f


def test_describe_configmap(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("describe", "configmap", "sel-1", "-n", ns)
    f = describe_fields(out)
    assert f["Name"] == "sel-1"
    assert f["Namespace"] == ns
    assert f["Labels"] == "env=prod"
    assert "\nData\n====\nrank:\n----\n5\n" in out
    assert "Events" in f


def test_describe_namespace(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("describe", "namespace", ns)
    f = describe_fields(out)
    assert f["Name"] == ns
    assert f["Status"] == "Active"
    assert f["Labels"] == f"kubernetes.io/metadata.name={ns}"

    res = kubectl.run("describe", "configmap", "nope", "-n", ns, check=False)
    assert res.returncode == 1
    assert res.stderr == 'Error from server (NotFound): configmaps "nope" not found\n'

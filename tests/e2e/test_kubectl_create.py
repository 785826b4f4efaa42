"""`kubectl create` (typed generators send protobuf bodies), `create -f` and `kubectl run`."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Kubectl

NS = "e2e-create"


@pytest.fixture(scope="module")
def ns(kubectl: Kubectl) -> Iterator[str]:
    """A namespace of this module's own."""
    kubectl("create", "namespace", NS)
    yield NS
    kubectl.run("delete", "namespace", NS, "--wait=false", check=False)


def get_json(kubectl: Kubectl, *args: str) -> dict:
    """`kubectl get ARGS -o json`, decoded."""
    return json.loads(kubectl("get", *args, "-o", "json"))


def test_create_deployment(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("create", "deployment", "web", "-n", ns, "--image=nginx:1.27",
                  "--replicas=2", "--port=80")
    assert out == "deployment.apps/web created\n"
    obj = get_json(kubectl, "deploy", "web", "-n", ns)
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert obj["metadata"]["generation"] == 1
    spec = obj["spec"]
    assert spec["replicas"] == 2
    assert spec["selector"] == {"matchLabels": {"app": "web"}}
    assert spec["template"]["metadata"]["labels"] == {"app": "web"}
    (c,) = spec["template"]["spec"]["containers"]
    assert (c["name"], c["image"]) == ("nginx", "nginx:1.27")
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert spec["strategy"]["type"] == "RollingUpdate"

    res = kubectl.run("create", "deployment", "web", "-n", ns, "--image=nginx", check=False)
    assert res.returncode == 1
    assert res.stderr == (
        'error: failed to create deployment: deployments.apps "web" already exists\n')


def test_create_namespace(kubectl: Kubectl) -> None:
    assert kubectl("create", "namespace", "e2e-create-ns") == "namespace/e2e-create-ns created\n"
    try:
        obj = get_json(kubectl, "namespace", "e2e-create-ns")
        assert obj["status"]["phase"] == "Active"
        res = kubectl.run("create", "namespace", "e2e-create-ns", check=False)
        assert res.returncode == 1
        assert res.stderr == (
            'Error from server (AlreadyExists): namespaces "e2e-create-ns" already exists\n')
    finally:
        kubectl.run("delete", "namespace", "e2e-create-ns", "--wait=false", check=False)


def test_create_configmap_from_literal_and_file(
        kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    assert kubectl("create", "configmap", "lit", "-n", ns, "--from-literal=a=1",
                   "--from-literal=b=two words") == "configmap/lit created\n"
    assert get_json(kubectl, "cm", "lit", "-n", ns)["data"] == {"a": "1", "b": "two words"}

    (tmp_path / "app.properties").write_text("mode=prod\n")
    (tmp_path / "logo.bin").write_bytes(b"\x89PNG\x00\xff")
    kubectl("create", "configmap", "files", "-n", ns,
            f"--from-file={tmp_path / 'app.properties'}",
            f"--from-file=renamed.txt={tmp_path / 'app.properties'}",
            f"--from-file={tmp_path / 'logo.bin'}")
    obj = get_json(kubectl, "cm", "files", "-n", ns)
    assert obj["data"] == {"app.properties": "mode=prod\n", "renamed.txt": "mode=prod\n"}
    # Bytes that are not UTF-8 go to binaryData, base64-encoded.
    assert obj["binaryData"] == {"logo.bin": base64.b64encode(b"\x89PNG\x00\xff").decode()}
    out = kubectl("get", "cm", "files", "-n", ns)
    assert out.splitlines()[0].split() == ["NAME", "DATA", "AGE"]
    assert out.splitlines()[1].split()[:2] == ["files", "3"]


def test_create_secret_generic(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("k3y")
    assert kubectl("create", "secret", "generic", "creds", "-n", ns,
                   "--from-literal=password=s3cret", f"--from-file={tmp_path / 'key'}"
                   ) == "secret/creds created\n"
    obj = get_json(kubectl, "secret", "creds", "-n", ns)
    assert obj["type"] == "Opaque"
    assert obj["data"] == {"password": base64.b64encode(b"s3cret").decode(),
                           "key": base64.b64encode(b"k3y").decode()}
    out = kubectl("get", "secret", "creds", "-n", ns)
    assert out.splitlines()[0].split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert out.splitlines()[1].split()[:3] == ["creds", "Opaque", "2"]
    assert kubectl("get", "secret", "creds", "-n", ns,
                   "-o", "jsonpath={.data.password}") == "czNjcmV0"


def test_create_services(kubectl: Kubectl, ns: str) -> None:
    assert kubectl("create", "service", "clusterip", "cip", "-n", ns,
                   "--tcp=80:8080") == "service/cip created\n"
    assert kubectl("create", "service", "nodeport", "np", "-n", ns,
                   "--tcp=443:8443", "--node-port=30443") == "service/np created\n"
    cip = get_json(kubectl, "svc", "cip", "-n", ns)["spec"]
    assert cip["type"] == "ClusterIP"
    assert cip["selector"] == {"app": "cip"}
    assert cip["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP",
                             "targetPort": 8080}]
    assert cip["clusterIP"] and cip["clusterIPs"] == [cip["clusterIP"]]
    np = get_json(kubectl, "svc", "np", "-n", ns)["spec"]
    assert np["type"] == "NodePort"
    assert np["ports"][0]["nodePort"] == 30443
    assert np["externalTrafficPolicy"] == "Cluster"

    out = kubectl("get", "svc", "cip", "np", "-n", ns).splitlines()
    assert out[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert out[1].split()[:5] == ["cip", "ClusterIP", cip["clusterIP"], "<none>", "80/TCP"]
    assert out[2].split()[:5] == ["np", "NodePort", np["clusterIP"], "<none>",
                                  "443:30443/TCP"]

    # A node port can only be used once.
    res = kubectl.run("create", "service", "nodeport", "np2", "-n", ns, "--tcp=443:8443",
                      "--node-port=30443", check=False)
    assert res.returncode == 1
    assert "provided port is already allocated" in res.stderr


def test_create_serviceaccount(kubectl: Kubectl, ns: str) -> None:
    assert kubectl("create", "serviceaccount", "robot", "-n", ns) == (
        "serviceaccount/robot created\n")
    obj = get_json(kubectl, "sa", "robot", "-n", ns)
    assert obj["kind"] == "ServiceAccount"
    assert obj["metadata"]["uid"]
    out = kubectl("get", "sa", "robot", "-n", ns).splitlines()
    assert out[0].split() == ["NAME", "SECRETS", "AGE"]
    assert out[1].split()[:2] == ["robot", "0"]


def test_create_job_and_cronjob(kubectl: Kubectl, ns: str) -> None:
    assert kubectl("create", "job", "once", "-n", ns, "--image=busybox:1.36", "--",
                   "echo", "hi") == "job.batch/once created\n"
    job = get_json(kubectl, "job", "once", "-n", ns)
    uid = job["metadata"]["uid"]
    spec = job["spec"]
    assert spec["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    # The server generates the selector and the pod template labels from the uid.
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "once"
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)

    assert kubectl("create", "cronjob", "tick", "-n", ns, "--image=busybox:1.36",
                   "--schedule=*/5 * * * *", "--", "date") == "cronjob.batch/tick created\n"
    cj = get_json(kubectl, "cronjob", "tick", "-n", ns)
    assert cj["spec"]["schedule"] == "*/5 * * * *"
    assert cj["spec"]["concurrencyPolicy"] == "Allow"
    assert cj["spec"]["suspend"] is False
    out = kubectl("get", "cronjob", "tick", "-n", ns).splitlines()
    assert out[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE",
                              "LAST", "SCHEDULE", "AGE"]
    assert out[1].split()[:8] == ["tick", "*/5", "*", "*", "*", "*", "<none>", "False"]

    res = kubectl.run("create", "cronjob", "bad", "-n", ns, "--image=busybox",
                      "--schedule=not a schedule", check=False)
    assert res.returncode == 1
    assert res.stderr.startswith(
        'error: failed to create cronjob: CronJob.batch "bad" is invalid: '
        'spec.schedule: Invalid value: "not a schedule": ')


def test_create_from_json_and_yaml_files(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    j = tmp_path / "cm.json"
    j.write_text(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "from-json", "namespace": ns},
                             "data": {"k": "json"}}))
    y = tmp_path / "pod.yaml"
    y.write_text(f"""\
apiVersion: v1
kind: Pod
metadata:
  name: from-yaml
  namespace: {ns}
  labels: {{app: from-yaml}}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: [sleep, "3600"]
""")
    assert kubectl("create", "-f", str(j)) == "configmap/from-json created\n"
    assert kubectl("create", "-f", str(y)) == "pod/from-yaml created\n"
    assert kubectl("get", "cm", "from-json", "-n", ns, "-o", "jsonpath={.data.k}") == "json"
    pod = get_json(kubectl, "pod", "from-yaml", "-n", ns)
    assert pod["spec"]["containers"][0]["command"] == ["sleep", "3600"]
    # create -f leaves no last-applied annotation behind (unless --save-config).
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (
        pod["metadata"].get("annotations") or {})

    res = kubectl.run("create", "-f", str(j), check=False)
    assert res.returncode == 1
    assert res.stderr == (
        f'Error from server (AlreadyExists): error when creating "{j}": '
        'configmaps "from-json" already exists\n')

    # Strict field validation names the unknown field.
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n"
                   f"  namespace: {ns}\ndata: {{a: b}}\nbogus: 1\n")
    res = kubectl.run("create", "-f", str(bad), check=False)
    assert res.returncode == 1
    assert 'unknown field "bogus"' in res.stderr


def test_create_with_generate_name(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    f = tmp_path / "gen.yaml"
    f.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: gen-\n"
                 f"  namespace: {ns}\n  labels: {{gen: 'yes'}}\ndata: {{a: b}}\n")
    first = kubectl("create", "-f", str(f), "-o", "name").strip()
    second = kubectl("create", "-f", str(f), "-o", "name").strip()
    for name in (first, second):
        assert name.startswith("configmap/gen-")
        assert len(name) == len("configmap/gen-") + 5
    assert first != second
    names = kubectl("get", "cm", "-n", ns, "-l", "gen=yes", "-o", "name").split()
    assert sorted(names) == sorted([first, second])
    obj = get_json(kubectl, first, "-n", ns)
    assert obj["metadata"]["generateName"] == "gen-"

    res = kubectl.run("apply", "-f", str(f), check=False)
    assert res.returncode == 1
    assert "cannot use generate name with apply" in res.stderr


def test_run_creates_a_pod(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("run", "runner", "-n", ns, "--image=busybox:1.36", "--labels=app=runner,x=y",
                  "--env=A=1", "--port=8080", "--", "sleep", "60")
    assert out == "pod/runner created\n"
    pod = get_json(kubectl, "pod", "runner", "-n", ns)
    assert pod["metadata"]["labels"] == {"app": "runner", "x": "y"}
    (c,) = pod["spec"]["containers"]
    assert (c["name"], c["image"]) == ("runner", "busybox:1.36")
    assert c["args"] == ["sleep", "60"]
    assert c["env"] == [{"name": "A", "value": "1"}]
    assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert pod["spec"]["restartPolicy"] == "Always"
    assert pod["spec"]["dnsPolicy"] == "ClusterFirst"
    assert pod["status"]["phase"] in ("Pending", "Running")

    out = kubectl("run", "dry", "-n", ns, "--image=nginx", "--dry-run=server", "-o", "name")
    assert out == "pod/dry\n"
    res = kubectl.run("get", "pod", "dry", "-n", ns, check=False)
    assert 'pods "dry" not found' in res.stderr

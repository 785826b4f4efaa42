"""Errors exactly as kubectl prints them against a real cluster."""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Cluster, Kubectl

NS = "e2e-errors"


@pytest.fixture(scope="module")
def ns(kubectl: Kubectl) -> Iterator[str]:
    kubectl("create", "namespace", NS)
    yield NS
    kubectl.run("delete", "namespace", NS, "--wait=false", check=False)


def fails(kubectl: Kubectl, *args: str, input: str | None = None) -> str:
    """Run kubectl expecting exit code 1; return its stderr."""
    res = kubectl.run(*args, input=input, check=False)
    assert res.returncode == 1, (res.stdout, res.stderr)
    return res.stderr


def pod(name: str, **spec: object) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": NS}, "spec": spec})


def busybox(**extra: object) -> dict:
    return {"name": "c", "image": "busybox", **extra}


# -- not found / already exists -------------------------------------------------------------


def test_not_found(kubectl: Kubectl, ns: str) -> None:
    assert fails(kubectl, "-n", ns, "get", "pods", "nope") == (
        'Error from server (NotFound): pods "nope" not found\n')
    assert fails(kubectl, "-n", ns, "get", "deployment", "nope") == (
        'Error from server (NotFound): deployments.apps "nope" not found\n')
    assert fails(kubectl, "get", "--raw", f"/api/v1/namespaces/{ns}/pods/nope") == (
        'Error from server (NotFound): pods "nope" not found\n')
    # kubectl asks whether the namespace exists when the object is missing.
    assert fails(kubectl, "-n", "e2e-no-such-ns", "get", "pods", "nope") == (
        'Error from server (NotFound): namespaces "e2e-no-such-ns" not found\n')
    assert fails(kubectl, "get", "--raw", "/api/v1/nope") == (
        "Error from server (NotFound): the server could not find the requested resource\n")
    assert fails(kubectl, "get", "flurbs") == (
        'error: the server doesn\'t have a resource type "flurbs"\n')


def test_already_exists(kubectl: Kubectl, ns: str) -> None:
    cm = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "x", "namespace": ns}})
    kubectl("create", "-f", "-", input=cm)
    assert fails(kubectl, "create", "-f", "-", input=cm) == (
        'Error from server (AlreadyExists): error when creating "STDIN": configmaps "x" '
        "already exists\n")
    assert fails(kubectl, "create", "--raw", f"/api/v1/namespaces/{ns}/configmaps",
                 "-f", "-", input=cm) == (
        'Error from server (AlreadyExists): configmaps "x" already exists\n')
    # The typed generator wraps the server's message in its own.
    assert fails(kubectl, "-n", ns, "create", "configmap", "x") == (
        'error: failed to create configmap: configmaps "x" already exists\n')


# -- invalid objects ----------------------------------------------------------------------------


def test_pod_without_containers(kubectl: Kubectl, ns: str) -> None:
    assert fails(kubectl, "create", "-f", "-", input=pod("p", containers=[])) == (
        'The Pod "p" is invalid: spec.containers: Required value\n')


def test_bad_label_value(kubectl: Kubectl, ns: str) -> None:
    body = json.loads(pod("p", containers=[busybox()]))
    body["metadata"]["labels"] = {"app": "bad value!"}
    assert fails(kubectl, "create", "-f", "-", input=json.dumps(body)) == (
        'The Pod "p" is invalid: metadata.labels: Invalid value: "bad value!": a valid label '
        "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
        "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  "
        "or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')\n")


def test_names_too_long_or_malformed(kubectl: Kubectl, ns: str) -> None:
    long = "a" * 254
    assert fails(kubectl, "-n", ns, "create", "configmap", long) == (
        f'error: failed to create configmap: ConfigMap "{long}" is invalid: metadata.name: '
        f'Invalid value: "{long}": must be no more than 253 characters\n')
    # 253 characters is still a valid DNS subdomain.
    kubectl("-n", ns, "create", "configmap", "b" * 253)
    assert fails(kubectl, "-n", ns, "create", "configmap", "Bad_Name") == (
        'error: failed to create configmap: ConfigMap "Bad_Name" is invalid: metadata.name: '
        'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case '
        "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
        "character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')\n")


def test_bad_container_port(kubectl: Kubectl, ns: str) -> None:
    body = pod("p", containers=[busybox(ports=[{"containerPort": 70000}])])
    assert fails(kubectl, "create", "-f", "-", input=body) == (
        'The Pod "p" is invalid: spec.containers[0].ports[0].containerPort: Invalid value: '
        "70000: must be between 1 and 65535, inclusive\n")


def test_several_causes_are_listed(kubectl: Kubectl, ns: str) -> None:
    body = pod("p", containers=[busybox(ports=[{"containerPort": 0}])],
               restartPolicy="Sometimes")
    assert fails(kubectl, "create", "-f", "-", input=body) == (
        'The Pod "p" is invalid: \n'
        "* spec.containers[0].ports[0].containerPort: Required value\n"
        '* spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
        '"OnFailure", "Never"\n')


def test_update_validation(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap", "immutable": True, "data": {"a": "b"},
        "metadata": {"name": "frozen", "namespace": ns}}))
    assert fails(kubectl, "-n", ns, "patch", "cm", "frozen", "--type=merge",
                 "-p", '{"data":{"a":"c"}}') == (
        'The ConfigMap "frozen" is invalid: data: Forbidden: field is immutable when '
        "`immutable` is set\n")
    kubectl("-n", ns, "create", "deployment", "sel", "--image=nginx")
    assert fails(kubectl, "-n", ns, "patch", "deploy", "sel", "--type=merge",
                 "-p", '{"spec":{"selector":{"matchLabels":{"app":"other"}}}}') == (
        'The Deployment "sel" is invalid: \n'
        '* spec.template.metadata.labels: Invalid value: map[string]string{"app":"sel"}: '
        "`selector` does not match template `labels`\n"
        "* spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string"
        '{"app":"other"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: '
        "field is immutable\n")


# -- field validation ---------------------------------------------------------------------------


DEPLOYMENT_WITH_UNKNOWN_FIELD = f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: loose, namespace: {NS}}}
spec:
  foo: 1
  selector: {{matchLabels: {{app: loose}}}}
  template:
    metadata: {{labels: {{app: loose}}}}
    spec: {{containers: [{{name: c, image: busybox}}]}}
"""


def test_unknown_field_under_strict_validation(kubectl: Kubectl, ns: str) -> None:
    assert fails(kubectl, "apply", "-f", "-", input=DEPLOYMENT_WITH_UNKNOWN_FIELD) == (
        'Error from server (BadRequest): error when creating "STDIN": Deployment in version '
        '"v1" cannot be handled as a Deployment: strict decoding error: unknown field '
        '"spec.foo"\n')
    assert kubectl.run("-n", ns, "get", "deploy", "loose", check=False).returncode == 1


def test_unknown_field_with_validation_warn(kubectl: Kubectl, ns: str) -> None:
    text = DEPLOYMENT_WITH_UNKNOWN_FIELD.replace("loose", "warned")
    res = kubectl.run("apply", "--validate=warn", "-f", "-", input=text)
    assert res.stdout == "deployment.apps/warned created\n"
    assert res.stderr == 'Warning: unknown field "spec.foo"\n'


def test_unknown_field_dropped_without_validation(kubectl: Kubectl, ns: str) -> None:
    text = DEPLOYMENT_WITH_UNKNOWN_FIELD.replace("loose", "lax")
    res = kubectl.run("apply", "--validate=false", "-f", "-", input=text)
    assert (res.stdout, res.stderr) == ("deployment.apps/lax created\n", "")
    spec = json.loads(kubectl("-n", ns, "get", "deploy", "lax", "-o", "json"))["spec"]
    assert "foo" not in spec
    assert spec["replicas"] == 1


# -- media types --------------------------------------------------------------------------------


class RawAPI:
    """Plain HTTPS requests with the admin credentials of a kubeconfig."""

    def __init__(self, cluster: Cluster, tmp: Path) -> None:
        kc = yaml.safe_load(cluster.kubeconfig.read_text())
        server = kc["clusters"][0]["cluster"]
        user = kc["users"][0]["user"]
        files = {}
        for name, data in (("ca", server["certificate-authority-data"]),
                           ("crt", user["client-certificate-data"]),
                           ("key", user["client-key-data"])):
            files[name] = tmp / name
            files[name].write_bytes(base64.b64decode(data))
        self.ctx = ssl.create_default_context(cafile=str(files["ca"]))
        self.ctx.load_cert_chain(str(files["crt"]), str(files["key"]))
        self.port = cluster.port

    def request(self, method: str, path: str, body: bytes,
                content_type: str) -> tuple[int, dict]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx,
                                           timeout=10)
        try:
            conn.request(method, path, body=body,
                         headers={"Content-Type": content_type, "Accept": "application/json"})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()


@pytest.fixture(scope="module")
def raw(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> RawAPI:
    return RawAPI(cluster, tmp_path_factory.mktemp("raw-api"))


def test_unsupported_body_media_type(raw: RawAPI, kubectl: Kubectl, ns: str) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "plain"}}).encode()
    code, status = raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", body,
                               "text/plain")
    assert code == 415
    assert status["kind"] == "Status" and status["reason"] == "UnsupportedMediaType"
    assert status["code"] == 415
    assert status["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml, application/vnd.kubernetes.protobuf")
    assert kubectl.run("-n", ns, "get", "cm", "plain", check=False).returncode == 1


def test_unsupported_patch_media_type(raw: RawAPI, kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "configmap", "patchme")
    code, status = raw.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/patchme",
                               b'{"data":{"a":"b"}}', "application/json")
    assert code == 415 and status["reason"] == "UnsupportedMediaType"
    assert status["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        "application/strategic-merge-patch+json, application/apply-patch+yaml")

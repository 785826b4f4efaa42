"""`kubectl patch` in every patch type, the status and scale subresources, and `kubectl replace`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Kubectl

NS = "e2e-patch"

DEPLOYMENT = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {NS}
  labels: {{app: web, tier: front}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1.27
        env:
        - {{name: A, value: "1"}}
      - name: side
        image: busybox:1.36
"""


@pytest.fixture(scope="module")
def ns(kubectl: Kubectl) -> Iterator[str]:
    kubectl("create", "namespace", NS)
    yield NS
    kubectl.run("delete", "namespace", NS, "--wait=false", check=False)


@pytest.fixture()
def web(kubectl: Kubectl, ns: str) -> Iterator[str]:
    """A fresh Deployment `web` with two containers, one of them with env A=1."""
    kubectl("apply", "-f", "-", input=DEPLOYMENT)
    yield "web"
    kubectl("-n", ns, "delete", "deployment", "web", "--ignore-not-found")


def get_json(kubectl: Kubectl, ns: str, *what: str) -> dict:
    return json.loads(kubectl("-n", ns, "get", *what, "-o", "json"))


def containers(kubectl: Kubectl, ns: str) -> list[dict]:
    return get_json(kubectl, ns, "deployment", "web")["spec"]["template"]["spec"]["containers"]


# -- strategic merge patch (the default) ----------------------------------------------------


def test_strategic_patch_merges_env_by_name(kubectl: Kubectl, ns: str, web: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "B", "value": "2"}]}]}}}}
    out = kubectl("-n", ns, "patch", "deployment", web, "-p", json.dumps(patch))
    assert out == "deployment.apps/web patched\n"
    app, side = containers(kubectl, ns)
    # Merged by name: the container keeps its image and A; B is added in front (a patch
    # element the live list does not have sorts before the live ones).
    assert app["name"] == "app" and app["image"] == "nginx:1.27"
    assert app["env"] == [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]
    assert side["name"] == "side" and side["image"] == "busybox:1.36"


def test_strategic_patch_delete_directive_and_no_change(kubectl: Kubectl, ns: str,
                                                        web: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "side", "$patch": "delete"}]}}}}
    assert kubectl("-n", ns, "patch", "deploy", web, "-p", json.dumps(patch)) == (
        "deployment.apps/web patched\n")
    assert [c["name"] for c in containers(kubectl, ns)] == ["app"]
    # The same patch again changes nothing, and kubectl says so.
    assert kubectl("-n", ns, "patch", "deploy", web, "-p", json.dumps(patch)) == (
        "deployment.apps/web patched (no change)\n")


def test_strategic_patch_bumps_generation_only_on_spec_change(kubectl: Kubectl, ns: str,
                                                              web: str) -> None:
    gen = get_json(kubectl, ns, "deploy", web)["metadata"]["generation"]
    kubectl("-n", ns, "patch", "deploy", web, "-p", '{"metadata":{"labels":{"x":"y"}}}')
    assert get_json(kubectl, ns, "deploy", web)["metadata"]["generation"] == gen
    kubectl("-n", ns, "patch", "deploy", web, "-p", '{"spec":{"minReadySeconds":5}}')
    assert get_json(kubectl, ns, "deploy", web)["metadata"]["generation"] == gen + 1


# -- JSON merge patch -------------------------------------------------------------------------


def test_merge_patch_replaces_lists_and_null_deletes(kubectl: Kubectl, ns: str,
                                                     web: str) -> None:
    patch = {"metadata": {"labels": {"tier": None}},
             "spec": {"template": {"spec": {"containers": [
                 {"name": "only", "image": "nginx:1.28"}]}}}}
    out = kubectl("-n", ns, "patch", "deploy", web, "--type=merge", "-p", json.dumps(patch))
    assert out == "deployment.apps/web patched\n"
    obj = get_json(kubectl, ns, "deploy", web)
    assert obj["metadata"]["labels"] == {"app": "web"}
    # A merge patch replaces a list wholesale; defaults are filled in again.
    (only,) = obj["spec"]["template"]["spec"]["containers"]
    assert only["name"] == "only" and only["image"] == "nginx:1.28"
    assert "env" not in only
    assert only["imagePullPolicy"] == "IfNotPresent"


# -- JSON patch ---------------------------------------------------------------------------------


def test_json_patch_add_replace_remove(kubectl: Kubectl, ns: str, web: str) -> None:
    ops = [
        {"op": "add", "path": "/metadata/annotations", "value": {"note": "hi"}},
        {"op": "replace", "path": "/spec/replicas", "value": 2},
        {"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "side"},
        {"op": "remove", "path": "/spec/template/spec/containers/1"},
        {"op": "add", "path": "/spec/template/spec/containers/0/env/-",
         "value": {"name": "C", "value": "3"}},
    ]
    out = kubectl("-n", ns, "patch", "deploy", web, "--type=json", "-p", json.dumps(ops))
    assert out == "deployment.apps/web patched\n"
    obj = get_json(kubectl, ns, "deploy", web)
    annotations = dict(obj["metadata"]["annotations"])
    # The Deployment controller puts its revision back as soon as the patch lands.
    annotations.pop("deployment.kubernetes.io/revision", None)
    assert annotations == {"note": "hi"}
    assert obj["spec"]["replicas"] == 2
    (app,) = obj["spec"]["template"]["spec"]["containers"]
    assert [e["name"] for e in app["env"]] == ["A", "C"]


def test_json_patch_failing_test_op_is_rejected(kubectl: Kubectl, ns: str, web: str) -> None:
    before = get_json(kubectl, ns, "deploy", web)["metadata"]["resourceVersion"]
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 7},
           {"op": "test", "path": "/spec/replicas", "value": 5}]
    res = kubectl.run("-n", ns, "patch", "deploy", web, "--type=json", "-p", json.dumps(ops),
                      check=False)
    assert res.returncode == 1
    assert res.stderr == (
        "The request is invalid: testing value /spec/replicas failed: test failed\n")
    # All or nothing: the replace before the failed test was not kept.
    obj = get_json(kubectl, ns, "deploy", web)
    assert obj["spec"]["replicas"] == 1
    assert obj["metadata"]["resourceVersion"] == before


def test_json_patch_remove_missing_index_is_rejected(kubectl: Kubectl, ns: str,
                                                     web: str) -> None:
    ops = [{"op": "remove", "path": "/spec/template/spec/containers/5"}]
    res = kubectl.run("-n", ns, "patch", "deploy", web, "--type=json", "-p", json.dumps(ops),
                      check=False)
    assert res.returncode == 1
    assert res.stderr.startswith("The request is invalid: ")


def test_patch_of_missing_object(kubectl: Kubectl, ns: str) -> None:
    res = kubectl.run("-n", ns, "patch", "configmap", "ghost", "--type=merge",
                      "-p", '{"data":{"a":"b"}}', check=False)
    assert res.returncode == 1
    assert res.stderr == 'Error from server (NotFound): configmaps "ghost" not found\n'


# -- subresources -------------------------------------------------------------------------------


def test_status_subresource_patch(kubectl: Kubectl, ns: str, web: str) -> None:
    patch = {"status": {"observedGeneration": 1, "conditions": [
        {"type": "E2E", "status": "True", "reason": "Set", "message": "by a test"}]}}
    out = kubectl("-n", ns, "patch", "deploy", web, "--subresource=status", "--type=merge",
                  "-p", json.dumps(patch))
    assert out == "deployment.apps/web patched\n"
    obj = get_json(kubectl, ns, "deploy", web)
    conds = {c["type"]: c for c in obj["status"]["conditions"]}
    assert conds["E2E"]["status"] == "True" and conds["E2E"]["message"] == "by a test"
    # The status endpoint ignores spec changes...
    kubectl("-n", ns, "patch", "deploy", web, "--subresource=status", "--type=merge",
            "-p", '{"spec":{"replicas":9}}')
    assert get_json(kubectl, ns, "deploy", web)["spec"]["replicas"] == 1
    # ...and the main endpoint ignores status changes.
    kubectl("-n", ns, "patch", "deploy", web, "--type=merge",
            "-p", '{"status":{"observedGeneration":42}}')
    assert get_json(kubectl, ns, "deploy", web)["status"].get("observedGeneration") != 42


def test_scale_through_scale_subresource(kubectl: Kubectl, ns: str, web: str) -> None:
    assert kubectl("-n", ns, "scale", "deploy", web, "--replicas=3") == (
        "deployment.apps/web scaled\n")
    assert kubectl("-n", ns, "get", "deploy", web, "-o", "jsonpath={.spec.replicas}") == "3"
    scale = json.loads(kubectl("get", "--raw",
                               f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale"))
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 3}
    assert scale["status"]["selector"] == "app=web"
    # A --current-replicas precondition that does not hold is refused.
    res = kubectl.run("-n", ns, "scale", "deploy", web, "--current-replicas=2",
                      "--replicas=4", check=False)
    assert res.returncode == 1
    assert "Expected replicas to be 2, was 3" in res.stderr
    assert kubectl("-n", ns, "get", "deploy", web, "-o", "jsonpath={.spec.replicas}") == "3"


# -- replace ------------------------------------------------------------------------------------


def test_replace_with_stale_resource_version_conflicts(kubectl: Kubectl, ns: str,
                                                      web: str) -> None:
    stale = kubectl("-n", ns, "get", "deploy", web, "-o", "yaml")
    kubectl("-n", ns, "label", "deploy", web, "changed=yes")
    res = kubectl.run("replace", "-f", "-", input=stale, check=False)
    assert res.returncode == 1
    assert res.stderr == (
        'Error from server (Conflict): error when replacing "STDIN": Operation cannot be '
        'fulfilled on deployments.apps "web": the object has been modified; please apply your '
        "changes to the latest version and try again\n")
    fresh = kubectl("-n", ns, "get", "deploy", web, "-o", "yaml")
    edited = fresh.replace("replicas: 1", "replicas: 2", 1)
    assert kubectl("replace", "-f", "-", input=edited) == "deployment.apps/web replaced\n"
    assert kubectl("-n", ns, "get", "deploy", web, "-o", "jsonpath={.spec.replicas}") == "2"


def test_replace_force_recreates(kubectl: Kubectl, ns: str, web: str) -> None:
    old_uid = get_json(kubectl, ns, "deploy", web)["metadata"]["uid"]
    stale = kubectl("-n", ns, "get", "deploy", web, "-o", "yaml")
    kubectl("-n", ns, "label", "deploy", web, "changed=yes")
    out = kubectl("replace", "--force", "-f", "-", input=stale)
    assert out == 'deployment.apps "web" deleted\ndeployment.apps/web replaced\n'
    obj = get_json(kubectl, ns, "deploy", web)
    assert obj["metadata"]["uid"] != old_uid
    assert "changed" not in obj["metadata"]["labels"]


def test_replace_missing_object(kubectl: Kubectl, ns: str) -> None:
    cm = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: missing, namespace: {ns}}}\n"
    res = kubectl.run("replace", "-f", "-", input=cm, check=False)
    assert res.returncode == 1
    assert res.stderr == (
        'Error from server (NotFound): error when replacing "STDIN": configmaps "missing" '
        "not found\n")

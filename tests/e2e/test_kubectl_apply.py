"""`kubectl apply`, client-side and server-side, against a real `skiff up`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import Kubectl

NS = "e2e-apply"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@pytest.fixture(scope="module")
def ns(kubectl: Kubectl) -> Iterator[str]:
    """A namespace of this module's own."""
    kubectl("create", "namespace", NS)
    yield NS
    kubectl.run("delete", "namespace", NS, "--wait=false", check=False)


def deployment(name: str, *, replicas: int = 2, containers: list[dict] | None = None,
               labels: dict[str, str] | None = None) -> dict:
    """A Deployment manifest."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": labels or {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": containers or [{"name": "web", "image": "nginx:1.26"}]},
            },
        },
    }


def write(path: Path, *docs: dict) -> str:
    """Write `docs` as a multi-document YAML file; its path."""
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def get_json(kubectl: Kubectl, *args: str) -> dict:
    """`kubectl get ARGS -o json`, decoded."""
    return json.loads(kubectl("get", *args, "-o", "json"))


# -- client-side apply ----------------------------------------------------------


def test_apply_creates_then_configures_with_set_element_order(
        kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    first = deployment("csa", containers=[
        {"name": "web", "image": "nginx:1.26", "env": [{"name": "A", "value": "1"}]},
        {"name": "side", "image": "busybox:1.36"},
    ])
    f = write(tmp_path / "d.yaml", first)
    assert kubectl("apply", "-f", f) == "deployment.apps/csa created\n"
    obj = get_json(kubectl, "deploy", "csa", "-n", ns)
    assert json.loads(obj["metadata"]["annotations"][LAST_APPLIED])["spec"]["replicas"] == 2
    assert obj["metadata"]["generation"] == 1

    # Swap the containers, change an image and the replica count: kubectl sends a
    # strategic merge patch whose $setElementOrder fixes the new order.
    second = deployment("csa", replicas=3, containers=[
        {"name": "side", "image": "busybox:1.36"},
        {"name": "web", "image": "nginx:1.27", "env": [{"name": "A", "value": "1"}]},
    ])
    f = write(tmp_path / "d.yaml", second)
    res = kubectl.run("apply", "-f", f, "-v=8")
    assert res.stdout == "deployment.apps/csa configured\n"
    assert "application/strategic-merge-patch+json" in res.stderr
    assert "$setElementOrder/containers" in res.stderr
    obj = get_json(kubectl, "deploy", "csa", "-n", ns)
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["side", "web"]
    assert containers[1]["image"] == "nginx:1.27"
    assert containers[1]["env"] == [{"name": "A", "value": "1"}]
    assert obj["spec"]["replicas"] == 3
    assert obj["metadata"]["generation"] == 2
    # Server defaults survive the patch.
    assert obj["spec"]["strategy"]["type"] == "RollingUpdate"

    # Unchanged manifest: nothing to do.
    assert kubectl("apply", "-f", f) == "deployment.apps/csa unchanged\n"
    assert get_json(kubectl, "deploy", "csa", "-n", ns)["metadata"]["generation"] == 2


def test_apply_removes_fields_dropped_from_the_manifest(
        kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    first = deployment("drop", labels={"app": "drop", "tier": "front"}, containers=[
        {"name": "web", "image": "nginx:1.26",
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "side", "image": "busybox:1.36"},
    ])
    f = write(tmp_path / "d.yaml", first)
    kubectl("apply", "-f", f)
    # A label added by someone else is not in last-applied, so apply must keep it.
    kubectl("label", "deploy", "drop", "-n", ns, "owner=ops")

    second = deployment("drop", containers=[
        {"name": "web", "image": "nginx:1.26", "env": [{"name": "B", "value": "2"}]},
    ])
    f = write(tmp_path / "d.yaml", second)
    assert kubectl("apply", "-f", f) == "deployment.apps/drop configured\n"
    obj = get_json(kubectl, "deploy", "drop", "-n", ns)
    assert obj["metadata"]["labels"] == {"app": "drop", "owner": "ops"}
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web"]
    assert containers[0]["env"] == [{"name": "B", "value": "2"}]
    last = json.loads(obj["metadata"]["annotations"][LAST_APPLIED])
    assert "tier" not in last["metadata"]["labels"]


def test_apply_dry_run_server_changes_nothing(
        kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    f = write(tmp_path / "d.yaml", deployment("dry", replicas=1))
    out = kubectl("apply", "-f", f, "--dry-run=server")
    assert out == "deployment.apps/dry created (server dry run)\n"
    res = kubectl.run("get", "deploy", "dry", "-n", ns, check=False)
    assert res.returncode == 1
    assert 'deployments.apps "dry" not found' in res.stderr

    kubectl("apply", "-f", f)
    # The Deployment controller keeps writing status; the spec's generation is what a
    # dry run must leave alone.
    generation = get_json(kubectl, "deploy", "dry", "-n", ns)["metadata"]["generation"]
    f = write(tmp_path / "d.yaml", deployment("dry", replicas=5))
    out = kubectl("apply", "-f", f, "--dry-run=server", "-o", "jsonpath={.spec.replicas}")
    assert out == "5"
    obj = get_json(kubectl, "deploy", "dry", "-n", ns)
    assert obj["spec"]["replicas"] == 1
    assert obj["metadata"]["generation"] == generation


def test_apply_prune_deletes_objects_left_out(
        kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    def cm(name: str, app: str = "x") -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
                "data": {"k": name}}

    # Labelled alike but never applied: prune only touches objects that carry
    # the last-applied annotation.
    kubectl("create", "configmap", "prune-manual", "-n", ns, "--from-literal=k=v")
    kubectl("label", "configmap", "prune-manual", "-n", ns, "app=x")
    # Applied, but with a label outside the prune selector.
    kubectl("apply", "-f", write(tmp_path / "other.yaml", cm("prune-other", app="other")))

    args = ["--prune", "-l", "app=x", "--prune-allowlist=core/v1/ConfigMap", "-n", ns]
    f = write(tmp_path / "all.yaml", cm("prune-a"), cm("prune-b"))
    assert kubectl("apply", "-f", f, *args) == (
        "configmap/prune-a created\nconfigmap/prune-b created\n")
    f = write(tmp_path / "all.yaml", cm("prune-a"))
    assert kubectl("apply", "-f", f, *args) == (
        "configmap/prune-a unchanged\nconfigmap/prune-b pruned\n")
    names = kubectl("get", "cm", "-n", ns, "-o", "name").split()
    assert "configmap/prune-a" in names
    assert "configmap/prune-b" not in names
    assert "configmap/prune-manual" in names
    assert "configmap/prune-other" in names


def test_apply_multi_document_file(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    dep = deployment("multi", containers=[
        {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}])
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "multi", "namespace": ns},
           "spec": {"selector": {"app": "multi"}, "ports": [{"port": 80, "targetPort": 80}]}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "multi", "namespace": ns}, "data": {"mode": "prod"}}
    f = write(tmp_path / "app.yaml", dep, svc, cm)
    assert kubectl("apply", "-f", f) == (
        "deployment.apps/multi created\nservice/multi created\nconfigmap/multi created\n")
    out = kubectl("get", "deploy/multi", "svc/multi", "cm/multi", "-n", ns, "-o", "name")
    assert out.split() == ["deployment.apps/multi", "service/multi", "configmap/multi"]
    service = get_json(kubectl, "svc", "multi", "-n", ns)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0]["protocol"] == "TCP"
    assert service["spec"]["clusterIP"]

    cm["data"]["mode"] = "dev"
    f = write(tmp_path / "app.yaml", dep, svc, cm)
    assert kubectl("apply", "-f", f) == (
        "deployment.apps/multi unchanged\nservice/multi unchanged\nconfigmap/multi configured\n")
    assert kubectl("get", "cm", "multi", "-n", ns, "-o", "jsonpath={.data.mode}") == "dev"


# -- server-side apply ----------------------------------------------------------


def managers(obj: dict) -> list[tuple[str, str, str]]:
    """(manager, operation, subresource) of each managedFields entry, leaving out the
    Deployment controller's status writes (they come and go as it reconciles)."""
    return [(e["manager"], e["operation"], e.get("subresource", ""))
            for e in obj["metadata"].get("managedFields", [])
            if e.get("subresource") != "status"]


def test_server_side_apply_create_update_conflict_force(
        kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    f = write(tmp_path / "d.yaml", deployment("ssa", replicas=2))
    assert kubectl("apply", "--server-side", "-f", f) == (
        "deployment.apps/ssa serverside-applied\n")
    obj = get_json(kubectl, "deploy", "ssa", "-n", ns, "--show-managed-fields")
    assert managers(obj) == [("kubectl", "Apply", "")]
    assert LAST_APPLIED not in (obj["metadata"].get("annotations") or {})

    f = write(tmp_path / "d.yaml", deployment("ssa", replicas=2, containers=[
        {"name": "web", "image": "nginx:1.27"}]))
    assert kubectl("apply", "--server-side", "-f", f) == (
        "deployment.apps/ssa serverside-applied\n")
    obj = get_json(kubectl, "deploy", "ssa", "-n", ns)
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert obj["metadata"]["generation"] == 2

    # kubectl scale writes .spec.replicas through the scale subresource, which
    # records its own manager; applying a different count then conflicts.
    assert kubectl("scale", "deploy/ssa", "-n", ns, "--replicas=7") == (
        "deployment.apps/ssa scaled\n")
    obj = get_json(kubectl, "deploy", "ssa", "-n", ns, "--show-managed-fields")
    assert ("kubectl", "Update", "scale") in managers(obj)

    f = write(tmp_path / "d.yaml", deployment("ssa", replicas=4, containers=[
        {"name": "web", "image": "nginx:1.27"}]))
    res = kubectl.run("apply", "--server-side", "-f", f, check=False)
    assert res.returncode == 1
    assert res.stderr.startswith(
        'error: Apply failed with 1 conflict: conflict with "kubectl" with subresource '
        '"scale" using apps/v1: .spec.replicas\n')
    assert "--force-conflicts" in res.stderr
    assert get_json(kubectl, "deploy", "ssa", "-n", ns)["spec"]["replicas"] == 7

    assert kubectl("apply", "--server-side", "--force-conflicts", "-f", f) == (
        "deployment.apps/ssa serverside-applied\n")
    obj = get_json(kubectl, "deploy", "ssa", "-n", ns, "--show-managed-fields")
    assert obj["spec"]["replicas"] == 4
    # Forcing took .spec.replicas away from the scale entry, which owned nothing else.
    assert managers(obj) == [("kubectl", "Apply", "")]


def test_server_side_apply_field_managers_share_and_conflict(
        kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    base = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "ssa-cm", "namespace": ns}}
    f = write(tmp_path / "a.yaml", {**base, "data": {"a": "1"}})
    kubectl("apply", "--server-side", "--field-manager=team-a", "-f", f)
    f = write(tmp_path / "b.yaml", {**base, "data": {"b": "2"}})
    kubectl("apply", "--server-side", "--field-manager=team-b", "-f", f)
    obj = get_json(kubectl, "cm", "ssa-cm", "-n", ns, "--show-managed-fields")
    assert obj["data"] == {"a": "1", "b": "2"}
    assert sorted(managers(obj)) == [("team-a", "Apply", ""), ("team-b", "Apply", "")]

    f = write(tmp_path / "b.yaml", {**base, "data": {"a": "9", "b": "2"}})
    res = kubectl.run("apply", "--server-side", "--field-manager=team-b", "-f", f, check=False)
    assert res.returncode == 1
    assert res.stderr.startswith(
        'error: Apply failed with 1 conflict: conflict with "team-a": .data.a\n')

    # Applying the same value is shared ownership, not a conflict.
    f = write(tmp_path / "b.yaml", {**base, "data": {"a": "1", "b": "2"}})
    kubectl("apply", "--server-side", "--field-manager=team-b", "-f", f)

    # team-a drops .data.a, but team-b still owns it, so it stays.
    f = write(tmp_path / "a.yaml", {**base, "data": {}})
    kubectl("apply", "--server-side", "--field-manager=team-a", "-f", f)
    assert get_json(kubectl, "cm", "ssa-cm", "-n", ns)["data"] == {"a": "1", "b": "2"}
    # When its last owner drops it, it goes.
    f = write(tmp_path / "b.yaml", {**base, "data": {"b": "2"}})
    kubectl("apply", "--server-side", "--field-manager=team-b", "-f", f)
    assert get_json(kubectl, "cm", "ssa-cm", "-n", ns)["data"] == {"b": "2"}


def test_server_side_apply_dry_run(kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    f = write(tmp_path / "d.yaml", deployment("ssa-dry"))
    assert kubectl("apply", "--server-side", "--dry-run=server", "-f", f) == (
        "deployment.apps/ssa-dry serverside-applied (server dry run)\n")
    res = kubectl.run("get", "deploy", "ssa-dry", "-n", ns, check=False)
    assert 'deployments.apps "ssa-dry" not found' in res.stderr


def test_client_side_to_server_side_apply_upgrade(
        kubectl: Kubectl, ns: str, tmp_path: Path) -> None:
    # Fields client-side apply set (and nobody changed since) pass to the
    # server-side applier without a conflict, as upstream documents.
    f = write(tmp_path / "d.yaml", deployment("upgrade", replicas=2))
    kubectl("apply", "-f", f)
    f = write(tmp_path / "d.yaml", deployment("upgrade", replicas=5))
    assert kubectl("apply", "--server-side", "-f", f) == (
        "deployment.apps/upgrade serverside-applied\n")
    obj = get_json(kubectl, "deploy", "upgrade", "-n", ns, "--show-managed-fields")
    assert obj["spec"]["replicas"] == 5
    owners = managers(obj)
    assert ("kubectl", "Apply", "") in owners
    assert not any(m == "kubectl-client-side-apply" for m, _, _ in owners)
    # The annotation follows server-side applies, so client-side apply still works.
    last = json.loads(obj["metadata"]["annotations"][LAST_APPLIED])
    assert last["spec"]["replicas"] == 5
    f = write(tmp_path / "d.yaml", deployment("upgrade", replicas=6))
    assert kubectl("apply", "-f", f) == "deployment.apps/upgrade configured\n"
    assert get_json(kubectl, "deploy", "upgrade", "-n", ns)["spec"]["replicas"] == 6

    # A field changed by someone else since is still a conflict.
    kubectl("apply", "-f", write(tmp_path / "c.yaml", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "upgrade", "namespace": ns}, "data": {"a": "1"}}))
    kubectl("patch", "cm", "upgrade", "-n", ns, "--type=merge", "-p", '{"data":{"a":"2"}}')
    res = kubectl.run("apply", "--server-side", "-f", write(tmp_path / "c.yaml", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "upgrade", "namespace": ns}, "data": {"a": "3"}}), check=False)
    assert res.returncode == 1
    assert res.stderr.startswith(
        'error: Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: .data.a\n')

"""`kubectl delete`: propagation policies, finalizers, selectors, grace periods, namespaces."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import Kubectl

NS = "e2e-delete"


@pytest.fixture(scope="module")
def ns(kubectl: Kubectl) -> Iterator[str]:
    kubectl("create", "namespace", NS)
    yield NS
    kubectl.run("delete", "namespace", NS, "--wait=false", check=False)


def eventually(check: Callable[[], bool], timeout: float = 20, what: str = "") -> None:
    """Poll `check` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}")


def exists(kubectl: Kubectl, ns: str, kind: str, name: str) -> bool:
    res = kubectl.run("-n", ns, "get", kind, name, "-o", "name", check=False)
    if res.returncode == 0:
        return True
    assert "NotFound" in res.stderr, res.stderr
    return False


def get_json(kubectl: Kubectl, ns: str, kind: str, name: str) -> dict:
    return json.loads(kubectl("-n", ns, "get", kind, name, "-o", "json"))


def make_family(kubectl: Kubectl, ns: str, owner: str, deps: int = 2,
                dep_finalizer: str | None = None) -> list[str]:
    """A ConfigMap `owner` and `deps` ConfigMaps whose ownerReferences point at it."""
    kubectl("-n", ns, "create", "configmap", owner)
    uid = get_json(kubectl, ns, "cm", owner)["metadata"]["uid"]
    names = [f"{owner}-dep{i}" for i in range(deps)]
    for name in names:
        md: dict = {"name": name, "namespace": ns, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid,
            "blockOwnerDeletion": True}]}
        if dep_finalizer:
            md["finalizers"] = [dep_finalizer]
        kubectl("create", "-f", "-",
                input=json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": md}))
    return names


# -- propagation policies ---------------------------------------------------------------------


def test_cascade_background_collects_dependents(kubectl: Kubectl, ns: str) -> None:
    deps = make_family(kubectl, ns, "bg")
    out = kubectl("-n", ns, "delete", "cm", "bg", "--cascade=background")
    assert out == 'configmap "bg" deleted\n'
    assert not exists(kubectl, ns, "cm", "bg")
    eventually(lambda: not any(exists(kubectl, ns, "cm", d) for d in deps),
               what="the garbage collector to delete the dependents")


def test_cascade_foreground_waits_for_dependents(kubectl: Kubectl, ns: str) -> None:
    hold = "e2e.skiff.dev/hold"
    deps = make_family(kubectl, ns, "fg", deps=1, dep_finalizer=hold)
    out = kubectl("-n", ns, "delete", "cm", "fg", "--cascade=foreground", "--wait=false")
    assert out == 'configmap "fg" deleted\n'
    # The owner stays, marked for deletion with the foregroundDeletion finalizer, while
    # its blocking dependent is being deleted (and held by its own finalizer).
    owner = get_json(kubectl, ns, "cm", "fg")
    assert owner["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert owner["metadata"]["deletionTimestamp"]
    eventually(lambda: bool(get_json(kubectl, ns, "cm", deps[0])["metadata"]
                            .get("deletionTimestamp")),
               what="the dependent to be deleted")
    assert exists(kubectl, ns, "cm", "fg")
    kubectl("-n", ns, "patch", "cm", deps[0], "--type=json",
            "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    kubectl("-n", ns, "wait", "--for=delete", "cm/fg", f"cm/{deps[0]}", "--timeout=20s")


def test_cascade_orphan_keeps_dependents(kubectl: Kubectl, ns: str) -> None:
    deps = make_family(kubectl, ns, "orph")
    out = kubectl("-n", ns, "delete", "cm", "orph", "--cascade=orphan")
    assert out == 'configmap "orph" deleted\n'
    assert not exists(kubectl, ns, "cm", "orph")
    for d in deps:
        md = get_json(kubectl, ns, "cm", d)["metadata"]
        # The owner reference is removed; an empty list is not stored.
        assert "ownerReferences" not in md, md
        assert "deletionTimestamp" not in md


# -- finalizers and --wait ----------------------------------------------------------------------


def test_delete_waits_for_finalizer(kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "configmap", "held")
    kubectl("-n", ns, "patch", "cm", "held", "--type=merge",
            "-p", '{"metadata":{"finalizers":["e2e.skiff.dev/hold"]}}')
    released = threading.Event()
    errors: list[BaseException] = []

    def release() -> None:
        try:
            # Only once the delete has marked the object does the finalizer go.
            eventually(lambda: bool(get_json(kubectl, ns, "cm", "held")["metadata"]
                                    .get("deletionTimestamp")), what="deletionTimestamp")
            kubectl("-n", ns, "patch", "cm", "held", "--type=json",
                    "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
            released.set()
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    t = threading.Thread(target=release)
    t.start()
    try:
        out = kubectl("-n", ns, "delete", "cm", "held", "--timeout=30s")
    finally:
        t.join(30)
    assert not errors, errors
    assert out == 'configmap "held" deleted\n'
    # kubectl returned only after the finalizer was removed and the object went away.
    assert released.is_set()
    assert not exists(kubectl, ns, "cm", "held")


def test_delete_wait_false_returns_with_object_terminating(kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "configmap", "held2")
    kubectl("-n", ns, "patch", "cm", "held2", "--type=merge",
            "-p", '{"metadata":{"finalizers":["e2e.skiff.dev/hold"]}}')
    assert kubectl("-n", ns, "delete", "cm", "held2", "--wait=false") == (
        'configmap "held2" deleted\n')
    md = get_json(kubectl, ns, "cm", "held2")["metadata"]
    assert md["deletionTimestamp"] and md["finalizers"] == ["e2e.skiff.dev/hold"]
    # A second delete of a terminating object is accepted and changes nothing.
    assert kubectl("-n", ns, "delete", "cm", "held2", "--wait=false") == (
        'configmap "held2" deleted\n')
    kubectl("-n", ns, "patch", "cm", "held2", "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}')
    assert not exists(kubectl, ns, "cm", "held2")


# -- selection ----------------------------------------------------------------------------------


def test_delete_by_label_selector(kubectl: Kubectl, ns: str) -> None:
    for name, label in (("sel-a", "keep=no"), ("sel-b", "keep=no"), ("sel-c", "keep=yes")):
        kubectl("-n", ns, "create", "configmap", name)
        kubectl("-n", ns, "label", "cm", name, label, "group=sel")
    out = kubectl("-n", ns, "delete", "cm", "-l", "keep=no")
    assert out == 'configmap "sel-a" deleted\nconfigmap "sel-b" deleted\n'
    assert kubectl("-n", ns, "get", "cm", "-l", "group=sel", "-o", "name") == (
        "configmap/sel-c\n")
    res = kubectl.run("-n", ns, "delete", "cm", "-l", "keep=no")
    # Unlike `get`, `delete` reports an empty match on stdout.
    assert res.returncode == 0 and res.stdout == "No resources found\n"


def test_delete_all(kubectl: Kubectl) -> None:
    ns = "e2e-delete-all"
    kubectl("create", "namespace", ns)
    try:
        for name in ("all-1", "all-2", "all-3"):
            kubectl("-n", ns, "create", "configmap", name)
        kubectl("-n", ns, "create", "secret", "generic", "survivor", "--from-literal=a=b")
        out = kubectl("-n", ns, "delete", "configmaps", "--all")
        # Every namespace also holds kube-root-ca.crt, which its publisher puts back.
        lines = [ln for ln in out.splitlines() if "kube-root-ca.crt" not in ln]
        assert lines == ['configmap "all-1" deleted', 'configmap "all-2" deleted',
                         'configmap "all-3" deleted']
        left = kubectl("-n", ns, "get", "configmaps", "-o", "name").split()
        assert set(left) <= {"configmap/kube-root-ca.crt"}
        assert kubectl("-n", ns, "get", "secrets", "-o", "name") == "secret/survivor\n"
    finally:
        kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


def test_delete_missing(kubectl: Kubectl, ns: str) -> None:
    res = kubectl.run("-n", ns, "delete", "cm", "nope", check=False)
    assert res.returncode == 1
    assert res.stderr == 'Error from server (NotFound): configmaps "nope" not found\n'
    assert kubectl("-n", ns, "delete", "cm", "nope", "--ignore-not-found") == ""


# -- grace periods ------------------------------------------------------------------------------


def test_force_delete_pod_with_zero_grace(kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "run", "victim", "--image=busybox", "--restart=Never")
    res = kubectl.run("-n", ns, "delete", "pod", "victim", "--grace-period=0", "--force")
    assert res.stdout == 'pod "victim" force deleted\n'
    assert res.stderr == (
        "Warning: Immediate deletion does not wait for confirmation that the running resource "
        "has been terminated. The resource may continue to run on the cluster indefinitely.\n")
    assert not exists(kubectl, ns, "pod", "victim")


def test_unscheduled_pod_is_deleted_at_once_despite_grace(kubectl: Kubectl, ns: str) -> None:
    # No node ever ran it, so nothing has to confirm its termination.
    kubectl("-n", ns, "run", "idle", "--image=busybox", "--restart=Never")
    assert kubectl("-n", ns, "delete", "pod", "idle", "--grace-period=30") == (
        'pod "idle" deleted\n')
    assert not exists(kubectl, ns, "pod", "idle")


def test_grace_period_requires_force_for_zero(kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "configmap", "graceful")
    res = kubectl.run("-n", ns, "delete", "cm", "graceful", "--grace-period=0")
    # kubectl turns a zero grace period without --force into 1 s; a ConfigMap has no
    # graceful deletion, so it goes at once either way.
    assert res.stdout == 'configmap "graceful" deleted\n'
    assert not exists(kubectl, ns, "cm", "graceful")


# -- namespaces ---------------------------------------------------------------------------------


def test_deleting_namespace_removes_its_contents(kubectl: Kubectl) -> None:
    ns = "e2e-delete-ns"
    kubectl("create", "namespace", ns)
    kubectl("-n", ns, "create", "configmap", "inside")
    kubectl("-n", ns, "create", "deployment", "inside", "--image=nginx")
    kubectl("-n", ns, "create", "secret", "generic", "inside", "--from-literal=a=b")
    assert kubectl("delete", "namespace", ns, "--timeout=30s") == f'namespace "{ns}" deleted\n'
    res = kubectl.run("get", "namespace", ns, check=False)
    assert res.returncode == 1
    assert res.stderr == f'Error from server (NotFound): namespaces "{ns}" not found\n'
    for kind in ("configmaps", "deployments", "secrets"):
        res = kubectl.run("-n", ns, "get", kind)
        assert res.stderr == f"No resources found in {ns} namespace.\n", kind
    # Creating in a namespace that does not exist is refused.
    res = kubectl.run("-n", ns, "create", "configmap", "late", check=False)
    assert res.returncode == 1
    assert f'namespaces "{ns}" not found' in res.stderr


def test_terminating_namespace_refuses_new_content(kubectl: Kubectl) -> None:
    ns = "e2e-delete-term"
    kubectl("create", "namespace", ns)
    kubectl("-n", ns, "create", "configmap", "pinned")
    kubectl("-n", ns, "patch", "cm", "pinned", "--type=merge",
            "-p", '{"metadata":{"finalizers":["e2e.skiff.dev/hold"]}}')
    kubectl("delete", "namespace", ns, "--wait=false")
    try:
        assert kubectl("get", "ns", ns, "-o", "jsonpath={.status.phase}") == "Terminating"
        res = kubectl.run("-n", ns, "create", "configmap", "late", check=False)
        assert res.returncode == 1
        assert res.stderr == (
            'error: failed to create configmap: configmaps "late" is forbidden: unable to '
            f"create new content in namespace {ns} because it is being terminated\n")
    finally:
        kubectl("-n", ns, "patch", "cm", "pinned", "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}')
    kubectl("wait", "--for=delete", f"namespace/{ns}", "--timeout=30s")

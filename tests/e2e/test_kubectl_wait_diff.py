"""`kubectl diff -f` and `kubectl wait` (conditions, JSONPath, deletion)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import KUBECTL, Kubectl

NS = "e2e-wait"
CRD_NAME = "gizmos.wait.e2e.skiff.dev"
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.wait.e2e.skiff.dev
spec:
  group: wait.e2e.skiff.dev
  scope: Namespaced
  names: {plural: gizmos, singular: gizmo, kind: Gizmo}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
                    reason: {type: string}
"""


@pytest.fixture(scope="module")
def ns(kubectl: Kubectl) -> Iterator[str]:
    kubectl("create", "namespace", NS)
    yield NS
    kubectl.run("delete", "namespace", NS, "--wait=false", check=False)


@pytest.fixture(scope="module")
def gizmos(kubectl: Kubectl, ns: str) -> Iterator[str]:
    """A CRD with a status subresource, so only this test sets its conditions."""
    kubectl("apply", "-f", "-", input=CRD)
    kubectl("wait", "--for=condition=established", f"crd/{CRD_NAME}", "--timeout=20s")
    yield "gizmos"
    kubectl.run("delete", "crd", CRD_NAME, "--wait=false", check=False)


class Background:
    """kubectl ARGS running in the background, logging its requests (-v=6) to stderr."""

    def __init__(self, kubectl: Kubectl, *args: str) -> None:
        assert KUBECTL is not None
        self.proc = subprocess.Popen(
            [KUBECTL, "--cache-dir", str(kubectl.cache_dir), "-v=6", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kubectl.env())
        self.stderr: list[str] = []
        self.watching = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            # The informer has listed and its watch is open: later changes are events.
            if "watch=true" in line and " 200 OK" in line:
                self.watching.set()

    def wait_until_watching(self, timeout: float = 20) -> None:
        assert self.watching.wait(timeout), "".join(self.stderr)

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        """Exit code, stdout, and the stderr lines that are not request logs."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            raise AssertionError(f"kubectl did not finish:\n{out}") from None
        self._reader.join(5)
        errors = "".join(ln for ln in self.stderr if not ln.startswith("I"))
        return self.proc.returncode, out, errors


# -- diff -------------------------------------------------------------------------------------


def configmap(ns: str, value: str) -> str:
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: differ\n  namespace: {ns}\n"
            f"data:\n  colour: {value}\n  size: large\n")


def test_diff_shows_changes_and_exit_codes(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-f", "-", input=configmap(ns, "blue"))
    same = kubectl.run("diff", "-f", "-", input=configmap(ns, "blue"), check=False)
    assert (same.returncode, same.stdout, same.stderr) == (0, "", "")

    changed = kubectl.run("diff", "-f", "-", input=configmap(ns, "green"), check=False)
    assert changed.returncode == 1, changed.stderr
    lines = changed.stdout.splitlines()
    assert "-  colour: blue" in lines
    assert "+  colour: green" in lines
    assert "   size: large" in lines
    header = [ln for ln in lines if ln.startswith(("---", "+++"))]
    assert len(header) == 2 and all(f"v1.ConfigMap.{ns}.differ" in ln for ln in header)
    # diff is a dry run: nothing changed on the server.
    assert kubectl("-n", ns, "get", "cm", "differ", "-o", "jsonpath={.data.colour}") == "blue"


def test_diff_of_new_object(kubectl: Kubectl, ns: str) -> None:
    text = configmap(ns, "red").replace("name: differ", "name: not-yet")
    res = kubectl.run("diff", "-f", "-", input=text, check=False)
    assert res.returncode == 1, res.stderr
    assert "+  colour: red" in res.stdout.splitlines()
    assert kubectl.run("-n", ns, "get", "cm", "not-yet", check=False).returncode == 1


def test_diff_reports_server_errors(kubectl: Kubectl, ns: str) -> None:
    bad = configmap(ns, "x").replace("name: differ", "name: Not_Valid")
    res = kubectl.run("diff", "-f", "-", input=bad, check=False)
    # Exit codes above 1 mean kubectl (or the server) failed rather than found changes.
    assert res.returncode > 1
    assert 'The ConfigMap "Not_Valid" is invalid: metadata.name: Invalid value: "Not_Valid"' \
        in res.stderr


# -- wait ---------------------------------------------------------------------------------------


def test_wait_for_condition_set_through_status(kubectl: Kubectl, ns: str, gizmos: str) -> None:
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "wait.e2e.skiff.dev/v1", "kind": "Gizmo",
        "metadata": {"name": "g1", "namespace": ns}, "spec": {}}))
    proc = Background(kubectl, "-n", ns, "wait", "gizmo/g1", "--for=condition=Ready",
                 "--timeout=30s")
    try:
        proc.wait_until_watching()
        kubectl("-n", ns, "patch", "gizmo", "g1", "--subresource=status", "--type=merge",
                "-p", '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}')
    finally:
        rc, out, err = proc.finish()
    assert (rc, out) == (0, "gizmo.wait.e2e.skiff.dev/g1 condition met\n"), err
    # A condition already met is reported at once; a value other than True is matched too.
    assert kubectl("-n", ns, "wait", "gizmo/g1", "--for=condition=Ready=True") == (
        "gizmo.wait.e2e.skiff.dev/g1 condition met\n")
    kubectl("-n", ns, "patch", "gizmo", "g1", "--subresource=status", "--type=merge",
            "-p", '{"status":{"conditions":[{"type":"Ready","status":"False"}]}}')
    assert kubectl("-n", ns, "wait", "gizmo/g1", "--for=condition=Ready=false") == (
        "gizmo.wait.e2e.skiff.dev/g1 condition met\n")


def test_wait_times_out(kubectl: Kubectl, ns: str, gizmos: str) -> None:
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "wait.e2e.skiff.dev/v1", "kind": "Gizmo",
        "metadata": {"name": "g2", "namespace": ns}, "spec": {}}))
    res = kubectl.run("-n", ns, "wait", "gizmo/g2", "--for=condition=Ready", "--timeout=1s",
                      check=False)
    assert res.returncode == 1
    assert res.stderr == "error: timed out waiting for the condition on gizmos/g2\n"


def test_wait_for_namespace_phase(kubectl: Kubectl, ns: str) -> None:
    assert kubectl("wait", f"namespace/{ns}", "--for=jsonpath={.status.phase}=Active",
                   "--timeout=10s") == f"namespace/{ns} condition met\n"


def test_wait_for_jsonpath_change(kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "configmap", "flag", "--from-literal=state=off")
    proc = Background(kubectl, "-n", ns, "wait", "cm/flag", "--for=jsonpath={.data.state}=on",
                 "--timeout=30s")
    try:
        proc.wait_until_watching()
        kubectl("-n", ns, "patch", "cm", "flag", "--type=merge", "-p", '{"data":{"state":"on"}}')
    finally:
        rc, out, err = proc.finish()
    assert (rc, out) == (0, "configmap/flag condition met\n"), err


def test_wait_for_delete(kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "configmap", "doomed")
    proc = Background(kubectl, "-n", ns, "wait", "cm/doomed", "--for=delete", "--timeout=30s")
    try:
        proc.wait_until_watching()
        kubectl("-n", ns, "delete", "cm", "doomed")
    finally:
        rc, out, err = proc.finish()
    assert (rc, out) == (0, "configmap/doomed condition met\n"), err


def test_wait_for_delete_of_missing_object(kubectl: Kubectl, ns: str) -> None:
    # Nothing to wait for: an object that is already gone satisfies --for=delete.
    res = kubectl.run("-n", ns, "wait", "cm/never-was", "--for=delete", "--timeout=5s")
    assert res.returncode == 0, res.stderr


def test_wait_for_label_selected_objects(kubectl: Kubectl, ns: str) -> None:
    for name in ("sel-1", "sel-2"):
        kubectl("-n", ns, "create", "configmap", name, "--from-literal=ok=yes")
        kubectl("-n", ns, "label", "cm", name, "waitgroup=a")
    out = kubectl("-n", ns, "wait", "cm", "-l", "waitgroup=a",
                  "--for=jsonpath={.data.ok}=yes", "--timeout=10s")
    assert sorted(out.splitlines()) == ["configmap/sel-1 condition met",
                                        "configmap/sel-2 condition met"]

"""The first things a user does with a new cluster."""

from __future__ import annotations

from tests.e2e.conftest import Kubectl


def test_namespaces_and_version(kubectl: Kubectl) -> None:
    out = kubectl("get", "namespaces")
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert ns in out
    assert "Server Version: v1.32" in kubectl("version")


def test_create_get_delete_configmap(kubectl: Kubectl) -> None:
    kubectl("create", "configmap", "smoke", "--from-literal=a=b")
    assert kubectl("get", "cm", "smoke", "-o", "jsonpath={.data.a}") == "b"
    kubectl("delete", "cm", "smoke")
    res = kubectl.run("get", "cm", "smoke", check=False)
    assert res.returncode != 0
    assert 'configmaps "smoke" not found' in res.stderr

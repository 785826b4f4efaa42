"""Service account tokens end to end, with the real kubectl and a real node agent.

`kubectl create token` gets a signed token that kubectl can then log in with; pods
get the default `kube-api-access-*` volume (token, ca.crt, namespace) and projected
tokens with their own audience and path; a pod's token names the pod and stops
working when the pod is deleted.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Cluster, Kubectl, new_kubectl, start_cluster
from tests.e2e.test_node_agent import wait_for

pytestmark = pytest.mark.skipif(
    subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0",
    reason="the process runtime needs root")

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
ISSUER = "https://kubernetes.default.svc.cluster.local"


@pytest.fixture(scope="module")
def token_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster with one node agent (process runtime)."""
    data = tmp_path_factory.mktemp("skiff-tokens")
    c = start_cluster(data, None, "--nodes", "1")
    yield c
    c.stop()


@pytest.fixture(scope="module")
def kubectl(token_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """kubectl bound to the cluster, once its node is Ready."""
    k = new_kubectl(token_cluster, tmp_path_factory)
    wait_for(lambda: " Ready " in k("get", "nodes", "--no-headers"))
    return k


@pytest.fixture
def ns(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace with its default service account, deleted afterwards."""
    name = f"tok-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    wait_for(lambda: kubectl.run("get", "sa", "default", "-n", name, check=False).returncode
             == 0)
    yield name
    kubectl.run("delete", "pods", "--all", "-n", name, "--grace-period=0", "--force",
                "--wait=false", check=False)
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def claims_of(token: str) -> dict[str, Any]:
    """The (unverified) payload of a JWT."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def as_token(kubectl: Kubectl, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run kubectl with only `token` as credentials (no client certificate)."""
    cluster = kubectl.cluster
    return kubectl.run("--kubeconfig", "/dev/null", "--server", cluster.url,
                       "--certificate-authority", str(cluster.data_dir / "pki" / "ca.crt"),
                       "--token", token, *args, check=False)


def whoami(kubectl: Kubectl, token: str) -> dict[str, Any]:
    """The SelfSubjectReview's user info for `token` (fails the test if refused)."""
    proc = as_token(kubectl, token, "auth", "whoami", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["status"]["userInfo"]


def test_create_token_and_log_in_with_it(kubectl: Kubectl, ns: str) -> None:
    token = kubectl("create", "token", "default", "-n", ns).strip()
    claims = claims_of(token)
    assert claims["sub"] == f"system:serviceaccount:{ns}:default"
    assert claims["iss"] == ISSUER and claims["aud"] == [ISSUER]
    assert claims["exp"] - claims["iat"] == 3600
    sa_uid = kubectl("get", "sa", "default", "-n", ns, "-o", "jsonpath={.metadata.uid}")
    assert claims["kubernetes.io"] == {"namespace": ns,
                                       "serviceaccount": {"name": "default", "uid": sa_uid}}
    proc = as_token(kubectl, token, "get", "pods", "-n", ns)
    assert proc.returncode == 0, proc.stderr
    assert "No resources found" in proc.stderr
    user = whoami(kubectl, token)
    assert user["username"] == f"system:serviceaccount:{ns}:default"
    assert user["uid"] == sa_uid
    assert user["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{ns}",
                              "system:authenticated"]


def test_duration_audience_and_bad_input(kubectl: Kubectl, ns: str) -> None:
    token = kubectl("create", "token", "default", "-n", ns, "--duration", "2h",
                    "--audience", "vault").strip()
    claims = claims_of(token)
    assert claims["aud"] == ["vault"] and claims["exp"] - claims["iat"] == 7200
    # Meant for another audience: the API server does not accept it.
    assert "Unauthorized" in as_token(kubectl, token, "get", "pods", "-n", ns).stderr
    short = kubectl.run("create", "token", "default", "-n", ns, "--duration", "5m",
                        check=False)
    assert short.returncode != 0
    assert "spec.expirationSeconds: Invalid value: 300: may not specify a duration less " \
           "than 10 minutes" in short.stderr
    missing = kubectl.run("create", "token", "nobody", "-n", ns, check=False)
    assert missing.returncode != 0
    assert 'serviceaccounts "nobody" not found' in missing.stderr
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert "Unauthorized" in as_token(kubectl, tampered, "get", "pods").stderr


def test_deleting_the_service_account_revokes_its_tokens(kubectl: Kubectl, ns: str) -> None:
    kubectl("create", "serviceaccount", "robot", "-n", ns)
    token = kubectl("create", "token", "robot", "-n", ns).strip()
    assert whoami(kubectl, token)["username"] == f"system:serviceaccount:{ns}:robot"
    kubectl("delete", "serviceaccount", "robot", "-n", ns)
    assert "Unauthorized" in as_token(kubectl, token, "get", "pods", "-n", ns).stderr


def _pod(name: str, ns: str, script: str, **spec: Any) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": ns},
                       "spec": {"nodeName": "node-1", "restartPolicy": "Never",
                                "terminationGracePeriodSeconds": 1,
                                "containers": [{"name": "c", "image": "busybox",
                                                "command": ["sh", "-c", script]}], **spec}})


def _running(kubectl: Kubectl, ns: str, name: str) -> bool:
    return kubectl("get", "pod", name, "-n", ns, "-o",
                   "jsonpath={.status.phase}") == "Running"


def test_default_service_account_mount(kubectl: Kubectl, ns: str,
                                       token_cluster: Cluster) -> None:
    kubectl("apply", "-f", "-", input=_pod("reader", ns, "sleep 600"))
    spec = json.loads(kubectl("get", "pod", "reader", "-n", ns, "-o", "json"))["spec"]
    volume = next(v for v in spec["volumes"] if v["name"].startswith("kube-api-access-"))
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": volume["name"], "readOnly": True, "mountPath": SA_DIR}]
    wait_for(lambda: _running(kubectl, ns, "reader"))
    namespace = kubectl("exec", "reader", "-n", ns, "--", "cat", f"{SA_DIR}/namespace")
    assert namespace == ns
    ca = kubectl("exec", "reader", "-n", ns, "--", "cat", f"{SA_DIR}/ca.crt")
    assert ca == (token_cluster.data_dir / "pki" / "ca.crt").read_text()
    token = kubectl("exec", "reader", "-n", ns, "--", "cat", f"{SA_DIR}/token")
    user = whoami(kubectl, token)
    pod_uid = kubectl("get", "pod", "reader", "-n", ns, "-o", "jsonpath={.metadata.uid}")
    assert user["username"] == f"system:serviceaccount:{ns}:default"
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["reader"]
    assert user["extra"]["authentication.kubernetes.io/pod-uid"] == [pod_uid]
    assert user["extra"]["authentication.kubernetes.io/node-name"] == ["node-1"]
    claims = claims_of(token)
    assert claims["exp"] - claims["iat"] == 3607
    # The token works as long as its pod does.
    kubectl("delete", "pod", "reader", "-n", ns, "--grace-period=0", "--force")
    assert "Unauthorized" in as_token(kubectl, token, "get", "pods", "-n", ns).stderr


def test_pod_uses_its_projected_token(kubectl: Kubectl, ns: str) -> None:
    """A container reads its projected token and calls the API with it (from inside)."""
    script = (f"cat /tokens/api-token > /tmp/seen; "
              f"kubectl --kubeconfig /dev/null --server {kubectl.cluster.url} "
              f"--certificate-authority {SA_DIR}/ca.crt --token \"$(cat /tokens/api-token)\" "
              f"get pod me -o 'jsonpath={{.metadata.name}}' ; echo; sleep 600")
    volumes = [{"name": "tokens", "projected": {"sources": [
        {"serviceAccountToken": {"path": "api-token", "expirationSeconds": 1200}},
        {"serviceAccountToken": {"path": "vault-token", "audience": "vault",
                                 "expirationSeconds": 7200}}]}}]
    pod = json.loads(_pod("me", ns, script, volumes=volumes))
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "tokens", "mountPath": "/tokens"}]
    pod["spec"]["containers"][0]["env"] = [{"name": "HOME", "value": "/tmp"}]
    kubectl("apply", "-f", "-", input=json.dumps(pod))
    wait_for(lambda: _running(kubectl, ns, "me"))
    wait_for(lambda: "me" in kubectl("logs", "me", "-n", ns))
    api = kubectl("exec", "me", "-n", ns, "--", "cat", "/tokens/api-token")
    claims = claims_of(api)
    assert claims["aud"] == [ISSUER] and claims["exp"] - claims["iat"] == 1200
    assert claims["kubernetes.io"]["pod"]["name"] == "me"
    assert whoami(kubectl, api)["extra"]["authentication.kubernetes.io/pod-name"] == ["me"]
    vault = kubectl("exec", "me", "-n", ns, "--", "cat", "/tokens/vault-token")
    assert claims_of(vault)["aud"] == ["vault"]
    # The agent requested each token once and reuses it until it is due for refresh.
    time_later = kubectl("exec", "me", "-n", ns, "--", "cat", "/tokens/api-token")
    assert time_later == api


def test_automount_false_means_no_credentials(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-f", "-", input=_pod("plain", ns, "sleep 600",
                                           automountServiceAccountToken=False))
    spec = json.loads(kubectl("get", "pod", "plain", "-n", ns, "-o", "json"))["spec"]
    assert not spec.get("volumes")
    assert "volumeMounts" not in spec["containers"][0]
    kubectl("create", "serviceaccount", "quiet", "-n", ns)
    kubectl("patch", "serviceaccount", "quiet", "-n", ns, "-p",
            '{"automountServiceAccountToken": false}')
    kubectl("apply", "-f", "-", input=_pod("quiet", ns, "sleep 600",
                                           serviceAccountName="quiet"))
    spec = json.loads(kubectl("get", "pod", "quiet", "-n", ns, "-o", "json"))["spec"]
    assert not spec.get("volumes")


def test_a_pod_naming_a_missing_account_is_refused(kubectl: Kubectl, ns: str) -> None:
    for extra in ({}, {"automountServiceAccountToken": False}):
        res = kubectl.run("apply", "-f", "-", check=False,
                          input=_pod("ghostly", ns, "sleep 600", serviceAccountName="ghost",
                                     **extra))
        assert res.returncode != 0
        assert ('Error from server (Forbidden): error when creating "STDIN": pods "ghostly" is '
                f'forbidden: error looking up service account {ns}/ghost: serviceaccount '
                '"ghost" not found') in res.stderr
    # A pod sent right after its namespace, before anyone could see `default`, gets in.
    fresh = f"tok-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", fresh)
    try:
        kubectl("apply", "-f", "-", input=_pod("early", fresh, "sleep 1",
                                               automountServiceAccountToken=False))
    finally:
        kubectl.run("delete", "namespace", fresh, "--wait=false", check=False)


def test_root_ca_configmap_in_every_namespace(kubectl: Kubectl, ns: str,
                                              token_cluster: Cluster) -> None:
    ca = (token_cluster.data_dir / "pki" / "ca.crt").read_text()

    def published() -> bool:
        proc = kubectl.run("get", "configmap", "kube-root-ca.crt", "-n", ns, "-o",
                           "jsonpath={.data.ca\\.crt}", check=False)
        return proc.returncode == 0 and proc.stdout == ca

    wait_for(published)
    kubectl("delete", "configmap", "kube-root-ca.crt", "-n", ns)
    wait_for(published)

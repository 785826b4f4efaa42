"""Discovery through kubectl: api-resources, api-versions, explain, version, cluster-info."""

from __future__ import annotations

import json

from tests.e2e.conftest import Cluster, Kubectl


def rows(table: str) -> dict[str, list[str]]:
    """A whitespace-separated kubectl table keyed by `NAME APIVERSION` (names repeat)."""
    lines = table.splitlines()
    header = lines[0].split()
    out: dict[str, list[str]] = {}
    for line in lines[1:]:
        cells = line.split()
        if "SHORTNAMES" in header and len(cells) == len(header) - 1:
            cells.insert(1, "")  # no short names
        out[f"{cells[0]} {cells[header.index('APIVERSION')]}"] = cells
    return out


def test_api_resources(kubectl: Kubectl) -> None:
    out = kubectl("api-resources")
    assert out.splitlines()[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED",
                                           "KIND"]
    table = rows(out)
    assert table["pods v1"] == ["pods", "po", "v1", "true", "Pod"]
    assert table["deployments apps/v1"] == ["deployments", "deploy", "apps/v1", "true",
                                            "Deployment"]
    assert table["namespaces v1"] == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert table["customresourcedefinitions apiextensions.k8s.io/v1"] == [
        "customresourcedefinitions", "crd,crds", "apiextensions.k8s.io/v1", "false",
        "CustomResourceDefinition"]
    assert table["configmaps v1"][:2] == ["configmaps", "cm"]
    # Subresources are not resources of their own here.
    assert not any("/" in key.split()[0] for key in table)


def test_api_resources_wide_shows_verbs_and_categories(kubectl: Kubectl) -> None:
    table = rows(kubectl("api-resources", "-o", "wide"))
    verbs = "create,delete,deletecollection,get,list,patch,update,watch"
    assert table["pods v1"] == ["pods", "po", "v1", "true", "Pod", verbs, "all"]
    assert table["deployments apps/v1"] == ["deployments", "deploy", "apps/v1", "true",
                                            "Deployment", verbs, "all"]


def test_api_resources_filters(kubectl: Kubectl) -> None:
    cluster_scoped = rows(kubectl("api-resources", "--namespaced=false"))
    names = {key.split()[0] for key in cluster_scoped}
    assert {"namespaces", "nodes", "customresourcedefinitions"} <= names
    assert not {"pods", "configmaps", "deployments"} & names
    assert all(cells[3] == "false" for cells in cluster_scoped.values())

    apps = kubectl("api-resources", "--api-group=apps", "-o", "name").split()
    assert "deployments.apps" in apps and "replicasets.apps" in apps
    assert all(name.endswith(".apps") for name in apps)

    core = kubectl("api-resources", "--api-group=", "-o", "name").split()
    assert "pods" in core and "configmaps" in core and "deployments.apps" not in core


def test_api_versions(kubectl: Kubectl) -> None:
    versions = kubectl("api-versions").splitlines()
    assert {"v1", "apps/v1", "batch/v1", "apiextensions.k8s.io/v1"} <= set(versions)
    assert versions == sorted(versions)


def test_explain_pod_containers(kubectl: Kubectl) -> None:
    out = kubectl("explain", "pods.spec.containers")
    lines = out.splitlines()
    assert lines[:2] == ["KIND:       Pod", "VERSION:    v1"]
    assert "FIELD: containers <[]Container>" in lines
    text = " ".join(out.split())
    assert ("List of containers belonging to the pod. Containers cannot currently be added "
            "or removed. There must be at least one container in a Pod. Cannot be updated."
            ) in text
    assert "A single application container that you want to run within a pod." in text
    for field in ("image\t<string>", "name\t<string> -required-", "env\t<[]EnvVar>",
                  "ports\t<[]ContainerPort>"):
        assert f"  {field}" in lines, field


def test_explain_deployment_strategy(kubectl: Kubectl) -> None:
    out = kubectl("explain", "deployment.spec.strategy")
    lines = out.splitlines()
    assert lines[:3] == ["GROUP:      apps", "KIND:       Deployment", "VERSION:    v1"]
    assert "FIELD: strategy <DeploymentStrategy>" in lines
    text = " ".join(out.split())
    assert "DeploymentStrategy describes how to replace existing pods with new ones." in text
    assert ('Type of deployment. Can be "Recreate" or "RollingUpdate". Default is '
            "RollingUpdate.") in text
    assert "  rollingUpdate\t<RollingUpdateDeployment>" in lines


def test_explain_shows_descriptions_of_referencing_fields(kubectl: Kubectl) -> None:
    text = " ".join(kubectl("explain", "deployment.spec.strategy").split())
    assert "The deployment strategy to use to replace existing pods with new ones." in text
    assert "Rolling update config params. Present only if DeploymentStrategyType =" in text


def test_explain_unknown_field(kubectl: Kubectl) -> None:
    res = kubectl.run("explain", "pods.spec.nonsense", check=False)
    assert res.returncode == 1
    assert res.stderr == 'error: field "nonsense" does not exist\n'


def test_explain_recursive(kubectl: Kubectl) -> None:
    lines = kubectl("explain", "deployment.spec.strategy", "--recursive").splitlines()
    assert "  rollingUpdate\t<RollingUpdateDeployment>" in lines
    assert "    maxSurge\t<IntOrString>" in lines
    assert "    maxUnavailable\t<IntOrString>" in lines


def test_version(kubectl: Kubectl) -> None:
    lines = kubectl("version").splitlines()
    server = [ln for ln in lines if ln.startswith("Server Version: ")]
    assert len(server) == 1 and server[0].startswith("Server Version: v1.32.")
    info = json.loads(kubectl("version", "-o", "json"))["serverVersion"]
    assert info["major"] == "1" and info["minor"] == "32"
    assert info["gitVersion"].startswith("v1.32.")
    assert info["platform"] and info["goVersion"].startswith("go")


def test_cluster_info(kubectl: Kubectl, cluster: Cluster) -> None:
    out = kubectl("cluster-info")
    assert out.splitlines()[0] == f"Kubernetes control plane is running at {cluster.url}"
    assert "To further debug and diagnose cluster problems, use 'kubectl cluster-info dump'." \
        in out


def test_raw_discovery_documents(kubectl: Kubectl) -> None:
    api = json.loads(kubectl("get", "--raw", "/api"))
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    apps = json.loads(kubectl("get", "--raw", "/apis/apps/v1"))
    assert apps["kind"] == "APIResourceList" and apps["groupVersion"] == "apps/v1"
    deploy = {r["name"]: r for r in apps["resources"]}
    assert deploy["deployments"]["kind"] == "Deployment"
    assert deploy["deployments"]["namespaced"] is True
    assert deploy["deployments/scale"]["kind"] == "Scale"
    assert deploy["deployments/scale"]["group"] == "autoscaling"
    assert deploy["deployments/status"]["kind"] == "Deployment"

"""Defaulting of built-in kinds: what a real cluster fills in before storing."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from skiff.api.builtin_kinds import BUILTIN
from skiff.api.defaults import apply_defaults
from skiff.api.defaults.pod import image_pull_policy, qos_class

RT = {rt.key: rt for rt in BUILTIN}


def defaulted(key: str, obj: dict[str, Any]) -> dict[str, Any]:
    apply_defaults(RT[key], obj)
    return obj


def test_pod_defaults() -> None:
    obj = defaulted("core/pods", {"metadata": {"name": "p"}, "spec": {"containers": [{
        "name": "c", "image": "nginx",
        "ports": [{"containerPort": 80}],
        "livenessProbe": {"httpGet": {"port": 80}},
        "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    }], "volumes": [{"name": "s", "secret": {"secretName": "x"}}, {"name": "e"}]}})
    spec = obj["spec"]
    assert {k: spec[k] for k in ("restartPolicy", "dnsPolicy", "schedulerName",
                                 "terminationGracePeriodSeconds", "securityContext",
                                 "enableServiceLinks")} == {
        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler", "terminationGracePeriodSeconds": 30,
        "securityContext": {}, "enableServiceLinks": True}
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "Always"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                                  "timeoutSeconds": 1, "periodSeconds": 10,
                                  "successThreshold": 1, "failureThreshold": 3}
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert spec["volumes"][0]["secret"]["defaultMode"] == 420
    assert spec["volumes"][1] == {"name": "e", "emptyDir": {}}
    assert obj["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert "serviceAccountName" not in spec  # admission's job, not defaulting's


def test_user_values_win() -> None:
    obj = defaulted("core/pods", {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "c", "image": "nginx", "imagePullPolicy": "Never"}]}})
    assert obj["spec"]["restartPolicy"] == "Never"
    assert obj["spec"]["containers"][0]["imagePullPolicy"] == "Never"


@pytest.mark.parametrize(
    ("image", "policy"),
    [("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
     ("localhost:5000/app", "Always"), ("localhost:5000/app:v1", "IfNotPresent"),
     ("nginx@sha256:abcd", "IfNotPresent")],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


def test_limits_become_requests_and_qos() -> None:
    obj = defaulted("core/pods", {"spec": {"containers": [{"name": "c", "image": "x:1",
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}})
    assert obj["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert obj["status"]["qosClass"] == "Guaranteed"
    burst = {"containers": [{"resources": {"requests": {"cpu": "100m"}}}]}
    assert qos_class(burst) == "Burstable"


def test_host_network_copies_host_ports() -> None:
    obj = defaulted("core/pods", {"spec": {"hostNetwork": True, "containers": [
        {"name": "c", "image": "x", "ports": [{"containerPort": 8080}]}]}})
    assert obj["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080


def test_deployment_defaults() -> None:
    obj = defaulted("apps/deployments", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "x:1"}]}}}})
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    # Upstream's status is a struct: an empty one, never absent.
    assert obj["status"] == {}


def test_recreate_strategy_gets_no_rolling_update() -> None:
    obj = defaulted("apps/deployments", {"spec": {"strategy": {"type": "Recreate"}}})
    assert obj["spec"]["strategy"] == {"type": "Recreate"}


def test_statefulset_and_daemonset_defaults() -> None:
    sts = defaulted("apps/statefulsets", {"spec": {"volumeClaimTemplates": [{"spec": {}}]}})["spec"]
    assert sts["podManagementPolicy"] == "OrderedReady"
    assert sts["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert sts["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain",
                                                           "whenScaled": "Retain"}
    assert sts["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"
    ds = defaulted("apps/daemonsets", {"spec": {}})["spec"]
    assert ds["updateStrategy"] == {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["revisionHistoryLimit"] == 10
    assert defaulted("apps/replicasets", {"spec": {}})["spec"]["replicas"] == 1


def test_job_defaults_and_generated_selector() -> None:
    obj = defaulted("batch/jobs", {"metadata": {"name": "pi", "uid": "u1"},
                                   "spec": {"template": {"spec": {"containers": []}}}})
    spec = obj["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}
    assert spec["template"]["metadata"]["labels"]["job-name"] == "pi"
    work_queue = defaulted("batch/jobs", {"spec": {"parallelism": 3}})["spec"]
    assert "completions" not in work_queue
    manual = defaulted("batch/jobs", {"metadata": {"uid": "u"},
                                      "spec": {"manualSelector": True}})["spec"]
    assert "selector" not in manual


def test_cronjob_defaults() -> None:
    spec = defaulted("batch/cronjobs", {"spec": {"jobTemplate": {"spec": {"template": {
        "spec": {"containers": [{"name": "c", "image": "x"}]}}}}}})["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
            spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
    job_spec = spec["jobTemplate"]["spec"]
    assert job_spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert "backoffLimit" not in job_spec  # job defaults apply when the Job is created


def test_service_defaults() -> None:
    spec = defaulted("core/services", {"spec": {"ports": [{"port": 80}]}})["spec"]
    assert spec == {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                    "type": "ClusterIP", "sessionAffinity": "None",
                    "internalTrafficPolicy": "Cluster", "ipFamilyPolicy": "SingleStack",
                    "ipFamilies": ["IPv4"]}
    lb = defaulted("core/services", {"spec": {"type": "LoadBalancer",
                                              "sessionAffinity": "ClientIP"}})["spec"]
    assert lb["externalTrafficPolicy"] == "Cluster"
    assert lb["allocateLoadBalancerNodePorts"] is True
    assert lb["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    ext = defaulted("core/services", {"spec": {"type": "ExternalName",
                                               "externalName": "a.b"}})["spec"]
    assert "ipFamilies" not in ext and "externalTrafficPolicy" not in ext


def test_secret_namespace_node_endpoints_crd() -> None:
    secret = defaulted("core/secrets", {"stringData": {"pw": "hunter2"}, "data": {"a": "YQ=="}})
    assert secret["type"] == "Opaque"
    assert "stringData" not in secret
    assert base64.b64decode(secret["data"]["pw"]) == b"hunter2"
    ns = defaulted("core/namespaces", {"metadata": {"name": "x"}})
    assert "finalizers" not in (ns.get("spec") or {})  # set at creation, not defaulted
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "x"}
    node = defaulted("core/nodes", {"status": {"capacity": {"cpu": "4"}}})
    assert node["status"]["allocatable"] == {"cpu": "4"}
    ep = defaulted("core/endpoints", {"subsets": [{"ports": [{"port": 80}]}]})
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    crd = defaulted("apiextensions.k8s.io/customresourcedefinitions", {"spec": {
        "names": {"kind": "Widget", "plural": "widgets"},
        "versions": [{"name": "v1", "storage": True}]}})
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    assert crd["spec"]["names"]["singular"] == "widget"
    assert crd["spec"]["names"]["listKind"] == "WidgetList"
    assert crd["status"]["storedVersions"] == ["v1"]


@pytest.mark.parametrize("key", sorted(RT))
@pytest.mark.parametrize("garbage", ["x", 3, [1], {"containers": "x", "ports": 5,
                                                   "template": [], "strategy": "y"}])
def test_garbage_never_crashes(key: str, garbage: Any) -> None:
    obj = {"metadata": garbage, "spec": garbage, "status": garbage, "data": garbage,
           "subsets": garbage, "stringData": garbage}
    apply_defaults(RT[key], obj)

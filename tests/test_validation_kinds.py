"""Validation of built-in kinds: exact causes as kubectl prints them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skiff.api import errors
from skiff.api.builtin_kinds import BUILTIN
from skiff.api.defaults import apply_defaults
from skiff.api.validation import validate

RT = {rt.key: rt for rt in BUILTIN}


def pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx:1.25"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"}, "spec": base}


def deployment(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
    }
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "default"}, "spec": base}


def service(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "default"}, "spec": base}


def job(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}
    base.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "j", "namespace": "default", "uid": "u-1"}, "spec": base}


def cronjob(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": job()["spec"]}}
    base.update(spec)
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "cj", "namespace": "default"}, "spec": base}


def crd(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object"}}}],
    }
    base.update(spec)
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"}, "spec": base}


def check(key: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    rt = RT[key]
    obj = copy.deepcopy(obj)
    apply_defaults(rt, obj)
    return [errors.cause_text(c) for c in validate(rt, obj, old)]


VALID = [
    ("core/pods", pod()),
    ("core/pods", pod(volumes=[{"name": "data", "emptyDir": {}}],
                      containers=[{"name": "c", "image": "nginx",
                                   "ports": [{"containerPort": 80, "name": "http"}],
                                   "env": [{"name": "A", "value": "1"},
                                           {"name": "B", "valueFrom": {
                                               "fieldRef": {"fieldPath": "metadata.name"}}}],
                                   "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                                 "limits": {"cpu": 1, "memory": "1Gi"}},
                                   "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                   "livenessProbe": {"httpGet": {"port": "http"}}}])),
    ("apps/deployments", deployment()),
    ("apps/replicasets", {**deployment(), "kind": "ReplicaSet"}),
    ("apps/statefulsets", {**deployment(serviceName="s"), "kind": "StatefulSet"}),
    ("apps/daemonsets", {**deployment(), "kind": "DaemonSet"}),
    ("core/services", service()),
    ("core/services", service(type="NodePort", ports=[
        {"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 443}])),
    ("batch/jobs", job()),
    ("batch/cronjobs", cronjob(timeZone="Europe/Berlin")),
    ("batch/cronjobs", cronjob(schedule="@hourly")),
    ("core/configmaps", {"metadata": {"name": "cm", "namespace": "d"},
                         "data": {"a.txt": "x", "B_2": "y"}}),
    ("core/secrets", {"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls",
                      "data": {"tls.crt": "YQ==", "tls.key": "Yg=="}}),
    ("core/secrets", {"metadata": {"name": "s", "namespace": "d"}, "stringData": {"k": "v"}}),
    ("core/namespaces", {"metadata": {"name": "team-a"}}),
    ("coordination.k8s.io/leases", {"metadata": {"name": "l", "namespace": "d"},
                                    "spec": {"leaseDurationSeconds": 15}}),
    ("apiextensions.k8s.io/customresourcedefinitions", crd()),
    ("core/serviceaccounts", {"metadata": {"name": "sa", "namespace": "d"}}),
]


@pytest.mark.parametrize(("key", "obj"), VALID)
def test_valid_objects_pass(key: str, obj: dict[str, Any]) -> None:
    assert check(key, obj) == []


LONG = "a" * 254
INVALID = [
    # The messages kubectl users see most.
    ("core/pods", pod(containers=[]), ["spec.containers: Required value"]),
    ("core/pods", {**pod(), "metadata": {"name": "p", "namespace": "default",
                                        "labels": {"app": "not valid!"}}},
     ['metadata.labels: Invalid value: "not valid!": a valid label must be an empty string or '
      "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
      "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
      "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
    ("core/pods", {**pod(), "metadata": {"name": LONG, "namespace": "default"}},
     [f'metadata.name: Invalid value: "{LONG}": must be no more than 253 characters']),
    ("core/pods", pod(containers=[{"name": "c", "image": "x",
                                   "ports": [{"containerPort": 70000}]}]),
     ["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and "
      "65535, inclusive"]),
    ("core/pods", pod(containers=[{"name": "c"}]), ["spec.containers[0].image: Required value"]),
    ("core/pods", pod(containers=[{"name": "x", "image": "a"}, {"name": "x", "image": "b"}]),
     ['spec.containers[1].name: Duplicate value: "x"']),
    ("core/pods", pod(restartPolicy="Sometimes"),
     ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
      '"OnFailure", "Never"']),
    ("core/pods", pod(containers="nginx"),
     ['spec.containers: Invalid value: "string": must be of type array']),
    ("core/pods", pod(containers=[{"name": "Bad_Name", "image": "x"}]),
     ['spec.containers[0].name: Invalid value: "Bad_Name": a lowercase RFC 1123 label must '
      "consist of lower case alphanumeric characters or '-', and must start and end with an "
      "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
      "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]),
    ("core/pods", pod(containers=[{"name": "c", "image": "x", "resources": {
        "requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]),
     ['spec.containers[0].resources.requests[cpu]: Invalid value: "2": must be less than or '
      "equal to cpu limit of 1"]),
    ("core/pods", pod(containers=[{"name": "c", "image": "x", "resources": {
        "limits": {"memory": "lots"}}}]),
     ['spec.containers[0].resources.limits[memory]: Invalid value: "lots": quantities must '
      "match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
      'spec.containers[0].resources.requests[memory]: Invalid value: "lots": quantities must '
      "match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"]),
    ("core/pods", pod(containers=[{"name": "c", "image": "x", "env": [{"name": "1BAD"}]}]),
     ['spec.containers[0].env[0].name: Invalid value: "1BAD": a valid environment variable '
      "name must consist of alphabetic characters, digits, '_', '-', or '.', and must not "
      "start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex "
      "used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"]),
    ("core/pods", pod(volumes=[{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]),
     ['spec.volumes[1].name: Duplicate value: "v"']),
    ("core/pods", pod(volumes=[{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]),
     ["spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type"]),
    ("core/pods", pod(containers=[{"name": "c", "image": "x",
                                   "volumeMounts": [{"name": "nope", "mountPath": "/a"}]}]),
     ['spec.containers[0].volumeMounts[0].name: Not found: "nope"']),
    ("core/pods", pod(containers=[{"name": "c", "image": "x", "livenessProbe": {
        "successThreshold": 2, "exec": {"command": ["true"]}}}]),
     ["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]),
    ("core/pods", pod(containers=[{"name": "c", "image": "x", "readinessProbe": {}}]),
     ["spec.containers[0].readinessProbe: Required value: must specify a handler type"]),
    ("apps/deployments", deployment(selector={"matchLabels": {"app": "other"}}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
      "`selector` does not match template `labels`"]),
    ("apps/deployments", deployment(selector=None), ["spec.selector: Required value"]),
    ("apps/deployments", deployment(replicas=-1),
     ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    ("apps/deployments", deployment(strategy={"type": "Sideways"}),
     ['spec.strategy.type: Unsupported value: "Sideways": supported values: "Recreate", '
      '"RollingUpdate"']),
    ("apps/deployments", deployment(strategy={"rollingUpdate": {"maxSurge": 0,
                                                                "maxUnavailable": 0}}),
     ["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when "
      "`maxSurge` is 0"]),
    ("apps/deployments", deployment(template={"metadata": {"labels": {"app": "web"}},
                                              "spec": {"restartPolicy": "Never", "containers": [
                                                  {"name": "c", "image": "x"}]}}),
     ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
      '"Always"']),
    ("core/services", service(ports=[{"port": 80}, {"port": 81}]),
     ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]),
    ("core/services", service(ports=[{"name": "a", "port": 80}, {"name": "a", "port": 81}]),
     ['spec.ports[1].name: Duplicate value: "a"']),
    ("core/services", service(ports=[{"port": 0}]),
     ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
      # targetPort defaults to port, so upstream reports it too.
      "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    ("core/services", service(type="NodePort", ports=[{"port": 80, "nodePort": 80}]),
     ["spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. "
      "The range of valid ports is 30000-32767"]),
    ("core/services", service(ports=[{"port": 80, "nodePort": 30001}]),
     ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    ("core/services", service(type="Magic"),
     ['spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", '
      '"LoadBalancer", "NodePort"']),
    ("core/services", service(ports=[]), ["spec.ports: Required value"]),
    ("core/configmaps", {"metadata": {"name": "cm", "namespace": "d"}, "data": {"a b": "x"}},
     ['data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric '
      "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex "
      "used for validation is '[-._a-zA-Z0-9]+')"]),
    ("core/configmaps", {"metadata": {"name": "cm", "namespace": "d"},
                         "data": {"big": "x" * (1024 * 1024 + 1)}},
     ["Too long: may not be more than 1048576 bytes"]),
    ("core/secrets", {"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls",
                      "data": {"tls.crt": "YQ=="}},
     ["data[tls.key]: Required value"]),
    ("core/secrets", {"metadata": {"name": "s", "namespace": "d"},
                      "type": "kubernetes.io/dockerconfigjson", "data": {}},
     ["data[.dockerconfigjson]: Required value"]),
    ("core/namespaces", {"metadata": {"name": "team.a"}},
     ['metadata.name: Invalid value: "team.a": must not contain dots']),
    ("batch/jobs", job(completions=-1),
     ["spec.completions: Invalid value: -1: must be greater than or equal to 0"]),
    ("batch/jobs", job(completionMode="Indexed", parallelism=2, completions=None),
     ["spec.completions: Required value: when completion mode is Indexed"]),
    ("batch/jobs", job(template={"spec": {"containers": [{"name": "c", "image": "x"}]}}),
     ['spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: '
      '"OnFailure", "Never"']),
    ("batch/cronjobs", cronjob(schedule="61 * * * *"),
     ['spec.schedule: Invalid value: "61 * * * *": minute value out of range (0-59): 61']),
    ("batch/cronjobs", cronjob(schedule=""), ["spec.schedule: Required value"]),
    ("batch/cronjobs", cronjob(timeZone="Mars/Olympus"),
     ['spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus']),
    ("batch/cronjobs", cronjob(schedule="TZ=UTC 0 * * * *"),
     ['spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in '
      "schedule, use timeZone field instead"]),
    ("coordination.k8s.io/leases", {"metadata": {"name": "l", "namespace": "d"},
                                    "spec": {"leaseDurationSeconds": 0}},
     ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]),
    ("apiextensions.k8s.io/customresourcedefinitions", crd(group="example"),
     ['spec.group: Invalid value: "example": should be a domain with at least one dot',
      'metadata.name: Invalid value: "widgets.example.com": must be '
      'spec.names.plural+"."+spec.group']),
    ("apiextensions.k8s.io/customresourcedefinitions", crd(scope="Galaxy"),
     ['spec.scope: Unsupported value: "Galaxy": supported values: "Cluster", "Namespaced"']),
    ("apiextensions.k8s.io/customresourcedefinitions",
     crd(versions=[{"name": "v1", "served": True, "storage": False,
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]),
     ['spec.versions: Invalid value: []interface {}{map[string]interface {}{"name":"v1", '
      '"served":true, "storage":false, "schema":map[string]interface {}{"openAPIV3Schema":'
      'map[string]string{"type":"object"}}}}: must have exactly one version marked as '
      "storage version"]),
    ("apiextensions.k8s.io/customresourcedefinitions",
     crd(versions=[{"name": "v1", "served": True, "storage": True}]),
     ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"]),
]


@pytest.mark.parametrize(("key", "obj", "expected"), INVALID)
def test_invalid_objects_report_exact_causes(
    key: str, obj: dict[str, Any], expected: list[str]
) -> None:
    assert check(key, obj) == expected


def test_invalid_status_message_for_pod_without_containers() -> None:
    """The full line kubectl prints for `kubectl create` of a pod without containers."""
    rt = RT["core/pods"]
    obj = pod(containers=[])
    err = errors.invalid(rt.group, rt.kind, "p", validate(rt, obj))
    assert err.message == 'Pod "p" is invalid: spec.containers: Required value'
    assert err.to_status()["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"}
    ]


@pytest.mark.parametrize(
    "garbage",
    ["x", 1, None, [1], {"containers": [1, "x"]}, {"containers": [{"name": 5, "image": []}]},
     {"containers": [{"name": "c", "image": "x", "ports": "80", "env": {"A": 1},
                      "resources": [], "livenessProbe": "yes"}], "volumes": 3}],
)
@pytest.mark.parametrize("key", sorted(RT))
def test_bad_types_never_crash(key: str, garbage: Any) -> None:
    obj = {"metadata": {"name": "x", "namespace": "d"}, "spec": garbage, "data": garbage,
           "subsets": garbage, "involvedObject": garbage, "type": garbage}
    apply_defaults(RT[key], obj)
    causes = validate(RT[key], obj)
    assert all(set(c) == {"reason", "field", "message"} for c in causes)


def test_bad_types_are_reported() -> None:
    causes = validate(RT["core/pods"], pod(containers=[{"name": "c", "image": "x",
                                                       "ports": "80"}]))
    assert causes == [{"reason": "FieldValueTypeInvalid",
                       "message": 'Invalid value: "string": must be of type array',
                       "field": "spec.containers[0].ports"}]


def _stored(key: str, obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"].update(uid="u-1", resourceVersion="1", creationTimestamp="2024-01-01T00:00:00Z")
    apply_defaults(RT[key], obj)
    return obj


def _update(key: str, old: dict[str, Any], mutate: Any) -> list[str]:
    new = copy.deepcopy(old)
    mutate(new)
    apply_defaults(RT[key], new)
    return [errors.cause_text(c) for c in validate(RT[key], new, old)]


def test_pod_update_allows_image_change_only() -> None:
    old = _stored("core/pods", pod())
    assert _update("core/pods", old, lambda p: p["spec"]["containers"][0].update(image="b")) == []
    out = _update("core/pods", old, lambda p: p["spec"].update(restartPolicy="Never"))
    assert len(out) == 1
    assert out[0].startswith("spec: Forbidden: pod updates may not change fields other than "
                             "`spec.containers[*].image`,`spec.initContainers[*].image`,")
    add_tol = lambda p: p["spec"].update(tolerations=[{"operator": "Exists"}])  # noqa: E731
    assert _update("core/pods", old, add_tol) == []


def test_deployment_selector_immutable() -> None:
    old = _stored("apps/deployments", deployment())

    def change(d: dict[str, Any]) -> None:
        d["spec"]["selector"] = {"matchLabels": {"app": "web", "x": "y"}}
        d["spec"]["template"]["metadata"]["labels"]["x"] = "y"

    out = _update("apps/deployments", old, change)
    assert out == ['spec.selector: Invalid value: v1.LabelSelector{MatchLabels:'
                   'map[string]string{"app":"web", "x":"y"}, '
                   'MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable']
    assert _update("apps/deployments", old, lambda d: d["spec"].update(replicas=5)) == []


def test_job_template_immutable() -> None:
    old = _stored("batch/jobs", job())
    out = _update("batch/jobs", old,
                  lambda j: j["spec"]["template"]["spec"]["containers"][0].update(image="y"))
    assert len(out) == 1 and out[0].startswith("spec.template: Invalid value:")
    assert out[0].endswith(": field is immutable")


def test_service_cluster_ip_immutable() -> None:
    old = _stored("core/services", service(clusterIP="10.0.0.10"))
    out = _update("core/services", old, lambda s: s["spec"].update(clusterIP="10.0.0.11"))
    assert out == ['spec.clusterIP: Invalid value: "10.0.0.11": field is immutable']


def test_immutable_configmap_and_secret() -> None:
    for key in ("core/configmaps", "core/secrets"):
        old = _stored(key, {"metadata": {"name": "x", "namespace": "d"}, "immutable": True,
                            "data": {"k": "dg=="}})
        out = _update(key, old, lambda o: o["data"].update(k="dw=="))
        assert out == ["data: Forbidden: field is immutable when `immutable` is set"]
        out = _update(key, old, lambda o: o.update(immutable=False))
        assert out == ["immutable: Forbidden: field is immutable when `immutable` is set"]


def test_secret_type_immutable() -> None:
    old = _stored("core/secrets", {"metadata": {"name": "x", "namespace": "d"}})
    out = _update("core/secrets", old,
                  lambda o: o.update(type="kubernetes.io/basic-auth", data={"username": "YQ=="}))
    assert out == ['type: Invalid value: "kubernetes.io/basic-auth": field is immutable']


def test_custom_resources_get_metadata_validation_only() -> None:
    from skiff.api.resources import ResourceType

    rt = ResourceType("example.com", "v1", "Widget", "widgets", crd="widgets.example.com")
    assert validate(rt, {"metadata": {"namespace": "d"}, "spec": "anything"}) == [
        {"reason": "FieldValueRequired", "message": "Required value: name or generateName is "
         "required", "field": "metadata.name"}]


def test_pod_update_may_not_remove_tolerations() -> None:
    old = _stored("core/pods", pod(tolerations=[{"key": "k", "operator": "Exists"}]))
    out = _update("core/pods", old, lambda p: p["spec"].update(tolerations=[]))
    assert out[0] == ("spec.tolerations: Forbidden: existing toleration can not be modified "
                      "except its tolerationSeconds")


def test_statefulset_update_limits_spec_changes() -> None:
    old = _stored("apps/statefulsets", {**deployment(serviceName="s"), "kind": "StatefulSet"})
    assert _update("apps/statefulsets", old, lambda s: s["spec"].update(replicas=3)) == []
    out = _update("apps/statefulsets", old, lambda s: s["spec"].update(serviceName="t"))
    assert out == ["spec: Forbidden: updates to statefulset spec for fields other than "
                   "'replicas', 'ordinals', 'template', 'updateStrategy', "
                   "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"]

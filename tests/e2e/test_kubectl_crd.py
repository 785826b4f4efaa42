"""A CustomResourceDefinition end to end: establish, custom objects, printer columns,
explain, strict validation, scale, short names and categories, deletion."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Kubectl

NS = "e2e-crd"
CRD_NAME = "widgets.crd.e2e.skiff.dev"
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.crd.e2e.skiff.dev
spec:
  group: crd.e2e.skiff.dev
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    listKind: WidgetList
    shortNames: [wdg]
    categories: [all, gadgets]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    additionalPrinterColumns:
    - name: Color
      type: string
      jsonPath: .spec.color
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        description: A widget for end-to-end tests.
        properties:
          spec:
            type: object
            description: What the widget should be.
            required: [color]
            properties:
              color:
                type: string
                description: The widget's paint colour.
                enum: [red, green, blue]
              replicas:
                type: integer
                minimum: 0
                description: How many copies to keep.
          status:
            type: object
            properties:
              replicas: {type: integer}
              selector: {type: string}
"""


def widget(name: str, color: str = "blue", replicas: int = 1, **extra: object) -> str:
    return json.dumps({"apiVersion": "crd.e2e.skiff.dev/v1", "kind": "Widget",
                       "metadata": {"name": name, "namespace": NS},
                       "spec": {"color": color, "replicas": replicas, **extra}})


@pytest.fixture(scope="module")
def crd(kubectl: Kubectl) -> Iterator[str]:
    kubectl("create", "namespace", NS)
    out = kubectl("apply", "-f", "-", input=CRD)
    assert out == f"customresourcedefinition.apiextensions.k8s.io/{CRD_NAME} created\n"
    assert kubectl("wait", "--for=condition=established", f"crd/{CRD_NAME}",
                   "--timeout=20s") == (
        f"customresourcedefinition.apiextensions.k8s.io/{CRD_NAME} condition met\n")
    yield CRD_NAME
    kubectl.run("delete", "crd", CRD_NAME, "--ignore-not-found", "--timeout=30s", check=False)
    kubectl.run("delete", "namespace", NS, "--wait=false", check=False)


def test_crd_status_and_names(kubectl: Kubectl, crd: str) -> None:
    obj = json.loads(kubectl("get", "crd", crd, "-o", "json"))
    conds = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conds["Established"] == "True" and conds["NamesAccepted"] == "True"
    assert obj["status"]["acceptedNames"]["shortNames"] == ["wdg"]
    assert obj["status"]["storedVersions"] == ["v1"]
    assert "customresourcecleanup.apiextensions.k8s.io" in obj["metadata"]["finalizers"]
    table = kubectl("api-resources", "--api-group=crd.e2e.skiff.dev").splitlines()
    assert table[1].split() == ["widgets", "wdg", "crd.e2e.skiff.dev/v1", "true", "Widget"]


def test_create_get_list_with_printer_columns(kubectl: Kubectl, crd: str) -> None:
    assert kubectl("apply", "-f", "-", input=widget("w1", "blue", 2)) == (
        "widget.crd.e2e.skiff.dev/w1 created\n")
    assert kubectl("create", "-f", "-", input=widget("w2", "red", 0)) == (
        "widget.crd.e2e.skiff.dev/w2 created\n")
    lines = kubectl("-n", NS, "get", "widgets").splitlines()
    assert lines[0].split() == ["NAME", "COLOR", "REPLICAS", "AGE"]
    cells = {ln.split()[0]: ln.split()[:3] for ln in lines[1:]}
    assert cells["w1"] == ["w1", "blue", "2"]
    assert cells["w2"] == ["w2", "red", "0"]
    # The short name, the singular, the category and `all` reach the same objects.
    for alias in ("wdg", "widget", "widgets.crd.e2e.skiff.dev", "gadgets"):
        names = kubectl("-n", NS, "get", alias, "-o", "name").split()
        assert "widget.crd.e2e.skiff.dev/w1" in names, alias
    assert "widget.crd.e2e.skiff.dev/w1" in kubectl("-n", NS, "get", "all").split()
    obj = json.loads(kubectl("-n", NS, "get", "wdg", "w1", "-o", "json"))
    assert obj["kind"] == "Widget" and obj["apiVersion"] == "crd.e2e.skiff.dev/v1"
    assert obj["metadata"]["generation"] == 1
    listing = json.loads(kubectl("get", "--raw",
                                 f"/apis/crd.e2e.skiff.dev/v1/namespaces/{NS}/widgets"))
    assert listing["kind"] == "WidgetList"


def test_explain_custom_kind(kubectl: Kubectl, crd: str) -> None:
    lines = kubectl("explain", "widget.spec").splitlines()
    assert lines[:3] == ["GROUP:      crd.e2e.skiff.dev", "KIND:       Widget",
                         "VERSION:    v1"]
    assert "FIELD: spec <Object>" in lines
    assert "    What the widget should be." in lines
    assert "  color\t<string> -required-" in lines
    assert "    The widget's paint colour." in lines
    assert "  replicas\t<integer>" in lines
    assert "    How many copies to keep." in lines


def test_unknown_field_rejected_under_strict_validation(kubectl: Kubectl, crd: str) -> None:
    res = kubectl.run("apply", "-f", "-", input=widget("w3", shape="round"), check=False)
    assert res.returncode == 1
    assert res.stderr == (
        'Error from server (BadRequest): error when creating "STDIN": Widget in version "v1" '
        'cannot be handled as a Widget: strict decoding error: unknown field "spec.shape"\n')
    assert kubectl.run("-n", NS, "get", "wdg", "w3", check=False).returncode == 1
    # Without validation the unknown field is pruned and the object is created.
    assert kubectl("apply", "--validate=false", "-f", "-",
                   input=widget("w3", shape="round")) == "widget.crd.e2e.skiff.dev/w3 created\n"
    spec = json.loads(kubectl("-n", NS, "get", "wdg", "w3", "-o", "jsonpath={.spec}"))
    assert spec == {"color": "blue", "replicas": 1}


def test_schema_violations(kubectl: Kubectl, crd: str) -> None:
    res = kubectl.run("apply", "-f", "-", input=widget("bad", "purple", -1), check=False)
    assert res.returncode == 1
    assert res.stderr.startswith('The Widget "bad" is invalid: \n')
    assert ('* spec.color: Unsupported value: "purple": supported values: "red", "green", '
            '"blue"') in res.stderr
    assert ("* spec.replicas: Invalid value: -1: spec.replicas in body should be greater than "
            "or equal to 0") in res.stderr


def test_strategic_merge_patch_is_not_supported(kubectl: Kubectl, crd: str) -> None:
    kubectl("apply", "-f", "-", input=widget("w4"))
    res = kubectl.run("-n", NS, "patch", "wdg", "w4", "-p", '{"spec":{"color":"red"}}',
                      check=False)
    assert res.returncode == 1
    assert res.stderr == (
        "error: application/strategic-merge-patch+json is not supported by "
        "crd.e2e.skiff.dev/v1, Kind=Widget: the body of the request was in an unknown format "
        "- accepted media types include: application/json-patch+json, "
        "application/merge-patch+json, application/apply-patch+yaml\n")
    assert kubectl("-n", NS, "patch", "wdg", "w4", "--type=merge",
                   "-p", '{"spec":{"color":"red"}}') == "widget.crd.e2e.skiff.dev/w4 patched\n"
    assert kubectl("-n", NS, "get", "wdg", "w4", "-o", "jsonpath={.spec.color}") == "red"


def test_scale_and_status_subresources(kubectl: Kubectl, crd: str) -> None:
    kubectl("apply", "-f", "-", input=widget("w5", replicas=1))
    assert kubectl("-n", NS, "scale", "wdg", "w5", "--replicas=4") == (
        "widget.crd.e2e.skiff.dev/w5 scaled\n")
    assert kubectl("-n", NS, "get", "wdg", "w5", "-o", "jsonpath={.spec.replicas}") == "4"
    kubectl("-n", NS, "patch", "wdg", "w5", "--subresource=status", "--type=merge",
            "-p", '{"status":{"replicas":4,"selector":"app=w5"}}')
    scale = json.loads(kubectl(
        "get", "--raw", f"/apis/crd.e2e.skiff.dev/v1/namespaces/{NS}/widgets/w5/scale"))
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 4}
    assert scale["status"] == {"replicas": 4, "selector": "app=w5"}
    # The main endpoint ignores status; the status endpoint ignores spec.
    kubectl("-n", NS, "patch", "wdg", "w5", "--type=merge", "-p", '{"status":{"replicas":9}}')
    kubectl("-n", NS, "patch", "wdg", "w5", "--subresource=status", "--type=merge",
            "-p", '{"spec":{"replicas":9}}')
    obj = json.loads(kubectl("-n", NS, "get", "wdg", "w5", "-o", "json"))
    assert obj["spec"]["replicas"] == 4 and obj["status"]["replicas"] == 4


def test_deleting_crd_removes_custom_objects(kubectl: Kubectl, crd: str) -> None:
    kubectl("apply", "-f", "-", input=widget("doomed"))
    assert kubectl("delete", "crd", crd, "--timeout=30s") == (
        f'customresourcedefinition.apiextensions.k8s.io "{crd}" deleted\n')
    res = kubectl.run("get", "--raw", f"/apis/crd.e2e.skiff.dev/v1/namespaces/{NS}/widgets",
                      check=False)
    assert res.returncode == 1
    assert res.stderr == ("Error from server (NotFound): the server could not find the "
                          "requested resource\n")
    # Defining the kind again does not bring the old objects back.
    kubectl("apply", "-f", "-", input=CRD)
    kubectl("wait", "--for=condition=established", f"crd/{crd}", "--timeout=20s")
    res = kubectl.run("-n", NS, "get", "widgets")
    assert res.stdout == "" and res.stderr == f"No resources found in {NS} namespace.\n"

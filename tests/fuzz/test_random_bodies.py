"""A hypothesis fuzzer of our own: random JSON shapes, near-valid objects and raw
bytes, in every media type, at a handful of write endpoints. No answer may be a 5xx,
every 4xx must be a Kubernetes Status, and the server must stay ready.

Run with `make fuzz`; skipped when schemathesis (which brings hypothesis) is missing.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("schemathesis")  # `make fuzz` installs it, and hypothesis with it

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.bad_input_client import RawClient, Reply  # noqa: E402
from tests.e2e.conftest import Cluster  # noqa: E402

NS = "fuzz"
CMS = f"/api/v1/namespaces/{NS}/configmaps"
ENDPOINTS = [
    ("POST", CMS),
    ("PUT", f"{CMS}/target"),
    ("PATCH", f"{CMS}/target"),
    ("DELETE", f"{CMS}/doomed"),
    ("POST", f"/api/v1/namespaces/{NS}/pods"),
    ("POST", f"/api/v1/namespaces/{NS}/services"),
    ("POST", f"/apis/apps/v1/namespaces/{NS}/deployments"),
    ("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/target"),
    ("PUT", f"/apis/apps/v1/namespaces/{NS}/deployments/target/scale"),
    ("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/target/status"),
    ("POST", "/api/v1/namespaces"),
    ("POST", f"/api/v1/namespaces/{NS}/pods/target/binding"),
    ("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"),
]
CONTENT_TYPES = [
    "application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
    "application/json-patch+json", "application/merge-patch+json",
    "application/strategic-merge-patch+json", "application/apply-patch+yaml",
    "text/plain", "", "application/json; charset=utf-8",
]

scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(["metadata", "spec", "status", "data", "name", "labels",
                        "replicas", "containers", "selector", "template", "op", "path",
                        "value", "$patch", "finalizers", "ownerReferences", "ports",
                        "resourceVersion", "uid", "generateName", "annotations"])
# Objects that look like what the endpoints expect, with random values in the slots.
near_objects = st.fixed_dictionaries(
    {"apiVersion": st.sampled_from(["v1", "apps/v1", "apiextensions.k8s.io/v1", "x/y", ""]),
     "kind": st.sampled_from(["ConfigMap", "Pod", "Service", "Deployment", "Namespace",
                              "Scale", "Binding", "CustomResourceDefinition", "Nope"])},
    optional={"metadata": st.fixed_dictionaries(
        {}, optional={"name": st.sampled_from(["target", "new-one", "", "A!", "x" * 300])
                      | st.text(max_size=10),
                      "namespace": st.sampled_from([NS, "other", ""]) | scalars,
                      "labels": st.dictionaries(st.text(max_size=10), scalars, max_size=3)
                      | json_values,
                      "resourceVersion": st.sampled_from(["1", "0", "x", "999999999"])
                      | scalars,
                      "finalizers": json_values, "ownerReferences": json_values})
              | json_values,
              "spec": st.dictionaries(keys, json_values, max_size=5) | json_values,
              "data": json_values, "status": json_values},
)
json_patches = st.lists(st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "x"])},
    optional={"path": st.sampled_from(["/metadata/labels/a", "/spec/replicas", "/data/k",
                                       "", "/", "/metadata", "/a/-", "/spec/x/0", "nope"])
              | st.text(max_size=8),
              "from": st.sampled_from(["/data/k", "/metadata/name", "/zz"]),
              "value": json_values}), max_size=4)
bodies = (near_objects.map(lambda o: json.dumps(o).encode())
          | json_values.map(lambda v: json.dumps(v).encode())
          | json_patches.map(lambda p: json.dumps(p).encode())
          | st.binary(max_size=200)
          | st.binary(max_size=60).map(lambda b: b"k8s\x00" + b))


def check(r: Reply) -> None:
    """No server error; a 4xx is a Status with a reason."""
    assert r.status < 500, r.text()
    if 400 <= r.status < 500:
        assert r.content_type.startswith("application/json"), (r.status, r.text())
        st_ = r.json()
        assert st_["kind"] == "Status" and st_["reason"], st_


@pytest.fixture(scope="module")
def seeded(fuzz_api: RawClient) -> RawClient:
    """A namespace with the objects the endpoints name."""
    for path, body in [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": NS}}),
        (CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "target"},
               "data": {"k": "v"}}),
        (f"/apis/apps/v1/namespaces/{NS}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "target"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}),
        (f"/api/v1/namespaces/{NS}/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "target"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
    ]:
        r = fuzz_api.post(path, body)
        assert r.status in (201, 409), r.text()
    return fuzz_api


@settings(max_examples=1500, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(endpoint=st.sampled_from(ENDPOINTS), content_type=st.sampled_from(CONTENT_TYPES),
       body=bodies, query=st.sampled_from(["", "?fieldValidation=Strict", "?dryRun=All",
                                           "?fieldManager=fuzz", "?fieldManager=fuzz&force=1",
                                           "?fieldValidation=Ignore"]))
def test_random_bodies(seeded: RawClient, endpoint: tuple[str, str], content_type: str,
                       body: bytes, query: str) -> None:
    method, path = endpoint
    if method == "DELETE":
        # Something to delete, so the body is decoded against a live object.
        seeded.post(CMS, {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "doomed"}})
    try:
        r = seeded.request(method, path + query, body, content_type=content_type or None)
    except OSError as exc:
        raise AssertionError(f"{method} {path}{query} ({content_type}) {body[:300]!r}: "
                             f"no answer: {exc!r}") from exc
    assert r.status < 500 and (r.status < 400 or r.content_type.startswith(
        "application/json")), f"{method} {path}{query} ({content_type}) {body[:300]!r}"
    check(r)


def test_still_healthy_after_fuzzing(seeded: RawClient, fuzz_cluster: Cluster) -> None:
    assert seeded.ready()
    r = seeded.get(f"{CMS}/target")
    assert r.status == 200, r.text()
    log = fuzz_cluster.log()
    assert "Traceback" not in log, log[-4000:]

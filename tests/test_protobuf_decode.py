"""Decoding Kubernetes protobuf bodies: hand-encoded objects, kubectl captures, garbage."""

from __future__ import annotations

import base64
import random
import struct
from pathlib import Path

import pytest

from skiff.api.errors import StatusError
from skiff.api.protobuf import decode_k8s_protobuf
from skiff.api.protobuf.special import go_duration

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"

# A tiny encoder, independent of the decoder under test.


def uv(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def v(no: int, n: int) -> bytes:
    return uv(no << 3) + uv(n)


def ld(no: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return uv(no << 3 | 2) + uv(len(data)) + data


def entry(no: int, key: str, value: bytes | str) -> bytes:
    return ld(no, ld(1, key) + ld(2, value))


def body(api_version: str, kind: str, obj: bytes) -> bytes:
    return b"k8s\x00" + ld(1, ld(1, api_version) + ld(2, kind)) + ld(2, obj) + ld(3, "") + ld(4, "")


def meta(name: str, **labels: str) -> bytes:
    out = ld(1, name) + ld(3, "") + v(7, 0) + ld(8, b"")  # gogo writes zero fields too
    for k, val in labels.items():
        out += entry(11, k, val)
    return out


# Objects kubectl creates, encoded the way upstream's marshaller lays them out.


def test_deployment_like_kubectl_create() -> None:
    port = v(3, 80) + ld(1, "") + v(2, 0) + ld(4, "")
    container = ld(1, "nginx") + ld(2, "nginx") + ld(6, port) + ld(8, "") + v(16, 0)
    pod_spec = ld(2, container) + ld(3, "") + v(11, 0)  # hostNetwork false
    template = ld(1, meta("", app="web")) + ld(2, pod_spec)
    selector = entry(1, "app", "web")
    spec = v(1, 2) + ld(2, selector) + ld(3, template) + ld(4, b"") + v(5, 0) + v(7, 0)
    obj = ld(1, meta("web", app="web")) + ld(2, spec) + ld(3, b"")
    got = decode_k8s_protobuf(body("apps/v1", "Deployment", obj), "Deployment")
    assert got == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}
                    ]
                },
            },
        },
    }


def test_pointer_fields_keep_zero_values() -> None:
    # replicas is *int32 and paused a plain bool: only the pointer survives as zero.
    spec = v(1, 0) + v(7, 0) + v(6, 0)
    got = decode_k8s_protobuf(body("apps/v1", "Deployment", ld(2, spec)))
    assert got["spec"] == {"replicas": 0, "revisionHistoryLimit": 0}


def test_configmap_data_and_binary_data() -> None:
    obj = ld(1, meta("cm")) + entry(2, "a", "1") + entry(2, "b", "") + entry(3, "bin", b"\x00\xff")
    got = decode_k8s_protobuf(body("v1", "ConfigMap", obj))
    assert got["data"] == {"a": "1", "b": ""}
    assert got["binaryData"] == {"bin": base64.b64encode(b"\x00\xff").decode()}


def test_secret_bytes_become_base64() -> None:
    obj = ld(1, meta("s")) + entry(2, "pw", b"hunter2") + ld(3, "Opaque") + entry(4, "x", "y")
    got = decode_k8s_protobuf(body("v1", "Secret", obj))
    assert got["data"] == {"pw": "aHVudGVyMg=="}
    assert got["stringData"] == {"x": "y"}
    assert got["type"] == "Opaque"


def test_service_ports_with_int_and_string_target_port() -> None:
    int_target = v(1, 0) + v(2, 8080) + ld(3, "")
    str_target = v(1, 1) + v(2, 0) + ld(3, "http")
    p1 = ld(1, "a") + ld(2, "TCP") + v(3, 80) + ld(4, int_target) + v(5, 0)
    p2 = ld(1, "b") + ld(2, "UDP") + v(3, 53) + ld(4, str_target)
    p3 = ld(1, "c") + v(3, 443) + ld(4, v(1, 0) + v(2, 0))  # zero IntOrString: omitted
    spec = ld(1, p1) + ld(1, p2) + ld(1, p3) + entry(2, "app", "web") + ld(4, "NodePort")
    got = decode_k8s_protobuf(body("v1", "Service", ld(1, meta("svc")) + ld(2, spec)))
    assert got["spec"] == {
        "ports": [
            {"name": "a", "protocol": "TCP", "port": 80, "targetPort": 8080},
            {"name": "b", "protocol": "UDP", "port": 53, "targetPort": "http"},
            {"name": "c", "port": 443},
        ],
        "selector": {"app": "web"},
        "type": "NodePort",
    }


def test_namespace_with_time_and_finalizers() -> None:
    created = v(1, 1704164645)  # 2024-01-02T03:04:05Z
    m = ld(1, "ns1") + ld(8, created) + ld(14, "a") + ld(14, "b")
    got = decode_k8s_protobuf(body("v1", "Namespace", ld(1, m) + ld(2, b"") + ld(3, b"")))
    assert got == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "ns1", "creationTimestamp": "2024-01-02T03:04:05Z",
                     "finalizers": ["a", "b"]},
    }


def test_self_subject_access_review() -> None:
    attrs = ld(1, "default") + ld(2, "get") + ld(3, "") + ld(5, "pods") + ld(6, "") + ld(7, "")
    spec = ld(1, attrs)
    got = decode_k8s_protobuf(body("authorization.k8s.io/v1", "SelfSubjectAccessReview",
                                   ld(1, meta("")) + ld(2, spec) + ld(3, v(1, 0))))
    assert got == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "get",
                                        "resource": "pods"}},
    }


def test_subject_access_review_extra_is_map_of_lists() -> None:
    extra = ld(1, "g1") + ld(1, "g2")  # ExtraValue is a named []string
    spec = ld(3, "bob") + ld(4, "grp") + entry(5, "scopes", extra)
    got = decode_k8s_protobuf(body("authorization.k8s.io/v1", "SubjectAccessReview", ld(2, spec)))
    assert got["spec"] == {"user": "bob", "groups": ["grp"], "extra": {"scopes": ["g1", "g2"]}}


def test_empty_pointer_struct_survives_inline_volume_source() -> None:
    # Volume inlines VolumeSource; emptyDir is a pointer, so `{}` is meaningful.
    volume = ld(1, "scratch") + ld(2, ld(2, b""))
    container = ld(1, "c") + ld(2, "busybox")
    limits = entry(1, "cpu", ld(1, "500m"))
    container += ld(8, limits)
    pod_spec = ld(1, volume) + ld(2, container)
    got = decode_k8s_protobuf(body("v1", "Pod", ld(1, meta("p")) + ld(2, pod_spec)))
    assert got["spec"]["volumes"] == [{"name": "scratch", "emptyDir": {}}]
    assert got["spec"]["containers"] == [
        {"name": "c", "image": "busybox", "resources": {"limits": {"cpu": "500m"}}}
    ]


def test_raw_extension_is_parsed_json_and_managed_fields() -> None:
    data = ld(1, b'{"a":[1,2]}')
    mf = ld(1, "kubectl") + ld(2, "Update") + ld(3, "apps/v1") + ld(7, ld(1, b'{"f:x":{}}'))
    obj = ld(1, ld(1, "rev") + ld(17, mf)) + ld(2, data) + v(3, 7)
    got = decode_k8s_protobuf(body("apps/v1", "ControllerRevision", obj))
    assert got["data"] == {"a": [1, 2]}
    assert got["revision"] == 7
    assert got["metadata"]["managedFields"] == [
        {"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
         "fieldsV1": {"f:x": {}}}
    ]


def test_negative_int_and_micro_time_on_event() -> None:
    micro = v(1, 1704164645) + v(2, 123456789)
    obj = ld(1, meta("e")) + v(8, -1 & ((1 << 64) - 1)) + ld(10, micro)
    got = decode_k8s_protobuf(body("v1", "Event", obj))
    assert got["count"] == -1
    assert got["eventTime"] == "2024-01-02T03:04:05.123456Z"


def test_packed_repeated_scalars_are_accepted() -> None:
    # Job.spec.podFailurePolicy.rules[].onExitCodes.values is repeated int32.
    packed = ld(3, uv(1) + uv(2) + uv(300))
    unpacked = v(3, 4)
    rule = ld(1, "FailJob") + ld(2, ld(1, "main") + ld(2, "In") + packed + unpacked)
    spec = ld(11, ld(1, rule))
    got = decode_k8s_protobuf(body("batch/v1", "Job", ld(2, spec)))
    exit_codes = got["spec"]["podFailurePolicy"]["rules"][0]["onExitCodes"]
    assert exit_codes == {"containerName": "main", "operator": "In", "values": [1, 2, 300, 4]}


def test_unknown_fields_are_skipped() -> None:
    obj = ld(1, meta("cm")) + ld(99, "future") + v(98, 5) + entry(2, "a", "b")
    assert decode_k8s_protobuf(body("v1", "ConfigMap", obj))["data"] == {"a": "b"}


def test_repeated_singular_message_merges() -> None:
    obj = ld(1, ld(1, "x")) + ld(1, entry(11, "k", "v"))
    assert decode_k8s_protobuf(body("v1", "ConfigMap", obj))["metadata"] == {
        "name": "x", "labels": {"k": "v"},
    }


def test_missing_kind_falls_back_to_expected() -> None:
    raw = b"k8s\x00" + ld(1, ld(1, "v1")) + ld(2, ld(1, meta("x")))
    assert decode_k8s_protobuf(raw, "Namespace")["kind"] == "Namespace"


@pytest.mark.parametrize("nanos,text", [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (2_000_000, "2ms"), (1_500_000_000, "1.5s"),
    (90 * 10**9, "1m30s"), (3600 * 10**9, "1h0m0s"), (-(5 * 10**9), "-5s"),
])
def test_go_duration_format(nanos: int, text: str) -> None:
    assert go_duration(nanos) == text


# Real kubectl 1.32 bodies, captured from `kubectl create ...` against a stub server.


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


def test_kubectl_create_deployment_capture() -> None:
    got = decode_k8s_protobuf(fixture("deployment-web"), "Deployment")
    assert got["apiVersion"] == "apps/v1"
    assert got["metadata"] == {"name": "web", "labels": {"app": "web"}}
    assert got["spec"]["replicas"] == 2
    assert got["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert got["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}]}
    ]
    assert "status" not in got and "strategy" not in got["spec"]


def test_kubectl_captures_decode() -> None:
    svc = decode_k8s_protobuf(fixture("service-nodeport"))
    assert svc["spec"]["ports"] == [
        {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}
    ]
    assert decode_k8s_protobuf(fixture("secret-generic"))["data"] == {"pw": "aHVudGVyMg=="}
    assert decode_k8s_protobuf(fixture("configmap"))["data"] == {"a": "b", "c": "d"}
    assert decode_k8s_protobuf(fixture("namespace"))["metadata"] == {"name": "ns1"}
    pdb = decode_k8s_protobuf(fixture("poddisruptionbudget"))
    assert pdb["spec"]["minAvailable"] == "50%"
    quota = decode_k8s_protobuf(fixture("resourcequota"))
    assert quota["spec"]["hard"] == {"cpu": "1", "pods": "2"}
    pc = decode_k8s_protobuf(fixture("priorityclass"))
    assert pc["value"] == 1000 and pc["preemptionPolicy"] == "PreemptLowerPriority"
    ssar = decode_k8s_protobuf(fixture("selfsubjectaccessreview"))
    assert ssar["spec"]["resourceAttributes"] == {
        "namespace": "default", "verb": "get", "resource": "pods",
    }
    for f in FIXTURES.glob("*.bin"):
        got = decode_k8s_protobuf(f.read_bytes())
        assert got["apiVersion"] and got["kind"]


def test_kubectl_create_role_keeps_empty_strings_in_lists() -> None:
    # The core group is "" and must survive as a list element.
    role = decode_k8s_protobuf(fixture("role"), "Role")
    assert role["rules"][0] == {
        "verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["x"],
    }
    cluster_role = decode_k8s_protobuf(fixture("clusterrole"))
    assert cluster_role["rules"][1] == {"verbs": ["get"], "nonResourceURLs": ["/x"]}


# Bad input: always a StatusError with a 4xx code, never anything else.


def test_no_magic_is_bad_request() -> None:
    with pytest.raises(StatusError) as e:
        decode_k8s_protobuf(b'{"kind":"Pod"}')
    assert e.value.code == 400 and "magic" in e.value.message


def test_unknown_kind_is_unsupported_media_type() -> None:
    with pytest.raises(StatusError) as e:
        decode_k8s_protobuf(body("example.com/v1", "Widget", b""))
    assert e.value.code == 415 and e.value.reason == "UnsupportedMediaType"
    assert "Widget" in e.value.message


def test_kind_mismatch_is_bad_request() -> None:
    with pytest.raises(StatusError) as e:
        decode_k8s_protobuf(body("v1", "Service", b""), "ConfigMap")
    assert e.value.code == 400 and "Service" in e.value.message


def test_wrong_wire_type_names_the_field() -> None:
    spec = v(1, 2) + v(3, 5)  # template must be a message
    with pytest.raises(StatusError) as e:
        decode_k8s_protobuf(body("apps/v1", "Deployment", ld(2, spec)))
    assert e.value.code == 400
    assert "spec.template" in e.value.message and "wire type" in e.value.message


def test_invalid_raw_extension_json_is_bad_request() -> None:
    with pytest.raises(StatusError) as e:
        decode_k8s_protobuf(body("apps/v1", "ControllerRevision", ld(2, ld(1, b"{nope"))))
    assert e.value.code == 400 and "data" in e.value.message


def test_compressed_body_is_unsupported() -> None:
    raw = b"k8s\x00" + ld(1, ld(1, "v1") + ld(2, "Pod")) + ld(2, b"") + ld(3, "gzip")
    with pytest.raises(StatusError) as e:
        decode_k8s_protobuf(raw)
    assert e.value.code == 415


def _fuzz_inputs() -> list[bytes]:
    rng = random.Random(1234)
    base = [fixture(f.stem) for f in sorted(FIXTURES.glob("*.bin"))]
    out: list[bytes] = []
    for b in base:
        out.extend(b[:i] for i in range(len(b)))
        for _ in range(40):
            mutated = bytearray(b)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(4, len(mutated))] = rng.randrange(256)
            out.append(bytes(mutated))
    for _ in range(300):
        out.append(b"k8s\x00" + rng.randbytes(rng.randint(0, 64)))
    out.append(b"k8s\x00" + struct.pack("<B", 0x0A) + b"\xff" * 12)
    return out


def test_fuzzed_bodies_only_raise_status_errors() -> None:
    for raw in _fuzz_inputs():
        try:
            got = decode_k8s_protobuf(raw)
        except StatusError as e:
            assert e.code in (400, 415), (raw, e.message)
        else:
            assert isinstance(got, dict)

"""Tables for nodes, services, endpoints, events and the small core kinds."""

from datetime import UTC, datetime
from typing import Any

from skiff.api.tables import to_table

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
CREATED = "2024-05-01T11:00:00Z"


def md(name: str = "x", **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": CREATED, **extra}


def table(key: str, *objs: dict[str, Any]) -> dict[str, Any]:
    return to_table(key, list(objs), now=NOW)


def names(key: str) -> list[str]:
    return [c["name"] for c in table(key)["columnDefinitions"]]


def cells(key: str, obj: dict[str, Any]) -> list[Any]:
    return table(key, obj)["rows"][0]["cells"]


def test_namespace() -> None:
    assert names("core/namespaces") == ["Name", "Status", "Age"]
    ns = {"metadata": md("dev"), "status": {"phase": "Active"}}
    assert cells("core/namespaces", ns) == ["dev", "Active", "60m"]


def test_configmap_secret_serviceaccount() -> None:
    assert names("core/configmaps") == ["Name", "Data", "Age"]
    cm = {"metadata": md("cm"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    assert cells("core/configmaps", cm) == ["cm", 3, "60m"]
    assert names("core/secrets") == ["Name", "Type", "Data", "Age"]
    sec = {"metadata": md("s"), "type": "Opaque", "data": {"k": "dg=="}}
    assert cells("core/secrets", sec) == ["s", "Opaque", 1, "60m"]
    assert names("core/serviceaccounts") == ["Name", "Secrets", "Age"]
    sa = {"metadata": md("default")}
    assert cells("core/serviceaccounts", sa) == ["default", 0, "60m"]


def node(**status: Any) -> dict[str, Any]:
    return {
        "metadata": md(
            "n1",
            labels={
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/worker": "",
                "kubernetes.io/role": "edge",
            },
        ),
        "spec": {},
        "status": status,
    }


def test_node_columns_and_cells() -> None:
    cols = table("core/nodes")["columnDefinitions"]
    assert [c["name"] for c in cols] == [
        "Name", "Status", "Roles", "Age", "Version",
        "Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime",
    ]  # fmt: skip
    assert [c["priority"] for c in cols] == [0] * 5 + [1] * 5
    n = node(
        conditions=[
            {"type": "MemoryPressure", "status": "False"},
            {"type": "Ready", "status": "True"},
        ],
        nodeInfo={"kubeletVersion": "v1.31.0", "osImage": "Debian", "kernelVersion": "6.1"},
        addresses=[{"type": "InternalIP", "address": "10.0.0.2"}],
    )
    assert cells("core/nodes", n) == [
        "n1", "Ready", "control-plane,edge,worker", "60m", "v1.31.0",
        "10.0.0.2", "<none>", "Debian", "6.1", "<unknown>",
    ]  # fmt: skip


def test_node_status_words() -> None:
    cordoned = node(conditions=[{"type": "Ready", "status": "True"}])
    cordoned["spec"]["unschedulable"] = True
    assert cells("core/nodes", cordoned)[1] == "Ready,SchedulingDisabled"
    assert cells("core/nodes", node(conditions=[{"type": "Ready", "status": "Unknown"}]))[1] == (
        "NotReady"
    )
    assert cells("core/nodes", node())[1] == "Unknown"
    bare = {"metadata": {"name": "b"}}
    assert cells("core/nodes", bare)[1:3] == ["Unknown", "<none>"]


def service(type_: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": md("svc"), "spec": {"type": type_, **spec}}


def test_service_columns() -> None:
    cols = table("core/services")["columnDefinitions"]
    assert [c["name"] for c in cols] == [
        "Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector",
    ]  # fmt: skip
    assert cols[-1]["priority"] == 1


def test_nodeport_service() -> None:
    svc = service(
        "NodePort",
        clusterIP="10.96.0.10",
        clusterIPs=["10.96.0.10"],
        ports=[
            {"port": 80, "nodePort": 30080, "protocol": "TCP"},
            {"port": 53, "protocol": "UDP"},
        ],
        selector={"app": "web", "tier": "front"},
    )
    assert cells("core/services", svc) == [
        "svc", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "60m",
        "app=web,tier=front",
    ]  # fmt: skip


def test_service_external_ips() -> None:
    lb = service("LoadBalancer", ports=[{"port": 443}])
    assert cells("core/services", lb)[2:5] == ["<none>", "<pending>", "443/TCP"]
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb.example"}]}}
    lb["spec"]["externalIPs"] = ["5.6.7.8"]
    assert cells("core/services", lb)[3] == "1.2.3.4,lb.example,5.6.7.8"
    ext = service("ExternalName", externalName="db.example.com")
    assert cells("core/services", ext)[3:5] == ["db.example.com", "<none>"]
    assert cells("core/services", {"metadata": md("bare")})[1:5] == [
        "ClusterIP", "<none>", "<none>", "<none>",
    ]  # fmt: skip


def test_endpoints() -> None:
    assert names("core/endpoints") == ["Name", "Endpoints", "Age"]
    ep = {
        "metadata": md("svc"),
        "subsets": [
            {
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}],
                "ports": [{"port": 8080}, {"port": 9090}],
            }
        ],
    }
    assert cells("core/endpoints", ep)[1] == (
        "10.0.0.1:8080,10.0.0.2:8080,[fd00::3]:8080 + 3 more..."
    )
    headless = {"metadata": md("h"), "subsets": [{"addresses": [{"ip": "10.0.0.9"}]}]}
    assert cells("core/endpoints", headless)[1] == "10.0.0.9"
    assert cells("core/endpoints", {"metadata": md("none")})[1] == "<none>"


def test_core_event() -> None:
    cols = table("core/events")["columnDefinitions"]
    assert [c["name"] for c in cols if c["priority"] == 0] == [
        "Last Seen", "Type", "Reason", "Object", "Message",
    ]  # fmt: skip
    assert [c["name"] for c in cols if c["priority"] == 1] == [
        "Subobject", "Source", "First Seen", "Count", "Name",
    ]  # fmt: skip
    ev = {
        "metadata": md("p.17a"),
        "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{c}"},
        "reason": "BackOff",
        "type": "Warning",
        "message": "  Back-off restarting failed container\n",
        "firstTimestamp": "2024-05-01T11:00:00Z",
        "lastTimestamp": "2024-05-01T11:58:00Z",
        "count": 7,
        "source": {"component": "kubelet", "host": "node-1"},
    }
    assert cells("core/events", ev) == [
        "2m", "Warning", "BackOff", "pod/web-0", "spec.containers{c}", "kubelet, node-1",
        "Back-off restarting failed container", "60m", 7, "p.17a",
    ]  # fmt: skip


def test_events_k8s_io_event() -> None:
    ev = {
        "metadata": md("e"),
        "regarding": {"kind": "Deployment", "name": "web"},
        "note": "Scaled up",
        "reason": "ScalingReplicaSet",
        "type": "Normal",
        "eventTime": "2024-05-01T11:59:30.000000Z",
        "reportingController": "deployment-controller",
    }
    assert cells("events.k8s.io/events", ev) == [
        "30s", "Normal", "ScalingReplicaSet", "deployment/web", "", "deployment-controller",
        "Scaled up", "30s", 1, "e",
    ]  # fmt: skip
    ev["series"] = {"count": 4, "lastObservedTime": "2024-05-01T11:59:50.000000Z"}
    c = cells("events.k8s.io/events", ev)
    assert (c[0], c[8]) == ("10s", 4)


def test_event_without_anything() -> None:
    c = cells("core/events", {})
    assert c == ["<unknown>", "", "", "", "", "", "", "<unknown>", 1, ""]

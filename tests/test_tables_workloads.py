"""Tables for apps/v1 and batch/v1 kinds, Leases, CRDs and the fallback."""

from datetime import UTC, datetime
from typing import Any

from skiff.api.tables import to_table

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
CREATED = "2024-05-01T11:00:00Z"
TEMPLATE = {
    "spec": {
        "containers": [{"name": "web", "image": "nginx:1"}, {"name": "log", "image": "busybox"}],
        "nodeSelector": {"disk": "ssd"},
    }
}
SELECTOR = {
    "matchLabels": {"app": "web"},
    "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["front", "back"]},
        {"key": "canary", "operator": "DoesNotExist"},
    ],
}


def md(name: str = "x", **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": CREATED, **extra}


def cols(key: str) -> list[dict[str, Any]]:
    return to_table(key, [], now=NOW)["columnDefinitions"]


def cells(key: str, obj: dict[str, Any]) -> list[Any]:
    return to_table(key, [obj], now=NOW)["rows"][0]["cells"]


def test_deployment() -> None:
    c = cols("apps/deployments")
    assert [x["name"] for x in c] == [
        "Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector",
    ]  # fmt: skip
    assert [x["priority"] for x in c] == [0, 0, 0, 0, 0, 1, 1, 1]
    dep = {
        "metadata": md("web"),
        "spec": {"replicas": 3, "selector": SELECTOR, "template": TEMPLATE},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert cells("apps/deployments", dep) == [
        "web", "2/3", 3, 2, "60m", "web,log", "nginx:1,busybox",
        "app=web,!canary,tier in (back,front)",
    ]  # fmt: skip
    # Straight from a user: replicas defaults to 1 and nothing is ready yet.
    assert cells("apps/deployments", {"metadata": md("new")})[:4] == ["new", "0/1", 0, 0]
    assert cells("apps/deployments", {"metadata": md("new")})[5:] == ["", "", ""]


def test_replicaset_statefulset_daemonset() -> None:
    assert [x["name"] for x in cols("apps/replicasets")][:5] == [
        "Name", "Desired", "Current", "Ready", "Age",
    ]  # fmt: skip
    rs = {
        "metadata": md("web-abc"),
        "spec": {"replicas": 2, "template": TEMPLATE},
        "status": {"replicas": 2, "readyReplicas": 1},
    }
    assert cells("apps/replicasets", rs) == [
        "web-abc", 2, 2, 1, "60m", "web,log", "nginx:1,busybox", "<none>",
    ]  # fmt: skip

    assert [x["name"] for x in cols("apps/statefulsets")] == [
        "Name", "Ready", "Age", "Containers", "Images",
    ]  # fmt: skip
    sts = {"metadata": md("db"), "spec": {"replicas": 3}, "status": {"readyReplicas": 3}}
    assert cells("apps/statefulsets", sts) == ["db", "3/3", "60m", "", ""]

    assert [x["name"] for x in cols("apps/daemonsets")][:8] == [
        "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
    ]  # fmt: skip
    ds = {
        "metadata": md("agent"),
        "spec": {"template": TEMPLATE, "selector": {"matchLabels": {"app": "agent"}}},
        "status": {
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "numberReady": 2,
            "updatedNumberScheduled": 3,
            "numberAvailable": 2,
        },
    }
    assert cells("apps/daemonsets", ds) == [
        "agent", 3, 3, 2, 3, 2, "disk=ssd", "60m", "web,log", "nginx:1,busybox", "app=agent",
    ]  # fmt: skip


def test_controllerrevision() -> None:
    assert [x["name"] for x in cols("apps/controllerrevisions")] == [
        "Name", "Controller", "Revision", "Age",
    ]  # fmt: skip
    owner = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": True}
    cr = {"metadata": md("db-5d8", ownerReferences=[owner]), "revision": 2}
    assert cells("apps/controllerrevisions", cr) == ["db-5d8", "statefulset.apps/db", 2, "60m"]
    assert cells("apps/controllerrevisions", {"metadata": md("lone")})[1] == "<none>"


def job(**parts: Any) -> dict[str, Any]:
    return {"metadata": md("j"), **parts}


def test_job() -> None:
    assert [x["name"] for x in cols("batch/jobs")] == [
        "Name", "Status", "Completions", "Duration", "Age", "Containers", "Images", "Selector",
    ]  # fmt: skip
    done = job(
        spec={"completions": 3, "template": TEMPLATE},
        status={
            "succeeded": 3,
            "startTime": "2024-05-01T11:00:00Z",
            "completionTime": "2024-05-01T11:01:05Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        },
    )
    assert cells("batch/jobs", done)[:5] == ["j", "Complete", "3/3", "65s", "60m"]
    running = job(spec={"parallelism": 4}, status={"startTime": "2024-05-01T11:57:00Z"})
    assert cells("batch/jobs", running)[1:4] == ["Running", "0/1 of 4", "3m"]
    failed = job(status={"conditions": [{"type": "Failed", "status": "True"}]})
    assert cells("batch/jobs", failed)[1:4] == ["Failed", "0/1", ""]
    going = job(metadata=md("j", deletionTimestamp=CREATED))
    assert cells("batch/jobs", going)[1] == "Terminating"
    suspended = job(status={"conditions": [{"type": "Suspended", "status": "True"}]})
    assert cells("batch/jobs", suspended)[1] == "Suspended"


def test_cronjob() -> None:
    c = cols("batch/cronjobs")
    assert [x["name"] for x in c if x["priority"] == 0] == [
        "Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age",
    ]  # fmt: skip
    cj = {
        "metadata": md("nightly"),
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": TEMPLATE}},
        },
        "status": {"active": [{"name": "a"}], "lastScheduleTime": "2024-05-01T03:00:00Z"},
    }
    assert cells("batch/cronjobs", cj) == [
        "nightly", "0 3 * * *", "<none>", "False", 1, "9h", "60m",
        "web,log", "nginx:1,busybox", "<none>",
    ]  # fmt: skip
    cj["spec"]["suspend"] = True
    cj["spec"]["timeZone"] = "Etc/UTC"
    assert cells("batch/cronjobs", cj)[2:4] == ["Etc/UTC", "True"]


def test_lease_crd_and_default() -> None:
    assert [x["name"] for x in cols("coordination.k8s.io/leases")] == ["Name", "Holder", "Age"]
    lease = {"metadata": md("kube-scheduler"), "spec": {"holderIdentity": "sched-1"}}
    assert cells("coordination.k8s.io/leases", lease) == ["kube-scheduler", "sched-1", "60m"]

    key = "apiextensions.k8s.io/customresourcedefinitions"
    c = cols(key)
    assert [(x["name"], x["type"]) for x in c] == [("Name", "string"), ("Created At", "date")]
    crd = {"metadata": {"name": "widgets.example.com", "creationTimestamp": CREATED}}
    assert cells(key, crd) == ["widgets.example.com", "2024-05-01T11:00:00Z"]

    assert [x["name"] for x in cols("rbac.authorization.k8s.io/roles")] == ["Name", "Age"]
    assert cells("core/bindings", {"metadata": md("b")}) == ["b", "60m"]

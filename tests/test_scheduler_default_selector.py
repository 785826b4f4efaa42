"""Default topology spreading finds the owners selecting a pod through a label index."""

from __future__ import annotations

from typing import Any

from skiff.api.selectors.labels import LabelSelector, parse_label_selector
from skiff.client import Client
from skiff.scheduler.pod_info import pod_info
from skiff.scheduler.scheduler import Scheduler


def owner(kind: str, name: str, ns: str, selector: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": ns, "uid": f"{ns}-{name}",
                         "resourceVersion": "1"},
            "spec": {"selector": selector}}


def pod(labels: dict[str, str], ns: str = "a") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": ns, "uid": "p", "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}


def requirements(sel: LabelSelector | None) -> set[str]:
    return {str(r) for r in sel.requirements} if sel is not None else set()


async def test_only_selecting_owners_count_however_many_the_namespace_has() -> None:
    client = Client("https://127.0.0.1:1")
    s = Scheduler(client)
    many = [owner("ReplicaSet", f"rs{i}", "a", {"matchLabels": {"app": f"d{i}", "h": "x"}})
            for i in range(200)]
    others = [
        owner("ReplicaSet", "same-labels-elsewhere", "b", {"matchLabels": {"app": "d7"}}),
        owner("StatefulSet", "by-expression", "a", {"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web"]}]}),
        owner("StatefulSet", "expression-elsewhere", "b", {"matchExpressions": [
            {"key": "tier", "operator": "Exists"}]}),
    ]
    for obj in [*many, *others]:
        inf = s.replicasets if obj["kind"] == "ReplicaSet" else s.statefulsets
        await inf._apply("ADDED", obj)  # noqa: SLF001 - filling the cache directly

    got = s._default_selector(pod_info(pod({"app": "d7", "h": "x", "tier": "web"})))
    assert requirements(got) == requirements(parse_label_selector("app=d7,h=x,tier in (web)"))
    assert s._default_selector(pod_info(pod({"app": "d7"}))) is None
    assert s._default_selector(pod_info(pod({"app": "d7"}, ns="b"))) is not None
    assert s._default_selector(pod_info(pod({}))) is None
    await client.close()

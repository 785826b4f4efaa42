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


def want(text: str) -> set[str]:
    return requirements(parse_label_selector(text))


async def test_remembered_selectors_follow_owner_changes_but_not_status_updates() -> None:
    client = Client("https://127.0.0.1:1")
    s = Scheduler(client)
    p = pod_info(pod({"app": "web", "tier": "a"}))
    assert s._default_selector(p) is None
    rs = owner("ReplicaSet", "web", "a", {"matchLabels": {"app": "web"}})
    await s.replicasets._apply("ADDED", rs)  # noqa: SLF001 - filling the cache directly
    first = s._default_selector(p)
    assert requirements(first) == want("app=web")
    # A status update keeps the remembered answer (the same object).
    await s.replicasets._apply("MODIFIED", {**rs, "status": {"replicas": 3}})  # noqa: SLF001
    assert s._default_selector(p) is first
    await s.replicasets._apply("MODIFIED", {  # noqa: SLF001
        **rs, "spec": {"selector": {"matchLabels": {"app": "web", "tier": "a"}}}})
    assert requirements(s._default_selector(p)) == want("app=web,tier=a")
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "svc", "namespace": "a", "resourceVersion": "1"},
           "spec": {"selector": {"tier": "a"}}}
    await s.services._apply("ADDED", svc)  # noqa: SLF001
    assert requirements(s._default_selector(p)) == want("tier in (a),app=web,tier=a")
    await s.services._apply("MODIFIED", {**svc, "spec": {"selector": {"app": "web"}}})  # noqa: SLF001
    assert requirements(s._default_selector(p)) == want("app in (web),app=web,tier=a")
    await s.replicasets._apply("DELETED", rs)  # noqa: SLF001
    assert requirements(s._default_selector(p)) == want("app in (web)")
    await s.services._apply("DELETED", svc)  # noqa: SLF001
    assert s._default_selector(p) is None
    await client.close()


async def test_an_owner_change_forgets_only_the_label_sets_it_could_select() -> None:
    client = Client("https://127.0.0.1:1")
    s = Scheduler(client)
    web = owner("ReplicaSet", "web", "a", {"matchLabels": {"app": "web"}})
    await s.replicasets._apply("ADDED", web)  # noqa: SLF001 - filling the cache directly
    p = pod_info(pod({"app": "web"}))
    first = s._default_selector(p)
    # Another Deployment's ReplicaSet: the web pods' answer stays.
    await s.replicasets._apply("ADDED", owner("ReplicaSet", "db", "a",  # noqa: SLF001
                                              {"matchLabels": {"app": "db"}}))
    assert s._default_selector(p) is first
    # One that selects them too: worked out again.
    await s.replicasets._apply("ADDED", owner("ReplicaSet", "also", "a",  # noqa: SLF001
                                              {"matchLabels": {"app": "web"}}))
    assert s._default_selector(p) is not first
    # A selector without a pinned value could select anything in the namespace.
    second = s._default_selector(p)
    await s.statefulsets._apply("ADDED", owner("StatefulSet", "any", "a", {  # noqa: SLF001
        "matchExpressions": [{"key": "tier", "operator": "Exists"}]}))
    assert s._default_selector(p) is not second
    await client.close()


def test_owner_selectors_read_the_fast_way_equal_the_checked_way() -> None:
    from skiff.api.selectors.labels import from_label_selector_dict
    from skiff.scheduler.default_spreading import _owner_selector

    for raw in ({"matchLabels": {"app": "web", "pod-template-hash": "abc"}},
                {"matchLabels": {"app": "web"}, "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["a"]}]},
                {}, None):
        assert _owner_selector(raw) == from_label_selector_dict(raw)
    assert _owner_selector({"matchExpressions": [{"key": "x", "operator": "Bad"}]}) is None

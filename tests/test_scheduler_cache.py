"""The scheduler cache's incremental state and the framework's early stop: what the
fast paths remember must always equal what a fresh computation gives."""

from __future__ import annotations

import random

import numpy as np
import pytest

from skiff.scheduler.algorithm import Algorithm, FitError, default_framework
from skiff.scheduler.cache import ClusterCache
from skiff.scheduler.framework import CycleState
from skiff.scheduler.pod_info import pod_info
from tests.test_scheduler_plugins import cluster, node, pod, verdicts


def _check_remaining(cache: ClusterCache) -> None:
    for info in cache.nodes.values():
        s = info.slot
        assert (cache.remaining[:, s] == cache.allocatable[:, s] - cache.requested[:, s]).all()


def test_remaining_capacity_follows_every_change() -> None:
    rng = random.Random(7)
    cache = cluster([node(f"n{i}", cpu="4", extra={"example.com/dongle": "3"}) for i in range(6)])
    bound: list[str] = []
    for i in range(60):
        step = rng.random()
        if step < 0.5 or not bound:
            p = pod(f"p{i}", cpu=f"{rng.randint(1, 9) * 100}m", memory=f"{rng.randint(1, 5)}Gi",
                    node_name=f"n{rng.randrange(6)}")
            if rng.random() < 0.3:
                p["spec"]["containers"][0]["resources"]["requests"]["example.com/dongle"] = "1"
            cache.add_pod(pod_info(p))
            bound.append(f"default/p{i}")
        elif step < 0.7:
            cache.remove_pod(bound.pop(rng.randrange(len(bound))))
        elif step < 0.85:
            info = pod_info(pod(f"a{i}", cpu="250m"))
            cache.assume(info, f"n{rng.randrange(6)}")
            if rng.random() < 0.5:
                cache.forget(info.key)
        else:
            # A node's allocatable changes (or it goes and comes back with its pods counted).
            name = f"n{rng.randrange(6)}"
            if rng.random() < 0.5:
                cache.set_node(node(name, cpu=f"{rng.randint(2, 8)}"))
            else:
                cache.remove_node(name)
                _check_remaining(cache)
                cache.set_node(node(name, cpu="4"))
        _check_remaining(cache)


def test_confirming_an_assumed_pod_keeps_it_counted_once() -> None:
    cache = cluster([node("n1", cpu="2")])
    info = pod_info(pod("p", cpu="1"))
    cache.assume(info, "n1")
    bound = pod("p", cpu="1", node_name="n1")
    confirmed = cache.confirm("default/p", bound)
    assert confirmed.pod is bound and not cache.is_assumed("default/p")
    assert cache.requested[cache.cpu_row, cache.nodes["n1"].slot] == 1000
    # The queue's copy of the pod is untouched by the assumption.
    assert info.node_name == ""


def test_status_updates_keep_a_pod_counted_and_other_changes_reparse_it() -> None:
    cache = cluster([node("n1", cpu="2")])
    cache.add_pod(pod_info(pod("p", cpu="1", labels={"app": "a"}, node_name="n1")))
    running = pod("p", cpu="1", labels={"app": "a"}, node_name="n1")
    running["status"] = {"phase": "Running", "podIP": "10.0.0.9"}
    info = cache.refresh("default/p", running)
    assert info is not None and info.pod is running and cache.pods["default/p"] is info
    assert cache.requested[cache.cpu_row, cache.nodes["n1"].slot] == 1000
    # What the scheduler counts changed: parse it again.
    relabelled = pod("p", cpu="1", labels={"app": "b"}, node_name="n1")
    assert cache.refresh("default/p", relabelled) is None
    leaving = pod("p", cpu="1", labels={"app": "a"}, node_name="n1")
    leaving["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert cache.refresh("default/p", leaving) is None
    assert cache.refresh("default/p", pod("p", cpu="2", labels={"app": "a"},
                                          node_name="n1")) is None
    assert cache.refresh("default/other", running) is None
    # An assumed pod waits for its binding's echo (confirm), whatever comes first.
    cache.assume(pod_info(pod("q", cpu="1")), "n1")
    assert cache.refresh("default/q", pod("q", cpu="1")) is None


def test_count_indexes_follow_pods_whatever_their_label_sets() -> None:
    from skiff.api.selectors.labels import from_label_selector_dict

    cache = cluster([node("n1"), node("n2")])
    web = from_label_selector_dict({"matchLabels": {"app": "web"}})
    ns = frozenset(["default"])
    counts = cache.count_matching(ns, web)
    cache.add_pod(pod_info(pod("a", labels={"app": "web"}, node_name="n1")))
    cache.add_pod(pod_info(pod("b", labels={"app": "db"}, node_name="n1")))
    # A second index appears after pods with these label sets were seen once.
    tier = from_label_selector_dict({"matchExpressions": [
        {"key": "tier", "operator": "Exists"}]})
    tiers = cache.count_matching(ns, tier)
    cache.add_pod(pod_info(pod("c", labels={"app": "web", "tier": "1"}, node_name="n2")))
    cache.add_pod(pod_info(pod("d", labels={"app": "web"}, node_name="n2")))
    cache.add_pod(pod_info(pod("e", labels={"app": "web"}, namespace="other", node_name="n2")))
    s1, s2 = cache.nodes["n1"].slot, cache.nodes["n2"].slot
    assert (counts[s1], counts[s2]) == (1, 2)
    assert (tiers[s1], tiers[s2]) == (0, 1)
    cache.remove_pod("default/d")
    cache.remove_pod("default/c")
    assert (counts[s1], counts[s2], tiers[s2]) == (1, 0, 0)


def test_existing_anti_affinity_seen_by_pods_with_remembered_label_sets() -> None:
    cache = cluster([node("n1"), node("n2")])

    def anti_to(app: str) -> dict:
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"app": app}},
            "topologyKey": "kubernetes.io/hostname"}]}}

    # A cycle for this label set while only a term about other pods exists: the answer
    # "no term selects app=web" is remembered...
    cache.add_pod(pod_info(pod("other", node_name="n2", affinity=anti_to("db"))))
    assert verdicts(cache, pod("x", labels={"app": "web"}))["n1"][0] == "Success"
    # ...until a new term appears.
    anti = anti_to("web")
    cache.add_pod(pod_info(pod("guard", node_name="n1", affinity=anti)))
    v = verdicts(cache, pod("y", labels={"app": "web"}))
    assert v["n1"][1] == ["node(s) didn't satisfy existing pods anti-affinity rules"]
    assert v["n2"][0] == "Success"
    cache.remove_pod("default/guard")
    assert verdicts(cache, pod("z", labels={"app": "web"}))["n1"][0] == "Success"


def test_namespace_labels_change_what_a_namespace_selector_term_matches() -> None:
    cache = cluster([node("n1"), node("n2")])
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"app": "web"}},
        "namespaceSelector": {"matchLabels": {"team": "a"}},
        "topologyKey": "kubernetes.io/hostname"}]}}
    cache.add_pod(pod_info(pod("guard", node_name="n1", affinity=anti)))
    cache.set_namespace_labels("prod", {"team": "b"})
    assert verdicts(cache, pod("x", labels={"app": "web"}, namespace="prod"))["n1"][0] \
        == "Success"
    cache.set_namespace_labels("prod", {"team": "a"})
    assert verdicts(cache, pod("y", labels={"app": "web"}, namespace="prod"))["n1"][0] \
        != "Success"


@pytest.mark.parametrize("key", ["kubernetes.io/hostname", "zone"])
def test_domain_sums_match_a_plain_sum_per_domain(key: str) -> None:
    nodes = [node(f"n{i}", labels={"zone": f"z{i % 3}"}) for i in range(9)]
    nodes.append(node("bare", labels={}))
    nodes[-1]["metadata"]["labels"] = {}
    cache = cluster(nodes)
    cache.remove_node("n4")
    per_node = np.arange(cache.capacity, dtype=np.int64)
    got = cache.domain_sums(key, per_node)
    for info in cache.nodes.values():
        value = info.labels.get(key)
        want = 0 if value is None else sum(
            int(per_node[o.slot]) for o in cache.nodes.values()
            if o.node is not None and o.labels.get(key) == value)
        assert got[info.slot] == want, info.name


def test_search_stops_at_enough_feasible_nodes_and_attributes_rejections_in_order() -> None:
    # 200 nodes: upstream looks for max(100, 200 × 50%) = 100 feasible ones.
    nodes = [node(f"n{i:03}", cpu="1" if i % 4 == 0 else "4",
                  taints=[{"key": "k", "effect": "NoSchedule"}] if i % 5 == 0 else None)
             for i in range(200)]
    cache = cluster(nodes)
    algorithm = Algorithm(default_framework())
    decision = algorithm.schedule(CycleState(), pod_info(pod("p", cpu="2")), cache)
    assert decision.feasible == 100
    # Every node walked either fits or was rejected, each by the first filter failing it.
    rejected = decision.diagnosis.rejected
    assert decision.evaluated == 100 + sum(s.size for s in rejected.values())
    by_name = {p: {cache.info_at(int(s)).name for s in slots} for p, slots in rejected.items()}
    walked = [f"n{i:03}" for i in range(decision.evaluated)]
    assert by_name["TaintToleration"] == {n for n in walked if int(n[1:]) % 5 == 0}
    assert by_name["NodeResourcesFit"] == {n for n in walked
                                           if int(n[1:]) % 4 == 0 and int(n[1:]) % 5}
    # The next cycle starts where this one stopped.
    assert algorithm.next_start == decision.evaluated


def test_unschedulable_pod_reports_every_node() -> None:
    cache = cluster([node(f"n{i}", cpu="1") for i in range(150)])
    with pytest.raises(FitError) as err:
        Algorithm(default_framework()).schedule(CycleState(), pod_info(pod("p", cpu="2")), cache)
    assert err.value.message().startswith("0/150 nodes are available: 150 Insufficient cpu.")


def test_spread_sees_nodes_relabelled_or_added_after_a_cycle() -> None:
    spread = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "web"}}}]
    cache = cluster([node("a1", labels={"zone": "a"}), node("b1", labels={"zone": "b"})],
                    [pod("w1", labels={"app": "web"}, node_name="a1")])

    def fits(name: str) -> dict[str, str]:
        v = verdicts(cache, pod(name, labels={"app": "web"}, topologySpreadConstraints=spread))
        return {n: code for n, (code, _) in v.items()}

    assert fits("p1") == {"a1": "Unschedulable", "b1": "Success"}
    # b1 moves to zone a: one domain is left, where a second pod is fine.
    cache.set_node(node("b1", labels={"zone": "a"}))
    assert fits("p2") == {"a1": "Success", "b1": "Success"}
    # A new, empty zone c: zone a (1 pod) is now one above the minimum.
    cache.set_node(node("c1", labels={"zone": "c"}))
    assert fits("p3") == {"a1": "Unschedulable", "b1": "Unschedulable", "c1": "Success"}


def test_a_new_count_index_counts_what_a_walk_over_every_pod_counts() -> None:
    from skiff.api.selectors.labels import from_label_selector_dict

    rng = random.Random(3)
    cache = cluster([node(f"n{i}") for i in range(5)])
    keys: list[str] = []
    for i in range(200):
        if keys and rng.random() < 0.2:
            cache.remove_pod(keys.pop(rng.randrange(len(keys))))
            continue
        p = pod(f"p{i}", labels={"app": rng.choice("abc"), "tier": rng.choice("xy")},
                namespace=rng.choice(["default", "other"]), node_name=f"n{rng.randrange(5)}")
        if rng.random() < 0.1:
            p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        info = pod_info(p)
        cache.add_pod(info)
        keys.append(info.key)
    selectors = [{"matchLabels": {"app": "a"}}, {"matchLabels": {"tier": "y"}},
                 {"matchExpressions": [{"key": "app", "operator": "In", "values": ["b", "c"]}]}]
    for raw in selectors:
        sel = from_label_selector_dict(raw)
        for ns in (None, frozenset(["other"])):
            got = cache.count_matching(ns, sel)
            want = np.zeros(cache.capacity, dtype=np.int64)
            for p in cache.pods.values():
                if not p.terminating and (ns is None or p.namespace in ns) \
                        and sel.matches(p.labels):
                    want[cache.nodes[p.node_name].slot] += 1
            assert (got == want).all()


@pytest.mark.parametrize("strategy", ["LeastAllocated", "MostAllocated"])
def test_remembered_allocation_scores_follow_every_change(strategy: str) -> None:
    from skiff.scheduler.plugins.node_resources_fit import NodeResourcesFit, _allocation_scores

    rng = random.Random(11)
    cache = cluster([node(f"n{i}", cpu=rng.choice(["0", "2", "4"]),
                          memory=rng.choice(["0", "8Gi", "16Gi"])) for i in range(6)])
    plugin = NodeResourcesFit(strategy)
    shapes = [pod_info(pod("x")), pod_info(pod("y", cpu="500m", memory="1Gi"))]
    bound: list[str] = []
    for i in range(300):
        step = rng.random()
        name = f"n{rng.randrange(6)}"
        if step < 0.45 or not bound:
            cache.add_pod(pod_info(pod(f"p{i}", cpu=rng.choice(["", "250m", "3"]),
                                       memory=rng.choice(["", "1Gi"]), node_name=name)))
            bound.append(f"default/p{i}")
        elif step < 0.7:
            cache.remove_pod(bound.pop(rng.randrange(len(bound))))
        elif step < 0.8:
            info = pod_info(pod(f"a{i}", cpu="1"))
            cache.assume(info, name)
            if rng.random() < 0.5:
                cache.forget(info.key)
        elif step < 0.9:
            cache.set_node(node(name, cpu=rng.choice(["1", "8"]), memory="4Gi"))
        elif rng.random() < 0.5:
            cache.remove_node(name)
            cache.set_node(node(name))
        else:
            cache.set_node(node(f"new{i}"))  # more slots, sometimes more capacity
        for shape in shapes:
            slots = cache.order()
            got = plugin.score(CycleState(), shape, cache, slots)
            want = _allocation_scores(cache, shape.non_zero, strategy == "MostAllocated")
            assert (got == want[slots]).all(), i


def test_remembered_balance_scores_follow_every_change() -> None:
    from skiff.scheduler.plugins.balanced_allocation import BalancedAllocation, _balance_scores

    rng = random.Random(5)
    cache = cluster([node(f"n{i}", cpu=rng.choice(["0", "3", "4"]),
                          memory=rng.choice(["0", "7Gi", "16Gi"])) for i in range(5)])
    plugin = BalancedAllocation()
    shapes = [pod_info(pod("x", cpu="100m", memory="500Mi")), pod_info(pod("y", cpu="1"))]
    bound: list[str] = []
    for i in range(300):
        name = f"n{rng.randrange(5)}"
        if rng.random() < 0.55 or not bound:
            cache.add_pod(pod_info(pod(f"p{i}", cpu=rng.choice(["", "333m", "2"]),
                                       memory=rng.choice(["", "1500Mi"]), node_name=name)))
            bound.append(f"default/p{i}")
        elif rng.random() < 0.8:
            cache.remove_pod(bound.pop(rng.randrange(len(bound))))
        else:
            cache.set_node(node(name, cpu=rng.choice(["0", "1", "6"]), memory="9Gi"))
        for shape in shapes:
            slots = cache.order()
            wanted = (shape.requests.get("cpu", 0), shape.requests.get("memory", 0))
            got = plugin.score(CycleState(), shape, cache, slots)
            assert (got == _balance_scores(cache, wanted)[slots]).all(), i

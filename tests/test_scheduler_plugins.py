"""Scheduler plugins against the cases upstream documents for them (one cache per case)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from skiff.scheduler.algorithm import Algorithm, FitError, default_framework
from skiff.scheduler.cache import ClusterCache
from skiff.scheduler.framework import UNRESOLVABLE, UNSCHEDULABLE, CycleState
from skiff.scheduler.pod_info import non_zero_requests, pod_info, pod_requests

Obj = dict[str, Any]


def node(name: str, cpu: str = "4", memory: str = "16Gi", pods: int = 110,
         labels: dict[str, str] | None = None, taints: list[Obj] | None = None,
         unschedulable: bool = False, extra: dict[str, str] | None = None,
         images: list[tuple[str, int]] | None = None) -> Obj:
    alloc = {"cpu": cpu, "memory": memory, "pods": str(pods), **(extra or {})}
    return {"metadata": {"name": name,
                         "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"allocatable": alloc, "capacity": alloc,
                       "images": [{"names": [n], "sizeBytes": s} for n, s in images or []]}}


def pod(name: str, cpu: str = "", memory: str = "", labels: dict[str, str] | None = None,
        node_name: str = "", namespace: str = "default", priority: int = 0,
        **spec: Any) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    container: Obj = {"name": "c", "image": spec.pop("image", "nginx:1.27")}
    if requests:
        container["resources"] = {"requests": requests}
    if "ports" in spec:
        container["ports"] = spec.pop("ports")
    body = {"containers": [container], "priority": priority, **spec}
    if node_name:
        body["nodeName"] = node_name
    return {"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                         "labels": labels or {}},
            "spec": body, "status": {"phase": "Running" if node_name else "Pending"}}


def cluster(nodes: list[Obj], pods: list[Obj] = ()) -> ClusterCache:  # type: ignore[assignment]
    cache = ClusterCache()
    for n in nodes:
        cache.set_node(n)
    for p in pods:
        cache.add_pod(pod_info(p))
    cache.namespace_labels["default"] = {}
    return cache


def verdicts(cache: ClusterCache, p: Obj) -> dict[str, tuple[str, list[str]]]:
    """node → (status code, reasons) for every node; feasible nodes get ("Success", [])."""
    fw = default_framework()
    info = pod_info(p)
    state = CycleState()
    result = fw.find_feasible(state, info, cache, cache.order())
    out = {cache.info_at(int(s)).name: ("Success", []) for s in result.feasible}
    for name, status in fw.statuses(state, info, cache, result.diagnosis).items():
        out[name] = (status.code, status.reasons)
    return out


def scores(cache: ClusterCache, p: Obj, plugin: str) -> dict[str, int]:
    """node → one plugin's normalized (unweighted) score over the feasible nodes."""
    fw = default_framework()
    info = pod_info(p)
    state = CycleState()
    result = fw.find_feasible(state, info, cache, cache.order())
    scored = fw.score(state, info, cache, result.feasible)
    weight = fw.weights[plugin]
    values = scored.by_plugin.get(plugin, np.zeros(result.feasible.size, dtype=np.int64))
    return {cache.info_at(int(s)).name: int(v) // weight
            for s, v in zip(result.feasible, values, strict=True)}


# -- requests ----------------------------------------------------------------------------------


def test_requests_take_the_larger_of_containers_and_init_containers_plus_overhead() -> None:
    spec = {"containers": [{"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                           {"resources": {"requests": {"cpu": "1"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "3", "memory": "512Mi"}}}],
            "overhead": {"cpu": "250m"}}
    assert pod_requests(spec) == {"cpu": 3250, "memory": 1024 ** 3}


def test_sidecar_init_containers_add_to_the_pod() -> None:
    spec = {"containers": [{"resources": {"requests": {"cpu": "1"}}}],
            "initContainers": [
                {"restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
                {"resources": {"requests": {"cpu": "2"}}}]}
    # The sidecar runs beside the app (1 + 0.5) and beside the later init container (2 + 0.5).
    assert pod_requests(spec)["cpu"] == 2500


def test_non_zero_requests_default_missing_values() -> None:
    assert non_zero_requests({"containers": [{}, {"resources": {"requests": {"cpu": "1"}}}]}) \
        == (1100, 2 * 200 * 1024 * 1024)


# -- NodeResourcesFit --------------------------------------------------------------------------


def test_fit_reports_every_insufficient_resource() -> None:
    cache = cluster([node("n1", cpu="1", memory="1Gi"), node("n2", cpu="4", memory="8Gi")])
    v = verdicts(cache, pod("p", cpu="2", memory="2Gi"))
    assert v["n1"] == (UNSCHEDULABLE, ["Insufficient cpu", "Insufficient memory"])
    assert v["n2"] == ("Success", [])


def test_fit_counts_pods_already_there_and_the_pod_limit() -> None:
    cache = cluster([node("n1", cpu="2", pods=1)], [pod("a", cpu="500m", node_name="n1")])
    assert verdicts(cache, pod("p"))["n1"] == (UNSCHEDULABLE, ["Too many pods"])
    cache = cluster([node("n1", cpu="2")], [pod("a", cpu="1500m", node_name="n1")])
    assert verdicts(cache, pod("p", cpu="600m"))["n1"][1] == ["Insufficient cpu"]
    assert verdicts(cache, pod("p", cpu="500m"))["n1"][0] == "Success"


def test_fit_extended_resources() -> None:
    cache = cluster([node("gpu", extra={"nvidia.com/gpu": "2"}), node("plain")])
    spec_pod = pod("p")
    spec_pod["spec"]["containers"][0]["resources"] = {"requests": {"nvidia.com/gpu": "1"}}
    v = verdicts(cache, spec_pod)
    assert v["gpu"][0] == "Success"
    assert v["plain"] == (UNSCHEDULABLE, ["Insufficient nvidia.com/gpu"])


def test_least_allocated_scores_as_upstream_documents() -> None:
    # Pod 3000m/5000: on 4000m/10000 → cpu 25, memory 50 → 37; on 6000m/10000 → 50.
    cache = cluster([node("n1", cpu="4", memory="10000"), node("n2", cpu="6", memory="10000")])
    assert scores(cache, pod("p", cpu="3", memory="5000"), "NodeResourcesFit") == \
        {"n1": 37, "n2": 50}


def test_balanced_allocation_scores_as_upstream_documents() -> None:
    # Fractions 0.75/0.5 → std 0.125 → 87; 0.5/0.5 → 100.
    cache = cluster([node("n1", cpu="4", memory="10000"), node("n2", cpu="6", memory="10000")])
    assert scores(cache, pod("p", cpu="3", memory="5000"),
                  "NodeResourcesBalancedAllocation") == {"n1": 87, "n2": 100}


def test_balanced_allocation_skips_best_effort_pods() -> None:
    cache = cluster([node("n1"), node("n2", cpu="8")])
    assert scores(cache, pod("p"), "NodeResourcesBalancedAllocation") == {"n1": 0, "n2": 0}


# -- TaintToleration ---------------------------------------------------------------------------

ML = {"key": "dedicated", "value": "ml", "effect": "NoSchedule"}


@pytest.mark.parametrize("tolerations, ok", [
    ([], False),
    ([{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}], True),
    ([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}], False),
    ([{"key": "dedicated", "operator": "Exists"}], True),
    ([{"operator": "Exists"}], True),
    ([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}], False),
    ([{"key": "dedicated", "value": "ml"}], True),
])
def test_taint_toleration_filter(tolerations: list[Obj], ok: bool) -> None:
    cache = cluster([node("n1", taints=[ML])])
    v = verdicts(cache, pod("p", tolerations=tolerations))["n1"]
    if ok:
        assert v == ("Success", [])
    else:
        assert v == (UNRESOLVABLE, ["node(s) had untolerated taint {dedicated: ml}"])


def test_no_execute_repels_and_prefer_no_schedule_only_scores() -> None:
    soft = {"key": "spot", "value": "yes", "effect": "PreferNoSchedule"}
    cache = cluster([node("n1", taints=[{"key": "x", "effect": "NoExecute"}]),
                     node("n2", taints=[soft]), node("n3")])
    v = verdicts(cache, pod("p"))
    assert v["n1"] == (UNRESOLVABLE, ["node(s) had untolerated taint {x: }"])
    assert scores(cache, pod("p"), "TaintToleration") == {"n2": 0, "n3": 100}
    tolerant = pod("q", tolerations=[{"key": "spot", "operator": "Exists",
                                      "effect": "PreferNoSchedule"}])
    assert scores(cache, tolerant, "TaintToleration") == {"n2": 100, "n3": 100}


# -- NodeUnschedulable, NodeName, NodePorts ----------------------------------------------------


def test_cordoned_nodes_take_only_tolerating_pods() -> None:
    cache = cluster([node("n1", unschedulable=True)])
    assert verdicts(cache, pod("p"))["n1"] == (UNRESOLVABLE, ["node(s) were unschedulable"])
    tolerant = pod("ds", tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                       "operator": "Exists", "effect": "NoSchedule"}])
    assert verdicts(cache, tolerant)["n1"][0] == "Success"


def test_node_name_plugin() -> None:
    cache = cluster([node("n1"), node("n2")])
    p = pod("p")
    p["spec"]["nodeName"] = "n2"
    v = verdicts(cache, p)
    assert v["n1"] == (UNRESOLVABLE, ["node(s) didn't match the requested node name"])
    assert v["n2"][0] == "Success"


def test_host_ports_conflict_per_ip_and_protocol() -> None:
    taken = pod("a", node_name="n1", ports=[{"containerPort": 80, "hostPort": 8080,
                                             "hostIP": "10.0.0.1"}])
    cache = cluster([node("n1")], [taken])

    def wants(port: int, ip: str = "", proto: str = "TCP") -> str:
        entry: Obj = {"containerPort": 80, "hostPort": port, "protocol": proto}
        if ip:
            entry["hostIP"] = ip
        return verdicts(cache, pod("p", ports=[entry]))["n1"][0]

    assert wants(8080) == UNSCHEDULABLE  # 0.0.0.0 overlaps every address
    assert wants(8080, "10.0.0.1") == UNSCHEDULABLE
    assert wants(8080, "10.0.0.2") == "Success"
    assert wants(8080, proto="UDP") == "Success"
    assert wants(9090) == "Success"


# -- NodeAffinity ------------------------------------------------------------------------------


def expr(key: str, op: str, *values: str) -> Obj:
    out: Obj = {"key": key, "operator": op}
    if values:
        out["values"] = list(values)
    return out


@pytest.mark.parametrize("requirement, matches", [
    (expr("disk", "In", "ssd", "nvme"), {"a"}),
    (expr("disk", "NotIn", "ssd"), {"b", "c"}),
    (expr("disk", "Exists"), {"a", "b"}),
    (expr("disk", "DoesNotExist"), {"c"}),
    (expr("cores", "Gt", "8"), {"b"}),
    (expr("cores", "Lt", "8"), {"a"}),
])
def test_node_affinity_operators(requirement: Obj, matches: set[str]) -> None:
    cache = cluster([node("a", labels={"disk": "ssd", "cores": "4"}),
                     node("b", labels={"disk": "hdd", "cores": "16"}), node("c")])
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [requirement]}]}}}
    v = verdicts(cache, pod("p", affinity=affinity))
    assert {n for n, (code, _) in v.items() if code == "Success"} == matches
    for n in {"a", "b", "c"} - matches:
        assert v[n] == (UNRESOLVABLE, ["node(s) didn't match Pod's node affinity/selector"])


def test_node_selector_and_terms_ored() -> None:
    cache = cluster([node("a", labels={"disktype": "ssd", "zone": "x"}),
                     node("b", labels={"disktype": "ssd", "zone": "y"}),
                     node("c", labels={"zone": "x"})])
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [expr("zone", "In", "x")]},
                              {"matchFields": [expr("metadata.name", "In", "b")]}]}}}
    v = verdicts(cache, pod("p", nodeSelector={"disktype": "ssd"}, affinity=affinity))
    assert {n for n, (c, _) in v.items() if c == "Success"} == {"a", "b"}


def test_preferred_node_affinity_scores_by_weight() -> None:
    cache = cluster([node("a", labels={"zone": "x", "gpu": "1"}), node("b", labels={"zone": "x"}),
                     node("c")])
    affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 20, "preference": {"matchExpressions": [expr("zone", "In", "x")]}},
        {"weight": 80, "preference": {"matchExpressions": [expr("gpu", "Exists")]}}]}}
    assert scores(cache, pod("p", affinity=affinity), "NodeAffinity") == \
        {"a": 100, "b": 20, "c": 0}


# -- PodTopologySpread -------------------------------------------------------------------------


def zone_nodes() -> list[Obj]:
    return [node(f"{z}{i}", labels={"zone": z}) for z in ("a", "b") for i in (1, 2)]


SPREAD = [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
           "labelSelector": {"matchLabels": {"app": "web"}}}]


def test_spread_filters_domains_that_would_exceed_max_skew() -> None:
    # Upstream's documented example: zone a has 2 matching pods, zone b none.
    existing = [pod("w1", labels={"app": "web"}, node_name="a1"),
                pod("w2", labels={"app": "web"}, node_name="a2")]
    cache = cluster(zone_nodes(), existing)
    v = verdicts(cache, pod("p", labels={"app": "web"}, topologySpreadConstraints=SPREAD))
    assert v["a1"] == (UNSCHEDULABLE, ["node(s) didn't match pod topology spread constraints"])
    assert v["b1"][0] == v["b2"][0] == "Success"


def test_spread_missing_label_and_min_domains() -> None:
    nodes = [*zone_nodes(), node("nolabel")]
    existing = [pod("w1", labels={"app": "web"}, node_name="a1")]
    cache = cluster(nodes, existing)
    v = verdicts(cache, pod("p", labels={"app": "web"}, topologySpreadConstraints=SPREAD))
    assert v["nolabel"] == (UNRESOLVABLE, [
        "node(s) didn't match pod topology spread constraints (missing required label)"])
    assert v["a2"][0] == UNSCHEDULABLE and v["b1"][0] == "Success"
    # With minDomains 3 but two zones, the global minimum counts as 0: zone b still fits,
    # zone a (1 + 1 - 0 = 2 > 1) does not.
    wide = [{**SPREAD[0], "minDomains": 3}]
    existing = [pod("w1", labels={"app": "web"}, node_name="a1"),
                pod("w2", labels={"app": "web"}, node_name="b1")]
    v = verdicts(cluster(zone_nodes(), existing),
                 pod("p", labels={"app": "web"}, topologySpreadConstraints=wide))
    assert {n for n, (c, _) in v.items() if c == "Success"} == set()


def test_spread_scoring_prefers_emptier_domains() -> None:
    existing = [pod("w1", labels={"app": "web"}, node_name="a1")]
    soft = [{**SPREAD[0], "whenUnsatisfiable": "ScheduleAnyway"}]
    s = scores(cluster(zone_nodes(), existing),
               pod("p", labels={"app": "web"}, topologySpreadConstraints=soft),
               "PodTopologySpread")
    assert s["b1"] == s["b2"] == 100
    assert s["a1"] < 100 and s["a1"] == s["a2"]


# -- InterPodAffinity --------------------------------------------------------------------------


def term(labels: dict[str, str], key: str = "zone") -> Obj:
    return {"labelSelector": {"matchLabels": labels}, "topologyKey": key}


def test_required_affinity_follows_matching_pods_domain() -> None:
    cache = cluster(zone_nodes(), [pod("db", labels={"app": "db"}, node_name="b2")])
    affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        term({"app": "db"})]}}
    v = verdicts(cache, pod("p", affinity=affinity))
    assert {n for n, (c, _) in v.items() if c == "Success"} == {"b1", "b2"}
    assert v["a1"] == (UNRESOLVABLE, ["node(s) didn't match pod affinity rules"])


def test_first_pod_of_a_self_affine_group_may_go_anywhere() -> None:
    affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        term({"app": "web"})]}}
    v = verdicts(cluster(zone_nodes()), pod("p", labels={"app": "web"}, affinity=affinity))
    assert all(code == "Success" for code, _ in v.values())


def test_anti_affinity_both_ways() -> None:
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        term({"app": "web"}, "kubernetes.io/hostname")]}}
    existing = [pod("w1", labels={"app": "web"}, node_name="a1", affinity=anti)]
    cache = cluster(zone_nodes(), existing)
    v = verdicts(cache, pod("p", labels={"app": "web"}, affinity=anti))
    assert v["a1"] == (UNSCHEDULABLE, ["node(s) didn't match pod anti-affinity rules"])
    # A pod without terms is still kept away by the existing pod's anti-affinity.
    v = verdicts(cache, pod("q", labels={"app": "web"}))
    assert v["a1"] == (UNSCHEDULABLE, ["node(s) didn't satisfy existing pods anti-affinity "
                                       "rules"])
    assert v["a2"][0] == "Success"


def test_preferred_pod_affinity_scores_domains() -> None:
    cache = cluster(zone_nodes(), [pod("cache", labels={"app": "cache"}, node_name="a1")])
    affinity = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "podAffinityTerm": term({"app": "cache"})}]}}
    s = scores(cache, pod("p", affinity=affinity), "InterPodAffinity")
    assert s == {"a1": 100, "a2": 100, "b1": 0, "b2": 0}


# -- ImageLocality -----------------------------------------------------------------------------


def test_image_locality_prefers_nodes_with_the_image() -> None:
    big = 500 * 1024 * 1024
    cache = cluster([node("warm", images=[("nginx:1.27", big)]), node("cold")])
    s = scores(cache, pod("p", image="nginx:1.27"), "ImageLocality")
    assert s["warm"] > 0 and s["cold"] == 0


# -- the whole cycle ---------------------------------------------------------------------------


def test_fit_error_message_has_upstreams_shape() -> None:
    cache = cluster([node("n1", cpu="1"), node("n2", cpu="1"),
                     node("n3", taints=[{"key": "dedicated", "value": "ml",
                                         "effect": "NoSchedule"}])])
    alg = Algorithm(default_framework())
    with pytest.raises(FitError) as err:
        alg.schedule(CycleState(), pod_info(pod("p", cpu="2")), cache)
    assert err.value.message() == ("0/3 nodes are available: 1 node(s) had untolerated taint "
                                   "{dedicated: ml}, 2 Insufficient cpu.")
    assert err.value.diagnosis.unschedulable_plugins == {"TaintToleration", "NodeResourcesFit"}


def test_assumed_pods_count_before_their_binding_is_seen() -> None:
    cache = cluster([node("n1", cpu="1"), node("n2", cpu="1")])
    alg = Algorithm(default_framework())
    first = alg.schedule(CycleState(), pod_info(pod("a", cpu="800m")), cache)
    cache.assume(pod_info(pod("a", cpu="800m")), first.node)
    second = alg.schedule(CycleState(), pod_info(pod("b", cpu="800m")), cache)
    assert {first.node, second.node} == {"n1", "n2"}
    cache.forget("default/a")
    assert cache.requested[cache.row["cpu"], cache.nodes[first.node].slot] == 0

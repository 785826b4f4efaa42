"""Vectorised scores against plain per-node computations written the way upstream's
plugins describe them (ImageLocality, default PodTopologySpread), on random clusters."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from skiff.api.selectors.labels import LabelSelector, selector_from_set
from skiff.scheduler.algorithm import default_framework
from skiff.scheduler.cache import ClusterCache
from skiff.scheduler.framework import CycleState
from skiff.scheduler.plugins.image_locality import (
    MAX_CONTAINER_THRESHOLD,
    MIN_THRESHOLD,
)
from skiff.scheduler.pod_info import PodInfo, pod_info
from tests.test_scheduler_plugins import node, pod

ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"
MB = 1024 * 1024


def _raw_scores(cache: ClusterCache, info: PodInfo, plugin: str,
                selector: LabelSelector | None = None) -> dict[str, int]:
    fw = default_framework(lambda _p: selector)
    state = CycleState()
    result = fw.find_feasible(state, info, cache, cache.order())
    scored = fw.score(state, info, cache, result.feasible)
    if plugin not in scored.raw:
        return {}  # skipped
    raw = scored.raw[plugin]
    return {cache.info_at(int(s)).name: int(v) for s, v in zip(result.feasible, raw, strict=True)}


def _random_cluster(rng: random.Random) -> tuple[ClusterCache, list[dict]]:
    nodes = []
    for i in range(rng.randint(3, 14)):
        labels = {ZONE: rng.choice("abc")} if rng.random() < 0.8 else {}
        images = [(f"img{j}:1", rng.choice([5, 60, 300, 2000]) * MB)
                  for j in range(4) if rng.random() < 0.4]
        nodes.append(node(f"n{i}", labels=labels, images=images))
        if rng.random() < 0.1:
            del nodes[-1]["metadata"]["labels"][HOSTNAME]
    cache = ClusterCache()
    for n in nodes:
        cache.set_node(n)
    for i in range(rng.randint(0, 40)):
        p = pod(f"p{i}", labels={"app": rng.choice("xy")}, node_name=rng.choice(nodes)
                ["metadata"]["name"], namespace=rng.choice(["default", "default", "other"]))
        if rng.random() < 0.1:
            p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        cache.add_pod(pod_info(p))
    return cache, nodes


@pytest.mark.parametrize("seed", range(20))
def test_image_locality_matches_a_per_node_sum(seed: int) -> None:
    rng = random.Random(seed)
    cache, nodes = _random_cluster(rng)
    images = [f"img{j}:1" for j in range(4) if rng.random() < 0.5] or ["img0:1"]
    p = pod("new", image=images[0])
    p["spec"]["containers"] += [{"name": f"c{i}", "image": im} for i, im in enumerate(images[1:])]
    have = {n["metadata"]["name"]: {i["names"][0]: i["sizeBytes"] for i in n["status"]["images"]}
            for n in nodes}
    spread = {im: sum(im in h for h in have.values()) / len(nodes) for im in images}
    got = _raw_scores(cache, pod_info(p), "ImageLocality")
    if not any(spread.values()):
        assert got == {}  # skipped: nobody has the images
        return
    top = MAX_CONTAINER_THRESHOLD * len(images)
    for name, score in got.items():
        total = sum(int(have[name][im] * spread[im]) for im in images if im in have[name])
        total = min(max(total, MIN_THRESHOLD), top)
        assert score == 100 * (total - MIN_THRESHOLD) // (top - MIN_THRESHOLD), name


def test_image_locality_follows_node_image_changes() -> None:
    cache = ClusterCache()
    cache.set_node(node("a", images=[("nginx:1", 500 * MB)]))
    cache.set_node(node("b"))
    info = pod_info(pod("p", image="nginx:1"))
    first = _raw_scores(cache, info, "ImageLocality")
    assert first["a"] > 0 and first["b"] == 0
    cache.set_node(node("b", images=[("nginx:1", 500 * MB)]))
    second = _raw_scores(cache, info, "ImageLocality")
    assert second["a"] == second["b"] > first["a"]  # on every node: a larger share
    cache.remove_node("a")
    cache.set_node(node("b"))
    assert _raw_scores(cache, info, "ImageLocality") == {}


@pytest.mark.parametrize("seed", range(30))
def test_default_spreading_matches_a_per_node_count(seed: int) -> None:
    rng = random.Random(seed)
    cache, nodes = _random_cluster(rng)
    selector = selector_from_set({"app": "x"})
    info = pod_info(pod("new", labels={"app": "x"}))
    got = _raw_scores(cache, info, "PodTopologySpread", selector)

    def matching(name: str) -> int:
        return sum(1 for p in cache.pods.values() if p.node_name == name
                   and p.namespace == "default" and not p.terminating
                   and selector.matches(p.labels))

    zone_of = {n["metadata"]["name"]: n["metadata"]["labels"].get(ZONE) for n in nodes}
    named = {n["metadata"]["name"] for n in nodes if HOSTNAME in n["metadata"]["labels"]}
    # Upstream: nodes without the zone label make up one more domain (the empty value).
    zones = {zone_of[name] or "" for name in got}
    per_zone = {z: sum(matching(n) for n, zz in zone_of.items() if zz == z) for z in zones}
    for name, score in got.items():
        total = 0.0
        if name in named:
            total += matching(name) * math.log(len(got) + 2) + (3 - 1)
        if zone_of[name] is not None:
            total += per_zone[zone_of[name]] * math.log(len(zones) + 2) + (5 - 1)
        assert score == round(total), name


@pytest.mark.parametrize("seed", range(20))
def test_explicit_soft_spreading_matches_a_per_node_count(seed: int) -> None:
    rng = random.Random(seed)
    cache, nodes = _random_cluster(rng)
    spread = [{"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
               "labelSelector": {"matchLabels": {"app": "x"}}}
              for key, skew in ((ZONE, 2), (HOSTNAME, 1))]
    info = pod_info(pod("new", labels={"app": "x"}, topologySpreadConstraints=spread))
    got = _raw_scores(cache, info, "PodTopologySpread")
    selector = selector_from_set({"app": "x"})
    labels = {n["metadata"]["name"]: n["metadata"]["labels"] for n in nodes}

    def matching(name: str) -> int:
        return sum(1 for p in cache.pods.values() if p.node_name == name
                   and p.namespace == "default" and not p.terminating
                   and selector.matches(p.labels))

    # Nodes without every key are left out, of the weights and of the counts.
    full = {name for name, lb in labels.items() if ZONE in lb and HOSTNAME in lb}
    scored = [name for name in got if name in full]
    zones = {labels[name][ZONE] for name in scored}
    per_zone = {z: sum(matching(n) for n in full if labels[n][ZONE] == z) for z in zones}
    for name, score in got.items():
        if name not in full:
            assert score == -1, name
            continue
        total = (matching(name) * math.log(len(scored) + 2) + (1 - 1)
                 + per_zone[labels[name][ZONE]] * math.log(len(zones) + 2) + (2 - 1))
        assert score == round(total), name


def test_nodes_without_the_key_share_the_empty_values_domain() -> None:
    from skiff.scheduler.plugins.pod_topology_spread import _domain_count

    codes = np.array([0, 1, -1, 1], dtype=np.int32)
    assert _domain_count(codes, ["a", "b"]) == 3
    assert _domain_count(codes, ["a", ""]) == 2  # code 1 is "": the unlabelled node joins it
    assert _domain_count(codes, ["", "b"]) == 2  # label value "" and no label: one domain
    assert _domain_count(np.array([0, 0], dtype=np.int32), ["", "b"]) == 1
    assert _domain_count(np.array([-1], dtype=np.int32), ["a"]) == 1
    assert _domain_count(np.array([], dtype=np.int32), ["a"]) == 0
    assert _domain_count(np.array([0, 2, 2], dtype=np.int32), ["a", "b", "c"], True) == 2


def test_compiled_constraints_are_shared_only_by_pods_they_fit() -> None:
    from skiff.scheduler.plugins.pod_topology_spread import PodTopologySpread

    plugin = PodTopologySpread()
    spread = [{"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"app": "x"}},
               "matchLabelKeys": ["pod-template-hash"]}]

    def compiled(labels: dict[str, str]) -> list:
        return plugin._parsed(pod_info(pod("p", labels=labels,  # noqa: SLF001
                                           topologySpreadConstraints=spread)), "DoNotSchedule")

    first = compiled({"app": "x", "pod-template-hash": "a"})
    assert compiled({"app": "x", "pod-template-hash": "a"}) is first
    other = compiled({"app": "x", "pod-template-hash": "b"})
    assert other is not first
    assert other[0].selector.matches({"app": "x", "pod-template-hash": "b"})
    assert not other[0].selector.matches({"app": "x", "pod-template-hash": "a"})
    assert plugin._parsed(pod_info(pod("q", labels={"app": "x"})), "DoNotSchedule") == []  # noqa: SLF001

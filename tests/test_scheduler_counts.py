"""Count indexes (skiff.scheduler.counts): what they hold must always equal a walk over
the pods, however indexes are dropped and rebuilt and label sets come and go."""

from __future__ import annotations

import random

import numpy as np
import pytest

from skiff.api.selectors.labels import (
    NOTHING,
    from_label_selector_dict,
    parse_label_selector,
)
from skiff.scheduler import counts as counts_module
from skiff.scheduler.counts import MatchCounts, anchors


def _walk(pods: dict[int, tuple[str, dict[str, str], int]], namespaces: frozenset[str] | None,
          text: str, capacity: int) -> np.ndarray:
    sel = parse_label_selector(text)
    want = np.zeros(capacity, dtype=np.int64)
    for ns, labels, slot in pods.values():
        if (namespaces is None or ns in namespaces) and sel.matches(labels):
            want[slot] += 1
    return want


def test_anchors_pick_a_pinned_pair_or_none() -> None:
    assert anchors(parse_label_selector("app=web,tier in (a,b)")) == [("app", "web")]
    assert anchors(parse_label_selector("tier in (a,b),x notin (y)")) == [("tier", "a"),
                                                                        ("tier", "b")]
    assert anchors(parse_label_selector("x,!y")) is None
    assert anchors(parse_label_selector("")) is None
    assert anchors(NOTHING) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_indexes_match_a_walk_while_dropped_and_rebuilt(monkeypatch: pytest.MonkeyPatch,
                                                        seed: int) -> None:
    # Few indexes kept, many selectors asked about: indexes are dropped all the time.
    monkeypatch.setattr(counts_module, "COUNT_INDEXES", 3)
    monkeypatch.setattr(counts_module, "COUNT_BUDGET", 0)
    rng = random.Random(seed)
    capacity = 8
    mc = MatchCounts(capacity)
    selectors = ["app=a", "app=b", "app=a,tier=x", "tier in (x,y)", "tier", "!tier",
                 "app notin (a)", "", "app=c,tier in (y)"]
    pods: dict[int, tuple[str, dict[str, str], int]] = {}
    for step in range(600):
        roll = rng.random()
        if roll < 0.45 or not pods:
            labels = {"app": rng.choice("abc")}
            if rng.random() < 0.7:
                labels["tier"] = rng.choice("xy")
            pods[step] = (rng.choice(["default", "other"]), labels, rng.randrange(capacity))
            mc.account(*pods[step], 1)
        elif roll < 0.75:
            ns, labels, slot = pods.pop(rng.choice(list(pods)))
            mc.account(ns, labels, slot, -1)
        else:
            text = rng.choice(selectors)
            ns = rng.choice([None, frozenset(["other"]), frozenset(["default", "other"])])
            got = mc.get(ns, parse_label_selector(text))
            assert (got == _walk(pods, ns, text, capacity)).all(), (step, text, ns)
        # Every index still kept is current, not only the one just asked about.
        for (ns, sel), index in list(mc._indexes.items()):  # noqa: SLF001 - checking state
            assert (index.counts == _walk(pods, ns, str(sel), capacity)).all()


def test_growing_keeps_counts_and_counts_new_slots() -> None:
    mc = MatchCounts(2)
    mc.account("default", {"app": "a"}, 1, 1)
    sel = from_label_selector_dict({"matchLabels": {"app": "a"}})
    assert mc.get(None, sel).tolist() == [0, 1]
    mc.grow(4)
    mc.account("default", {"app": "a"}, 3, 1)
    assert mc.get(None, sel).tolist() == [0, 1, 0, 1]


def test_smaller_arrays_keep_more_indexes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counts_module, "COUNT_INDEXES", 2)
    monkeypatch.setattr(counts_module, "COUNT_BUDGET", 40)
    mc = MatchCounts(8)  # 40 // 8: five indexes kept
    for i in range(9):
        mc.get(None, parse_label_selector(f"app=a{i}"))
    assert len(mc) == 5
    mc.grow(20)  # now two (the floor)
    mc.get(None, parse_label_selector("app=b"))
    assert len(mc) == 2

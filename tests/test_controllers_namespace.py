"""The namespace controller's status conditions, shaped as upstream's namespace deleter."""

from __future__ import annotations

from skiff.client.discovery import APIResource
from skiff.controllers.namespace import _conditions, _merge_conditions, _qualified

PODS = APIResource("", "v1", "pods", "Pod", True, frozenset({"list", "delete"}))
WIDGETS = APIResource("example.com", "v1", "widgets", "Widget", True,
                      frozenset({"list", "delete"}))


def by_type(conds: list[dict[str, str]]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in conds}


def test_all_five_conditions_in_upstream_order_when_done() -> None:
    conds = _conditions([], {}, {})
    assert [c["type"] for c in conds] == [
        "NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
        "NamespaceDeletionContentFailure", "NamespaceContentRemaining",
        "NamespaceFinalizersRemaining"]
    got = by_type(conds)
    assert got["NamespaceDeletionGroupVersionParsingFailure"] == (
        "False", "ParsedGroupVersions", "All legacy kube types successfully parsed")
    assert got["NamespaceContentRemaining"] == (
        "False", "ContentRemoved", "All content successfully removed")
    assert got["NamespaceFinalizersRemaining"] == (
        "False", "ContentRemoved", "All content successfully removed")


def test_remaining_content_and_finalizers_are_worded_as_upstream() -> None:
    counts = {_qualified(PODS): 2, _qualified(WIDGETS): 1}
    got = by_type(_conditions([], counts, {"example.com/hold": 3}))
    assert got["NamespaceContentRemaining"] == (
        "True", "SomeResourcesRemain",
        "Some resources are remaining: pods. has 2 resource instances, "
        "widgets.example.com has 1 resource instances")
    assert got["NamespaceFinalizersRemaining"] == (
        "True", "SomeFinalizerRemain",
        "Some finalizers are remaining: example.com/hold in 3 resource instances")


def test_transition_time_moves_only_when_the_status_flips() -> None:
    existing = [{"type": "NamespaceContentRemaining", "status": "True",
                 "reason": "SomeResourcesRemain", "message": "old",
                 "lastTransitionTime": "2020-01-01T00:00:00Z"},
                {"type": "Custom", "status": "True", "reason": "X", "message": "kept",
                 "lastTransitionTime": "2020-01-01T00:00:00Z"}]
    changed = _merge_conditions(existing, [
        {"type": "NamespaceContentRemaining", "status": "True",
         "reason": "SomeResourcesRemain", "message": "new"}])
    assert changed
    assert existing[0]["message"] == "new"
    assert existing[0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert existing[1]["message"] == "kept"
    assert not _merge_conditions(existing, [
        {"type": "NamespaceContentRemaining", "status": "True",
         "reason": "SomeResourcesRemain", "message": "new"}])
    assert _merge_conditions(existing, [
        {"type": "NamespaceContentRemaining", "status": "False",
         "reason": "ContentRemoved", "message": "All content successfully removed"}])
    assert existing[0]["lastTransitionTime"] != "2020-01-01T00:00:00Z"

"""Completion indexes of Indexed Jobs and their compact text form (`1,3-5,7`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from skiff.api import meta as m

Obj = dict[str, Any]

# Upstream keeps the index in an annotation and (since 1.28) a label of the same name.
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
# Failures so far of the index a pod runs (backoffLimitPerIndex).
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"


def completion_index(pod: Obj) -> int | None:
    """The pod's completion index, or None if it has none (or an invalid one)."""
    md = pod.get("metadata") or {}
    value = (md.get("annotations") or {}).get(COMPLETION_INDEX)
    if value is None:
        value = (md.get("labels") or {}).get(COMPLETION_INDEX)
    if not isinstance(value, str) or not value.isdigit():
        return None
    return int(value)


def parse_indexes(text: str | None, completions: int) -> set[int]:
    """`1,3-5` → {1, 3, 4, 5}, dropping indexes ≥ `completions` and malformed parts."""
    out: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            continue
        start, end = int(lo), int(hi) if hi else int(lo)
        out.update(i for i in range(start, end + 1) if i < completions)
    return out


def format_indexes(indexes: Iterable[int]) -> str:
    """{1, 3, 4, 5, 7} → `1,3-5,7` (upstream's interval notation)."""
    ordered = sorted(set(indexes))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def index_failure_count(pod: Obj) -> int:
    """The failure count annotation of the index a pod runs."""
    return _count_annotation(pod, INDEX_FAILURE_COUNT)


def index_ignored_failure_count(pod: Obj) -> int:
    """How many failures of the pod's index the podFailurePolicy ignored before it."""
    return _count_annotation(pod, INDEX_IGNORED_FAILURE_COUNT)


def _count_annotation(pod: Obj, key: str) -> int:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(key)
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def pod_name_prefix(job_name: str, index: int) -> str:
    """`<job>-<index>-`, shortening the Job's name (never the index) to fit a generateName."""
    suffix = f"-{index}-"
    return job_name[:m.MAX_GENERATE_NAME - len(suffix)] + suffix

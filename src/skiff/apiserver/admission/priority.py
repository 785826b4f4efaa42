"""Priority admission: pods get their priority from their PriorityClass, as upstream.

A pod naming a class gets its value in spec.priority and its preemptionPolicy; a pod
naming none gets the class marked globalDefault (if any) or priority 0. Naming a
class that does not exist, or stating a priority that disagrees with the class, is
Forbidden. Only one PriorityClass may be the global default.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from skiff.api.errors import forbidden
from skiff.store.sqlite import SQLiteStore

Obj = dict[str, Any]

PREFIX = "/registry/scheduling.k8s.io/priorityclasses/"
DEFAULT_PREEMPTION = "PreemptLowerPriority"


@functools.lru_cache(maxsize=256)
def _decoded(key: str, revision: int, value: bytes) -> Obj:
    # Every pod create looks at the classes; they hardly ever change. Read-only.
    return orjson.loads(value)


def _classes(store: SQLiteStore) -> list[Obj]:
    res = store._list_latest(PREFIX, "", 0)  # noqa: SLF001 - same-process fast path
    return [_decoded(kv.key, kv.mod_revision, kv.value) for kv in res.items]


def _class(store: SQLiteStore, name: str) -> Obj | None:
    kv = store.get_now(PREFIX + name)
    return orjson.loads(kv.value) if kv is not None else None


def _global_default(store: SQLiteStore) -> Obj | None:
    # Upstream picks the lowest value if several were ever marked default.
    defaults = [pc for pc in _classes(store) if pc.get("globalDefault")]
    return min(defaults, key=lambda pc: pc.get("value", 0)) if defaults else None


def admit_pod(store: SQLiteStore, pod: Obj) -> None:
    """Resolve a new pod's priority from its PriorityClass."""
    spec = pod.setdefault("spec", {})
    name = (pod.get("metadata") or {}).get("name") or ""
    class_name = spec.get("priorityClassName") or ""
    if class_name:
        pc = _class(store, class_name)
        if pc is None:
            raise forbidden(f'pods "{name}" is forbidden: no PriorityClass with name '
                            f"{class_name} was found")
    else:
        pc = _global_default(store)
        if pc is not None:
            spec["priorityClassName"] = pc["metadata"]["name"]
    value = int(pc.get("value", 0)) if pc is not None else 0
    policy = (pc.get("preemptionPolicy") if pc is not None else None) or DEFAULT_PREEMPTION
    given = spec.get("priority")
    if given is not None and given != value:
        raise forbidden(f'pods "{name}" is forbidden: the integer value of priority ({given}) '
                        "must not be provided in pod spec; priority admission controller "
                        f"computed {value} from the given PriorityClass name")
    spec["priority"] = value
    given_policy = spec.get("preemptionPolicy")
    if given_policy is not None and given_policy != policy:
        raise forbidden(f'pods "{name}" is forbidden: the string value of PreemptionPolicy '
                        f"({given_policy}) must not be provided in pod spec; priority admission "
                        f"controller computed {policy} from the given PriorityClass name")
    spec["preemptionPolicy"] = policy


def admit_priority_class(store: SQLiteStore, pc: Obj, old: Obj | None) -> None:
    """Refuse a second global default."""
    if not pc.get("globalDefault") or (old is not None and old.get("globalDefault")):
        return
    name = (pc.get("metadata") or {}).get("name") or ""
    for other in _classes(store):
        other_name = other["metadata"]["name"]
        if other.get("globalDefault") and other_name != name:
            raise forbidden(f'priorityclasses.scheduling.k8s.io "{name}" is forbidden: '
                            f"PriorityClass {other_name} is already marked as default. Only "
                            "one default can exist")

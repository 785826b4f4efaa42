"""What the scheduler needs to know about a pod, computed once per pod version.

Requests follow upstream's accounting: the larger of the containers' sum and the
largest init container (restartable "sidecar" init containers add to both), plus the
pod overhead. Scoring uses "non-zero" requests, in which a container that asks for
no CPU or memory counts as 100m and 200Mi, so empty pods still spread out.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields
from typing import Any

from skiff.api.quantity import int_value, milli_value
from skiff.scheduler.terms import AffinityTerm, parse_affinity_terms

Obj = dict[str, Any]

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL = "ephemeral-storage"
PODS = "pods"
BASIC = (CPU, MEMORY, EPHEMERAL, PODS)

DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024

DEFAULT_SCHEDULER = "default-scheduler"


def _parse_quantity(name: str, value: Any) -> int:
    try:
        return milli_value(value) if name == CPU else int_value(value)
    except (ValueError, TypeError):
        return 0


# Pods repeat a handful of request strings ("100m", "500Mi"); parsing one costs tens of
# microseconds (decimal arithmetic), so answers are remembered.
_remembered_quantity = functools.lru_cache(maxsize=4096)(_parse_quantity)


def quantity(name: str, value: Any) -> int:
    """A request in the unit the scheduler accounts it in (millicores for CPU)."""
    try:
        return _remembered_quantity(name, value)
    except TypeError:  # unhashable (a malformed request): not remembered
        return _parse_quantity(name, value)


def _requests(c: Obj) -> dict[str, int]:
    raw = ((c.get("resources") or {}).get("requests") or {})
    return {k: quantity(k, v) for k, v in raw.items() if isinstance(k, str)}


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict[str, int], other: dict[str, int]) -> None:
    for k, v in other.items():
        if v > into.get(k, 0):
            into[k] = v


def pod_requests(spec: Obj) -> dict[str, int]:
    """The pod's effective resource requests (without the pod count)."""
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        _add(total, _requests(c))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for c in spec.get("initContainers") or []:
        req = _requests(c)
        if c.get("restartPolicy") == "Always":
            # A sidecar keeps running beside the app containers and later init containers.
            _add(total, req)
            _add(sidecars, req)
            step = dict(sidecars)
        else:
            step = dict(req)
            _add(step, sidecars)
        _max(init_peak, step)
    _max(total, init_peak)
    overhead = spec.get("overhead") or {}
    _add(total, {k: quantity(k, v) for k, v in overhead.items()})
    return {k: v for k, v in total.items() if v}


def non_zero_requests(spec: Obj) -> tuple[int, int]:
    """(millicores, bytes) for scoring, defaulting absent container requests."""
    cpu = mem = 0
    for c in spec.get("containers") or []:
        req = _requests(c)
        cpu += req.get(CPU) or DEFAULT_MILLI_CPU
        mem += req.get(MEMORY) or DEFAULT_MEMORY
    init_cpu = init_mem = 0
    for c in spec.get("initContainers") or []:
        req = _requests(c)
        init_cpu = max(init_cpu, req.get(CPU) or DEFAULT_MILLI_CPU)
        init_mem = max(init_mem, req.get(MEMORY) or DEFAULT_MEMORY)
    overhead = spec.get("overhead") or {}
    cpu = max(cpu, init_cpu) + quantity(CPU, overhead.get(CPU, 0))
    mem = max(mem, init_mem) + quantity(MEMORY, overhead.get(MEMORY, 0))
    return cpu, mem


def host_ports(spec: Obj) -> list[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) for every container port that claims a host port."""
    out = []
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for p in c.get("ports") or []:
            port = p.get("hostPort") or 0
            if isinstance(port, int) and port > 0:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", port))
    return out


def normalized_image(image: str) -> str:
    """An image name as node status reports it: a tag is added if there is none."""
    if "@" in image:
        return image
    last = image.rsplit("/", 1)[-1]
    return image if ":" in last else image + ":latest"


@dataclass(slots=True)
class PodInfo:
    """A parsed pod: identity, placement inputs and accounting figures."""

    pod: Obj
    key: str
    uid: str
    namespace: str
    name: str
    node_name: str
    priority: int
    labels: dict[str, str]
    requests: dict[str, int]
    non_zero: tuple[int, int]
    ports: list[tuple[str, str, int]]
    images: list[str]
    required_affinity: list[AffinityTerm] = field(default_factory=list)
    required_anti_affinity: list[AffinityTerm] = field(default_factory=list)
    preferred_affinity: list[tuple[int, AffinityTerm]] = field(default_factory=list)
    preferred_anti_affinity: list[tuple[int, AffinityTerm]] = field(default_factory=list)
    # (namespace, sorted labels), worked out on first use: see set_key.
    label_set: tuple[str, tuple[tuple[str, str], ...]] | None = None

    def set_key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The pod's label set, (namespace, labels sorted): memos keyed by it are shared
        by all pods of a ReplicaSet."""
        key = self.label_set
        if key is None:
            labels = tuple(sorted(self.labels.items())) if self.labels else ()
            key = self.label_set = (self.namespace, labels)
        return key

    @property
    def has_affinity(self) -> bool:
        """Whether any (anti-)affinity term is declared (InterPodAffinity must look at it)."""
        return bool(self.required_affinity or self.required_anti_affinity
                    or self.preferred_affinity or self.preferred_anti_affinity)

    @property
    def spec(self) -> Obj:
        """The pod's spec."""
        return self.pod.get("spec") or {}

    @property
    def terminating(self) -> bool:
        """Whether the pod is being deleted."""
        return bool((self.pod.get("metadata") or {}).get("deletionTimestamp"))

    @property
    def nominated_node(self) -> str:
        """status.nominatedNodeName (set by preemption)."""
        return (self.pod.get("status") or {}).get("nominatedNodeName") or ""

    @property
    def scheduler_name(self) -> str:
        """The scheduler the pod asks for."""
        return self.spec.get("schedulerName") or DEFAULT_SCHEDULER

    def on_node(self, node_name: str) -> PodInfo:
        """A shallow copy placed on `node_name` (what the scheduler assumes)."""
        new = PodInfo.__new__(PodInfo)
        for name in _FIELDS:
            setattr(new, name, getattr(self, name))
        new.node_name = node_name
        return new


_FIELDS = tuple(f.name for f in fields(PodInfo))


def pod_info(pod: Obj) -> PodInfo:
    """Parse a pod for scheduling."""
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    ns = md.get("namespace") or ""
    name = md.get("name") or ""
    labels = md.get("labels") or {}
    priority = spec.get("priority")
    affinity = spec.get("affinity") or {}
    pa = affinity.get("podAffinity") or {}
    paa = affinity.get("podAntiAffinity") or {}
    images = [normalized_image(c.get("image") or "")
              for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
              if c.get("image")]
    return PodInfo(
        pod=pod, key=f"{ns}/{name}", uid=md.get("uid") or "", namespace=ns, name=name,
        node_name=spec.get("nodeName") or "",
        priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else 0,
        labels=labels, requests=pod_requests(spec), non_zero=non_zero_requests(spec),
        ports=host_ports(spec), images=images,
        required_affinity=parse_affinity_terms(
            pa.get("requiredDuringSchedulingIgnoredDuringExecution"), ns, labels),
        required_anti_affinity=parse_affinity_terms(
            paa.get("requiredDuringSchedulingIgnoredDuringExecution"), ns, labels),
        preferred_affinity=_weighted(pa, ns, labels),
        preferred_anti_affinity=_weighted(paa, ns, labels),
    )


def _weighted(section: Obj, ns: str, labels: dict[str, str]) -> list[tuple[int, AffinityTerm]]:
    out = []
    for w in section.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        if not isinstance(w, dict):
            continue
        terms = parse_affinity_terms([w.get("podAffinityTerm") or {}], ns, labels)
        weight = w.get("weight") or 0
        if terms and isinstance(weight, int) and weight:
            out.append((weight, terms[0]))
    return out

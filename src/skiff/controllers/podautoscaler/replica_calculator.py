"""How many replicas a resource metric asks for: upstream's replica calculator.

    desired = ceil(current usage / target × ready pods)

with the refinements that keep it from flapping: a ratio within the tolerance (10%)
changes nothing; pods still starting or not ready, and pods without metrics, are
counted conservatively (as using nothing when scaling up, as using their whole
request when scaling down), and if doing so flips the direction, nothing changes.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from skiff.api import meta as m
from skiff.api.quantity import milli_value
from skiff.controllers.podautoscaler.metrics import PodMetric

Obj = dict[str, Any]

TOLERANCE = 0.1
# A pod's CPU is not trusted during its first five minutes unless it has been ready
# for a whole metrics window (upstream's --horizontal-pod-autoscaler-cpu-initialization-period).
CPU_INITIALIZATION_PERIOD = dt.timedelta(minutes=5)
# A pod that turned unready this soon after starting has never been ready.
INITIAL_READINESS_DELAY = dt.timedelta(seconds=30)


class CalculationError(Exception):
    """The metric cannot yield a replica count (no pods, no requests, no samples)."""


@dataclass(frozen=True)
class Recommendation:
    """A replica count and the observed utilization behind it."""

    replicas: int
    utilization: int | None
    raw_average: int


def _ready(pod: Obj) -> Obj | None:
    return m.condition(pod, "Ready")


def group_pods(pods: list[Obj], metrics: dict[str, PodMetric], resource: str,
               now: dt.datetime) -> tuple[int, set[str], set[str], set[str]]:
    """(ready count, unready, missing metrics, ignored) as upstream's groupPods."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        name = m.name_of(pod)
        phase = (pod.get("status") or {}).get("phase") or "Pending"
        if (pod.get("metadata") or {}).get("deletionTimestamp") or phase in ("Failed",
                                                                               "Pending"):
            ignored.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu":
            cond = _ready(pod)
            started = m.parse_time((pod.get("status") or {}).get("startTime") or "")
            changed = m.parse_time((cond or {}).get("lastTransitionTime") or "")
            if cond is None or started is None:
                is_unready = True
            elif started + CPU_INITIALIZATION_PERIOD > now:
                is_unready = cond.get("status") == "False" or (
                    changed is not None and metric.timestamp < changed + metric.window)
            else:
                is_unready = cond.get("status") == "False" and changed is not None and (
                    started + INITIAL_READINESS_DELAY > changed)
            if is_unready:
                unready.add(name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def pod_requests(pods: list[Obj], resource: str, container: str = "") -> dict[str, int]:
    """Pod name → summed container requests of `resource` in milli-units."""
    out: dict[str, int] = {}
    for pod in pods:
        total = 0
        for c in (pod.get("spec") or {}).get("containers") or []:
            if container and c.get("name") != container:
                continue
            request = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if request is None:
                raise CalculationError(f"missing request for {resource} in container "
                                       f"{c.get('name', '')} of Pod {m.name_of(pod)}")
            total += milli_value(request)
        out[m.name_of(pod)] = total
    return out


def utilization_ratio(metrics: dict[str, PodMetric], requests: dict[str, int],
                      target: int) -> tuple[float, int, int]:
    """(usage ratio to the target, utilization %, average raw usage) over pods with both
    a metric and a request."""
    used = requested = count = 0
    for name, metric in metrics.items():
        if name not in requests:
            continue
        used += metric.value
        requested += requests[name]
        count += 1
    if requested == 0:
        raise CalculationError("no metrics returned matched known pods")
    utilization = used * 100 // requested
    return utilization / target, utilization, used // count


def resource_replicas(current: int, target_utilization: int, resource: str, pods: list[Obj],
                      metrics: dict[str, PodMetric], now: dt.datetime | None = None,
                      tolerance: float = TOLERANCE, container: str = "") -> Recommendation:
    """Replicas for a Utilization target on a resource (upstream's GetResourceReplicas)."""
    now = now or m.now()
    if not pods:
        raise CalculationError("no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = group_pods(pods, metrics, resource, now)
    metrics = {k: v for k, v in metrics.items() if k not in ignored and k not in unready}
    if not metrics:
        raise CalculationError("did not receive metrics for targeted pods (pods might be "
                               "unready)")
    requests = pod_requests(pods, resource, container)
    ratio, utilization, raw = utilization_ratio(metrics, requests, target_utilization)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return Recommendation(current, utilization, raw)
        return Recommendation(math.ceil(ratio * ready), utilization, raw)
    filled = dict(metrics)
    stamp = next(iter(metrics.values()))
    if missing:
        if ratio < 1.0:
            fallback = max(100, target_utilization)
            for name in missing:
                filled[name] = PodMetric(requests.get(name, 0) * fallback // 100, stamp.timestamp,
                                         stamp.window)
        elif ratio > 1.0:
            for name in missing:
                filled[name] = PodMetric(0, stamp.timestamp, stamp.window)
    if scale_up_with_unready:
        for name in unready:
            filled[name] = PodMetric(0, stamp.timestamp, stamp.window)
    new_ratio, _, _ = utilization_ratio(filled, requests, target_utilization)
    return Recommendation(_with_estimates(current, ratio, new_ratio, len(filled), tolerance),
                          utilization, raw)


def average_value_replicas(current: int, target_milli: int, resource: str, pods: list[Obj],
                           metrics: dict[str, PodMetric], now: dt.datetime | None = None,
                           tolerance: float = TOLERANCE) -> Recommendation:
    """Replicas for an AverageValue target on a resource (upstream's
    GetRawResourceReplicas): the average usage per pod against the target amount,
    with the same missing/unready rules; requests play no part."""
    now = now or m.now()
    if not pods:
        raise CalculationError("no pods returned by selector while calculating replica count")
    if target_milli <= 0:
        raise CalculationError("the average value target must be positive")
    ready, unready, missing, ignored = group_pods(pods, metrics, resource, now)
    metrics = {k: v for k, v in metrics.items() if k not in ignored and k not in unready}
    if not metrics:
        raise CalculationError("did not receive metrics for targeted pods (pods might be "
                               "unready)")
    average = sum(v.value for v in metrics.values()) // len(metrics)
    ratio = average / target_milli
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return Recommendation(current, None, average)
        return Recommendation(math.ceil(ratio * ready), None, average)
    filled = {k: v.value for k, v in metrics.items()}
    # Missing pods use exactly the target on a scale-down, nothing on a scale-up.
    for name in missing:
        filled[name] = target_milli if ratio < 1.0 else 0
    if scale_up_with_unready:
        for name in unready:
            filled[name] = 0
    new_ratio = (sum(filled.values()) // len(filled)) / target_milli
    return Recommendation(_with_estimates(current, ratio, new_ratio, len(filled), tolerance),
                          None, average)


def _with_estimates(current: int, ratio: float, new_ratio: float, count: int,
                    tolerance: float) -> int:
    """Replicas once missing and unready pods were given estimates: the current count
    when the estimates bring the ratio within tolerance or flip its direction, or when
    the estimate would move the count against the measured direction (upstream's
    damping of guesses)."""
    if abs(1.0 - new_ratio) <= tolerance or ratio < 1.0 < new_ratio or ratio > 1.0 > new_ratio:
        return current
    replicas = math.ceil(new_ratio * count)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas

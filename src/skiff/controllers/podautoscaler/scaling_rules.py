"""From a metric's recommendation to the replica count the HPA writes.

Two things temper a raw recommendation, as upstream does:

- stabilization: the recommendations of the last `stabilizationWindowSeconds` are
  remembered; scaling down goes only as low as the highest of them, scaling up only
  as high as the lowest of them (without `behavior`: a 5-minute down window, none up);
- rate limits: `behavior` policies (Pods or Percent per period, combined by
  selectPolicy Max, Min or Disabled) cap how far one period may move, counting the
  scale events already made in that period. Without `behavior`, a scale-up may at
  most double (or reach 4).

Each outcome also names the AbleToScale and ScalingLimited conditions' reasons.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from skiff.api.defaults.autoscaling import scale_down_rules, scale_up_rules

Obj = dict[str, Any]

DOWNSCALE_STABILIZATION = 300.0
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
INT32_MAX = 2**31 - 1


@dataclass
class _Sample:
    value: int
    at: float


@dataclass
class _ScaleEvent:
    change: int
    at: float
    outdated: bool = False


@dataclass
class Outcome:
    """The replica count to write and the conditions explaining it."""

    replicas: int
    able_reason: str
    able_message: str
    limited: bool
    limited_reason: str
    limited_message: str


@dataclass
class ScalingHistory:
    """Recent recommendations and scale events of every HPA, by key."""

    recommendations: dict[str, list[_Sample]] = field(default_factory=dict)
    scale_ups: dict[str, list[_ScaleEvent]] = field(default_factory=dict)
    scale_downs: dict[str, list[_ScaleEvent]] = field(default_factory=dict)

    def forget(self, key: str) -> None:
        """Drop what was remembered about a deleted HPA."""
        for d in (self.recommendations, self.scale_ups, self.scale_downs):
            d.pop(key, None)

    def record_initial(self, key: str, current: int, now: float | None = None) -> None:
        """Take the first replica count seen as a recommendation (upstream's
        recordInitialRecommendation), so nothing scales down before a window passes."""
        if key not in self.recommendations:
            now = time.monotonic() if now is None else now
            self.recommendations[key] = [_Sample(current, now)]

    # -- without behavior -------------------------------------------------------------

    def normalize(self, key: str, current: int, desired: int, minimum: int, maximum: int,
                  now: float | None = None) -> Outcome:
        """Stabilize a scale-down over 5 minutes, then apply the bounds and the
        doubling limit (upstream's normalizeDesiredReplicas)."""
        now = time.monotonic() if now is None else now
        stabilized = desired
        samples = self.recommendations.setdefault(key, [])
        cutoff = now - DOWNSCALE_STABILIZATION
        old_index = None
        for i, s in enumerate(samples):
            if s.at < cutoff:
                old_index = i
            elif s.value > stabilized:
                stabilized = s.value
        if old_index is not None:
            samples[old_index] = _Sample(desired, now)
        else:
            samples.append(_Sample(desired, now))
        if stabilized != desired:
            able = ("ScaleDownStabilized", "recent recommendations were higher than current "
                    "one, applying the highest recent recommendation")
        else:
            able = ("ReadyForNewScale", "recommended size matches current size")
        up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
        if maximum > up_limit:
            top, reason, msg = up_limit, "ScaleUpLimit", ("the desired replica count is "
                                                          "increasing faster than the "
                                                          "maximum scale rate")
        else:
            top, reason, msg = maximum, "TooManyReplicas", ("the desired replica count is "
                                                            "more than the maximum replica "
                                                            "count")
        if stabilized < minimum:
            result, reason, msg = minimum, "TooFewReplicas", ("the desired replica count is "
                                                              "less than the minimum replica "
                                                              "count")
        elif stabilized > top:
            result = top
        else:
            result, reason, msg = stabilized, "DesiredWithinRange", ("the desired count is "
                                                                     "within the acceptable "
                                                                     "range")
        return Outcome(result, *able, result != stabilized, reason, msg)

    # -- with behavior ------------------------------------------------------------------

    def normalize_with_behavior(self, key: str, behavior: Obj, current: int, desired: int,
                                minimum: int, maximum: int, now: float | None = None
                                ) -> Outcome:
        """Stabilize within both windows, then apply the policies' rate limits
        (upstream's normalizeDesiredReplicasWithBehaviors)."""
        now = time.monotonic() if now is None else now
        up_rules = scale_up_rules(behavior.get("scaleUp"))
        down_rules = scale_down_rules(behavior.get("scaleDown"))
        up_cutoff = now - float(up_rules.get("stabilizationWindowSeconds") or 0)
        down_cutoff = now - float(down_rules.get("stabilizationWindowSeconds") or 0)
        up_rec = down_rec = desired
        samples = self.recommendations.setdefault(key, [])
        old_index = None
        for i, s in enumerate(samples):
            if s.at > up_cutoff:
                up_rec = min(s.value, up_rec)
            if s.at > down_cutoff:
                down_rec = max(s.value, down_rec)
            if s.at < up_cutoff and s.at < down_cutoff:
                old_index = i
        stabilized = max(current, up_rec)
        stabilized = min(stabilized, down_rec)
        if old_index is not None:
            samples[old_index] = _Sample(desired, now)
        else:
            samples.append(_Sample(desired, now))
        if stabilized != desired:
            if desired >= current:
                able = ("ScaleUpStabilized", "recent recommendations were lower than current "
                        "one, applying the lowest recent recommendation")
            else:
                able = ("ScaleDownStabilized", "recent recommendations were higher than "
                        "current one, applying the highest recent recommendation")
        else:
            able = ("ReadyForNewScale", "recommended size matches current size")
        result, reason, msg = self._rate_limited(key, up_rules, down_rules, current,
                                                 stabilized, minimum, maximum, now)
        return Outcome(result, *able, result != stabilized, reason, msg)

    def _rate_limited(self, key: str, up_rules: Obj, down_rules: Obj, current: int,
                      desired: int, minimum: int, maximum: int, now: float
                      ) -> tuple[int, str, str]:
        ups, downs = self.scale_ups.get(key, []), self.scale_downs.get(key, [])
        if desired > current:
            limit = max(_scale_up_limit(current, ups, downs, up_rules, now), current)
            if maximum > limit:
                top, reason, msg = limit, "ScaleUpLimit", ("the desired replica count is "
                                                           "increasing faster than the "
                                                           "maximum scale rate")
            else:
                top, reason, msg = maximum, "TooManyReplicas", ("the desired replica count "
                                                                "is more than the maximum "
                                                                "replica count")
            if desired > top:
                return top, reason, msg
        elif desired < current:
            limit = min(_scale_down_limit(current, ups, downs, down_rules, now), current)
            if minimum < limit:
                bottom, reason, msg = limit, "ScaleDownLimit", ("the desired replica count is "
                                                                "decreasing faster than the "
                                                                "maximum scale rate")
            else:
                bottom, reason, msg = minimum, "TooFewReplicas", ("the desired replica count "
                                                                  "is less than the minimum "
                                                                  "replica count")
            if desired < bottom:
                return bottom, reason, msg
        return desired, "DesiredWithinRange", "the desired count is within the acceptable range"

    def record_scale(self, key: str, behavior: Obj | None, before: int, after: int,
                     now: float | None = None) -> None:
        """Remember a scale event, for the policies' per-period limits."""
        if not behavior or before == after:
            return
        now = time.monotonic() if now is None else now
        if after > before:
            rules = scale_up_rules(behavior.get("scaleUp"))
            events = self.scale_ups.setdefault(key, [])
            change = after - before
        else:
            rules = scale_down_rules(behavior.get("scaleDown"))
            events = self.scale_downs.setdefault(key, [])
            change = before - after
        longest = max((int(p.get("periodSeconds") or 0) for p in rules.get("policies") or []),
                      default=0)
        for e in events:
            if e.at < now - longest:
                e.outdated = True
        for i, e in enumerate(events):
            if e.outdated:
                events[i] = _ScaleEvent(change, now)
                return
        events.append(_ScaleEvent(change, now))


def _changed_in(period: float, events: list[_ScaleEvent], now: float) -> int:
    cutoff = now - period
    return sum(e.change for e in events if e.at > cutoff)


def _scale_up_limit(current: int, ups: list[_ScaleEvent], downs: list[_ScaleEvent],
                    rules: Obj, now: float) -> int:
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    result = INT32_MAX if select == "Min" else -INT32_MAX
    pick = min if select == "Min" else max
    for policy in rules.get("policies") or []:
        period = float(policy.get("periodSeconds") or 0)
        start = current - _changed_in(period, ups, now) + _changed_in(period, downs, now)
        value = int(policy.get("value") or 0)
        if policy.get("type") == "Pods":
            proposed = start + value
        else:
            proposed = math.ceil(start * (1 + value / 100))
        result = pick(result, proposed)
    return result


def _scale_down_limit(current: int, ups: list[_ScaleEvent], downs: list[_ScaleEvent],
                      rules: Obj, now: float) -> int:
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    # Scaling down, the smallest change ("Min") is the largest count.
    result = -INT32_MAX if select == "Min" else INT32_MAX
    pick = max if select == "Min" else min
    for policy in rules.get("policies") or []:
        period = float(policy.get("periodSeconds") or 0)
        start = current - _changed_in(period, ups, now) + _changed_in(period, downs, now)
        value = int(policy.get("value") or 0)
        if policy.get("type") == "Pods":
            proposed = start - value
        else:
            proposed = int(start * (1 - value / 100))
        result = pick(result, proposed)
    return result

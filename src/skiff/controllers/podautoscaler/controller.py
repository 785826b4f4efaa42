"""The HorizontalPodAutoscaler controller (autoscaling/v2, the stored version).

Every sync period (15 s, as upstream) and on every change of an HPA, one reconcile:

1. reads the target's scale subresource (any kind that serves one);
2. keeps the replica count within minReplicas..maxReplicas, or, when it is, asks
   every metric for a replica count and takes the highest;
3. tempers that with stabilization and the behavior policies (`scaling_rules`);
4. writes the new count through the scale subresource, with a SuccessfulRescale
   event, and reports status: current/desired replicas, current metrics,
   lastScaleTime and the AbleToScale, ScalingActive and ScalingLimited conditions.
"""

from __future__ import annotations

import logging
from typing import Any

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.api.quantity import from_milli, milli_value
from skiff.api.selectors.labels import LabelSelector, parse_label_selector
from skiff.client.discovery import ResourceMap, discover
from skiff.client.event_recorder import EventRecorder
from skiff.client.http_client import Client
from skiff.client.informer import Informer, object_key
from skiff.client.workqueue import WorkQueue
from skiff.controllers.informers import run_controller
from skiff.controllers.podautoscaler.metrics import (
    MetricsSource,
    MetricsUnavailable,
    ResourceMetricsAPI,
)
from skiff.controllers.podautoscaler.replica_calculator import (
    CalculationError,
    average_value_replicas,
    resource_replicas,
)
from skiff.controllers.podautoscaler.scaling_rules import ScalingHistory
from skiff.controllers.status_patch import write_status

log = logging.getLogger(__name__)

Obj = dict[str, Any]
HPAS = ("autoscaling", "v2", "horizontalpodautoscalers")
SYNC_PERIOD = 15.0
DEFAULT_CPU_UTILIZATION = 80
KNOWN_SCALABLE = {
    ("apps", "Deployment"): ("apps", "v1", "deployments"),
    ("apps", "ReplicaSet"): ("apps", "v1", "replicasets"),
    ("apps", "StatefulSet"): ("apps", "v1", "statefulsets"),
    ("", "ReplicationController"): ("", "v1", "replicationcontrollers"),
}


class MetricFailure(Exception):
    """A metric yielded no replica count: the ScalingActive reason, the error as the
    metric's own event says it, and as the FailedComputeMetricsReplicas event says it."""

    def __init__(self, reason: str, message: str, wrapped: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.wrapped = wrapped or message


class MetricsFailed(Exception):
    """No replica count could be computed; ScalingActive and the events are set."""

    def __init__(self, message: str, conditions: list[Obj], statuses: list[Obj]) -> None:
        super().__init__(message)
        self.message = message
        self.conditions = conditions
        self.statuses = statuses


def _condition(conditions: list[Obj], ctype: str, status: str, reason: str,
               message: str) -> list[Obj]:
    """Set one condition, in place in the list (as upstream: `describe hpa` lists them
    in the order they first appeared)."""
    out = [dict(c) for c in conditions]
    cond = next((c for c in out if c.get("type") == ctype), None)
    if cond is None:
        cond = {"type": ctype}
        out.append(cond)
    if cond.get("status") != status or not cond.get("lastTransitionTime"):
        cond["lastTransitionTime"] = m.rfc3339()
    cond.update(status=status, reason=reason, message=message)
    return out


def _set_metrics(status: Obj, statuses: list[Obj]) -> None:
    if statuses:
        status["currentMetrics"] = statuses
    else:
        status.pop("currentMetrics", None)


class HorizontalPodAutoscalerController:
    """Reconciles HPAs by `namespace/name`."""

    def __init__(self, client: Client, *, metrics: MetricsSource | None = None,
                 pods: Informer | None = None, sync_period: float = SYNC_PERIOD,
                 workers: int = 2) -> None:
        self.client = client
        self.metrics = metrics or ResourceMetricsAPI(client)
        self.sync_period = sync_period
        self.workers = workers
        self.hpas = Informer(client, *HPAS)
        self._own = [self.hpas]
        if pods is None:
            pods = Informer(client, "", "v1", "pods")
            self._own.append(pods)
        self.pods = pods
        if not self.pods.has_index("namespace"):
            self.pods.add_index("namespace", lambda o: [m.namespace_of(o)])
        self.queue = WorkQueue(name="horizontalpodautoscalers")
        self.recorder = EventRecorder(client, "horizontal-pod-autoscaler")
        self.history = ScalingHistory()
        self._resources: ResourceMap | None = None
        # Each reconciled HPA's pod selector, to find pods two HPAs both claim.
        self._selectors: dict[str, LabelSelector] = {}
        self.hpas.on_add(lambda o: self.queue.add(object_key(o)))
        self.hpas.on_update(self._updated)
        self.hpas.on_delete(self._deleted)

    def _updated(self, old: Obj, new: Obj) -> None:
        # Our own status writes change only status: the periodic resync covers those.
        if old.get("spec") != new.get("spec") or old.get("metadata", {}).get(
                "generation") != new.get("metadata", {}).get("generation"):
            self.queue.add(object_key(new))

    def _deleted(self, obj: Obj) -> None:
        self.history.forget(object_key(obj))
        self._selectors.pop(object_key(obj), None)

    # -- scale targets ----------------------------------------------------------------

    async def _target_gvr(self, ref: Obj) -> tuple[str, str, str]:
        group, _, version = str(ref.get("apiVersion") or "").rpartition("/")
        kind = str(ref.get("kind") or "")
        known = KNOWN_SCALABLE.get((group, kind))
        if known is not None:
            return known
        for attempt in range(2):
            if self._resources is None or attempt:
                self._resources = ResourceMap(await discover(self.client))
            found = self._resources.for_kind(group, version, kind)
            if found is not None:
                return found.group, found.version, found.plural
        raise StatusError(404, "NotFound", f'no matches for kind "{kind}" in group "{group}"')

    # -- reconcile --------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        """One pass of the autoscaling loop for one HPA."""
        if not (self.hpas.has_synced.is_set() and self.pods.has_synced.is_set()):
            return 0.1
        hpa = self.hpas.get(key)
        if hpa is None:
            return None
        try:
            await self._reconcile(key, hpa)
        except StatusError as err:
            if err.code == 404:
                return None
            log.info("autoscaling %s: %s", key, err.message)
        return self.sync_period

    async def _reconcile(self, key: str, hpa: Obj) -> None:
        spec, status = hpa.get("spec") or {}, dict(hpa.get("status") or {})
        conditions = [dict(c) for c in status.get("conditions") or []]
        ref = spec.get("scaleTargetRef") or {}
        namespace = m.namespace_of(hpa)
        reference = f"{ref.get('kind', '')}/{ref.get('name', '')}"
        try:
            gvr = await self._target_gvr(ref)
            scale = await self.client.request(
                "GET", self.client.path(*gvr, ref.get("name", ""), namespace, "scale"))
        except StatusError as err:
            message = f"the HPA controller was unable to get the target's current scale: " \
                      f"{err.message}"
            self.recorder.event(hpa, "Warning", "FailedGetScale", err.message)
            conditions = _condition(conditions, "AbleToScale", "False", "FailedGetScale",
                                    message)
            status["conditions"] = conditions
            # Upstream always serializes desiredReplicas (it has no omitempty).
            status.setdefault("desiredReplicas", 0)
            await self._write(hpa, status)
            return
        conditions = _condition(conditions, "AbleToScale", "True", "SucceededGetScale",
                                "the HPA controller was able to get the target's current scale")
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        # As upstream, the first count seen is a recommendation: a new HPA (or a restarted
        # controller) does not scale down within its first stabilization window.
        self.history.record_initial(key, current)
        minimum = int(spec.get("minReplicas") or 1)
        maximum = int(spec.get("maxReplicas") or 0)
        # Rewritten on every pass (as upstream): no metrics were read out of range.
        metric_statuses: list[Obj] = []
        desired = 0
        reason = ""
        if current == 0 and minimum != 0:
            conditions = _condition(conditions, "ScalingActive", "False", "ScalingDisabled",
                                    "scaling is disabled since the replica count of the "
                                    "target is zero")
        elif current > maximum:
            desired, reason = maximum, "Current number of replicas above Spec.MaxReplicas"
        elif current < minimum:
            desired, reason = minimum, "Current number of replicas below Spec.MinReplicas"
        else:
            selector = (scale.get("status") or {}).get("selector") or ""
            try:
                proposal, metric_name, metric_statuses, conditions = \
                    await self._metrics_replicas(key, hpa, current, selector, conditions)
            except MetricsFailed as err:
                status.update(currentReplicas=current, desiredReplicas=status.get(
                    "desiredReplicas", 0), conditions=err.conditions)
                _set_metrics(status, err.statuses)
                await self._write(hpa, status)
                self.recorder.event(hpa, "Warning", "FailedComputeMetricsReplicas",
                                    err.message)
                return
            desired = proposal
            if desired > current:
                reason = f"{metric_name} above target"
            elif desired < current:
                reason = "All metrics below target"
            behavior = spec.get("behavior")
            if behavior:
                outcome = self.history.normalize_with_behavior(key, behavior, current, desired,
                                                               minimum, maximum)
            else:
                outcome = self.history.normalize(key, current, desired, minimum, maximum)
            conditions = _condition(conditions, "AbleToScale", "True", outcome.able_reason,
                                    outcome.able_message)
            conditions = _condition(conditions, "ScalingLimited",
                                    "True" if outcome.limited else "False",
                                    outcome.limited_reason, outcome.limited_message)
            desired = outcome.replicas
        rescale = desired != current and not (current == 0 and minimum != 0)
        if rescale:
            try:
                await self.client.patch(*gvr, ref.get("name", ""),
                                        {"spec": {"replicas": desired}}, namespace,
                                        patch_type="merge", subresource="scale")
            except StatusError as err:
                self.recorder.event(hpa, "Warning", "FailedRescale",
                                    f"New size: {desired}; reason: {reason}; error: "
                                    f"{err.message}")
                conditions = _condition(conditions, "AbleToScale", "False",
                                        "FailedUpdateScale", "the HPA controller was unable to "
                                        f"update the target scale: {err.message}")
                status.update(currentReplicas=current, desiredReplicas=status.get(
                    "desiredReplicas", 0), conditions=conditions)
                _set_metrics(status, metric_statuses)
                await self._write(hpa, status)
                return
            conditions = _condition(conditions, "AbleToScale", "True", "SucceededRescale",
                                    f"the HPA controller was able to update the target scale "
                                    f"to {desired}")
            self.recorder.event(hpa, "Normal", "SuccessfulRescale",
                                f"New size: {desired}; reason: {reason}")
            self.history.record_scale(key, spec.get("behavior"), current, desired)
            status["lastScaleTime"] = m.rfc3339()
            log.info("%s: scaled %s from %d to %d (%s)", key, reference, current, desired,
                     reason)
        else:
            desired = current
        status.update(currentReplicas=current, desiredReplicas=desired, conditions=conditions)
        _set_metrics(status, metric_statuses)
        await self._write(hpa, status)

    def _selector(self, key: str, hpa: Obj, selector: str, conditions: list[Obj]
                  ) -> tuple[LabelSelector, list[Obj]]:
        """The scale's selector, parsed; it must select pods no other HPA selects
        (upstream's validateAndParseSelector)."""
        if not selector:
            self.recorder.event(hpa, "Warning", "SelectorRequired", "selector is required")
            raise MetricsFailed("selector is required", _condition(
                conditions, "ScalingActive", "False", "InvalidSelector",
                "the HPA target's scale is missing a selector"), [])
        try:
            sel = parse_label_selector(selector)
        except ValueError as err:
            message = f"couldn't convert selector into a corresponding internal selector " \
                      f"object: {err}"
            self.recorder.event(hpa, "Warning", "InvalidSelector", message)
            raise MetricsFailed(message, _condition(conditions, "ScalingActive", "False",
                                                    "InvalidSelector", message), []) from err
        self._selectors[key] = sel
        namespace = m.namespace_of(hpa)
        others = [(k, s) for k, s in self._selectors.items()
                  if k != key and k.partition("/")[0] == namespace]
        if others:
            claimed = {key}
            for pod in self.pods.by_index("namespace", namespace):
                labels = m.labels_of(pod)
                if sel.matches(labels):
                    claimed.update(k for k, s in others if s.matches(labels))
            if len(claimed) > 1:
                message = f"pods by selector {selector} are controlled by multiple HPAs: " \
                          f"[{' '.join(sorted(claimed))}]"
                self.recorder.event(hpa, "Warning", "AmbiguousSelector", message)
                raise MetricsFailed(message, _condition(conditions, "ScalingActive", "False",
                                                        "AmbiguousSelector", message), [])
        return sel, conditions

    async def _metrics_replicas(self, key: str, hpa: Obj, current: int, selector: str,
                                conditions: list[Obj]
                                ) -> tuple[int, str, list[Obj], list[Obj]]:
        """The highest replica count any metric asks for, its name, every metric's
        current value, and the conditions; MetricsFailed when there is none to act on."""
        spec = hpa.get("spec") or {}
        metrics = spec.get("metrics") or [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization",
                                      "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
        sel, conditions = self._selector(key, hpa, selector, conditions)
        pods = [p for p in self.pods.by_index("namespace", m.namespace_of(hpa))
                if sel.matches(m.labels_of(p))]
        best: tuple[int, str] | None = None
        statuses: list[Obj] = []
        failures: list[MetricFailure] = []
        for metric in metrics:
            try:
                replicas, name, metric_status = await self._one_metric(
                    hpa, metric, current, selector, pods)
            except MetricFailure as err:
                self.recorder.event(hpa, "Warning", err.reason, err.message)
                failures.append(err)
                # An empty status, as upstream's zero value: kubectl shows <unknown>.
                statuses.append({"type": ""})
                continue
            statuses.append(metric_status)
            if best is None or replicas > best[0]:
                best = (replicas, name)
        if failures and (best is None or best[0] < current):
            first = failures[0]
            raise MetricsFailed(
                f"invalid metrics ({len(failures)} invalid out of {len(metrics)}), first error "
                f"is: {first.wrapped}",
                _condition(conditions, "ScalingActive", "False", first.reason,
                           f"the HPA was unable to compute the replica count: {first.message}"),
                statuses)
        assert best is not None
        conditions = _condition(conditions, "ScalingActive", "True", "ValidMetricFound",
                                f"the HPA was able to successfully calculate a replica count "
                                f"from {best[1]}")
        return best[0], best[1], statuses, conditions

    async def _one_metric(self, hpa: Obj, metric: Obj, current: int, selector: str,
                          pods: list[Obj]) -> tuple[int, str, Obj]:
        mtype = metric.get("type")
        if mtype not in ("Resource", "ContainerResource"):
            message = f"{mtype} metrics need a custom or external metrics API, which this " \
                      "cluster does not serve"
            raise MetricFailure(f"FailedGet{mtype}Metric", message,
                                f"failed to get {str(mtype).lower()} metric value: {message}")
        key = "resource" if mtype == "Resource" else "containerResource"
        source = metric.get(key) or {}
        resource = source.get("name", "")
        container = source.get("container", "") if mtype == "ContainerResource" else ""
        target = source.get("target") or {}
        if mtype == "Resource":
            reason = "FailedGetResourceMetric"
            wrap = f"failed to get {resource} resource metric value"
        else:
            reason = "FailedGetContainerResourceMetric"
            wrap = f"failed to get {container} container metric value"
        average_value = target.get("type") == "AverageValue"
        what = f"failed to get {resource} {'usage' if average_value else 'utilization'}"
        try:
            try:
                samples = await self.metrics.resource_metrics(resource, m.namespace_of(hpa),
                                                              selector, container)
            except MetricsUnavailable as err:
                raise CalculationError(f"unable to get metrics for resource {resource}: "
                                       f"{err}") from err
            if average_value:
                rec = average_value_replicas(current, milli_value(target.get("averageValue")),
                                             resource, pods, samples)
                current_value: Obj = {"averageValue": from_milli(rec.raw_average)}
                name = f"{resource} resource"
            else:
                util = int(target.get("averageUtilization") or DEFAULT_CPU_UTILIZATION)
                rec = resource_replicas(current, util, resource, pods, samples,
                                        container=container)
                current_value = {"averageUtilization": rec.utilization,
                                 "averageValue": from_milli(rec.raw_average)}
                name = f"{resource} {'container ' if container else ''}resource utilization " \
                       "(percentage of request)"
        except CalculationError as err:
            message = f"{what}: {err}"
            raise MetricFailure(reason, message, f"{wrap}: {message}") from err
        body: Obj = {"name": resource, "current": current_value}
        if container:
            body["container"] = container
        return rec.replicas, name, {"type": mtype, key: body}

    async def _write(self, hpa: Obj, status: Obj) -> None:
        if status.get("currentReplicas") == 0:
            # omitempty in autoscaling/v2 as upstream writes it (v1 reads it back as 0).
            del status["currentReplicas"]
        try:
            await write_status(self.client, HPAS, hpa, status)
        except StatusError as err:
            if err.code not in (404, 409):
                raise

    # -- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch HPAs and reconcile each one every sync period until cancelled."""
        await run_controller(self.queue, self.reconcile, self.workers, self._own, self.recorder)

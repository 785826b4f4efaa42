"""The HorizontalPodAutoscaler: the calculator and rules by numbers, v1/v2 conversion, and
the controller against a real API server with metrics fed by the test."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from skiff.api.conversion.hpa import BEHAVIOR, METRICS, to_v1, to_v2
from skiff.api.errors import StatusError
from skiff.client import Client
from skiff.controllers.podautoscaler import HorizontalPodAutoscalerController
from skiff.controllers.podautoscaler.metrics import (
    MetricsUnavailable,
    PodMetric,
    ResourceMetricsAPI,
)
from skiff.controllers.podautoscaler.replica_calculator import (
    CalculationError,
    average_value_replicas,
    resource_replicas,
)
from skiff.controllers.podautoscaler.scaling_rules import ScalingHistory
from tests.cluster_fixture import Cluster, running_cluster
from tests.controller_helpers import eventually, new_namespace, replicaset
from tests.fake_kubelet import FakeKubelet

Obj = dict[str, Any]
NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def _pod(name: str, request: str = "100m", ready: bool = True, started_ago: float = 600,
         phase: str = "Running") -> Obj:
    start = (NOW - dt.timedelta(seconds=started_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": request}}}]},
            "status": {"phase": phase, "startTime": start, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": start}]}}


def _usage(**milli: int) -> dict[str, PodMetric]:
    return {k: PodMetric(v, NOW, dt.timedelta(seconds=30)) for k, v in milli.items()}


# -- the replica calculator ---------------------------------------------------------------

def test_calculator_scales_by_the_usage_ratio() -> None:
    pods = [_pod("a"), _pod("b")]
    rec = resource_replicas(2, 50, "cpu", pods, _usage(a=100, b=100), NOW)
    assert (rec.replicas, rec.utilization, rec.raw_average) == (4, 100, 100)
    down = resource_replicas(2, 50, "cpu", pods, _usage(a=10, b=10), NOW)
    assert down.replicas == 1


def test_calculator_tolerance_keeps_small_changes_out() -> None:
    pods = [_pod("a"), _pod("b")]
    # 54% against 50%: a ratio of 1.08 is within the 10% tolerance.
    assert resource_replicas(2, 50, "cpu", pods, _usage(a=54, b=54), NOW).replicas == 2
    assert resource_replicas(2, 50, "cpu", pods, _usage(a=60, b=60), NOW).replicas == 3


def test_calculator_treats_missing_and_unready_pods_conservatively() -> None:
    # Scale up: the pod without metrics counts as using nothing.
    pods = [_pod("a"), _pod("b"), _pod("c")]
    rec = resource_replicas(3, 50, "cpu", pods, _usage(a=100, b=100), NOW)
    assert rec.replicas == 4  # (200 + 0) / 300 = 66% → ratio 1.33 → ceil(4)
    # Scale down: a missing pod counts as using its whole request.
    # (10 + 10 + 100) / 300 = 40%: a ratio of 0.8 over 3 pods keeps 3.
    rec = resource_replicas(3, 50, "cpu", pods, _usage(a=10, b=10), NOW)
    assert rec.replicas == 3
    # A starting, unready pod counts as idle on a scale-up: (100 + 0) / 200 = 50% is on
    # target, so nothing changes until it is ready.
    young = _pod("y", ready=False, started_ago=10)
    rec = resource_replicas(2, 50, "cpu", [_pod("a"), young], _usage(a=100, y=100), NOW)
    assert rec.replicas == 2


def test_calculator_errors() -> None:
    with pytest.raises(CalculationError, match="no pods returned"):
        resource_replicas(1, 50, "cpu", [], {}, NOW)
    with pytest.raises(CalculationError, match="missing request"):
        pod = _pod("a")
        pod["spec"]["containers"][0]["resources"] = {}
        resource_replicas(1, 50, "cpu", [pod], _usage(a=10), NOW)


def test_average_value_compares_the_average_usage_not_a_rounded_percentage() -> None:
    many = [_pod(f"p{i}") for i in range(100)]
    # 1195m against 1 CPU over 100 pods: upstream takes the ratio of the raw average
    # (1.195 → 120 pods), not of a whole percentage (119% → 119 pods).
    rec = average_value_replicas(100, 1000, "cpu", many,
                                 _usage(**{f"p{i}": 1195 for i in range(100)}), NOW)
    assert (rec.replicas, rec.raw_average) == (120, 1195)
    pods = [_pod("a"), _pod("b")]
    # Requests play no part in an AverageValue target.
    bare = _pod("c")
    bare["spec"]["containers"][0]["resources"] = {}
    assert average_value_replicas(1, 100, "cpu", [bare], _usage(c=300), NOW).replicas == 3
    # On a scale-down a pod without metrics counts as using exactly the target:
    # (10 + 10 + 100) / 3 = 40m, a ratio of 0.4 over 3 pods.
    rec = average_value_replicas(3, 100, "cpu", pods + [_pod("m")], _usage(a=10, b=10), NOW)
    assert rec.replicas == 2


class _FakeMetricsClient:
    def __init__(self, items: list[Obj]) -> None:
        self.items = items

    async def list(self, *args: Any, **kwargs: Any) -> Obj:
        return {"items": self.items}


async def test_metrics_api_pods_missing_a_container_usage_have_no_metric() -> None:
    def item(name: str, *usages: Obj) -> Obj:
        return {"metadata": {"name": name}, "timestamp": "2026-01-01T12:00:00Z",
                "window": "30s",
                "containers": [{"name": f"c{i}", "usage": u} for i, u in enumerate(usages)]}

    api = ResourceMetricsAPI(_FakeMetricsClient([  # type: ignore[arg-type]
        item("whole", {"cpu": "100m"}, {"cpu": "50m"}),
        item("partial", {"cpu": "100m"}, {"memory": "1Mi"}),
        item("empty")]))
    got = await api.resource_metrics("cpu", "ns", "app=x")
    assert {k: v.value for k, v in got.items()} == {"whole": 150}
    with pytest.raises(MetricsUnavailable, match="no metrics returned from resource metrics"):
        await ResourceMetricsAPI(_FakeMetricsClient([])).resource_metrics(  # type: ignore[arg-type]
            "cpu", "ns", "app=x")


# -- stabilization and behavior policies -------------------------------------------------------

def test_default_rules_stabilize_scale_down_and_limit_scale_up() -> None:
    h = ScalingHistory()
    assert h.normalize("k", 2, 10, 1, 20, now=0).replicas == 4, "at most double (or 4)"
    assert h.normalize("k", 4, 8, 1, 20, now=10).replicas == 8
    # A scale-down within 5 minutes of a higher recommendation keeps the highest.
    out = h.normalize("k", 8, 2, 1, 20, now=20)
    assert out.replicas == 10 and out.able_reason == "ScaleDownStabilized"
    later = ScalingHistory()
    later.normalize("k", 8, 8, 1, 20, now=0)
    assert later.normalize("k", 8, 2, 1, 20, now=301).replicas == 2
    bounded = ScalingHistory().normalize("k", 3, 0, 2, 5, now=0)
    assert (bounded.replicas, bounded.limited, bounded.limited_reason) == (
        2, True, "TooFewReplicas")


def test_the_first_count_seen_holds_off_a_scale_down() -> None:
    h = ScalingHistory()
    h.record_initial("k", 4, now=0)
    h.record_initial("k", 9, now=1)  # only the first one counts
    out = h.normalize("k", 4, 1, 1, 10, now=10)
    assert (out.replicas, out.able_reason) == (4, "ScaleDownStabilized")
    assert h.normalize("k", 4, 1, 1, 10, now=400).replicas == 1


def test_behavior_policies_limit_each_period() -> None:
    behavior = {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                            "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]},
                "scaleDown": {"stabilizationWindowSeconds": 0,
                              "policies": [{"type": "Percent", "value": 50,
                                            "periodSeconds": 60}]}}
    h = ScalingHistory()
    out = h.normalize_with_behavior("k", behavior, 2, 10, 1, 20, now=0)
    assert (out.replicas, out.limited_reason) == (4, "ScaleUpLimit")
    h.record_scale("k", behavior, 2, 4, now=0)
    # Within the same 60 s period the 2-pod budget is spent.
    assert h.normalize_with_behavior("k", behavior, 4, 10, 1, 20, now=30).replicas == 4
    assert h.normalize_with_behavior("k", behavior, 4, 10, 1, 20, now=61).replicas == 6
    down = ScalingHistory().normalize_with_behavior("k", behavior, 10, 1, 1, 20, now=0)
    assert (down.replicas, down.limited_reason) == (5, "ScaleDownLimit")
    disabled = {"scaleDown": {"selectPolicy": "Disabled"}}
    assert ScalingHistory().normalize_with_behavior("k", disabled, 10, 1, 1, 20,
                                                    now=0).replicas == 10


def test_behavior_scale_up_stabilization_window() -> None:
    behavior = {"scaleUp": {"stabilizationWindowSeconds": 60}}
    h = ScalingHistory()
    h.normalize_with_behavior("k", behavior, 2, 2, 1, 20, now=0)
    out = h.normalize_with_behavior("k", behavior, 2, 8, 1, 20, now=10)
    assert (out.replicas, out.able_reason) == (2, "ScaleUpStabilized")


# -- conversion -----------------------------------------------------------------------------

def test_v1_v2_round_trip_keeps_what_v1_cannot_say() -> None:
    v2 = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
          "metadata": {"name": "h"},
          "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "minReplicas": 1,
                   "maxReplicas": 5, "metrics": [
                       {"type": "Resource", "resource": {"name": "cpu", "target": {
                           "type": "Utilization", "averageUtilization": 60}}},
                       {"type": "Resource", "resource": {"name": "memory", "target": {
                           "type": "AverageValue", "averageValue": "100Mi"}}}],
                   "behavior": {"scaleDown": {"stabilizationWindowSeconds": 10}}},
          "status": {"currentReplicas": 2, "desiredReplicas": 2, "currentMetrics": [
              {"type": "Resource", "resource": {"name": "cpu", "current": {
                  "averageUtilization": 40}}}]}}
    v1 = to_v1(v2)
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 60
    assert v1["status"]["currentCPUUtilizationPercentage"] == 40
    assert "metrics" not in v1["spec"] and "behavior" not in v1["spec"]
    assert METRICS in v1["metadata"]["annotations"] and BEHAVIOR in v1["metadata"]["annotations"]
    back = to_v2(v1)
    assert back["spec"]["metrics"] == v2["spec"]["metrics"]
    assert back["spec"]["behavior"] == v2["spec"]["behavior"]
    assert "annotations" not in back["metadata"]


# -- the controller against a real API server ------------------------------------------------------

class FedMetrics:
    """A metrics source whose numbers the test sets: millicores per running pod."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.per_pod = 0

    async def resource_metrics(self, resource: str, namespace: str, selector: str,
                               container: str = "") -> dict[str, PodMetric]:
        if self.per_pod < 0:
            raise MetricsUnavailable("no metrics returned from resource metrics API")
        pods = (await self.client.list("", "v1", "pods", namespace,
                                       label_selector=selector))["items"]
        now = dt.datetime.now(dt.UTC)
        return {p["metadata"]["name"]: PodMetric(self.per_pod, now, dt.timedelta(0))
                for p in pods if (p.get("status") or {}).get("phase") == "Running"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # The in-cluster controllers stay off: this test runs its own HPA controller (with
    # fed metrics) and the ReplicaSet controller in-process, against the real server.
    with running_cluster(tmp_path_factory.mktemp("cluster"),
                         extra_args=("--no-controllers",)) as c:
        yield c


async def test_hpa_scales_a_replicaset_up_and_down(client: Client) -> None:
    import asyncio

    from skiff.controllers.replicaset import ReplicaSetController

    ns = await new_namespace(client, default_account=True)
    rs = replicaset("web", 1, {"app": "web"})
    rs["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "100m"}}
    await client.create("apps", "v1", "replicasets", rs, ns)
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "web"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                       "name": "web"},
                    "minReplicas": 1, "maxReplicas": 5, "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {
                            "type": "Utilization", "averageUtilization": 50}}}],
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}}
    await client.create("autoscaling", "v2", "horizontalpodautoscalers", hpa, ns)
    metrics = FedMetrics(client)
    hpa_ctrl = HorizontalPodAutoscalerController(client, metrics=metrics, sync_period=0.2)
    rs_ctrl = ReplicaSetController(client)

    async def pod_names() -> list[str]:
        pods = (await client.list("", "v1", "pods", ns, label_selector="app=web"))["items"]
        return [p["metadata"]["name"] for p in pods if not p["metadata"].get(
            "deletionTimestamp") and (p.get("status") or {}).get("phase") == "Running"]

    async def replicas() -> int:
        return (await client.get("apps", "v1", "replicasets", "web", ns))["spec"]["replicas"]

    tasks = [asyncio.create_task(hpa_ctrl.run()), asyncio.create_task(rs_ctrl.run())]
    try:
        async with FakeKubelet(client, ns):
            await eventually(pod_names, "the first pod runs")
            metrics.per_pod = 200  # 200% of the 100m request against a 50% target: ×4

            async def scaled_up() -> bool:
                return await replicas() == 4

            await eventually(scaled_up, "the HPA scales 1 → 4")

            async def status_says_4() -> dict | None:
                # The status write follows the scale write.
                status = (await client.get("autoscaling", "v2", "horizontalpodautoscalers",
                                           "web", ns)).get("status") or {}
                return status if status.get("desiredReplicas") == 4 else None

            status = await eventually(status_says_4, "the HPA status reports 4")
            conds = {c["type"]: c for c in status["conditions"]}
            # Conditions keep the order they first appeared in, as upstream lists them.
            assert list(conds) == ["AbleToScale", "ScalingActive", "ScalingLimited"]
            assert conds["AbleToScale"]["status"] == "True"
            assert conds["ScalingActive"]["reason"] == "ValidMetricFound"
            assert status["currentMetrics"][0]["resource"]["current"]["averageUtilization"] \
                == 200
            async def rescale_event() -> bool:
                # Events are written in the background.
                events = (await client.list("", "v1", "events", ns,
                                            field_selector="reason=SuccessfulRescale"))["items"]
                return any("New size: 4; reason: cpu resource utilization (percentage of "
                           "request) above target" in e["message"] for e in events)

            await eventually(rescale_event, "the rescale is recorded as an event")

            async def four_running() -> list[str] | None:
                names = await pod_names()
                return names if len(names) == 4 else None

            await eventually(four_running, "four pods run")
            metrics.per_pod = 10  # 10% against 50%: scale down to the minimum

            async def scaled_down() -> bool:
                return await replicas() == 1

            await eventually(scaled_down, "the HPA scales back down to 1")
            metrics.per_pod = -1  # the metrics API goes away

            async def inactive() -> Obj | None:
                st = (await client.get("autoscaling", "v2", "horizontalpodautoscalers", "web",
                                       ns)).get("status") or {}
                conds = {c["type"]: c for c in st.get("conditions") or []}
                active = conds.get("ScalingActive", {})
                return st if active.get("reason") == "FailedGetResourceMetric" else None

            st = await eventually(inactive, "ScalingActive turns False without metrics")
            error = ("failed to get cpu utilization: unable to get metrics for resource cpu: "
                     "no metrics returned from resource metrics API")
            active = next(c for c in st["conditions"] if c["type"] == "ScalingActive")
            assert active["message"] == f"the HPA was unable to compute the replica count: " \
                                        f"{error}"
            # The last values are not kept: kubectl shows <unknown>.
            assert st["currentMetrics"] == [{"type": ""}]

            async def failure_events() -> set[str] | None:
                events = (await client.list("", "v1", "events", ns))["items"]
                found = {f"{e['reason']}: {e['message']}" for e in events}
                wanted = {f"FailedGetResourceMetric: {error}",
                          "FailedComputeMetricsReplicas: invalid metrics (1 invalid out of 1), "
                          f"first error is: failed to get cpu resource metric value: {error}"}
                return found if wanted <= found else None

            await eventually(failure_events, "the metric failures are recorded as events")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_hpa_served_as_v1_and_v2(client: Client) -> None:
    ns = await new_namespace(client, default_account=True)
    v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
          "metadata": {"name": "old"},
          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": "d"},
                   "maxReplicas": 3, "targetCPUUtilizationPercentage": 70}}
    created = await client.create("autoscaling", "v1", "horizontalpodautoscalers", v1, ns)
    assert created["spec"]["minReplicas"] == 1
    assert created["spec"]["targetCPUUtilizationPercentage"] == 70
    as_v2 = await client.get("autoscaling", "v2", "horizontalpodautoscalers", "old", ns)
    assert as_v2["apiVersion"] == "autoscaling/v2"
    assert as_v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    v2 = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
          "metadata": {"name": "new"},
          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": "d"}, "maxReplicas": 3,
                   "behavior": {"scaleUp": {"stabilizationWindowSeconds": 30}}}}
    made = await client.create("autoscaling", "v2", "horizontalpodautoscalers", v2, ns)
    assert made["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80
    assert made["spec"]["behavior"]["scaleUp"]["policies"][0] == {
        "type": "Pods", "value": 4, "periodSeconds": 15}
    assert made["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    bad = dict(v2, metadata={"name": "bad"})
    bad["spec"] = dict(v2["spec"], minReplicas=4, maxReplicas=2)
    with pytest.raises(StatusError) as err:
        await client.create("autoscaling", "v2", "horizontalpodautoscalers", bad, ns)
    assert err.value.code == 422
    assert "must be greater than or equal to `minReplicas`" in err.value.message


async def test_two_hpas_over_the_same_pods_are_ambiguous(client: Client) -> None:
    import asyncio

    ns = await new_namespace(client, default_account=True)
    await client.create("apps", "v1", "replicasets", replicaset("amb", 1, {"app": "amb"}), ns)
    await client.create("", "v1", "pods", {"metadata": {"name": "amb-1", "labels": {
        "app": "amb"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, ns)
    for name in ("first", "second"):
        await client.create("autoscaling", "v2", "horizontalpodautoscalers", {
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                        "name": "amb"}, "maxReplicas": 3}}, ns)
    ctrl = HorizontalPodAutoscalerController(client, metrics=FedMetrics(client),
                                             sync_period=0.2)
    task = asyncio.create_task(ctrl.run())
    message = f"pods by selector app=amb are controlled by multiple HPAs: " \
              f"[{ns}/first {ns}/second]"
    try:
        async def both_ambiguous() -> bool:
            for name in ("first", "second"):
                st = (await client.get("autoscaling", "v2", "horizontalpodautoscalers", name,
                                       ns)).get("status") or {}
                active = next((c for c in st.get("conditions") or []
                               if c["type"] == "ScalingActive"), {})
                if (active.get("reason"), active.get("message")) != ("AmbiguousSelector",
                                                                     message):
                    return False
            return True

        await eventually(both_ambiguous, "both HPAs report the ambiguous selector")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_scale_without_a_selector_is_reported_as_upstream(client: Client) -> None:
    from skiff.controllers.podautoscaler.controller import MetricsFailed

    ctrl = HorizontalPodAutoscalerController(client, metrics=FedMetrics(client))
    hpa = {"metadata": {"name": "h", "namespace": "default"}}
    with pytest.raises(MetricsFailed) as err:
        ctrl._selector("default/h", hpa, "", [])  # noqa: SLF001 - the check on its own
    assert err.value.message == "selector is required"
    assert err.value.conditions == [{
        "type": "ScalingActive", "status": "False", "reason": "InvalidSelector",
        "message": "the HPA target's scale is missing a selector",
        "lastTransitionTime": err.value.conditions[0]["lastTransitionTime"]}]
    assert err.value.statuses == []


async def test_a_missing_target_is_reported_as_upstream(client: Client) -> None:
    import asyncio

    ns = await new_namespace(client, default_account=True)
    await client.create("autoscaling", "v2", "horizontalpodautoscalers", {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "lost"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "gone"}, "maxReplicas": 3}}, ns)
    ctrl = HorizontalPodAutoscalerController(client, metrics=FedMetrics(client),
                                             sync_period=0.2)
    task = asyncio.create_task(ctrl.run())
    try:
        async def reported() -> Obj | None:
            st = (await client.get("autoscaling", "v2", "horizontalpodautoscalers", "lost",
                                   ns)).get("status") or {}
            return st if st.get("conditions") else None

        st = await eventually(reported, "the HPA reports the missing target")
        assert st["desiredReplicas"] == 0
        assert [(c["type"], c["status"], c["reason"], c["message"])
                for c in st["conditions"]] == [
            ("AbleToScale", "False", "FailedGetScale", "the HPA controller was unable to get "
             "the target's current scale: deployments.apps \"gone\" not found")]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_missing_pod_and_node_metrics_are_named_as_metrics_server_does(
        client: Client) -> None:
    ns = await new_namespace(client, default_account=True)
    with pytest.raises(StatusError) as err:
        await client.get("metrics.k8s.io", "v1beta1", "pods", "web", ns)
    assert err.value.code == 404
    assert err.value.message == f'podmetrics.metrics.k8s.io "{ns}/web" not found'
    with pytest.raises(StatusError) as err:
        await client.get("metrics.k8s.io", "v1beta1", "nodes", "n1")
    assert err.value.message == 'nodemetrics.metrics.k8s.io "n1" not found'

"""The Deployment controller: arithmetic by numbers, rollouts against a real `skiff up`.

A fake kubelet in the test process runs the pods (binding and status through the
API), so readiness, availability and graceful deletion are real API state.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from typing import Any

from skiff.api import meta as m
from skiff.client import Client
from skiff.controllers import pod_state
from skiff.controllers.deployment import util as u
from skiff.controllers.deployment.rollout import Rollout
from tests.controller_helpers import deployment, events_for, eventually
from tests.fake_kubelet import FakeKubelet

Obj = dict[str, Any]

# -- unit: the numbers -------------------------------------------------------------------


def _d(replicas: int, surge: Any = "25%", unavailable: Any = "25%", **status: int) -> Obj:
    return {"spec": {"replicas": replicas, "strategy": {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}},
        "status": status}


def _rs(replicas: int, max_replicas: int | None = None, created: str = "2026-01-01T00:00:00Z",
        name: str = "rs") -> Obj:
    ann = {u.MAX_REPLICAS: str(max_replicas)} if max_replicas is not None else {}
    return {"metadata": {"name": name, "annotations": ann, "creationTimestamp": created},
            "spec": {"replicas": replicas}}


def test_fenceposts_round_surge_up_and_unavailable_down() -> None:
    assert u.fenceposts(_d(10)) == (3, 2)
    assert u.fenceposts(_d(1)) == (1, 0)
    assert u.fenceposts(_d(4, 0, 0)) == (0, 1), "never both zero"
    assert u.max_unavailable(_d(2, 0, 5)) == 2, "capped at replicas"
    recreate = {"spec": {"replicas": 3, "strategy": {"type": "Recreate"}}}
    assert u.max_surge(recreate) == 0 and u.max_unavailable(recreate) == 0


def test_new_rs_replicas_respects_surge() -> None:
    d = _d(10, 3, 2)
    old, new = _rs(10), _rs(0)
    assert u.new_rs_replicas(d, [old, new], new) == 3
    old, new = _rs(8), _rs(3)
    assert u.new_rs_replicas(d, [old, new], new) == 5
    assert u.new_rs_replicas(d, [_rs(10), _rs(3)], _rs(3)) == 3, "already at the surge"


def test_proportional_shares_follow_max_replicas_annotation() -> None:
    d = _d(15, 3, 2)
    old, new = _rs(8, 13), _rs(5, 13)
    # Allowed 15+3 = 18 against 13 running: 5 to hand out, 8*18/13 ≈ 11 and 5*18/13 ≈ 7.
    assert u.proportion(old, d, 5, 0) == 3
    assert u.proportion(new, d, 5, 3) == 2
    shrink = _d(5, 3, 2)
    # Shrinking to 5 (+3 surge = 8): 8*8/13 ≈ 5 and 5*8/13 ≈ 3.
    assert u.proportion(_rs(8, 13), shrink, -5, 0) == -3
    assert u.proportion(_rs(5, 13), shrink, -5, -3) == -2
    assert u.proportion(_rs(0, 13), d, 5, 0) == 0


def test_revision_annotations_and_history_on_rollback() -> None:
    d = {"metadata": {"annotations": {u.CHANGE_CAUSE: "v2", u.LAST_APPLIED: "{}"}},
         "spec": {"replicas": 2}}
    rs = {"metadata": {"annotations": {u.REVISION: "1"}}, "spec": {"replicas": 0}}
    assert u.set_new_rs_annotations(d, rs, "3", exists=True)
    ann = rs["metadata"]["annotations"]
    assert ann[u.REVISION] == "3"
    assert ann[u.REVISION_HISTORY] == "1"
    assert ann[u.CHANGE_CAUSE] == "v2"
    assert u.LAST_APPLIED not in ann
    fresh: Obj = {"metadata": {}, "spec": {"replicas": 0}}
    u.set_new_rs_annotations(d, fresh, "1", exists=False)
    assert fresh["metadata"]["annotations"][u.DESIRED_REPLICAS] == "2"
    assert fresh["metadata"]["annotations"][u.MAX_REPLICAS] == "3"


def test_template_hash_ignores_the_hash_label_and_counts_collisions() -> None:
    t = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c"}]}}
    with_label = {"metadata": {"labels": {"app": "a", u.HASH_LABEL: "x"}},
                  "spec": {"containers": [{"name": "c"}]}}
    assert u.template_hash(t) == u.template_hash(with_label)
    assert u.template_hash(t, 1) != u.template_hash(t)
    assert all(c in "bcdfghjklmnpqrstvwxz2456789" for c in u.template_hash(t))
    assert u.equal_ignore_hash(t, with_label)
    # What kubectl's rollout undo copies back: Go zero values spelled out.
    copied = {"metadata": {"creationTimestamp": None, "labels": {"app": "a"}},
              "spec": {"containers": [{"name": "c", "resources": {}}]}}
    assert u.equal_ignore_hash(t, copied)
    assert u.template_hash(t) == u.template_hash(copied)


def test_conditions_keep_transition_time_when_only_reason_changes() -> None:
    status: Obj = {}
    u.set_condition(status, {"type": "Progressing", "status": "True", "reason": "A",
                             "lastTransitionTime": "t1"})
    u.set_condition(status, {"type": "Progressing", "status": "True", "reason": "B",
                             "lastTransitionTime": "t2"})
    cond = u.get_condition(status, "Progressing")
    assert cond is not None and cond["reason"] == "B" and cond["lastTransitionTime"] == "t1"


# -- integration ------------------------------------------------------------------------------


async def _deploy(client: Client, ns: str, name: str) -> Obj:
    return await client.get("apps", "v1", "deployments", name, ns)


async def _rss(client: Client, ns: str, selector: str) -> list[Obj]:
    items = (await client.list("apps", "v1", "replicasets", ns,
                               label_selector=selector))["items"]
    # Oldest revision first (creation times have one-second resolution).
    return sorted(items, key=u.revision_of)


def _rolled_out(d: Obj) -> bool:
    """kubectl rollout status's success test."""
    st = d.get("status") or {}
    want = d["spec"]["replicas"]
    return (d["metadata"].get("generation", 0) <= st.get("observedGeneration", 0)
            and st.get("updatedReplicas", 0) == want and st.get("replicas", 0) == want
            and st.get("availableReplicas", 0) == want)


async def _wait_rolled_out(client: Client, ns: str, name: str, timeout: float = 15) -> Obj:
    async def done() -> Obj | None:
        d = await _deploy(client, ns, name)
        return d if _rolled_out(d) else None

    return await eventually(done, f"deployment {name} rolled out", timeout=timeout)


async def test_deployment_creates_a_hashed_replicaset_and_reports_conditions(
        client: Client, ns: str) -> None:
    async with FakeKubelet(client, ns):
        body = deployment("web", 3, {"app": "web"})
        body["metadata"]["annotations"] = {u.CHANGE_CAUSE: "first"}
        await client.create("apps", "v1", "deployments", body, ns)
        d = await _wait_rolled_out(client, ns, "web")
    assert d["metadata"]["annotations"][u.REVISION] == "1"
    conds = {c["type"]: c for c in d["status"]["conditions"]}
    assert (conds["Available"]["status"], conds["Available"]["reason"]) == (
        "True", "MinimumReplicasAvailable")
    assert (conds["Progressing"]["status"], conds["Progressing"]["reason"]) == (
        "True", "NewReplicaSetAvailable")
    assert conds["Progressing"]["message"].endswith("has successfully progressed.")
    assert d["status"]["readyReplicas"] == 3 and "unavailableReplicas" not in d["status"]
    [rs] = await _rss(client, ns, "app=web")
    hash_ = rs["metadata"]["labels"][u.HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{hash_}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", u.HASH_LABEL: hash_}
    ann = rs["metadata"]["annotations"]
    assert ann[u.REVISION] == "1" and ann[u.CHANGE_CAUSE] == "first"
    assert ann[u.DESIRED_REPLICAS] == "3" and ann[u.MAX_REPLICAS] == "4"
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    events = await events_for(client, ns, "web")
    assert any(e["reason"] == "ScalingReplicaSet"
               and e["message"] == f"Scaled up replica set web-{hash_} from 0 to 3"
               for e in events)


async def test_rolling_update_keeps_availability_within_bounds(client: Client,
                                                               ns: str) -> None:
    replicas, surge, unavailable = 4, 1, 1
    async with FakeKubelet(client, ns, ready_delay=0.3):
        await client.create("apps", "v1", "deployments", deployment(
            "roll", replicas, {"app": "roll"},
            strategy={"type": "RollingUpdate",
                      "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}), ns)
        await _wait_rolled_out(client, ns, "roll")
        samples: list[tuple[int, int]] = []
        stop = asyncio.Event()

        async def watch_pods() -> None:
            while not stop.is_set():
                pods = (await client.list("", "v1", "pods", ns,
                                          label_selector="app=roll"))["items"]
                live = [p for p in pods if not pod_state.is_terminating(p)]
                ready = [p for p in live if pod_state.is_ready(p)]
                samples.append((len(ready), len(live)))
                await asyncio.sleep(0.03)

        watcher = asyncio.create_task(watch_pods())
        await client.patch("apps", "v1", "deployments", "roll",
                           {"spec": {"template": {"spec": {"containers": [
                               {"name": "c", "image": "nginx:2"}]}}}}, ns,
                           patch_type="strategic")
        d = await _wait_rolled_out(client, ns, "roll", timeout=30)
        stop.set()
        await watcher
    assert min(ready for ready, _ in samples) >= replicas - unavailable, samples
    assert max(live for _, live in samples) <= replicas + surge, samples
    assert d["metadata"]["annotations"][u.REVISION] == "2"
    old, new = await _rss(client, ns, "app=roll")
    assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == replicas
    assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    assert new["metadata"]["annotations"][u.REVISION] == "2"


async def test_recreate_removes_old_pods_before_starting_new(client: Client, ns: str) -> None:
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "deployments", deployment(
            "rec", 2, {"app": "rec"}, strategy={"type": "Recreate"}), ns)
        await _wait_rolled_out(client, ns, "rec")
        mixed = False
        stop = asyncio.Event()

        async def watch_pods() -> None:
            nonlocal mixed
            while not stop.is_set():
                pods = (await client.list("", "v1", "pods", ns,
                                          label_selector="app=rec"))["items"]
                images = {p["spec"]["containers"][0]["image"] for p in pods}
                mixed = mixed or len(images) > 1
                await asyncio.sleep(0.02)

        watcher = asyncio.create_task(watch_pods())
        await client.patch("apps", "v1", "deployments", "rec",
                           {"spec": {"template": {"spec": {"containers": [
                               {"name": "c", "image": "nginx:2"}]}}}}, ns,
                           patch_type="strategic")
        await _wait_rolled_out(client, ns, "rec")
        stop.set()
        await watcher
    assert not mixed, "old and new pods never coexist under Recreate"


async def test_scaling_mid_rollout_is_proportional(client: Client, ns: str) -> None:
    def ready(pod: Obj) -> bool:
        return pod["spec"]["containers"][0]["image"] == "nginx:1"

    async with FakeKubelet(client, ns, ready=ready):
        await client.create("apps", "v1", "deployments", deployment(
            "prop", 10, {"app": "prop"},
            strategy={"type": "RollingUpdate",
                      "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}), ns)
        await _wait_rolled_out(client, ns, "prop")
        await client.patch("apps", "v1", "deployments", "prop",
                           {"spec": {"template": {"spec": {"containers": [
                               {"name": "c", "image": "nginx:2"}]}}}}, ns,
                           patch_type="strategic")

        async def stuck() -> list[int] | None:
            sizes = [r["spec"]["replicas"] for r in await _rss(client, ns, "app=prop")]
            return sizes if sizes == [8, 5] else None

        await eventually(stuck, "the rollout stalls at old 8 / new 5")
        await client.patch("apps", "v1", "deployments", "prop", {"spec": {"replicas": 15}},
                           ns, subresource="scale")

        async def scaled() -> list[int] | None:
            sizes = [r["spec"]["replicas"] for r in await _rss(client, ns, "app=prop")]
            return sizes if sizes == [11, 7] else None

        await eventually(scaled, "both sets grow in proportion (11 and 7)")


async def test_pause_holds_the_rollout_and_resume_continues(client: Client, ns: str) -> None:
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "deployments",
                            deployment("pz", 2, {"app": "pz"}), ns)
        await _wait_rolled_out(client, ns, "pz")
        await client.patch("apps", "v1", "deployments", "pz", {"spec": {"paused": True}}, ns)

        async def paused() -> bool:
            cond = u.get_condition((await _deploy(client, ns, "pz"))["status"], "Progressing")
            return cond is not None and cond["reason"] == "DeploymentPaused"

        await eventually(paused, "Progressing says DeploymentPaused")
        await client.patch("apps", "v1", "deployments", "pz",
                           {"spec": {"template": {"spec": {"containers": [
                               {"name": "c", "image": "nginx:2"}]}}}}, ns,
                           patch_type="strategic")
        await asyncio.sleep(0.5)
        assert len(await _rss(client, ns, "app=pz")) == 1, "no new ReplicaSet while paused"
        await client.patch("apps", "v1", "deployments", "pz", {"spec": {"paused": False}}, ns)
        d = await _wait_rolled_out(client, ns, "pz")
        assert len(await _rss(client, ns, "app=pz")) == 2
        assert u.get_condition(d["status"], "Progressing")["reason"] == "NewReplicaSetAvailable"


async def test_progress_deadline_exceeded(client: Client, ns: str) -> None:
    async with FakeKubelet(client, ns, ready=lambda pod: False):
        await client.create("apps", "v1", "deployments", deployment(
            "slow", 1, {"app": "slow"}, progressDeadlineSeconds=2), ns)

        async def timed_out() -> Obj | None:
            cond = u.get_condition((await _deploy(client, ns, "slow")).get("status") or {},
                                   "Progressing")
            return cond if cond and cond["reason"] == "ProgressDeadlineExceeded" else None

        cond = await eventually(timed_out, "the deadline is exceeded", timeout=10)
        assert cond["status"] == "False"
        assert cond["message"].endswith("has timed out progressing.")
        avail = u.get_condition((await _deploy(client, ns, "slow"))["status"], "Available")
        assert avail is not None and avail["status"] == "False"
        # Pausing a rollout that has already failed keeps the failure reported.
        await client.patch("apps", "v1", "deployments", "slow", {"spec": {"paused": True}},
                           ns)

        async def observed() -> Obj | None:
            d = await _deploy(client, ns, "slow")
            return d if d["status"].get("observedGeneration") == d["metadata"][
                "generation"] else None

        d = await eventually(observed, "the pause is observed")
    cond = u.get_condition(d["status"], "Progressing")
    assert cond is not None and cond["reason"] == "ProgressDeadlineExceeded", cond


async def test_revision_history_limit_deletes_old_replicasets(client: Client, ns: str) -> None:
    async with FakeKubelet(client, ns):
        await client.create("apps", "v1", "deployments", deployment(
            "hist", 1, {"app": "hist"}, revisionHistoryLimit=1), ns)
        await _wait_rolled_out(client, ns, "hist")
        for image in ("nginx:2", "nginx:3"):
            await client.patch("apps", "v1", "deployments", "hist",
                               {"spec": {"template": {"spec": {"containers": [
                                   {"name": "c", "image": image}]}}}}, ns,
                               patch_type="strategic")
            await _wait_rolled_out(client, ns, "hist")

        async def pruned() -> list[str] | None:
            revs = [r["metadata"]["annotations"][u.REVISION]
                    for r in await _rss(client, ns, "app=hist")]
            return revs if sorted(revs) == ["2", "3"] else None

        await eventually(pruned, "only the newest old revision is kept")


def test_template_without_hash_leaves_its_input_alone() -> None:
    template = {"metadata": {"labels": {"app": "a", u.HASH_LABEL: "h"}, "annotations": {}},
                "spec": {"containers": [{"name": "c", "resources": {}}]}}
    before = copy.deepcopy(template)
    assert u.template_without_hash(template) == {"metadata": {"labels": {"app": "a"}},
                                                 "spec": {"containers": [{"name": "c"}]}}
    assert template == before
    only_hash = {"metadata": {"labels": {u.HASH_LABEL: "h"}}, "spec": {}}
    assert u.template_without_hash(only_hash) == {}
    assert u.equal_ignore_hash(template, {"metadata": {"labels": {"app": "a"}},
                                          "spec": {"containers": [{"name": "c"}]}})


def test_deep_copy_is_deep_and_falls_back_for_non_json_values() -> None:
    from skiff.api.meta import deep_copy

    obj = {"a": [{"b": 1, "c": None, "d": 1.5, "e": True}], "f": "x"}
    out = deep_copy(obj)
    assert out == obj and out["a"][0] is not obj["a"][0]
    odd = {1: {"big": 2**70}}
    out = deep_copy(odd)
    assert out == odd and out[1] is not odd[1]


def test_parsed_selectors_are_reused_until_the_selector_changes() -> None:
    from skiff.controllers.deployment.controller import DeploymentController

    dc = DeploymentController(Client("https://127.0.0.1:1"))
    d = {"metadata": {"uid": "u1", "name": "d", "namespace": "ns"},
         "spec": {"selector": {"matchLabels": {"app": "a"}}}}
    first = dc.selector_of(d)
    assert dc.selector_of(d) is first and first.matches({"app": "a"})
    changed = {**d, "spec": {"selector": {"matchLabels": {"app": "b"}}}}
    assert dc.selector_of(changed).matches({"app": "b"})
    dc._deployment_deleted(d)
    assert "u1" not in dc._selectors


def test_a_deadline_under_a_second_away_is_checked_just_after_it_passes() -> None:
    d = deployment("stuck", 2, {"app": "stuck"}, progressDeadlineSeconds=10)
    since = m.now() - dt.timedelta(seconds=9.5)
    status = {"replicas": 1, "conditions": [{
        "type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
        "lastUpdateTime": m.rfc3339(since), "lastTransitionTime": m.rfc3339(since)}]}
    rollout = Rollout(None, None, d, [])  # type: ignore[arg-type] - no writes here
    rollout._requeue_if_stuck(status)
    # Not 0 (a reconcile loop spinning until the deadline), and not a whole period late.
    assert rollout.requeue_after is not None and 0.05 < rollout.requeue_after < 1.6


async def test_cleanup_never_scales_up_an_old_set_whose_status_lags_its_scale_down() -> None:
    class NoWrites:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"unexpected API call {name}")

    d = deployment("web", 300, {"app": "web"})
    # Scaled from 75 to 60 a moment ago: its status still counts the 75 available pods.
    old = _rs(60)
    old["status"] = {"replicas": 75, "availableReplicas": 75}
    rollout = Rollout(NoWrites(), None, d, [old])  # type: ignore[arg-type]
    kept, cleaned = await rollout._cleanup_unhealthy([old], 50)
    assert cleaned == 0 and u.spec_replicas(kept[0]) == 60

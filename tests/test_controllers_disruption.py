"""PodDisruptionBudgets: the disruption controller's status and the eviction
subresource, against a real API server (controllers run in-process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from skiff.api.errors import StatusError
from skiff.client import Client
from skiff.controllers.disruption import DisruptionController
from tests.cluster_fixture import Cluster, running_cluster
from tests.controller_helpers import (
    container,
    events_for,
    eventually,
    new_namespace,
    replicaset,
)
from tests.fake_kubelet import set_running

Obj = dict[str, Any]
PDBS = ("policy", "v1", "poddisruptionbudgets")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # No in-cluster controllers: the test runs the disruption controller itself and
    # owns every pod it makes.
    with running_cluster(tmp_path_factory.mktemp("cluster"),
                         extra_args=("--no-controllers",)) as c:
        yield c


@pytest.fixture
async def ns(client: Client) -> str:
    """A fresh namespace with its `default` account (no controller makes one here)."""
    return await new_namespace(client, default_account=True)


@pytest.fixture
async def disruption(client: Client) -> AsyncIterator[DisruptionController]:
    ctrl = DisruptionController(client)
    task = asyncio.create_task(ctrl.run())
    yield ctrl
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _running_pod(client: Client, ns: str, name: str, labels: dict[str, str],
                       owner: Obj | None = None, ready: bool = True) -> Obj:
    pod: Obj = {"metadata": {"name": name, "labels": labels},
                "spec": {"containers": [container()], "nodeName": "n1"}}
    if owner is not None:
        pod["metadata"]["ownerReferences"] = [{
            "apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True}]
    made = await client.create("", "v1", "pods", pod, ns)
    return await set_running(client, made, ready)


async def _pdb(client: Client, ns: str, name: str, selector: Obj | None, **spec: Any) -> Obj:
    body: Obj = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                 "metadata": {"name": name}, "spec": dict(spec)}
    if selector is not None:
        body["spec"]["selector"] = selector
    return await client.create(*PDBS, body, ns)


async def _status_when(client: Client, ns: str, name: str, ok: Any) -> Obj:
    async def check() -> Obj | None:
        pdb = await client.get(*PDBS, name, ns)
        status = pdb.get("status") or {}
        return status if status.get("observedGeneration") and ok(status) else None

    return await eventually(check, f"the status of budget {name}")


async def test_unmanaged_pods_do_not_fail_the_sync(
        client: Client, ns: str, disruption: DisruptionController) -> None:
    rs = await client.create("apps", "v1", "replicasets", replicaset("web", 2, {"app": "web"}),
                             ns)
    for i in range(2):
        await _running_pod(client, ns, f"web-{i}", {"app": "web"}, owner=rs)
    await _running_pod(client, ns, "bare", {"app": "web"})
    await _pdb(client, ns, "budget", {"matchLabels": {"app": "web"}}, maxUnavailable=1)
    status = await _status_when(client, ns, "budget", lambda s: s.get("currentHealthy") == 3)
    # The ReplicaSet's 2 replicas are what is expected; the bare pod is healthy but
    # not expected, as upstream counts it.
    assert status["expectedPods"] == 2
    assert status["desiredHealthy"] == 1
    assert status["disruptionsAllowed"] == 2
    cond = next(c for c in status["conditions"] if c["type"] == "DisruptionAllowed")
    assert (cond["status"], cond["reason"]) == ("True", "SufficientPods")

    async def warned() -> Obj | None:
        return next((e for e in await events_for(client, ns, "budget")
                     if e["reason"] == "UnmanagedPods"), None)

    event = await eventually(warned, "an UnmanagedPods warning")
    assert event["type"] == "Warning"
    assert event["message"].startswith(
        "Pods selected by this PodDisruptionBudget (selector: &LabelSelector{MatchLabels:"
        "map[string]string{app: web,},MatchExpressions:[]LabelSelectorRequirement{},}) were "
        "found to be unmanaged.")


async def test_a_budget_expecting_no_pods_allows_no_disruption(
        client: Client, ns: str, disruption: DisruptionController) -> None:
    for i in range(2):
        await _running_pod(client, ns, f"bare-{i}", {"app": "bare"})
    await _pdb(client, ns, "budget", {"matchLabels": {"app": "bare"}}, maxUnavailable="50%")
    status = await _status_when(client, ns, "budget", lambda s: s.get("currentHealthy") == 2)
    assert (status["expectedPods"], status["desiredHealthy"]) == (0, 0)
    assert status["disruptionsAllowed"] == 0
    cond = next(c for c in status["conditions"] if c["type"] == "DisruptionAllowed")
    assert (cond["status"], cond["reason"]) == ("False", "InsufficientPods")
    with pytest.raises(StatusError) as err:
        await _evict(client, ns, "bare-0")
    assert err.value.code == 429


async def _evict(client: Client, ns: str, name: str, **delete_options: Any) -> Obj:
    body: Obj = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}}
    if delete_options:
        body["deleteOptions"] = delete_options
    return await client.request("POST", client.path("", "v1", "pods", name, ns, "eviction"),
                                body=body)


def _condition(pod: Obj, ctype: str) -> Obj | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or []
                 if c.get("type") == ctype), None)


async def test_evicting_a_pending_pod_marks_it_a_disruption_target(
        client: Client, ns: str) -> None:
    # The finalizer keeps the deleted pod around to be looked at.
    await client.create("", "v1", "pods", {
        "metadata": {"name": "waiting", "finalizers": ["example.com/hold"]},
        "spec": {"containers": [container()]}}, ns)
    await _evict(client, ns, "waiting")
    pod = await client.get("", "v1", "pods", "waiting", ns)
    assert pod["metadata"].get("deletionTimestamp")
    cond = _condition(pod, "DisruptionTarget")
    assert cond is not None
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "True", "EvictionByEvictionAPI", "Eviction API: evicting")
    await client.patch("", "v1", "pods", "waiting", {"metadata": {"finalizers": None}}, ns)


async def test_a_stale_resource_version_precondition_is_a_conflict(
        client: Client, ns: str) -> None:
    pod = await _running_pod(client, ns, "p", {"app": "p"})
    stale = pod["metadata"]["resourceVersion"]
    await client.patch("", "v1", "pods", "p", {"metadata": {"labels": {"moved": "on"}}}, ns)
    with pytest.raises(StatusError) as err:
        await _evict(client, ns, "p", preconditions={"resourceVersion": stale})
    assert err.value.code == 409
    assert "the ResourceVersion in the precondition" in err.value.message
    pod = await client.get("", "v1", "pods", "p", ns)
    assert not pod["metadata"].get("deletionTimestamp")
    assert _condition(pod, "DisruptionTarget") is None


async def test_a_budget_with_too_many_unconfirmed_evictions_is_forbidden(
        client: Client, ns: str) -> None:
    await _running_pod(client, ns, "p", {"app": "p"})
    pdb = await _pdb(client, ns, "budget", {"matchLabels": {"app": "p"}}, minAvailable=0)
    pdb["status"] = {"observedGeneration": pdb["metadata"]["generation"],
                     "disruptionsAllowed": 1, "currentHealthy": 1, "desiredHealthy": 0,
                     "expectedPods": 1,
                     "disruptedPods": {f"gone-{i}": "2026-01-01T00:00:00Z"
                                       for i in range(2001)}}
    await client.update_status(*PDBS, pdb, ns)
    with pytest.raises(StatusError) as err:
        await _evict(client, ns, "p")
    assert err.value.code == 403
    assert err.value.message == (
        'poddisruptionbudget.policy "budget" is forbidden: DisruptedPods map too big - too '
        "many evictions not confirmed by PDB controller")


async def _widget_crd(client: Client) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "scalers.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "scalers", "kind": "Scaler"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {
                                      "type": "object",
                                      "x-kubernetes-preserve-unknown-fields": True}},
                                  "subresources": {"scale": {
                                      "specReplicasPath": ".spec.replicas",
                                      "statusReplicasPath": ".status.replicas"}}}]}}
    try:
        await client.create("apiextensions.k8s.io", "v1", "customresourcedefinitions", crd)
    except StatusError as err:
        if err.code != 409:
            raise

    async def served() -> bool:
        try:
            await client.list("example.com", "v1", "scalers", "default")
        except StatusError:
            return False
        return True

    await eventually(served, "the custom resource is served")


async def test_a_custom_resource_with_a_scale_subresource_is_a_controller(
        client: Client, ns: str, disruption: DisruptionController) -> None:
    await _widget_crd(client)
    owner = await client.create("example.com", "v1", "scalers", {
        "apiVersion": "example.com/v1", "kind": "Scaler", "metadata": {"name": "s"},
        "spec": {"replicas": 4}}, ns)
    for i in range(3):
        await _running_pod(client, ns, f"s-{i}", {"app": "s"}, owner=owner)
    await _pdb(client, ns, "budget", {"matchLabels": {"app": "s"}}, minAvailable="50%")
    status = await _status_when(client, ns, "budget", lambda s: s.get("currentHealthy") == 3)
    # Half of the 4 replicas the custom resource asks for.
    assert (status["expectedPods"], status["desiredHealthy"]) == (4, 2)
    assert status["disruptionsAllowed"] == 1


async def test_a_controller_without_a_scale_fails_the_sync(
        client: Client, ns: str, disruption: DisruptionController) -> None:
    job = await client.create("batch", "v1", "jobs", {
        "metadata": {"name": "j"},
        "spec": {"template": {"metadata": {"labels": {"app": "j"}},
                              "spec": {"restartPolicy": "Never",
                                       "containers": [container()]}}}}, ns)
    job["apiVersion"], job["kind"] = "batch/v1", "Job"
    await _running_pod(client, ns, "j-0", {"app": "j"}, owner=job)
    await _pdb(client, ns, "budget", {"matchLabels": {"app": "j"}}, maxUnavailable=1)

    async def failed() -> Obj | None:
        st = (await client.get(*PDBS, "budget", ns)).get("status") or {}
        cond = next((c for c in st.get("conditions") or []
                     if c["type"] == "DisruptionAllowed"), None)
        return cond if cond and cond["reason"] == "SyncFailed" else None

    cond = await eventually(failed, "the budget reports SyncFailed")
    assert cond["message"] == 'found no controllers for pod "j-0"'


async def test_an_evicted_pod_that_stays_is_reported_and_counted_again(
        client: Client, ns: str, disruption: DisruptionController) -> None:
    await _running_pod(client, ns, "stays", {"app": "s"})
    await _pdb(client, ns, "budget", {"matchLabels": {"app": "s"}}, minAvailable=0)
    await _status_when(client, ns, "budget", lambda s: s.get("currentHealthy") == 1)
    pdb = await client.get(*PDBS, "budget", ns)
    # An eviction promised its deletion three minutes ago.
    pdb["status"]["disruptedPods"] = {"stays": "2020-01-01T00:00:00Z"}
    await client.update_status(*PDBS, pdb, ns)

    async def noticed() -> Obj | None:
        return next((e for e in await events_for(client, ns, "stays")
                     if e["reason"] == "NotDeleted"), None)

    event = await eventually(noticed, "a NotDeleted warning on the pod")
    assert event["type"] == "Warning"
    assert event["message"] == f"Pod was expected by PDB {ns}/budget to be deleted but it wasn't"
    status = await _status_when(client, ns, "budget", lambda s: not s.get("disruptedPods"))
    assert status["currentHealthy"] == 1


async def test_a_budget_without_bounds_expects_no_pods(
        client: Client, ns: str, disruption: DisruptionController) -> None:
    await _running_pod(client, ns, "free", {"app": "f"})
    await _pdb(client, ns, "budget", {"matchLabels": {"app": "f"}})
    status = await _status_when(client, ns, "budget", lambda s: s.get("currentHealthy") == 1)
    assert (status["expectedPods"], status["desiredHealthy"]) == (0, 0)
    assert status["disruptionsAllowed"] == 0


async def test_a_pod_under_two_budgets_cannot_be_evicted(client: Client, ns: str) -> None:
    await _running_pod(client, ns, "p", {"app": "p"})
    for name in ("one", "two"):
        await _pdb(client, ns, name, {"matchLabels": {"app": "p"}}, maxUnavailable=1)
    with pytest.raises(StatusError) as err:
        await _evict(client, ns, "p")
    assert (err.value.code, err.value.reason) == (500, "")
    assert err.value.message == ("This pod has more than one PodDisruptionBudget, which the "
                                 "eviction subresource does not support.")

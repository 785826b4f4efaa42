"""The Job and TTL-after-finished controllers inside a real `skiff up`.

Pods are bound, run and finished by the fake kubelet in tests/fake_kubelet.py,
through the API, the way a node agent would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from skiff.api import meta as m
from skiff.api.errors import StatusError
from skiff.client import Client
from skiff.controllers import job_indexes as ji
from skiff.controllers import job_status as js
from skiff.controllers.job import JobController
from tests.controller_helpers import container, events_for, eventually, pods_in, seed
from tests.fake_kubelet import FakeKubelet, finish_pod

Obj = dict[str, Any]
TRACKING = "batch.kubernetes.io/job-tracking"


@pytest.fixture
async def kubelet(client: Client, ns: str) -> AsyncIterator[FakeKubelet]:
    async with FakeKubelet(client, ns) as k:
        yield k


def job(name: str, **spec: Any) -> Obj:
    restart = spec.pop("restartPolicy", "Never")
    spec = {k: v for k, v in spec.items() if v is not None}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": restart,
                                           "containers": [container()]}}, **spec}}


async def get_job(client: Client, ns: str, name: str) -> Obj:
    return await client.get("batch", "v1", "jobs", name, ns)


def cond(j: Obj, ctype: str) -> Obj | None:
    for c in (j.get("status") or {}).get("conditions") or []:
        if c["type"] == ctype and c["status"] == "True":
            return c
    return None


async def running_pods(client: Client, ns: str, name: str) -> list[Obj]:
    return [p for p in await pods_in(client, ns, f"job-name={name}")
            if (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]


async def test_completions_with_parallelism(client: Client, ns: str,
                                            kubelet: FakeKubelet) -> None:
    await client.create("batch", "v1", "jobs", job("five", completions=5, parallelism=2), ns)
    finished = 0
    while finished < 5:
        pods = await eventually(lambda: running_pods(client, ns, "five"), "pods run")
        active = [p for p in await pods_in(client, ns, "job-name=five")
                  if (p.get("status") or {}).get("phase") in (None, "Pending", "Running")]
        assert len(active) <= 2, [p["metadata"]["name"] for p in active]
        pod = pods[0]
        assert TRACKING in pod["metadata"]["finalizers"]
        ref = pod["metadata"]["ownerReferences"][0]
        assert ref["kind"] == "Job" and ref["controller"] is True
        await finish_pod(client, pod)
        finished += 1

        async def counted(n: int = finished) -> bool:
            j = await get_job(client, ns, "five")
            return (j.get("status") or {}).get("succeeded", 0) >= n
        await eventually(counted, f"{finished} pods counted")

    async def complete() -> Obj | None:
        j = await get_job(client, ns, "five")
        return j if cond(j, "Complete") else None
    j = await eventually(complete, "the job completes")
    st = j["status"]
    assert st["succeeded"] == 5 and "active" not in st and st["ready"] == 0
    assert st["completionTime"] and st["startTime"]
    assert cond(j, "SuccessCriteriaMet")["reason"] == "CompletionsReached"
    assert cond(j, "Complete")["message"] == "Reached expected number of succeeded pods"
    assert st["uncountedTerminatedPods"] == {}
    pods = await pods_in(client, ns, "job-name=five")
    assert len(pods) == 5
    assert all(TRACKING not in (p["metadata"].get("finalizers") or []) for p in pods)

    async def completed_event() -> bool:
        reasons = {e["reason"] for e in await events_for(client, ns, "five")}
        return {"SuccessfulCreate", "Completed"} <= reasons
    await eventually(completed_event, "events are recorded")


async def test_backoff_limit_fails_the_job(client: Client, ns: str,
                                           kubelet: FakeKubelet) -> None:
    await client.create("batch", "v1", "jobs", job("fail", backoffLimit=0, parallelism=2,
                                                    completions=4), ns)
    pods = await eventually(lambda: running_pods(client, ns, "fail"), "pods run")
    await finish_pod(client, pods[0], exit_code=3)

    async def failed() -> Obj | None:
        j = await get_job(client, ns, "fail")
        return j if cond(j, "Failed") else None
    j = await eventually(failed, "the job fails")
    assert cond(j, "Failed")["reason"] == "BackoffLimitExceeded"
    assert cond(j, "FailureTarget")["message"] == "Job has reached the specified backoff limit"
    # The other pod was deleted as the job failed, and counts as failed too.
    assert j["status"]["failed"] == 2
    assert "active" not in j["status"]
    assert await running_pods(client, ns, "fail") == []

    async def warning() -> bool:
        return any(e["reason"] == "BackoffLimitExceeded" and e["type"] == "Warning"
                   for e in await events_for(client, ns, "fail"))
    await eventually(warning, "a BackoffLimitExceeded event")


async def test_indexed_job(client: Client, ns: str, kubelet: FakeKubelet) -> None:
    await client.create("batch", "v1", "jobs", job("idx", completions=3, parallelism=3,
                                                    completionMode="Indexed"), ns)

    async def three() -> list[Obj]:
        pods = await running_pods(client, ns, "idx")
        return pods if len(pods) == 3 else []
    pods = await eventually(three, "three indexed pods run")
    key = "batch.kubernetes.io/job-completion-index"
    by_index = {p["metadata"]["annotations"][key]: p for p in pods}
    assert set(by_index) == {"0", "1", "2"}
    p1 = by_index["1"]
    assert p1["metadata"]["labels"][key] == "1"
    assert p1["metadata"]["name"].startswith("idx-1-")
    assert p1["spec"]["hostname"] == "idx-1"
    env = p1["spec"]["containers"][0]["env"]
    assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "apiVersion": "v1", "fieldPath": f"metadata.labels['{key}']"}}} in env
    await finish_pod(client, p1)
    # A failed index is retried with a new pod for the same index.
    await finish_pod(client, by_index["2"], exit_code=1)

    async def progress() -> Obj | None:
        j = await get_job(client, ns, "idx")
        st = j.get("status") or {}
        return j if st.get("completedIndexes") == "1" and st.get("failed") == 1 else None
    await eventually(progress, "index 1 completes and one failure is counted")

    async def replacement() -> Obj | None:
        pods = await running_pods(client, ns, "idx")
        return next((p for p in pods if p["metadata"]["annotations"][key] == "2"), None)
    # The replacement waits out the 10 s failure back-off, as upstream.
    p2 = await eventually(replacement, "index 2 gets a new pod", timeout=25)
    await finish_pod(client, p2)
    await finish_pod(client, by_index["0"])

    async def complete() -> Obj | None:
        j = await get_job(client, ns, "idx")
        return j if cond(j, "Complete") else None
    j = await eventually(complete, "the indexed job completes")
    assert j["status"]["completedIndexes"] == "0-2"
    assert j["status"]["succeeded"] == 3


async def test_pod_failure_policy(client: Client, ns: str, kubelet: FakeKubelet) -> None:
    policy = {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In",
                                              "values": [42]}},
    ]}
    await client.create("batch", "v1", "jobs", job("pfp", podFailurePolicy=policy,
                                                    backoffLimit=0), ns)
    pods = await eventually(lambda: running_pods(client, ns, "pfp"), "a pod runs")
    # A disruption is ignored: not counted against backoffLimit 0, and replaced at once.
    await finish_pod(client, pods[0], exit_code=137, conditions=[
        {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}])

    async def replaced() -> list[Obj]:
        return [p for p in await running_pods(client, ns, "pfp")
                if p["metadata"]["uid"] != pods[0]["metadata"]["uid"]]
    second = (await eventually(replaced, "the ignored failure is replaced"))[0]
    j = await get_job(client, ns, "pfp")
    assert not cond(j, "Failed") and "failed" not in j["status"]
    await finish_pod(client, second, exit_code=42)

    async def failed() -> Obj | None:
        j = await get_job(client, ns, "pfp")
        return j if cond(j, "Failed") else None
    j = await eventually(failed, "exit code 42 fails the job")
    c = cond(j, "Failed")
    assert c["reason"] == "PodFailurePolicy"
    assert c["message"] == (f"Container main for pod {ns}/{second['metadata']['name']} failed "
                            "with exit code 42 matching FailJob rule at index 1")
    assert j["status"]["failed"] == 1


async def test_suspend_and_resume(client: Client, ns: str, kubelet: FakeKubelet) -> None:
    await client.create("batch", "v1", "jobs", job("sus", suspend=True, parallelism=2,
                                                    completions=2), ns)

    async def suspended() -> Obj | None:
        j = await get_job(client, ns, "sus")
        return j if cond(j, "Suspended") else None
    j = await eventually(suspended, "the job is marked suspended")
    assert cond(j, "Suspended")["reason"] == "JobSuspended"
    assert "startTime" not in j["status"]
    assert await pods_in(client, ns, "job-name=sus") == []
    await client.patch("batch", "v1", "jobs", "sus", {"spec": {"suspend": False}}, ns)

    async def two() -> list[Obj]:
        pods = await running_pods(client, ns, "sus")
        return pods if len(pods) == 2 else []
    await eventually(two, "resuming starts the pods")
    j = await get_job(client, ns, "sus")
    resumed = [c for c in j["status"]["conditions"] if c["type"] == "Suspended"][0]
    assert resumed["status"] == "False" and resumed["reason"] == "JobResumed"
    assert j["status"]["startTime"]
    # Suspending again deletes the running pods (without counting them as failures).
    await client.patch("batch", "v1", "jobs", "sus", {"spec": {"suspend": True}}, ns)

    async def gone() -> bool:
        return await pods_in(client, ns, "job-name=sus") == []
    await eventually(gone, "suspending removes the pods")
    j = await get_job(client, ns, "sus")
    assert "failed" not in j["status"]


async def test_active_deadline(client: Client, ns: str, kubelet: FakeKubelet) -> None:
    await client.create("batch", "v1", "jobs", job("late", activeDeadlineSeconds=1), ns)

    async def failed() -> Obj | None:
        j = await get_job(client, ns, "late")
        return j if cond(j, "Failed") else None
    j = await eventually(failed, "the deadline fails the job")
    assert cond(j, "Failed")["reason"] == "DeadlineExceeded"
    assert cond(j, "Failed")["message"] == "Job was active longer than specified deadline"

    async def no_pods() -> bool:
        return await pods_in(client, ns, "job-name=late") == []
    await eventually(no_pods, "the job's pod is deleted")

    async def delete_event() -> list[str]:
        return [e["message"] for e in await events_for(client, ns, "late")
                if e["reason"] == "SuccessfulDelete"]
    # As upstream's pod control, deleting the failed Job's running pod is recorded.
    messages = await eventually(delete_event, "a SuccessfulDelete event")
    assert messages[0].startswith("Deleted pod: late-"), messages


async def test_ttl_after_finished_deletes_the_job(client: Client, ns: str,
                                                  kubelet: FakeKubelet) -> None:
    await client.create("batch", "v1", "jobs", job("ttl", ttlSecondsAfterFinished=1), ns)
    pods = await eventually(lambda: running_pods(client, ns, "ttl"), "a pod runs")
    await finish_pod(client, pods[0])

    async def deleted() -> bool:
        try:
            await get_job(client, ns, "ttl")
        except StatusError as err:
            return err.code == 404
        return False
    await eventually(deleted, "the finished job is deleted after its TTL")

    async def pods_gone() -> bool:
        return await pods_in(client, ns, "job-name=ttl") == []
    await eventually(pods_gone, "its pods are collected")


async def test_orphan_pod_is_adopted(client: Client, ns: str, kubelet: FakeKubelet) -> None:
    labels = {"app": "adoptee"}
    orphan = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "stray", "labels": labels},
              "spec": {"restartPolicy": "Never", "containers": [container()]}}
    await client.create("", "v1", "pods", orphan, ns)
    spec = job("adopt", manualSelector=True, selector={"matchLabels": labels})
    spec["spec"]["template"]["metadata"] = {"labels": labels}
    j = await client.create("batch", "v1", "jobs", spec, ns)

    async def adopted() -> Obj | None:
        p = await client.get("", "v1", "pods", "stray", ns)
        refs = p["metadata"].get("ownerReferences") or []
        return p if refs and refs[0]["uid"] == j["metadata"]["uid"] else None
    p = await eventually(adopted, "the job adopts the matching pod")
    assert TRACKING in p["metadata"]["finalizers"]
    # The adopted pod counts: no second pod is made, and its success completes the job.
    await finish_pod(client, p)

    async def complete() -> Obj | None:
        got = await get_job(client, ns, "adopt")
        return got if cond(got, "Complete") else None
    await eventually(complete, "the adopted pod completes the job")
    assert [x["metadata"]["name"] for x in await pods_in(client, ns, "app=adoptee")] == ["stray"]


async def test_backoff_limit_per_index(client: Client, ns: str, kubelet: FakeKubelet) -> None:
    await client.create("batch", "v1", "jobs", job(
        "per", completions=2, parallelism=2, completionMode="Indexed", backoffLimitPerIndex=0,
        backoffLimit=None), ns)

    async def two() -> list[Obj]:
        pods = await running_pods(client, ns, "per")
        return pods if len(pods) == 2 else []
    pods = await eventually(two, "both indexes run")
    key = "batch.kubernetes.io/job-completion-index"
    by_index = {p["metadata"]["annotations"][key]: p for p in pods}
    assert by_index["0"]["metadata"]["annotations"][
        "batch.kubernetes.io/job-index-failure-count"] == "0"
    await finish_pod(client, by_index["0"], exit_code=1)
    await finish_pod(client, by_index["1"])

    async def failed() -> Obj | None:
        j = await get_job(client, ns, "per")
        return j if cond(j, "Failed") else None
    j = await eventually(failed, "the failed index fails the job")
    assert cond(j, "Failed")["reason"] == "FailedIndexes"
    assert j["status"]["failedIndexes"] == "0"
    assert j["status"]["completedIndexes"] == "1"


async def test_deleting_a_running_job_removes_its_pods(client: Client, ns: str,
                                                        kubelet: FakeKubelet) -> None:
    await client.create("batch", "v1", "jobs", job("gone", parallelism=2, completions=4), ns)

    async def two() -> list[Obj]:
        pods = await running_pods(client, ns, "gone")
        return pods if len(pods) == 2 else []
    await eventually(two, "pods run")
    await client.delete("batch", "v1", "jobs", "gone", ns, propagation_policy="Background")

    async def no_pods() -> bool:
        return await pods_in(client, ns, "job-name=gone") == []
    # The tracking finalizer must not keep the collected pods around.
    await eventually(no_pods, "the job's pods are collected")


async def test_suspend_and_resume_events_are_sent_once(client: Client, ns: str,
                                                       kubelet: FakeKubelet) -> None:
    await client.create("batch", "v1", "jobs", job("once", suspend=True, parallelism=2,
                                                    completions=2), ns)

    async def counts() -> dict[str, int]:
        out: dict[str, int] = {}
        for e in await events_for(client, ns, "once"):
            out[e["reason"]] = out.get(e["reason"], 0) + int(e.get("count") or 1)
        return out

    async def suspended_cond(status: str) -> Obj | None:
        j = await get_job(client, ns, "once")
        for c in (j.get("status") or {}).get("conditions") or []:
            if c["type"] == "Suspended" and c["status"] == status:
                return j
        return None

    await eventually(lambda: suspended_cond("True"), "the job is marked suspended")
    await client.patch("batch", "v1", "jobs", "once", {"spec": {"suspend": False}}, ns)
    await eventually(lambda: suspended_cond("False"), "the job is marked resumed")

    async def two() -> list[Obj]:
        pods = await running_pods(client, ns, "once")
        return pods if len(pods) == 2 else []
    await eventually(two, "resuming starts the pods")
    await client.patch("batch", "v1", "jobs", "once", {"spec": {"suspend": True}}, ns)
    await eventually(lambda: suspended_cond("True"), "the job is suspended again")

    async def deleted() -> dict[str, int]:
        got = await counts()
        return got if got.get("SuccessfulDelete") == 2 else {}
    # Each transition is one event, as upstream's, even when a sync ran on a stale cache.
    got = await eventually(deleted, "the pods are deleted")
    assert got["Suspended"] == 2 and got["Resumed"] == 1, got


async def test_indexed_pods_of_a_long_named_job_keep_their_index(
        client: Client, ns: str, kubelet: FakeKubelet) -> None:
    # 61 characters: its pods' hostnames (`<job>-<index>`) still fit in 63.
    name = "a-job-name-long-enough-that-its-pods-names-must-be-shortened1"
    assert len(name) == 61
    await client.create("batch", "v1", "jobs", job(name, completions=2, parallelism=2,
                                                    completionMode="Indexed"), ns)

    async def two() -> list[Obj]:
        pods = await pods_in(client, ns, f"job-name={name}")
        return pods if len(pods) == 2 else []
    pods = await eventually(two, "both indexes get a pod")
    # The Job's name is cut, not the index: upstream's `<job>-<index>-` prefix.
    prefixes = sorted(p["metadata"]["generateName"] for p in pods)
    assert prefixes == [name[:55] + "-0-", name[:55] + "-1-"]


async def test_a_job_managed_by_another_controller_is_left_alone(
        client: Client, ns: str, kubelet: FakeKubelet) -> None:
    await client.create("batch", "v1", "jobs", job("ext", managedBy="example.com/other"), ns)
    await client.create("batch", "v1", "jobs", job(
        "own", managedBy="kubernetes.io/job-controller"), ns)
    # The built-in name is ours: that Job runs. Once it has, the other has had its chance.
    await eventually(lambda: running_pods(client, ns, "own"), "the job-controller's Job runs")
    assert await pods_in(client, ns, "job-name=ext") == []
    assert not (await get_job(client, ns, "ext")).get("status")


class _RecordingClient:
    """Takes the Job controller's writes without a server: creates are recorded."""

    def __init__(self) -> None:
        self.created: list[Obj] = []

    async def create(self, group: str, version: str, plural: str, obj: Obj,
                     namespace: str = "") -> Obj:
        obj = {**obj, "metadata": {**obj["metadata"], "name": f"created-{len(self.created)}"}}
        self.created.append(obj)
        return obj

    async def update_status(self, group: str, version: str, plural: str, obj: Obj) -> Obj:
        return obj

    async def patch(self, *args: Any, **kw: Any) -> Obj:
        return {}


async def test_backoff_limit_per_index_delays_the_index_replacement() -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    now = [start]
    client: Any = _RecordingClient()
    ctrl = JobController(client, clock=lambda: now[0])
    j = job("per", completions=2, parallelism=2, completionMode="Indexed",
            backoffLimitPerIndex=3, backoffLimit=2**31 - 1)
    j["metadata"].update(namespace="ns", uid="job-uid", resourceVersion="1")
    j["spec"]["selector"] = {"matchLabels": {"job": "per"}}
    j["status"] = {"startTime": m.rfc3339(start)}

    def pod(name: str, index: int, phase: str, failures: int = 0) -> Obj:
        ix = "batch.kubernetes.io/job-completion-index"
        status: Obj = {"phase": phase}
        if phase == "Failed":
            status["containerStatuses"] = [{"name": "c", "state": {"terminated": {
                "exitCode": 1, "finishedAt": m.rfc3339(start)}}}]
        return {"apiVersion": "v1", "kind": "Pod", "status": status, "metadata": {
            "name": name, "namespace": "ns", "uid": name, "finalizers": [TRACKING],
            "labels": {"job": "per", ix: str(index)},
            "annotations": {ix: str(index),
                            "batch.kubernetes.io/job-index-failure-count": str(failures)},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "per",
                                 "uid": "job-uid", "controller": True}]}}

    await seed(ctrl.jobs, j)
    await seed(ctrl.pods, pod("per-0-a", 0, "Failed", failures=1), pod("per-1-a", 1, "Running"))
    # The index failed twice so far: its replacement waits 20 s, as upstream's.
    now[0] = start + dt.timedelta(seconds=5)
    requeue = await ctrl.reconcile("ns/per")
    assert client.created == []
    assert requeue is not None and 14 < requeue <= 15
    now[0] = start + dt.timedelta(seconds=21)
    await ctrl.reconcile("ns/per")
    assert [p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"]
            for p in client.created] == ["2"]


async def test_indexed_pods_get_the_index_hostname_over_the_templates() -> None:
    client: Any = _RecordingClient()
    ctrl = JobController(client)
    j = job("peers", completions=2, parallelism=2, completionMode="Indexed")
    j["metadata"].update(namespace="ns", uid="job-uid", resourceVersion="1")
    j["spec"]["selector"] = {"matchLabels": {"job": "peers"}}
    j["spec"]["template"]["spec"]["hostname"] = "custom"
    await seed(ctrl.jobs, j)
    await seed(ctrl.pods)
    await ctrl.reconcile("ns/peers")
    assert sorted(p["spec"]["hostname"] for p in client.created) == ["peers-0", "peers-1"]


class _PatchRecordingClient(_RecordingClient):
    """Also records the pods whose finalizer the controller patches away."""

    def __init__(self) -> None:
        super().__init__()
        self.patched: list[str] = []

    async def patch(self, group: str, version: str, plural: str, name: str, *args: Any,
                    **kw: Any) -> Obj:
        self.patched.append(name)
        return {}


async def test_the_finished_pods_of_an_externally_managed_job_keep_their_finalizer() -> None:
    client: Any = _PatchRecordingClient()
    ctrl = JobController(client)
    done = [{"type": "Complete", "status": "True"}]
    for name, managed_by in (("ext", "example.com/other"), ("own", None)):
        j = job(name, managedBy=managed_by)
        j["metadata"].update(namespace="ns", uid=f"{name}-uid", resourceVersion="1")
        j["status"] = {"conditions": done}
        await seed(ctrl.jobs, j)
    pods = [{"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Succeeded"},
             "metadata": {"name": f"{name}-pod", "namespace": "ns", "uid": f"{name}-pod",
                          "finalizers": [TRACKING], "ownerReferences": [{
                              "apiVersion": "batch/v1", "kind": "Job", "name": name,
                              "uid": f"{name}-uid", "controller": True}]}}
            for name in ("ext", "own")]
    await seed(ctrl.pods, *pods)
    for p in pods:
        await ctrl.reconcile("pod:ns/" + p["metadata"]["name"])
    # The other controller releases its pods; ours are released once the Job finished.
    assert client.patched == ["own-pod"]


def test_a_success_policy_rule_naming_no_index_in_range_matches_nothing() -> None:
    def parse(text: str) -> set[int]:
        return ji.parse_indexes(text, 3)
    policy = {"rules": [{"succeededIndexes": "5-7"}, {"succeededIndexes": "0-1"}]}
    assert js.match_success_policy(policy, {2}, parse) is None
    assert js.match_success_policy(policy, {0, 1}, parse) == "Matched rules at index 1"

"""Jobs and CronJobs with the real kubectl on `skiff up --sim-nodes`.

Simulated containers exit when their pod's `skiff.dev/sim-exit-after` annotation
says so (with `skiff.dev/sim-exit-code`), which is how these Jobs' pods finish.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Cluster, Kubectl, eventually, new_kubectl, start_cluster


@pytest.fixture(scope="module")
def sim_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_cluster(tmp_path_factory.mktemp("skiff-jobs"), None, "--sim-nodes", "2")
    yield c
    c.stop()


@pytest.fixture(scope="module")
def kc(sim_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return new_kubectl(sim_cluster, tmp_path_factory)



def job_yaml(name: str, exit_after: str = "1s", exit_code: int = 0, **spec: object) -> str:
    body = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {**spec, "template": {
            "metadata": {"annotations": {"skiff.dev/sim-exit-after": exit_after,
                                         "skiff.dev/sim-exit-code": str(exit_code)}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "work", "image": "busybox"}]}}},
    }
    return json.dumps(body)


def test_job_with_completions_and_parallelism(kc: Kubectl) -> None:
    most_active = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            res = kc.run("get", "pods", "-l", "job-name=five", "-o",
                         "jsonpath={.items[*].status.phase}", check=False)
            running = res.stdout.split().count("Running") + res.stdout.split().count("Pending")
            most_active[0] = max(most_active[0], running)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    kc("apply", "-f", "-", input=job_yaml("five", completions=5, parallelism=2))
    sampler.start()
    try:
        kc("wait", "--for=condition=complete", "job/five", "--timeout=60s")
    finally:
        stop.set()
        sampler.join(5)
    assert 1 <= most_active[0] <= 2, most_active
    row = kc("get", "job", "five", "--no-headers").split()
    assert row[1:3] == ["Complete", "5/5"]
    phases = kc("get", "pods", "-l", "job-name=five", "-o",
                "jsonpath={.items[*].status.phase}").split()
    assert phases == ["Succeeded"] * 5
    job = json.loads(kc("get", "job", "five", "-o", "json"))
    types = [c["type"] for c in job["status"]["conditions"]]
    assert types == ["SuccessCriteriaMet", "Complete"]
    assert job["status"]["succeeded"] == 5 and job["status"]["completionTime"]
    events = kc("get", "events", "--field-selector", "involvedObject.name=five")
    assert "SuccessfulCreate" in events and "Job completed" in events


def test_failing_job_hits_its_backoff_limit(kc: Kubectl) -> None:
    kc("apply", "-f", "-", input=job_yaml("broken", exit_code=3, backoffLimit=0))
    kc("wait", "--for=condition=failed", "job/broken", "--timeout=60s")
    job = json.loads(kc("get", "job", "broken", "-o", "json"))
    failed = [c for c in job["status"]["conditions"] if c["type"] == "Failed"][0]
    assert failed["reason"] == "BackoffLimitExceeded"
    assert job["status"]["failed"] == 1
    assert "BackoffLimitExceeded" in kc("describe", "job", "broken")


def test_indexed_job(kc: Kubectl) -> None:
    kc("apply", "-f", "-", input=job_yaml("idx", completions=3, parallelism=3,
                                         completionMode="Indexed"))
    kc("wait", "--for=condition=complete", "job/idx", "--timeout=60s")
    assert kc("get", "job", "idx", "-o", "jsonpath={.status.completedIndexes}") == "0-2"
    indexes = kc("get", "pods", "-l", "job-name=idx", "-o", "jsonpath={.items[*].metadata"
                 ".labels.batch\\.kubernetes\\.io/job-completion-index}").split()
    assert sorted(indexes) == ["0", "1", "2"]


CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick}
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Forbid
  suspend: true
  jobTemplate:
    spec:
      template:
        metadata:
          annotations: {skiff.dev/sim-exit-after: "1h"}
        spec:
          restartPolicy: Never
          containers: [{name: work, image: busybox}]
"""


def minute(delta_minutes: int) -> dt.datetime:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    return now + dt.timedelta(minutes=delta_minutes)


def stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def cron_jobs(kc: Kubectl) -> list[str]:
    out = json.loads(kc("get", "jobs", "-o", "json"))
    return sorted(j["metadata"]["name"] for j in out["items"]
                  if j["metadata"]["name"].startswith("tick-")
                  and not j["metadata"].get("deletionTimestamp"))


def test_cronjob_every_minute_with_forbid(kc: Kubectl) -> None:
    """Runs are made due by moving lastScheduleTime back, instead of waiting minutes."""
    kc("apply", "-f", "-", input=CRONJOB)
    # Pretend the last run was five minutes ago, then resume: the run due now starts.
    kc("patch", "cronjob", "tick", "--subresource=status", "--type=merge", "-p",
       json.dumps({"status": {"lastScheduleTime": stamp(minute(-5))}}))
    kc("patch", "cronjob", "tick", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    eventually(lambda: len(cron_jobs(kc)) == 1, "the due run starts a job")
    first = cron_jobs(kc)[0]
    cj = json.loads(kc("get", "cronjob", "tick", "-o", "json"))
    assert [a["name"] for a in cj["status"]["active"]] == [first]
    scheduled = dt.datetime.fromisoformat(cj["status"]["lastScheduleTime"].replace("Z",
                                                                                   "+00:00"))
    assert first == f"tick-{int(scheduled.timestamp()) // 60}"
    kc("wait", "--for=jsonpath={.status.active}=1", f"job/{first}", "--timeout=30s")

    # Make another run due (one two minutes before this one) while the first still runs.
    earlier = scheduled - dt.timedelta(minutes=2)
    kc("patch", "cronjob", "tick", "--type=merge", "-p",
       json.dumps({"spec": {"schedule": f"{earlier.minute} * * * *"}}))
    kc("patch", "cronjob", "tick", "--subresource=status", "--type=merge", "-p",
       json.dumps({"status": {"lastScheduleTime": stamp(earlier - dt.timedelta(minutes=1))}}))
    eventually(lambda: "JobAlreadyActive" in kc("get", "events", "--field-selector",
                                                "involvedObject.name=tick"),
               "Forbid skips the run while the first job is active")
    assert cron_jobs(kc) == [first]
    events = kc("get", "events", "--field-selector", "involvedObject.name=tick")
    assert "UnexpectedJob" not in events

    # Once the running job is gone, the skipped run starts.
    kc("delete", "job", first, "--wait=false")
    second = f"tick-{int(earlier.timestamp()) // 60}"
    eventually(lambda: cron_jobs(kc) == [second], "the skipped run starts")

    # kubectl create job --from=cronjob runs the template by hand.
    kc("create", "job", "by-hand", "--from=cronjob/tick")
    job = json.loads(kc("get", "job", "by-hand", "-o", "json"))
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["name"] == "tick"
    kc("wait", "--for=jsonpath={.status.active}=1", "job/by-hand", "--timeout=30s")
    assert "tick" in kc("get", "cronjobs", "--no-headers")

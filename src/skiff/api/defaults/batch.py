"""Defaults of batch/v1 Jobs and CronJobs."""

from __future__ import annotations

from typing import Any

from skiff.api.defaults.pod import default_pod_template
from skiff.api.defaults.util import items_at, obj_at, setdefault

MAX_INT32 = 2**31 - 1
# The labels a server-generated Job selector uses, old and new spellings both, as
# upstream sets them (tools still filter on the unprefixed ones).
UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


def default_job_spec(spec: dict[str, Any] | None) -> None:
    """JobSpec defaults that hold for standalone Jobs (not for CronJob job templates)."""
    if spec is None:
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    setdefault(spec, "parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 6 if spec.get("backoffLimitPerIndex") is None else MAX_INT32
    setdefault(spec, "completionMode", "NonIndexed")
    setdefault(spec, "suspend", False)
    failure_policy = obj_at(spec, "podFailurePolicy")
    for rule in items_at(failure_policy, "rules"):
        for cond in items_at(rule, "onPodConditions"):
            setdefault(cond, "status", "True")
    setdefault(spec, "podReplacementPolicy",
               "Failed" if failure_policy is not None else "TerminatingOrFailed")


def generate_job_selector(obj: dict[str, Any]) -> None:
    """Select the Job's pods by its uid unless the user chose `manualSelector`.

    Needs `metadata.uid`, so it only acts once the server assigned one.
    """
    spec = obj_at(obj, "spec")
    meta = obj_at(obj, "metadata")
    if spec is None or meta is None or spec.get("manualSelector") is True:
        return
    uid, name = meta.get("uid"), meta.get("name")
    if not isinstance(uid, str) or not uid:
        return
    template = obj_at(spec, "template", create=True)
    tmeta = obj_at(template, "metadata", create=True)
    labels = obj_at(tmeta, "labels", create=True)
    if labels is None:
        return
    for key in UID_LABELS:
        labels.setdefault(key, uid)
    if isinstance(name, str):
        for key in NAME_LABELS:
            labels.setdefault(key, name)
    if spec.get("selector") is None:
        spec["selector"] = {"matchLabels": {UID_LABELS[0]: uid}}


def default_job(obj: dict[str, Any]) -> None:
    """Job spec and pod template defaults, and the generated selector."""
    spec = obj_at(obj, "spec")
    default_job_spec(spec)
    default_pod_template(obj_at(spec, "template"))
    generate_job_selector(obj)


def default_cronjob(obj: dict[str, Any]) -> None:
    """Allow overlaps, not suspended, keep 3 successful and 1 failed job."""
    spec = obj_at(obj, "spec")
    if spec is None:
        return
    setdefault(spec, "concurrencyPolicy", "Allow")
    setdefault(spec, "suspend", False)
    setdefault(spec, "successfulJobsHistoryLimit", 3)
    setdefault(spec, "failedJobsHistoryLimit", 1)
    job_spec = obj_at(obj_at(spec, "jobTemplate"), "spec")
    default_pod_template(obj_at(job_spec, "template"))

"""Reading and writing a Job's status: conditions, finished-ness, pod accounting rules.

Pure functions shared by the Job, CronJob and TTL controllers, shaped after
upstream's job utilities so reasons and messages read the same as in Kubernetes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from skiff.api import meta as m
from skiff.controllers import pod_state

Obj = dict[str, Any]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
# spec.managedBy naming the built-in controller; any other value hands the Job to another.
JOB_CONTROLLER_NAME = "kubernetes.io/job-controller"

COMPLETE = "Complete"
FAILED = "Failed"
SUSPENDED = "Suspended"
FAILURE_TARGET = "FailureTarget"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"

REASON_BACKOFF_LIMIT = "BackoffLimitExceeded"
REASON_DEADLINE = "DeadlineExceeded"
REASON_POD_FAILURE_POLICY = "PodFailurePolicy"
REASON_MAX_FAILED_INDEXES = "MaxFailedIndexesExceeded"
REASON_FAILED_INDEXES = "FailedIndexes"
REASON_SUCCESS_POLICY = "SuccessPolicy"
REASON_COMPLETIONS_REACHED = "CompletionsReached"

MSG_BACKOFF_LIMIT = "Job has reached the specified backoff limit"
MSG_DEADLINE = "Job was active longer than specified deadline"
MSG_MAX_FAILED_INDEXES = "Job has exceeded the specified maximal number of failed indexes"
MSG_FAILED_INDEXES = "Job has failed indexes"
MSG_COMPLETIONS_REACHED = "Reached expected number of succeeded pods"


def new_condition(ctype: str, reason: str, message: str, status: str = "True",
                  now: dt.datetime | None = None) -> Obj:
    """A JobCondition stamped with the current time."""
    ts = m.rfc3339(now)
    cond: Obj = {"type": ctype, "status": status, "lastProbeTime": ts,
                 "lastTransitionTime": ts}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def find_condition(job: Obj, ctype: str) -> Obj | None:
    """The Job's condition of type `ctype`, if any."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == ctype:
            return c
    return None


def true_condition(job: Obj, ctype: str) -> Obj | None:
    """The Job's condition of type `ctype` if its status is True."""
    c = find_condition(job, ctype)
    return c if c is not None and c.get("status") == "True" else None


def ensure_condition(job: Obj, ctype: str, status: str, reason: str, message: str,
                     now: dt.datetime | None = None) -> bool:
    """Set a condition as upstream's ensureJobConditionStatus; True if anything changed.

    A False condition that does not exist yet is not added.
    """
    conds = job.setdefault("status", {}).setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == ctype:
            if (c.get("status"), c.get("reason", ""), c.get("message", "")) != (
                    status, reason, message):
                conds[i] = new_condition(ctype, reason, message, status, now)
                return True
            return False
    if status == "True":
        conds.append(new_condition(ctype, reason, message, status, now))
        return True
    if not conds:
        job["status"].pop("conditions", None)
    return False


def is_finished(job: Obj) -> bool:
    """Complete or Failed is True."""
    return bool(true_condition(job, COMPLETE) or true_condition(job, FAILED))


def finished_condition(job: Obj) -> Obj | None:
    """The True Complete or Failed condition, if the Job finished."""
    return true_condition(job, COMPLETE) or true_condition(job, FAILED)


def finish_time(job: Obj) -> dt.datetime | None:
    """When the Job finished (its terminal condition's transition time)."""
    c = finished_condition(job)
    if c is None:
        return None
    return m.parse_time(c.get("lastTransitionTime") or "")


def is_suspended(job: Obj) -> bool:
    """spec.suspend is true."""
    return bool((job.get("spec") or {}).get("suspend"))


def managed_externally(job: Obj) -> bool:
    """spec.managedBy names another controller: this one leaves the Job alone."""
    managed_by = (job.get("spec") or {}).get("managedBy")
    return managed_by is not None and managed_by != JOB_CONTROLLER_NAME


def is_indexed(job: Obj) -> bool:
    """completionMode is Indexed."""
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def completions(job: Obj) -> int | None:
    """spec.completions (None means "until any pod succeeds")."""
    value = (job.get("spec") or {}).get("completions")
    return int(value) if isinstance(value, int) else None


def has_tracking_finalizer(pod: Obj) -> bool:
    """Whether the pod still carries the Job's tracking finalizer."""
    return TRACKING_FINALIZER in ((pod.get("metadata") or {}).get("finalizers") or [])


def only_replace_failed(job: Obj) -> bool:
    """Replacement pods wait for a failed pod to be fully terminated."""
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or bool(spec.get("podFailurePolicy"))


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    """Whether the Job counts the pod as failed (deleted pods count, unless told not to)."""
    if pod_state.phase(pod) == pod_state.FAILED:
        return True
    if only_replace_failed(job):
        return False
    return pod_state.is_deleting(pod) and pod_state.phase(pod) != pod_state.SUCCEEDED


def past_backoff_limit_on_failure(job: Obj, pods: list[Obj]) -> bool:
    """For restartPolicy OnFailure: container restarts reached backoffLimit."""
    spec = job.get("spec") or {}
    template_spec = (spec.get("template") or {}).get("spec") or {}
    if template_spec.get("restartPolicy") != "OnFailure":
        return False
    restarts = sum(pod_state.restart_count(p) for p in pods
                   if pod_state.phase(p) in (pod_state.RUNNING, pod_state.PENDING))
    limit = int(spec.get("backoffLimit") or 0)
    return restarts > 0 if limit == 0 else restarts >= limit


def match_success_policy(policy: Obj | None, succeeded: set[int],
                         parse: Any) -> str | None:
    """The SuccessCriteriaMet message if an Indexed Job's successPolicy is met.

    `parse(text)` turns a `succeededIndexes` string into a set of indexes.
    """
    if not succeeded:
        return None
    for index, rule in enumerate((policy or {}).get("rules") or []):
        wanted_text = rule.get("succeededIndexes")
        count = rule.get("succeededCount")
        if wanted_text is not None:
            wanted = parse(wanted_text)
            if not wanted:
                # As upstream: a rule naming no index in range matches nothing.
                continue
            got = len(wanted & succeeded)
            met = got >= count if isinstance(count, int) else wanted <= succeeded
        elif isinstance(count, int):
            met = len(succeeded) >= count
        else:
            met = False
        if met:
            return f"Matched rules at index {index}"
    return None

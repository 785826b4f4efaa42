"""Validation of batch/v1 Jobs and CronJobs."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from skiff.api.cron import CronError, parse_cron
from skiff.api.validation import field
from skiff.api.validation.checks import (
    MAX_INT32,
    enum,
    get_bool,
    get_dict,
    get_int,
    get_str,
    in_range,
    nonnegative,
)
from skiff.api.validation.field import Cause
from skiff.api.validation.pod_spec import validate_pod_template
from skiff.api.validation.selectors import validate_workload_selector

JOB_RESTART_POLICIES = ("OnFailure", "Never")
CRONJOB_NAME_MAX = 52


def validate_job_spec(spec: Any, path: str, *, template_only_selector: bool = False) -> list[Cause]:
    """A JobSpec, standalone or inside a CronJob's jobTemplate."""
    if not isinstance(spec, dict):
        if spec is None:
            return [field.required(path)]
        return [field.type_invalid(path, spec, "object")]
    errs: list[Cause] = []
    nonnegative(spec, "parallelism", path, errs)
    completions = nonnegative(spec, "completions", path, errs)
    in_range(spec, "activeDeadlineSeconds", path, errs, 1, MAX_INT32)
    nonnegative(spec, "backoffLimit", path, errs)
    nonnegative(spec, "backoffLimitPerIndex", path, errs)
    nonnegative(spec, "ttlSecondsAfterFinished", path, errs)
    get_bool(spec, "suspend", path, errs)
    mode = enum(spec, "completionMode", path, errs, ("NonIndexed", "Indexed"))
    if mode == "Indexed" and completions is None and spec.get("completions") is None:
        errs.append(field.required(field.child(path, "completions"),
                                   "when completion mode is Indexed"))
    enum(spec, "podReplacementPolicy", path, errs, ("TerminatingOrFailed", "Failed"))
    manual = get_bool(spec, "manualSelector", path, errs)
    if not template_only_selector:
        # Without manualSelector the server generates the selector, so it may be absent here.
        errs += validate_workload_selector(spec, path, "job", required=bool(manual))
    errs += validate_pod_template(spec.get("template"), field.child(path, "template"),
                                  restart_policies=JOB_RESTART_POLICIES)
    return errs


def validate_job(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """Job spec; template, selector and completion mode are immutable on update."""
    errs = validate_job_spec(obj.get("spec"), "spec")
    if old is not None and isinstance(obj.get("spec"), dict) and isinstance(old.get("spec"), dict):
        new_spec, old_spec = obj["spec"], old["spec"]
        for key in ("template", "selector", "completionMode"):
            if new_spec.get(key) != old_spec.get(key):
                errs.append(field.invalid(field.child("spec", key), new_spec.get(key),
                                          "field is immutable"))
        if (new_spec.get("completions") != old_spec.get("completions")
                and new_spec.get("completionMode") != "Indexed"):
            errs.append(field.invalid("spec.completions", new_spec.get("completions"),
                                      "field is immutable"))
    return errs


def validate_schedule(schedule: str, path: str) -> list[Cause]:
    """A cron schedule that parses; time zones belong in `spec.timeZone`, not here."""
    if not schedule:
        return [field.required(path)]
    if "TZ=" in schedule:
        return [field.invalid(path, schedule, "cannot use TZ or CRON_TZ in schedule, use "
                              "timeZone field instead")]
    try:
        parse_cron(schedule)
    except CronError as e:
        return [field.invalid(path, schedule, str(e))]
    return []


def validate_time_zone(tz: str, path: str) -> list[Cause]:
    """A time zone the IANA database knows."""
    if tz.strip() != tz or tz.lower() == "local":
        return [field.invalid(path, tz, f"unknown time zone {tz}")]
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return [field.invalid(path, tz, f"unknown time zone {tz}")]
    return []


def validate_cronjob(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """CronJob schedule, time zone, policies, history limits and job template."""
    errs: list[Cause] = []
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name = meta.get("name")
    if isinstance(name, str) and len(name) > CRONJOB_NAME_MAX:
        errs.append(field.invalid("metadata.name", name,
                                  f"must be no more than {CRONJOB_NAME_MAX} characters"))
    if obj.get("spec") is None:
        return errs + [field.required("spec")]
    spec = get_dict(obj, "spec", "", errs)
    schedule = get_str(spec, "schedule", "spec", errs)
    if isinstance(spec.get("schedule", ""), str):
        errs += validate_schedule(schedule, "spec.schedule")
    tz = get_str(spec, "timeZone", "spec", errs)
    if tz:
        errs += validate_time_zone(tz, "spec.timeZone")
    enum(spec, "concurrencyPolicy", "spec", errs, ("Allow", "Forbid", "Replace"))
    nonnegative(spec, "startingDeadlineSeconds", "spec", errs)
    nonnegative(spec, "successfulJobsHistoryLimit", "spec", errs)
    nonnegative(spec, "failedJobsHistoryLimit", "spec", errs)
    get_bool(spec, "suspend", "spec", errs)
    tmpl = get_dict(spec, "jobTemplate", "spec", errs)
    if spec.get("jobTemplate") is None:
        errs.append(field.required("spec.jobTemplate"))
    elif tmpl:
        errs += validate_job_spec(tmpl.get("spec"), "spec.jobTemplate.spec",
                                  template_only_selector=True)
    get_int(spec, "startingDeadlineSeconds", "spec", [])
    return errs

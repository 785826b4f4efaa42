"""Tables for Jobs and CronJobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from skiff.api.tables.age import age, between, since
from skiff.api.tables.columns import (
    Printer,
    age_column,
    column,
    container_cells,
    count,
    integer,
    items,
    meta,
    name_column,
    pod_template_wide_columns,
    sub,
    text,
)
from skiff.api.tables.selectors import format_label_selector

SELECTOR_DESCRIPTION = "The label selector of the job's pods."


def _condition(status: dict[str, Any], type_: str) -> bool:
    for cond in items(status.get("conditions")):
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond.get("status") == "True"
    return False


def job_status(obj: dict[str, Any]) -> str:
    """One word for where the job stands, in upstream's order of precedence."""
    status = sub(obj, "status")
    if _condition(status, "Complete"):
        return "Complete"
    if _condition(status, "Failed"):
        return "Failed"
    if meta(obj).get("deletionTimestamp"):
        return "Terminating"
    if _condition(status, "Suspended"):
        return "Suspended"
    if _condition(status, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def job_completions(obj: dict[str, Any]) -> str:
    """`succeeded/completions`; a work-queue job reads `n/1`, or `n/1 of p` when parallel."""
    spec = sub(obj, "spec")
    succeeded = integer(sub(obj, "status").get("succeeded"))
    completions = spec.get("completions")
    if isinstance(completions, int) and not isinstance(completions, bool):
        return f"{succeeded}/{completions}"
    parallelism = integer(spec.get("parallelism"))
    if parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def job_duration(obj: dict[str, Any], now: datetime) -> str:
    """Start to completion, or start to now while the job runs; "" before it starts."""
    status = sub(obj, "status")
    start = status.get("startTime")
    if not start:
        return ""
    done = status.get("completionTime")
    if done:
        return between(start, done) or ""
    return since(start, now)


def _job(obj: dict[str, Any], now: datetime) -> list[Any]:
    return [
        text(meta(obj).get("name")),
        job_status(obj),
        job_completions(obj),
        job_duration(obj, now),
        age(obj, now),
        *container_cells(sub(obj, "spec", "template", "spec")),
        format_label_selector(sub(obj, "spec").get("selector")),
    ]


def _bool_cell(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return "<unset>"


def _cronjob(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = sub(obj, "spec"), sub(obj, "status")
    last = status.get("lastScheduleTime")
    job_spec = sub(spec, "jobTemplate", "spec")
    return [
        text(meta(obj).get("name")),
        text(spec.get("schedule")),
        text(spec.get("timeZone")) or "<none>",
        # spec.suspend defaults to false.
        _bool_cell(spec.get("suspend", False)),
        count(status.get("active")),
        since(last, now) if last else "<none>",
        age(obj, now),
        *container_cells(sub(job_spec, "template", "spec")),
        format_label_selector(job_spec.get("selector")),
    ]


def _wide() -> list[dict[str, Any]]:
    return pod_template_wide_columns(SELECTOR_DESCRIPTION)


PRINTERS = {
    "batch/jobs": Printer(
        [
            name_column(),
            column("Status", "string", "Where the job stands: Running, Complete, Failed, ..."),
            column("Completions", "string", "Successful pods out of the completions wanted."),
            column("Duration", "string", "How long the job ran, or has been running."),
            age_column(),
            *_wide(),
        ],
        _job,
    ),
    "batch/cronjobs": Printer(
        [
            name_column(),
            column("Schedule", "string", "When jobs start, in cron syntax."),
            column("Timezone", "string", "The time zone the schedule is read in."),
            column("Suspend", "boolean", "Whether new runs are held back."),
            column("Active", "integer", "How many of its jobs are running."),
            column("Last Schedule", "string", "Time since a job was last scheduled."),
            age_column(),
            *_wide(),
        ],
        _cronjob,
    ),
}

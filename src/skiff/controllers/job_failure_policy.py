"""A Job's podFailurePolicy: what a failed pod means for the Job.

Rules are tried in order; the first whose `onExitCodes` or `onPodConditions`
matches decides: FailJob (the Job fails at once), FailIndex (the index fails),
Ignore (the failure is not counted against backoffLimit) or Count (counted, the
default when no rule matches).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skiff.api import meta as m

Obj = dict[str, Any]

FAIL_JOB = "FailJob"
FAIL_INDEX = "FailIndex"
IGNORE = "Ignore"
COUNT = "Count"


@dataclass(frozen=True)
class Verdict:
    """What the policy says about one failed pod."""

    count_failed: bool = True
    action: str | None = None
    # For FailJob: the message of the Job's failure condition.
    message: str | None = None


def _matching_container(status: Obj, req: Obj) -> Obj | None:
    name = req.get("containerName")
    values = set(req.get("values") or [])
    op = req.get("operator")
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or []:
            term = (cs.get("state") or {}).get("terminated")
            if not term or (name and cs.get("name") != name):
                continue
            code = int(term.get("exitCode") or 0)
            if code == 0:
                # A clean exit never matches: the rule is about failures.
                continue
            if (op == "In" and code in values) or (op == "NotIn" and code not in values):
                return cs
    return None


def _has_condition(pod: Obj, pattern: Obj) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == pattern.get("type") and c.get("status") == pattern.get(
                "status", "True"):
            return True
    return False


def evaluate(policy: Obj | None, pod: Obj) -> Verdict:
    """Apply `policy` to a failed pod."""
    if not policy:
        return Verdict()
    status = pod.get("status") or {}
    for index, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        message: str | None = None
        exit_codes = rule.get("onExitCodes")
        if exit_codes:
            cs = _matching_container(status, exit_codes)
            if cs is None:
                continue
            code = cs["state"]["terminated"].get("exitCode")
            message = (f"Container {cs.get('name')} for pod {m.namespace_of(pod)}/"
                       f"{m.name_of(pod)} failed with exit code {code} matching {action} "
                       f"rule at index {index}")
        else:
            matched = next((p for p in rule.get("onPodConditions") or []
                            if _has_condition(pod, p)), None)
            if matched is None:
                continue
            message = (f"Pod {m.namespace_of(pod)}/{m.name_of(pod)} has condition "
                       f"{matched.get('type')} matching {action} rule at index {index}")
        if action == IGNORE:
            return Verdict(count_failed=False, action=IGNORE)
        if action == FAIL_JOB:
            return Verdict(count_failed=True, action=FAIL_JOB, message=message)
        return Verdict(count_failed=True, action=action)
    return Verdict()

"""Checks that a workload's label selector and its pod template agree."""

from __future__ import annotations

from typing import Any

from skiff.api.validation import field
from skiff.api.validation.field import Cause
from skiff.api.validation.metadata import validate_label_selector


def selector_matches(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    """Whether a metav1.LabelSelector selects an object with `labels`.

    Only used on selectors that already validated, so malformed parts count as no match.
    """
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for req in selector.get("matchExpressions") or []:
        if not isinstance(req, dict):
            return False
        key, op, values = req.get("key"), req.get("operator"), req.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def is_empty_selector(selector: dict[str, Any]) -> bool:
    """A selector with no requirements selects everything, which workloads forbid."""
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def validate_workload_selector(
    spec: dict[str, Any], path: str, kind_word: str, *, required: bool = True
) -> list[Cause]:
    """`spec.selector` present, well formed, non-empty and matching the template's labels."""
    sp = field.child(path, "selector")
    selector = spec.get("selector")
    if selector is None:
        return [field.required(sp)] if required else []
    if not isinstance(selector, dict):
        return [field.type_invalid(sp, selector, "object")]
    errs = validate_label_selector(selector, sp)
    if errs:
        return errs
    if is_empty_selector(selector):
        return [field.invalid(sp, selector, f"empty selector is invalid for {kind_word}")]
    template = spec.get("template")
    if not isinstance(template, dict):
        return []
    meta = template.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    labels = labels if isinstance(labels, dict) else {}
    if not selector_matches(selector, labels):
        lp = field.child(field.child(field.child(path, "template"), "metadata"), "labels")
        return [field.invalid(lp, labels, "`selector` does not match template `labels`")]
    return []

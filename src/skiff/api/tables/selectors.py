"""Label maps and label selectors rendered as kubectl prints them."""

from __future__ import annotations

from typing import Any

NONE = "<none>"


def format_labels(labels: Any) -> str:
    """`k=v,k2=v2` sorted by key, or "<none>" for an empty map."""
    if not isinstance(labels, dict) or not labels:
        return NONE
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_string(selector: Any) -> str:
    """A LabelSelector in selector syntax; "" when it selects everything or is absent.

    Requirements print sorted by key with their values sorted, which is the form
    `kubectl get -l` accepts back.
    """
    if not isinstance(selector, dict):
        return ""
    reqs: list[tuple[str, str]] = []
    match_labels = selector.get("matchLabels")
    if isinstance(match_labels, dict):
        reqs.extend((str(k), f"{k}={v}") for k, v in match_labels.items())
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            continue
        key = str(expr.get("key", ""))
        op = expr.get("operator")
        values = sorted(str(v) for v in expr.get("values") or [])
        if op == "In":
            reqs.append((key, f"{key} in ({','.join(values)})"))
        elif op == "NotIn":
            reqs.append((key, f"{key} notin ({','.join(values)})"))
        elif op == "Exists":
            reqs.append((key, key))
        elif op == "DoesNotExist":
            reqs.append((key, f"!{key}"))
    reqs.sort(key=lambda r: r[0])
    return ",".join(r for _, r in reqs)


def format_label_selector(selector: Any) -> str:
    """Like `selector_string`, but "<none>" when the result would be empty."""
    return selector_string(selector) or NONE

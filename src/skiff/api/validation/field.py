"""Field errors rendered the way upstream's `field.Error` prints them.

kubectl shows `details.causes` verbatim, so the reason, the field path and the
message shape (`Invalid value: 70000: must be between 1 and 65535, inclusive`) are
the user interface of validation and must look like a real cluster's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from skiff.api import errors

Cause = dict[str, str]


def render_value(value: Any) -> str:
    """Render a bad value as Go's `%q`/`%v`/`%#v` would for the same JSON value."""
    if value is None:
        return '"null"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        if all(isinstance(v, str) for v in value.values()):
            inner = ", ".join(
                f"{json.dumps(str(k))}:{json.dumps(v)}" for k, v in sorted(value.items())
            )
            return f"map[string]string{{{inner}}}"
        inner = ", ".join(f"{json.dumps(str(k))}:{render_value(v)}" for k, v in value.items())
        return f"map[string]interface {{}}{{{inner}}}"
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return "[]string{" + ", ".join(json.dumps(v) for v in value) + "}"
        return "[]interface {}{" + ", ".join(render_value(v) for v in value) + "}"
    return json.dumps(str(value))


def render_label_selector(sel: Any) -> str:
    """A metav1.LabelSelector as Go's `%#v` prints it (its String method is on the pointer,
    so field errors fall back to Go syntax)."""
    if not isinstance(sel, dict):
        return render_value(sel)
    labels = sel.get("matchLabels")
    if isinstance(labels, dict) and labels:
        ml = "map[string]string{" + ", ".join(
            f"{json.dumps(str(k))}:{json.dumps(str(v))}" for k, v in sorted(labels.items())) + "}"
    else:
        ml = "map[string]string(nil)"
    reqs = []
    for r in sel.get("matchExpressions") or []:
        r = r if isinstance(r, dict) else {}
        vals = r.get("values") or []
        values = ("[]string{" + ", ".join(json.dumps(str(v)) for v in vals) + "}"
                  if vals else "[]string(nil)")
        reqs.append(f"v1.LabelSelectorRequirement{{Key:{json.dumps(str(r.get('key', '')))}, "
                    f"Operator:{json.dumps(str(r.get('operator', '')))}, Values:{values}}}")
    me = ("[]v1.LabelSelectorRequirement{" + ", ".join(reqs) + "}"
          if reqs else "[]v1.LabelSelectorRequirement(nil)")
    return f"v1.LabelSelector{{MatchLabels:{ml}, MatchExpressions:{me}}}"


def invalid_rendered(path: str, rendered: str, detail: str = "") -> Cause:
    """Like `invalid`, for a bad value already rendered in Go syntax."""
    return errors.cause(errors.FIELD_INVALID, path,
                        _with_detail(f"Invalid value: {rendered}", detail))


def _with_detail(head: str, detail: str) -> str:
    return f"{head}: {detail}" if detail else head


def required(path: str, detail: str = "") -> Cause:
    """A missing field."""
    return errors.cause(errors.FIELD_REQUIRED, path, _with_detail("Required value", detail))


def invalid(path: str, value: Any, detail: str = "") -> Cause:
    """A present field with an unacceptable value."""
    head = f"Invalid value: {render_value(value)}"
    return errors.cause(errors.FIELD_INVALID, path, _with_detail(head, detail))


def type_invalid(path: str, value: Any, expected: str) -> Cause:
    """A field of the wrong JSON type; reported instead of crashing the validator."""
    head = f"Invalid value: {render_value(_type_name(value))}"
    return errors.cause(errors.FIELD_TYPE_INVALID, path, f"{head}: must be of type {expected}")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def not_supported(path: str, value: Any, supported: Iterable[str]) -> Cause:
    """An enum field outside its allowed set; lists the choices as upstream does."""
    choices = ", ".join(json.dumps(s) for s in supported)
    head = f"Unsupported value: {render_value(value)}"
    return errors.cause(
        errors.FIELD_NOT_SUPPORTED, path, _with_detail(head, f"supported values: {choices}")
    )


def duplicate(path: str, value: Any) -> Cause:
    """A value that must be unique and is not."""
    return errors.cause(errors.FIELD_DUPLICATE, path, f"Duplicate value: {render_value(value)}")


def not_found(path: str, value: Any) -> Cause:
    """A reference to something that does not exist (e.g. a volume mount's volume)."""
    return errors.cause(errors.FIELD_NOT_FOUND, path, f"Not found: {render_value(value)}")


def forbidden(path: str, detail: str) -> Cause:
    """A field that may not be set, or not changed, in this situation."""
    return errors.cause(errors.FIELD_FORBIDDEN, path, _with_detail("Forbidden", detail))


def too_long(path: str, limit: int) -> Cause:
    """A value over its size limit."""
    return errors.cause(
        errors.FIELD_TOO_LONG, path, f"Too long: may not be more than {limit} bytes"
    )


def too_many(path: str, actual: int, limit: int) -> Cause:
    """A list with more items than allowed."""
    return errors.cause(
        errors.FIELD_TOO_MANY, path, f"Too many: {actual}: must have at most {limit} items"
    )


def child(path: str, name: str) -> str:
    """`path.name`, or just `name` at the root."""
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    """`path[i]` for a list element."""
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    """`path[k]` for a map entry (upstream does not quote the key)."""
    return f"{path}[{k}]"

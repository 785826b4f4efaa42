"""Moving an object from client-side to server-side apply, as upstream allows.

Objects that `kubectl apply` (client-side) manages carry their last applied
configuration in an annotation, and their fields belong to the
`kubectl-client-side-apply` updater. When the `kubectl` applier first applies the
same object server-side, upstream lets it take over, without conflicts, every
field the annotation still describes faithfully, and it keeps the annotation up to
date with later server-side applies so that going back to client-side apply works.
Other managers get neither treatment, so they can opt out by choosing a name.
"""

from __future__ import annotations

import json
from typing import Any

from skiff.api.apply.compare import compare
from skiff.api.apply.fieldset import FieldSet, Path
from skiff.api.apply.ownership import to_field_set
from skiff.api.apply.shape import SchemaMismatch
from skiff.api.schema.node import SchemaNode

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
KUBECTL_APPLIER = "kubectl"


def _annotation(obj: dict[str, Any] | None) -> str:
    annotations = ((obj or {}).get("metadata") or {}).get("annotations")
    if not isinstance(annotations, dict):
        return ""
    value = annotations.get(LAST_APPLIED)
    return value if isinstance(value, str) else ""


def conflicts_allowed(live: dict[str, Any], manager: str, conflicts: list[Path],
                      node: SchemaNode | None) -> bool:
    """Whether the `kubectl` applier may take these conflicting fields without forcing.

    That is so when each of them is in the last-applied annotation with the value
    the live object still has: client-side apply set it, nobody changed it since.
    """
    if manager != KUBECTL_APPLIER or not conflicts:
        return False
    text = _annotation(live)
    if not text:
        return False
    try:
        last = json.loads(text)
        if not isinstance(last, dict):
            return False
        diff = compare(last, live, node)
        allowed: FieldSet = to_field_set(last, node) - diff.modified - diff.removed
    except (ValueError, SchemaMismatch):
        return False
    return all(p in allowed for p in conflicts)


def keep_last_applied(live: dict[str, Any] | None, applied: dict[str, Any], manager: str,
                      new: dict[str, Any]) -> None:
    """Record `applied` as the last-applied annotation of `new` when `live` had one.

    Only for the `kubectl` applier; the annotation then always describes the last
    configuration kubectl sent, whichever way it applied it.
    """
    if manager != KUBECTL_APPLIER or not _annotation(live):
        return
    config = dict(applied)
    meta = dict(config.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != LAST_APPLIED}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    config["metadata"] = meta
    new_annotations = new.setdefault("metadata", {}).setdefault("annotations", {})
    new_annotations[LAST_APPLIED] = json.dumps(config, sort_keys=True, separators=(",", ":"))

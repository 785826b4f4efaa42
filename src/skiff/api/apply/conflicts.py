"""The 409 an apply gets when it would change fields another manager owns."""

from __future__ import annotations

import json

from skiff.api.apply.fieldset import Path, path_order, path_string
from skiff.api.apply.managers import ManagerEntry
from skiff.api.errors import StatusError

FIELD_MANAGER_CONFLICT = "FieldManagerConflict"


def _identity_text(e: ManagerEntry) -> str:
    # Upstream groups conflicts under its JSON manager identifier, sorted as text.
    d = {"manager": e.manager, "operation": e.operation}
    if e.operation != "Apply":
        d["apiVersion"] = e.api_version
    if e.subresource:
        d["subresource"] = e.subresource
    return json.dumps(d, separators=(",", ":"))


def conflict_error(conflicts: list[tuple[ManagerEntry, Path]]) -> StatusError:
    """A `Conflict` Status listing every (owner, field) pair, kubectl's way.

    kubectl prints the message verbatim and suggests `--force-conflicts`, so its
    shape (singular and grouped plural forms) matches upstream.
    """
    ordered = sorted(conflicts, key=lambda c: (_identity_text(c[0]), path_order(c[1])))
    causes = [
        {
            "reason": FIELD_MANAGER_CONFLICT,
            "message": f"conflict with {owner.describe()}",
            "field": path_string(path),
        }
        for owner, path in ordered
    ]
    if len(ordered) == 1:
        owner, path = ordered[0]
        where = path_string(path)
        message = f"Apply failed with 1 conflict: conflict with {owner.describe()}: {where}"
    else:
        lines: list[str] = []
        current = None
        for owner, path in ordered:
            if owner.identity != current:
                current = owner.identity
                lines.append(f"conflicts with {owner.describe()}:")
            lines.append(f"- {path_string(path)}")
        message = f"Apply failed with {len(ordered)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, {"causes": causes})

"""Upstream's DefaultTolerationSeconds admission plugin.

Every new pod tolerates the `node.kubernetes.io/not-ready` and
`node.kubernetes.io/unreachable` NoExecute taints for a while (300 s unless the
cluster says otherwise), so a node that drops off briefly does not lose its pods at
once, while one that stays away has them evicted and replaced elsewhere.
"""

from __future__ import annotations

from typing import Any

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"


def _tolerates(tolerations: list[dict[str, Any]], key: str) -> bool:
    for t in tolerations:
        if not isinstance(t, dict):
            continue
        effect = t.get("effect") or ""
        if effect not in ("", "NoExecute"):
            continue
        if t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"):
            return True
    return False


def add_default_tolerations(pod: dict[str, Any], seconds: int) -> None:
    """Add the two NoExecute tolerations a pod does not already have."""
    spec = pod.setdefault("spec", {})
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    for key in (NOT_READY, UNREACHABLE):
        if not _tolerates(tolerations, key):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": seconds})
    spec["tolerations"] = tolerations

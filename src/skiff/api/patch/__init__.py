"""The three patch formats a PATCH request can carry.

Pure functions over plain dicts: JSON patch (RFC 6902), JSON merge patch
(RFC 7386) and strategic merge patch (schema-driven, Kubernetes-specific).
Server-side apply lives elsewhere; it needs managed fields, not just a merge.
"""

from skiff.api.patch.json_patch import apply_json_patch
from skiff.api.patch.merge_patch import apply_merge_patch
from skiff.api.patch.strategic import apply_strategic_merge_patch

__all__ = ["apply_json_patch", "apply_merge_patch", "apply_strategic_merge_patch"]

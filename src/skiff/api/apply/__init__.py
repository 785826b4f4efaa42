"""Server-side apply and managedFields, after upstream's structured-merge-diff.

`apply` merges an applied configuration and tracks its ownership;
`update_managed_fields` records ordinary writes; `fieldset` holds the path sets and
their `fieldsV1` encoding.
"""

from skiff.api.apply.fieldset import FieldSet, PathElement, make_path, path_string
from skiff.api.apply.managed_fields import update_managed_fields
from skiff.api.apply.managers import reset_fields
from skiff.api.apply.server_side_apply import apply

__all__ = [
    "FieldSet",
    "PathElement",
    "apply",
    "make_path",
    "path_string",
    "reset_fields",
    "update_managed_fields",
]

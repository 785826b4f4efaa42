"""Strategic merge patch directives and the errors their misuse produces.

The error texts are upstream's (kubectl users search for them); the codes are
upstream's where it picks one (400 for malformed directives, 422 for lists of
lists). Where upstream lets a plain Go error escape as a 500, skiff answers 400
instead: a 500 would claim a server bug for what is bad input.
"""

from __future__ import annotations

from typing import Any

from skiff.api.errors import StatusError, bad_request
from skiff.api.patch._values import go_format

PATCH = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"

REPLACE = "replace"
MERGE = "merge"
DELETE = "delete"
RETAIN_KEYS_STRATEGY = "retainKeys"


def is_directive(key: str) -> bool:
    """Whether a map key is a patch directive rather than a field.

    Only the known directive spellings count: other `$`-keys (like `$ref` inside
    a CRD's schema) are ordinary data and must survive a patch.
    """
    return (
        key == PATCH
        or key == RETAIN_KEYS
        or key.startswith(SET_ELEMENT_ORDER)
        or key.startswith(DELETE_FROM_PRIMITIVE_LIST)
    )


def strategies(node: Any) -> frozenset[str]:
    """The comma-separated `x-kubernetes-patch-strategy` of a schema node as a set."""
    if node is None:
        return frozenset()
    raw = node.patch_strategy
    return frozenset(raw.split(",")) if raw else frozenset()


def bad_json_document() -> StatusError:
    """400 for a patch or target that is not a JSON object."""
    return bad_request("invalid JSON document")


def no_list_of_lists() -> StatusError:
    """422 for a merging list whose elements are themselves lists."""
    return StatusError(422, "Invalid", "lists of lists are not supported")


def bad_primitive_list() -> StatusError:
    """400 for a malformed `$deleteFromPrimitiveList` directive."""
    return bad_request("invalid patch format of primitive list")


def bad_retain_keys() -> StatusError:
    """400 for a malformed `$retainKeys` or a patch that sets keys it does not retain."""
    return bad_request("invalid patch format of retainKeys")


def bad_set_element_order() -> StatusError:
    """400 for a malformed `$setElementOrder` directive."""
    return bad_request("invalid patch format of setElementOrder list")


def unknown_patch_type(value: Any, where: dict[str, Any]) -> StatusError:
    """400 for a `$patch` value that is not replace, merge or delete."""
    return bad_request(f"unknown patch type: {go_format(value)} in map: {go_format(where)}")


def no_merge_key(element: Any, merge_key: str) -> StatusError:
    """400 for a merging-list element that lacks the list's merge key."""
    return bad_request(
        f"map: {go_format(element)} does not contain declared merge key: {merge_key}"
    )


def order_mismatch(patch_list: list[Any], order: list[Any]) -> StatusError:
    """400 for a patch list whose order contradicts its `$setElementOrder` list."""
    return bad_request(
        f"The order in patch list:\n{go_format(patch_list)}\n doesn't match "
        f"{SET_ELEMENT_ORDER} list:\n{go_format(order)}\n"
    )


def mixed_element_types(*lists: list[Any]) -> StatusError:
    """400 for a merging list that mixes maps and scalars."""
    shown = "[" + " ".join(go_format(x) for x in lists) + "]"
    return bad_request(f"list element types are not identical: {shown}")


def bad_arg_type(expected: str, actual: Any) -> StatusError:
    """400 for a directive or field whose value has the wrong JSON shape."""
    names = {
        dict: "map[string]interface {}",
        list: "[]interface {}",
        str: "string",
        bool: "bool",
        int: "int64",
        float: "float64",
    }
    got = "<nil>" if actual is None else names.get(type(actual), type(actual).__name__)
    return bad_request(f"expected a {expected}, but received a {got}")

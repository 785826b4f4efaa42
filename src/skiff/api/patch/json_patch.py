"""JSON patch (RFC 6902), the `application/json-patch+json` patch type.

Behaviour follows the library upstream's API server uses, including the quirks
kubectl scripts depend on: `replace` of a missing object key adds it, a `test`
of `null` matches a missing member, and negative array indices count from the
end. Error texts keep upstream's shape so users can search for them.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from skiff.api.errors import StatusError, bad_request, too_large
from skiff.api.patch._values import clone, json_equal, json_type_name

# Upstream's cap on operations per patch; beyond it the request is a 413.
MAX_OPERATIONS = 10000
# Upstream bounds how much `copy` may grow a document (JSONPatchMaxCopyBytes,
# the request body limit): a few copies of a copy otherwise double it each time.
MAX_COPY_BYTES = 3 * 1024 * 1024

_INDEX = re.compile(r"[+-]?[0-9]+\Z")
_MISSING = "missing value"

Container = dict[str, Any] | list[Any]


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """Apply the RFC 6902 operations `ops` to `doc` and return the new document.

    Operations apply in order and all-or-nothing: the first failing one aborts
    the patch with a 422 whose message names the operation and path. A body that
    is not a list of objects is a 400; more than `MAX_OPERATIONS` is a 413.
    Neither input is modified.
    """
    if ops is None:  # Go decodes `null` into an empty patch.
        return clone(doc)
    if not isinstance(ops, list):
        raise bad_request(
            f"json: cannot unmarshal {json_type_name(ops)} into Go value of type jsonpatch.Patch"
        )
    for op in ops:
        if not isinstance(op, dict):
            raise bad_request(
                f"json: cannot unmarshal {json_type_name(op)} "
                "into Go value of type jsonpatch.Operation"
            )
    if len(ops) > MAX_OPERATIONS:
        raise too_large(
            "Request entity too large: The allowed maximum operations in a JSON patch "
            f"is {MAX_OPERATIONS}, got {len(ops)}"
        )
    result = clone(doc)
    state = _State()
    for op in ops:
        _apply_one(result, op, state)
    return result


class _State:
    """What one patch application accumulates across its operations."""

    __slots__ = ("copied",)

    def __init__(self) -> None:
        self.copied = 0


def _failed(message: str) -> StatusError:
    # Upstream wraps every apply failure as a generic 422 (reason Invalid).
    return StatusError(422, "Invalid", message)


def _apply_one(doc: Any, op: dict[str, Any], state: _State) -> None:
    kind = op.get("op")
    if not isinstance(kind, str):
        kind = "unknown"
    handler = _HANDLERS.get(kind)
    if handler is None:
        raise _failed(f"Unexpected kind: {kind}")
    handler(doc, op, state)


# --- JSON pointers -------------------------------------------------------------


def _tokens(path: str) -> list[str] | None:
    if not path.startswith("/"):
        return None
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _parse_index(token: str) -> int | None:
    return int(token) if _INDEX.match(token) else None


def _locate(doc: Any, path: str) -> tuple[Container, str] | None:
    """The container holding the pointer's last token, and that token."""
    tokens = _tokens(path)
    if tokens is None or not isinstance(doc, (dict, list)):
        return None
    current: Any = doc
    for token in tokens[:-1]:
        if isinstance(current, dict):
            current = current.get(token)
        else:
            index = _parse_index(token)
            if index is None or index < 0 or index >= len(current):
                return None
            current = current[index]
        if not isinstance(current, (dict, list)):
            return None
    return current, tokens[-1]


def _string_field(op: dict[str, Any], name: str) -> str | None:
    value = op.get(name)
    return value if isinstance(value, str) else None


def _require_value(op: dict[str, Any], kind: str) -> Any:
    if "value" not in op:
        raise _failed(f"{kind} operation, missing value field: {_MISSING}")
    return op["value"]


def _invalid_index(index: int) -> str:
    return f"Unable to access invalid index: {index}: invalid index referenced"


def _bad_syntax(token: str) -> str:
    return f'strconv.Atoi: parsing "{token}": invalid syntax'


# --- container primitives (return an error text instead of raising) ----------


def _get(container: Container, key: str) -> tuple[bool, Any, str]:
    """(found, value, error); an absent object member is found=False without error."""
    if isinstance(container, dict):
        if key in container:
            return True, container[key], ""
        return False, None, ""
    index = _parse_index(key)
    if index is None:
        return False, None, _bad_syntax(key)
    if index < 0 or index >= len(container):
        return False, None, _invalid_index(index)
    return True, container[index], ""


def _add(container: Container, key: str, value: Any) -> str:
    if isinstance(container, dict):
        container[key] = value
        return ""
    if key == "-":
        container.append(value)
        return ""
    index = _parse_index(key)
    if index is None:
        return f"value was not a proper array index: '{key}': {_bad_syntax(key)}"
    size = len(container) + 1
    if index >= size or index < -size:
        return _invalid_index(index)
    container.insert(index + size if index < 0 else index, value)
    return ""


def _remove(container: Container, key: str) -> str:
    if isinstance(container, dict):
        if key not in container:
            return f"Unable to remove nonexistent key: {key}: {_MISSING}"
        del container[key]
        return ""
    index = _parse_index(key)
    if index is None:
        return _bad_syntax(key)
    if index >= len(container) or index < -len(container):
        return _invalid_index(index)
    del container[index]
    return ""


# --- operations ------------------------------------------------------------------


def _op_add(doc: Any, op: dict[str, Any], state: _State) -> None:
    path = _string_field(op, "path")
    if path is None:
        raise _failed(f"add operation failed to decode path: {_MISSING}")
    value = _require_value(op, "add")
    where = _locate(doc, path)
    if where is None:
        raise _failed(f'add operation does not apply: doc is missing path: "{path}": {_MISSING}')
    error = _add(where[0], where[1], clone(value))
    if error:
        raise _failed(f"error in add for path: '{path}': {error}")


def _op_remove(doc: Any, op: dict[str, Any], state: _State) -> None:
    path = _string_field(op, "path")
    if path is None:
        raise _failed(f"remove operation failed to decode path: {_MISSING}")
    where = _locate(doc, path)
    if where is None:
        raise _failed(f'remove operation does not apply: doc is missing path: "{path}": {_MISSING}')
    error = _remove(where[0], where[1])
    if error:
        raise _failed(f"error in remove for path: '{path}': {error}")


def _op_replace(doc: Any, op: dict[str, Any], state: _State) -> None:
    path = _string_field(op, "path")
    if path is None:
        raise _failed(
            f"replace operation failed to decode path: operation missing path field: {_MISSING}"
        )
    value = _require_value(op, "replace")
    where = _locate(doc, path)
    if where is None:
        raise _failed(f"replace operation does not apply: doc is missing path: {path}: {_MISSING}")
    container, key = where
    if isinstance(container, dict):
        # Upstream's library adds a missing member here instead of failing, and
        # scripts written against real clusters rely on that.
        container[key] = clone(value)
        return
    index = _parse_index(key)
    if index is None or index < 0 or index >= len(container):
        raise _failed(f"replace operation does not apply: doc is missing key: {path}: {_MISSING}")
    container[index] = clone(value)


def _op_move(doc: Any, op: dict[str, Any], state: _State) -> None:
    source = _string_field(op, "from")
    if source is None:
        raise _failed(
            f"move operation failed to decode from: operation, missing from field: {_MISSING}"
        )
    where = _locate(doc, source)
    if where is None:
        raise _failed(
            f"move operation does not apply: doc is missing from path: {source}: {_MISSING}"
        )
    container, key = where
    found, value, error = _get(container, key)
    if not error and not found:
        error = f"Unable to remove nonexistent key: {key}: {_MISSING}"
    if error or (error := _remove(container, key)):
        raise _failed(f"error in move for path: '{key}': {error}")
    path = _string_field(op, "path")
    if path is None:
        raise _failed(
            f"move operation failed to decode path: operation missing path field: {_MISSING}"
        )
    target = _locate(doc, path)
    if target is None:
        raise _failed(
            f"move operation does not apply: doc is missing destination path: {path}: {_MISSING}"
        )
    error = _add(target[0], target[1], value)
    if error:
        raise _failed(f"error in move for path: '{path}': {error}")


def _op_copy(doc: Any, op: dict[str, Any], state: _State) -> None:
    source = _string_field(op, "from")
    if source is None:
        raise _failed(
            f"copy operation failed to decode from: operation, missing from field: {_MISSING}"
        )
    where = _locate(doc, source)
    found = False
    value: Any = None
    error = ""
    if where is not None:
        found, value, error = _get(where[0], where[1])
    if error:
        raise _failed(f"error in copy for from: '{source}': {error}")
    if not found:
        raise _failed(
            f"copy operation does not apply: doc is missing from path: {source}: {_MISSING}"
        )
    path = _string_field(op, "path")
    if path is None:
        raise _failed(f"copy operation failed to decode path: {_MISSING}")
    target = _locate(doc, path)
    if target is None:
        raise _failed(
            f"copy operation does not apply: doc is missing destination path: {path}: {_MISSING}"
        )
    state.copied += len(orjson.dumps(value))
    if state.copied > MAX_COPY_BYTES:
        raise _failed(
            "Unable to complete the copy, the accumulated size increase of copy is "
            f"{state.copied}, exceeding the limit {MAX_COPY_BYTES}"
        )
    error = _add(target[0], target[1], clone(value))
    if error:
        raise _failed(f"error while adding value during copy: {error}")


def _op_test(doc: Any, op: dict[str, Any], state: _State) -> None:
    path = _string_field(op, "path")
    if path is None:
        raise _failed(
            f"test operation failed to decode path: operation missing path field: {_MISSING}"
        )
    where = _locate(doc, path)
    if where is None:
        raise _failed(f"test operation does not apply: is missing path: {path}: {_MISSING}")
    _, actual, error = _get(where[0], where[1])
    if error:
        raise _failed(f"error in test for path: '{path}': {error}")
    expected = op.get("value")
    # A missing member and an explicit null are the same thing to upstream, and
    # so are a missing and a null `value`.
    if actual is None or expected is None:
        passed = actual is None and expected is None
    else:
        passed = json_equal(actual, expected)
    if not passed:
        raise _failed(f"testing value {path} failed: test failed")


_HANDLERS = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move,
    "copy": _op_copy,
    "test": _op_test,
}

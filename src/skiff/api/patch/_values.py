"""Small helpers over decoded JSON values shared by the patch formats.

Patches run on every write, so these stay allocation-light and avoid
`copy.deepcopy`, which is several times slower on plain JSON trees.
"""

from __future__ import annotations

from typing import Any


def clone(value: Any) -> Any:
    """A deep copy of a JSON tree, so results never alias the caller's inputs."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def scalar_key(value: Any) -> Any:
    """A hashable identity for a JSON scalar that keeps `true`, `1` and `1.0` apart.

    Python treats `True == 1 == 1.0`; JSON (and upstream's Go comparison) does not.
    """
    if isinstance(value, (dict, list)):
        return ("<unhashable>", id(value))
    return (type(value).__name__, value)


def json_equal(a: Any, b: Any) -> bool:
    """Structural JSON equality that, unlike `==`, tells booleans from numbers."""
    if isinstance(a, dict):
        if not isinstance(b, dict) or len(a) != len(b):
            return False
        return all(k in b and json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        if not isinstance(b, list) or len(a) != len(b):
            return False
        return all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def go_format(value: Any) -> str:
    """Render a value the way Go's `%v` prints decoded JSON.

    Error texts that kubectl users see (and search for) embed values in this
    form, e.g. `map[image:nginx name:web]`, so ours read the same.
    """
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def json_type_name(value: Any) -> str:
    """The JSON type name Go's decoder uses in "cannot unmarshal X" errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"

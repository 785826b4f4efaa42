"""What changed between two versions of an object, path by path.

Ownership moves with change: an update takes the fields it added or modified from
their previous owners, and fields it removed leave every owner. Conflicts for an
apply are the added or modified fields someone else owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from skiff.api.apply import shape
from skiff.api.apply.fieldset import FieldSet, Path, field, path_string
from skiff.api.schema.node import SchemaNode


@dataclass(frozen=True)
class Comparison:
    """The paths added, modified and removed going from one object to another."""

    added: FieldSet
    modified: FieldSet
    removed: FieldSet

    def changed(self) -> FieldSet:
        """Paths whose new value someone now sets: added or modified."""
        return self.added | self.modified

    def without_subtrees(self, roots: tuple[Path, ...]) -> Comparison:
        """The comparison ignoring everything at or below `roots`."""
        return Comparison(
            self.added.without_subtrees(roots),
            self.modified.without_subtrees(roots),
            self.removed.without_subtrees(roots),
        )


def compare(old: dict[str, Any], new: dict[str, Any], node: SchemaNode | None) -> Comparison:
    """Compare two objects of one kind; raises SchemaMismatch for unplaceable list items."""
    if not old and new:
        # A create: everything is added. One direct walk, as every create pays for it.
        paths: set[Path] = set()
        for k, v in new.items():
            _all_paths(v, shape.child(node, k), (field(k),), paths)
        return Comparison(FieldSet(paths), _EMPTY, _EMPTY)
    added: set[Path] = set()
    modified: set[Path] = set()
    removed: set[Path] = set()
    _cmp(old, new, node, (), added, modified, removed)
    return Comparison(FieldSet(added), FieldSet(modified), FieldSet(removed))


_EMPTY = FieldSet(set())


def _all_paths(value: Any, node: SchemaNode | None, path: Path, out: set[Path]) -> None:
    """Add `path` and every path below it in `value` (what `_cmp` adds from MISSING)."""
    if isinstance(value, dict):
        if value and not shape.atomic_map(node):
            for k, v in value.items():
                _all_paths(v, shape.child(node, k), (*path, field(k)), out)
    elif isinstance(value, list) and value and shape.list_type(node) != "atomic":
        item_node = shape.items(node)
        for pe, item in shape.index_items(node, value, path_string(path)).items():
            _all_paths(item, item_node, (*path, pe), out)
    out.add(path)


def granularity(a: Any, b: Any, node: SchemaNode | None) -> str:
    """`map`, `list` or `leaf`: how two values at one position are walked together.

    Values of different shapes, atomic types and a pair of empties are leaves; the
    last keeps an explicit `{}` distinct from an absent field.
    """
    present = [x for x in (a, b) if x is not shape.MISSING]
    if all(isinstance(x, dict) for x in present):
        if shape.atomic_map(node) or not any(present):
            return "leaf"
        return "map"
    if all(isinstance(x, list) for x in present):
        if shape.list_type(node) == "atomic" or not any(present):
            return "leaf"
        return "list"
    return "leaf"


def _identical(a: Any, b: Any) -> bool:
    """Whether two equal (`==`) JSON values are also the same to `shape.same`.

    `==` takes `true` for `1`; identical encodings rule that out (a difference in key
    order only costs the walk this check would have saved).
    """
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except (TypeError, orjson.JSONEncodeError):
        return False


def _cmp(
    a: Any,
    b: Any,
    node: SchemaNode | None,
    path: Path,
    added: set[Path],
    modified: set[Path],
    removed: set[Path],
) -> None:
    if (isinstance(a, dict | list) and a == b and _identical(a, b)):
        # Unchanged subtrees (most of an object in a typical update) need no walk.
        return
    if a is shape.MISSING and path:
        # A new subtree (a first status report): every path in it is added.
        _all_paths(b, node, path, added)
        return
    kind = granularity(a, b, node)
    if kind == "leaf":
        if a is shape.MISSING:
            added.add(path)
        elif b is shape.MISSING:
            removed.add(path)
        elif not shape.same(a, b):
            modified.add(path)
        return
    if kind == "map":
        am = a if isinstance(a, dict) else {}
        bm = b if isinstance(b, dict) else {}
        for k in {**am, **bm}:
            _cmp(
                am.get(k, shape.MISSING),
                bm.get(k, shape.MISSING),
                shape.child(node, k),
                (*path, field(k)),
                added,
                modified,
                removed,
            )
    else:
        where = path_string(path)
        ai = shape.index_items(node, a if isinstance(a, list) else [], where)
        bi = shape.index_items(node, b if isinstance(b, list) else [], where)
        item_node = shape.items(node)
        for pe in {**ai, **bi}:
            _cmp(
                ai.get(pe, shape.MISSING),
                bi.get(pe, shape.MISSING),
                item_node,
                (*path, pe),
                added,
                modified,
                removed,
            )
    if path:
        if a is shape.MISSING:
            added.add(path)
        elif b is shape.MISSING:
            removed.add(path)

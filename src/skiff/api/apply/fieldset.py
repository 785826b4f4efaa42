"""Sets of field paths, and their `fieldsV1` wire encoding.

Server-side apply records, per manager, which parts of an object that manager owns.
A part is a *path*: a tuple of path elements leading from the object root to a field,
a list item or a map entry. Sets of paths are what ownership, conflicts and pruning
are computed with; `fieldsV1` is how a set travels inside `metadata.managedFields`.

Sets are kept flat (a frozenset of paths) because every operation the apply logic
needs is then one Python set operation; the trie shape exists only on the wire.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import orjson


class PathElement(NamedTuple):
    """One step of a path.

    `kind` is `f` (a field or map key, `text` is its name), `k` (a list-map item,
    `text` is its key fields as canonical JSON), `v` (a set item, `text` is its value
    as canonical JSON) or `i` (a list index, `text` is the decimal index). Keeping the
    canonical text rather than the decoded value makes elements hashable and makes
    the wire encoding a plain concatenation.
    """

    kind: str
    text: str

    def __str__(self) -> str:
        if self.kind == "f":
            return "." + self.text
        if self.kind == "k":
            keys = json.loads(self.text)
            return "[" + ",".join(f"{k}={canonical_json(keys[k])}" for k in sorted(keys)) + "]"
        if self.kind == "v":
            return f"[={self.text}]"
        return f"[{self.text}]"

    def encode(self) -> str:
        """The element as a `fieldsV1` object key."""
        return f"{self.kind}:{self.text}"


Path = tuple[PathElement, ...]


_PLAIN = (str, int, bool, type(None))


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the one spelling two equal values share."""
    if isinstance(value, float) and value.is_integer():
        # JSON does not distinguish 80 from 80.0; the wire form never shows the latter.
        value = int(value)
    if (isinstance(value, _PLAIN) or isinstance(value, dict)
            and all(type(v) in _PLAIN for v in value.values())):
        # List-map keys are flat maps of strings and numbers: orjson spells those as the
        # standard library does, several times faster. (Floats differ in exponents.)
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):
            pass
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def field(name: str) -> PathElement:
    """The element naming a field or map key."""
    return PathElement("f", name)


def key(fields: dict[str, Any]) -> PathElement:
    """The element naming a list-map item by its key fields."""
    return PathElement("k", canonical_json(fields))


def value(item: Any) -> PathElement:
    """The element naming a set item by its value."""
    return PathElement("v", canonical_json(item))


def index(i: int) -> PathElement:
    """The element naming a list item by position."""
    return PathElement("i", str(i))


def make_path(*parts: str | PathElement) -> Path:
    """A path from field names and elements: `make_path("spec", "replicas")`."""
    return tuple(p if isinstance(p, PathElement) else field(p) for p in parts)


def path_string(path: Path) -> str:
    """The path as upstream prints it: `.spec.containers[name="nginx"].image`."""
    return "".join(str(pe) for pe in path)


_KIND_ORDER = {"f": 0, "k": 1, "v": 2, "i": 3}


def _value_order(v: Any) -> tuple[Any, ...]:
    if v is None:
        return (0,)
    if isinstance(v, bool):
        return (3, v)
    if isinstance(v, int | float):
        return (1, v)
    if isinstance(v, str):
        return (2, v)
    return (4, canonical_json(v))


@functools.lru_cache(maxsize=8192)
def element_order(pe: PathElement) -> tuple[Any, ...]:
    """A sort key putting fields first, then keys, values and indexes, each in order.

    Remembered: the same list items (condition types, container names) are sorted
    write after write, and their keys would otherwise be parsed each time.
    """
    if pe.kind == "f":
        return (0, pe.text)
    if pe.kind == "k":
        keys = json.loads(pe.text)
        return (1, tuple((k, _value_order(keys[k])) for k in sorted(keys)))
    if pe.kind == "v":
        return (2, _value_order(json.loads(pe.text)))
    return (_KIND_ORDER.get(pe.kind, 4), int(pe.text) if pe.text.lstrip("-").isdigit() else 0)


def path_order(path: Path) -> tuple[Any, ...]:
    """A sort key giving upstream's path iteration order."""
    return tuple(element_order(pe) for pe in path)


class FieldSet:
    """An immutable set of paths."""

    __slots__ = ("_paths",)

    def __init__(self, paths: Iterable[Path] = ()) -> None:
        self._paths: frozenset[Path] = frozenset(paths)

    @property
    def paths(self) -> frozenset[Path]:
        """The member paths."""
        return self._paths

    def __contains__(self, path: object) -> bool:
        return path in self._paths

    def __iter__(self) -> Iterator[Path]:
        return iter(sorted(self._paths, key=path_order))

    def __len__(self) -> int:
        return len(self._paths)

    def __bool__(self) -> bool:
        return bool(self._paths)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSet) and self._paths == other._paths

    def __hash__(self) -> int:
        return hash(self._paths)

    def __repr__(self) -> str:
        return "FieldSet({" + ", ".join(path_string(p) for p in self) + "})"

    def __or__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self._paths | other._paths)

    def __and__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self._paths & other._paths)

    def __sub__(self, other: FieldSet) -> FieldSet:
        return FieldSet(self._paths - other._paths)

    def without_subtrees(self, roots: Iterable[Path]) -> FieldSet:
        """Drop every path at or below one of `roots` (fields a request may not own)."""
        roots = tuple(roots)
        if not roots:
            return self
        return FieldSet(p for p in self._paths if not any(p[: len(r)] == r for r in roots))

    def prefixes(self) -> frozenset[Path]:
        """Every strict, non-empty prefix of a member: the paths with members below them."""
        return frozenset(p[:i] for p in self._paths for i in range(1, len(p)))

    @classmethod
    def from_fields_v1(cls, encoded: dict[str, Any]) -> FieldSet:
        """Decode the `fieldsV1` trie; raises ValueError for a malformed one."""
        if not isinstance(encoded, dict):
            raise ValueError("fieldsV1 must be an object")
        try:
            wire = orjson.dumps(encoded)
        except (TypeError, orjson.JSONEncodeError):
            return cls._decoded(encoded)
        # Objects of one template carry the same tries write after write.
        return _decode_cached(wire)

    @classmethod
    def _decoded(cls, encoded: dict[str, Any]) -> FieldSet:
        paths: set[Path] = set()
        _decode(encoded, (), paths)
        return cls(paths)

    def to_fields_v1(self) -> dict[str, Any]:
        """Encode as the `fieldsV1` trie, ordered as upstream writes it."""
        # A fresh copy every time: callers store it inside objects they go on editing.
        return orjson.loads(_encode_cached(self._paths))

    def _to_fields_v1(self) -> dict[str, Any]:
        # Trie entries are [children, is_member]: membership is known while
        # encoding without hashing whole paths again.
        root: dict[PathElement, list[Any]] = {}
        for path in self._paths:
            node = root
            entry: list[Any] = []
            for pe in path:
                entry = node.get(pe)  # type: ignore[assignment]
                if entry is None:
                    entry = node[pe] = [{}, False]
                node = entry[0]
            if entry:
                entry[1] = True
        return _encode(root, include_self=False)


@functools.lru_cache(maxsize=4096)
def _decode_cached(wire: bytes) -> FieldSet:
    return FieldSet._decoded(orjson.loads(wire))  # noqa: SLF001 - the cached path


@functools.lru_cache(maxsize=4096)
def _encode_cached(paths: frozenset[Path]) -> bytes:
    return orjson.dumps(FieldSet(paths)._to_fields_v1())  # noqa: SLF001 - the cached path


def _decode(obj: dict[str, Any], prefix: Path, out: set[Path]) -> None:
    for k, child in obj.items():
        if not isinstance(child, dict):
            raise ValueError(f"fieldsV1 entry {k!r} must be an object")
        if k == ".":
            if not prefix:
                raise ValueError("fieldsV1 root cannot be a member")
            out.add(prefix)
            continue
        pe = _parse_element(k)
        path = (*prefix, pe)
        if child:
            _decode(child, path, out)
        else:
            out.add(path)


def _parse_element(text: str) -> PathElement:
    kind, sep, rest = text.partition(":")
    if not sep or kind not in _KIND_ORDER:
        raise ValueError(f"unknown path element {text!r}")
    if kind == "f":
        return PathElement("f", rest)
    if kind == "i":
        return PathElement("i", str(int(rest)))
    try:
        decoded = json.loads(rest)
    except json.JSONDecodeError as e:
        raise ValueError(f"bad path element {text!r}: {e}") from None
    if kind == "k" and not isinstance(decoded, dict):
        raise ValueError(f"bad key path element {text!r}")
    return PathElement(kind, canonical_json(decoded))


def _encode(node: dict[PathElement, list[Any]], include_self: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if include_self and node:
        out["."] = {}
    elements = list(node)
    if len(elements) > 1:
        if all(pe.kind == "f" for pe in elements):
            elements.sort(key=_field_text)
        else:
            elements.sort(key=element_order)
    for pe in elements:
        children, member = node[pe]
        out[f"{pe.kind}:{pe.text}"] = _encode(children, member)
    return out


def _field_text(pe: PathElement) -> str:
    return pe.text
